import Logging
import MTProto
import MTProtoClient

/// How the SQLite store runs.
public struct SQLiteStoreOptions: Sendable {
    /// SQLite's `synchronous` in WAL mode. `.full` fsyncs the WAL at every commit, so a commit that
    /// returned survives a power loss; `.normal` fsyncs only at checkpoints, so a power loss (never a
    /// process crash) can drop the last commits. A lost auth key means a new login and a lost flood
    /// record means hitting the same limit again, so the default is `.full` (docs/SESSIONS.md has the cost).
    public enum Synchronous: String, Sendable {
        case full = "FULL"
        case normal = "NORMAL"
    }

    /// The store's file name inside its directory.
    public var fileName: String
    public var synchronous: Synchronous
    /// Seconds a writer waits for another process's write transaction before failing.
    public var busyTimeout: Double
    /// How many verified backups are kept (oldest removed first).
    public var backupGenerations: Int
    /// Seconds between scheduled backups (`backupIfDue`).
    public var backupInterval: Double
    /// Whether a backup is taken after every write that adds or changes a permanent auth key.
    public var backsUpOnAuthKeyChange: Bool
    public var encryption: StoreEncryption
    public var clock: any TelegramClock
    public var logger: Logger

    public init(
        fileName: String = "sessions.sqlite", synchronous: Synchronous = .full, busyTimeout: Double = 10,
        backupGenerations: Int = 5, backupInterval: Double = 6 * 3600, backsUpOnAuthKeyChange: Bool = true,
        encryption: StoreEncryption = .none, clock: any TelegramClock = WallClock(),
        logger: Logger = Logger(label: "tgsm.store")
    ) {
        self.fileName = fileName
        self.synchronous = synchronous
        self.busyTimeout = busyTimeout
        self.backupGenerations = max(1, backupGenerations)
        self.backupInterval = backupInterval
        self.backsUpOnAuthKeyChange = backsUpOnAuthKeyChange
        self.encryption = encryption
        self.clock = clock
        self.logger = logger
    }
}
