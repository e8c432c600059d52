import Logging
import ServiceLifecycle
import SessionManager

/// The SQLite store's scheduled backups for the life of `tgsm run`: a verified backup whenever the
/// newest is older than the interval (on top of the one after every auth-key change). It runs in the
/// run's service group so it stops with it: on graceful shutdown the loop is cancelled between
/// backups (a backup under way finishes; the store closes only after the group returned).
struct BackupScheduleService: Service {
    let store: SQLiteSessionStore
    /// Seconds between backups (`tgsm run --backup-interval`).
    let interval: Double
    /// The run's logger: a failed backup is reported there (the store's own is quiet by default).
    let logger: Logger

    func run() async throws {
        let store = store, interval = interval, logger = logger
        await cancelWhenGracefulShutdown { await store.runBackupSchedule(interval: interval, reporting: logger) }
    }
}
