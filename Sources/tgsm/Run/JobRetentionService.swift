import Logging
import MTProtoClient
import ServiceLifecycle
import Workers

/// Finished jobs removed past their retention for the life of `tgsm run` (`--job-retention`): at
/// start, then hourly. On graceful shutdown the loop is cancelled between batches.
struct JobRetentionService: Service {
    let retention: JobRetention
    let queue: any JobQueue
    let clock: any TelegramClock
    let logger: Logger

    func run() async throws {
        let retention = retention, queue = queue, clock = clock, logger = logger
        await cancelWhenGracefulShutdown { await retention.run(queue: queue, clock: clock, logger: logger) }
    }
}
