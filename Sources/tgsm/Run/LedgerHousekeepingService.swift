import Logging
import MTProto
import MTProtoClient
import PostgresStore
import ServiceLifecycle
import SessionManager

/// Ended flood waits removed from the ledger for the life of `tgsm run`, at start and hourly: the
/// ledger records one row per account, method and peer, and nothing else deleted ended ones, so an
/// account that met slow modes or waits in many chats kept every one of them for good. Those that
/// ended a week ago go (the dashboard and `tgsm status` show only active ones).
struct LedgerHousekeepingService: Service {
    static let keptAfterTheEnd: Double = 7 * 24 * 3600

    let ledger: any FloodLedgerStore
    /// PostgreSQL's shared rate buckets: per-chat rows untouched for a day go too.
    var rateBuckets: PostgresSessionStore? = nil
    let clock: any TelegramClock
    let interval: Double
    let logger: Logger

    func run() async throws {
        let ledger = ledger, rateBuckets = rateBuckets, clock = clock, interval = interval, logger = logger
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let removed = try await ledger.purgeFloodWaits(endedBefore: UnixTime(seconds: clock.now().seconds - Self.keptAfterTheEnd))
                    if removed > 0 { logger.info("removed flood waits that ended over a week ago", metadata: ["waits": "\(removed)"]) }
                } catch {
                    logger.warning("ended flood waits could not be removed; tried again in an hour, nothing else is affected", metadata: ["error": "\(error)"])
                }
                if let rateBuckets {
                    do { try await rateBuckets.purgeIdleRateBuckets(untouchedSince: UnixTime(seconds: clock.now().seconds - 86_400)) } catch {
                        logger.warning("idle rate buckets could not be removed; tried again in an hour", metadata: ["error": "\(error)"])
                    }
                }
                do { try await clock.sleep(for: interval) } catch { return }
            }
        }
    }
}
