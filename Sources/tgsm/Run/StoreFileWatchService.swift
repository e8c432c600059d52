import Logging
import MTProto
import MTProtoClient
import ServiceLifecycle
import SessionManager
import Synchronization
import Workers

/// Ends `tgsm run` when its SQLite store file is replaced under it (`tgsm session restore --force`
/// from another shell). The run's sessions, leases and backups would otherwise go on in the old
/// file, which nothing else reads, while the restored one shows no holder: a second process would
/// take the accounts and Telegram would see one key used twice (AUTH_KEY_DUPLICATED). So the
/// sessions are closed at once, not after the workers' grace period, and the group shut down; the
/// run then exits with a failure, so a service manager starts it again on the restored file.
struct StoreFileWatchService: Service {
    let store: SQLiteSessionStore
    let runtimes: AccountRuntimes
    let clock: any TelegramClock
    /// Seconds between looks at the file (a stat each).
    let interval: Double
    let logger: Logger
    /// Set once the file was found replaced.
    let replaced: Finding

    func run() async throws {
        let found = await cancelWhenGracefulShutdown { () -> Bool in
            while !Task.isCancelled {
                if store.wasReplaced { return true }
                do { try await clock.sleep(for: interval) } catch { return false }
            }
            return false
        }
        guard found else { return }
        replaced.note()
        logger.critical("the store file was replaced under this process (a restore?): closing every session now and stopping",
                        metadata: ["path": "\(store.path)"])
        Terminal.standard.errorLine("tgsm run: \(store.path) was replaced under this process (a `tgsm session restore --force`?); "
            + "its sessions are closed and it stops. Start it again: it then runs what the restored file holds.")
        await runtimes.stopAll()
        // Returning ends the group (`successTerminationBehavior: .gracefullyShutdownGroup`).
    }
}

/// Whether the watch found the file replaced, for the run's exit.
final class Finding: Sendable {
    private let found = Mutex(false)
    func note() { found.withLock { $0 = true } }
    var isFound: Bool { found.withLock { $0 } }
}
