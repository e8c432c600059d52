import Foundation
import GRDB
import MTProto

/// What an operator's tool (the `tgsm` CLI) needs beyond the client's contract: looking at a store
/// without opening it (opening may restore a backup), the backups on disk with their verification,
/// an explicit restore, and the send-code deadlines without their phone keys.
extension SQLiteSessionStore {
    /// The store file as a read-only inspection finds it (the same checks opening runs).
    public enum FileHealth: Sendable, Equatable, CustomStringConvertible {
        /// No store file.
        case absent
        /// A file with no tables (never written).
        case empty
        /// A good store; its commit counter.
        case good(commitSequence: Int64)
        /// A session store that fails a check: truncated, bad header, `integrity_check`, row checks.
        case damaged(reason: String)
        /// Not a session store at all.
        case foreign(reason: String)
        /// Could not be read for a reason outside the file (permissions, a read-only filesystem, a
        /// lock): not damage.
        case unreachable(reason: String)

        public var description: String {
            switch self {
            case .absent: "absent"
            case .empty: "empty"
            case .good(let sequence): "good (commit \(sequence))"
            case .damaged(let reason): "damaged: \(reason)"
            case .foreign(let reason): "not a session store: \(reason)"
            case .unreachable(let reason): "cannot be read: \(reason)"
            }
        }
    }

    /// Inspects the store file of `directory` read-only (header, `integrity_check`, format marker,
    /// schema, row checks) without opening it for writing, so nothing is restored or created.
    /// The other processes that have the store open now (SQLite's locks on its file and `-shm`, as
    /// Linux's /proc/locks lists them): a file that reads as damaged while one does may only be in the
    /// middle of something, and nothing restores a backup under it.
    public static func processesUsing(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> [Int32] {
        StoreRecovery.otherUsers(of: directory + "/" + options.fileName)
    }

    /// The processes other than this one holding the store's write lock (SQLite's WAL write lock,
    /// byte 120 of its `-shm`) now and again `after` seconds later, with their names: a program that
    /// keeps a write transaction open (a `sqlite3` shell after BEGIN, a backup tool) stops every
    /// `tgsm run` on the store from renewing its leases and saving its sessions, while reads (and
    /// so the rest of `check`) go on. A tgsm process holds it for milliseconds, so one that still
    /// holds it at the second look is holding it up. Read from /proc/locks: nothing is opened.
    public static func writeLockHolders(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions(),
                                        after seconds: Double = 1) -> [(pid: Int32, name: String?)] {
        let shm = directory + "/" + options.fileName + "-shm"
        func holders() -> Set<Int32> {
            Set(FileSystem.otherProcessesLocks([shm]).filter { $0.isWrite && $0.start <= 120 && ($0.end ?? .max) >= 120 }.map(\.pid))
        }
        let first = holders()
        guard !first.isEmpty else { return [] }
        usleep(UInt32(max(0, seconds) * 1_000_000))
        return first.intersection(holders()).sorted().map { ($0, FileSystem.processName($0)) }
    }

    public static func inspectFile(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> FileHealth {
        switch StoreInspector.inspect(directory + "/" + options.fileName, busyTimeout: options.busyTimeout) {
        case .absent: .absent
        case .empty: .empty
        case .good(let sequence): .good(commitSequence: sequence)
        case .damaged(let reason): .damaged(reason: reason)
        case .foreign(let reason): .foreign(reason: reason)
        case .unreachable(let reason): .unreachable(reason: reason)
        }
    }

    /// Whether the SQLite file at `path` (a file a restore or recovery set aside, say) holds auth keys
    /// in clear; nil when it cannot be read. Read-only.
    public static func holdsKeysInClear(file path: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> Bool? {
        StoreInspector.holdsKeysInClear(path, busyTimeout: options.busyTimeout)
    }

    /// Whether the store file seals its secrets (it has an encryption header); nil when it cannot be read.
    public static func isSealed(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> Bool? {
        StoreInspector.hasEncryptionHeader(directory + "/" + options.fileName, busyTimeout: options.busyTimeout)
    }

    /// The backups in `directory/backups` that hold auth keys in clear (taken before the store's
    /// encryption was turned on), newest first.
    public static func backupsHoldingKeysInClear(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> [String] {
        backupsOnDisk(directory: directory).filter { inspectBackup($0.file, directory: directory, options: options).holdsKeysInClear }.map(\.file)
    }

    /// The backups on disk in `directory/backups`, newest first, read from their sidecars (so this
    /// works when the store itself is unreadable).
    public static func backupsOnDisk(directory: String) -> [BackupRecord] {
        BackupCatalog(directory: directory + "/backups").entries().map(\.record)
    }

    /// What one look at a backup found: whether a restore could use it, and whether it holds auth
    /// keys in clear (taken before the store's encryption was turned on).
    public struct BackupInspection: Sendable, Hashable {
        /// Why a restore would not use it; nil when it verifies.
        public var problem: String?
        public var holdsKeysInClear: Bool
        /// Sealed under a key other than the one given (taken before a re-key): it restores only
        /// with that key. False when no key was given to compare.
        public var sealedUnderAnotherKey = false
        /// It could not be checked here and now (no space for the copy, a read-only directory):
        /// nothing is known against it, and a restore keeps it for a later try.
        public var unverifiable = false
        /// Whether it seals its secrets (an encryption header): nil when it could not be read. One
        /// that does not is what a store whose key was lost can come back from.
        public var isSealed: Bool? = nil
    }

    /// Verifies one backup exactly as a restore would (size and SHA-256 against its sidecar, then
    /// the store checks on a copy); returns why it is not usable, or nil when it is. Changes nothing.
    public static func verifyBackup(_ file: String, directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> String? {
        inspectBackup(file, directory: directory, options: options).problem
    }

    /// `verifyBackup`, and on the same copy (one copy a backup) whether it holds keys in clear: a
    /// backup that fails verification may still give its keys away. The backup itself is never opened.
    public static func inspectBackup(_ file: String, directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> BackupInspection {
        let catalog = BackupCatalog(directory: directory + "/backups")
        guard let entry = catalog.entries().first(where: { $0.file == file }) else {
            return BackupInspection(problem: "no backup named \(file) with a readable sidecar in \(catalog.directory)", holdsKeysInClear: false)
        }
        let staging = catalog.directory + "/.verify-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).sqlite"
        defer { FileSystem.removeFile(staging) }
        let check = catalog.check(entry, copyTo: staging, busyTimeout: options.busyTimeout)
        var inspection = BackupInspection(problem: check.problem, holdsKeysInClear: StoreInspector.holdsKeysInClear(staging, busyTimeout: options.busyTimeout) == true)
        if case .unverifiable = check { inspection.unverifiable = true }
        inspection.isSealed = StoreInspector.hasEncryptionHeader(staging, busyTimeout: options.busyTimeout)
        if case .none = options.encryption {} else if let text = StoreInspector.encryptionHeader(staging, busyTimeout: options.busyTimeout),
                                                     let header = try? EncryptionHeader.decode(text) {
            do { _ = try header.sealer(for: options.encryption, path: staging) } catch {
                if case .wrongEncryptionKey = error { inspection.sealedUnderAnotherKey = true }
            }
        }
        return inspection
    }

    /// Puts a verified backup in place of the store file while no process has the store open:
    /// `file` names the backup (nil: the newest that verifies). The current file and its
    /// `-wal`/`-shm` are moved aside (`sessions.sqlite.replaced-MS`), never deleted. A backup that
    /// fails verification is set aside (`.bad`) and, when none was named, the next one is tried.
    /// Throws `backupFailed` when no backup could be used; the store file is then left as it was.
    /// The restored file's commit counter is set above every backup's, so the next open keeps the
    /// chosen state instead of taking a newer backup for proof of lost commits.
    public static func restore(directory: String, backup file: String?, options: SQLiteStoreOptions = SQLiteStoreOptions()) throws(SessionStoreError) -> OpenOutcome {
        let recovery = StoreRecovery(path: directory + "/" + options.fileName, backupDirectory: directory + "/backups", options: options)
        var entries = recovery.catalog.entries()
        if let file {
            entries = entries.filter { $0.file == file }
            guard !entries.isEmpty else {
                throw .backupFailed(reason: "there is no backup named \(file) (with its sidecar) in \(recovery.backupDirectory); list them and pick one")
            }
        }
        guard !entries.isEmpty else { throw .backupFailed(reason: "\(recovery.backupDirectory) holds no backup; nothing was changed") }
        let reason = file.map { "restore of \($0) asked by an operator" } ?? "restore of the newest backup asked by an operator"
        guard let outcome = try recovery.restoreNewestGood(from: entries, reason: reason, asideAs: "replaced") else {
            throw .backupFailed(reason: "no backup passed verification (each failed its checks and was set aside as .bad); the store file was not changed")
        }
        // The operator chose this state: it must not pass for "commits were lost" at the next open,
        // which would put a newer backup back in its place. Its commit counter goes above them all.
        let highest = recovery.catalog.entries().map(\.commitSequence).max() ?? 0
        do {
            let queue = try DatabaseQueue(path: recovery.path)
            try queue.write { db in
                try db.execute(sql: "UPDATE store_meta SET value = MAX(value, ?) + 1 WHERE key = 'commit_seq'", arguments: [highest])
            }
            try queue.close()
        } catch {
            throw .databaseFailed(operation: "mark the restored store newer than its backups", error: error)
        }
        return outcome
    }

    /// The send-code deadlines still ahead of `now`, soonest first: the account and the time only
    /// (the phone key stays inside the store; it is useless to a reader anyway).
    public func activeSendCodeDeadlines(at now: UnixTime) async throws(SessionStoreError) -> [(account: AccountID, deadline: UnixTime)] {
        let rows: [SendCodeRow] = try await read("list send-code deadlines") { db in
            try Row.fetchAll(db, sql: "SELECT account, deadline FROM send_code_deadline WHERE deadline > ? ORDER BY deadline",
                             arguments: [now.seconds])
                .compactMap { row in
                    guard let account = row.string("account"), let deadline = row.double("deadline") else { return nil }
                    return SendCodeRow(account: account, deadline: deadline)
                }
        }
        return rows.map { (AccountID($0.account), UnixTime(seconds: $0.deadline)) }
    }

    /// The account's row as stored (home DC, user id), without keys.
    public func accountSummary(_ account: AccountID) async throws(SessionStoreError) -> AccountSummary? {
        try await read("read the account \(account)") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT id, created_at, home_dc, user_id, is_bot FROM account WHERE id = ?",
                                             arguments: [account.rawValue]) else { return nil }
            let authorized = try Int.fetchAll(db, sql: "SELECT dc_id FROM dc WHERE account = ? AND is_authorized = 1 AND auth_key IS NOT NULL ORDER BY dc_id",
                                              arguments: [account.rawValue])
            return AccountSummary(account: account, createdAt: UnixTime(seconds: row.double("created_at") ?? 0),
                                  homeDC: row.int64("home_dc").map(Int.init), userID: row.int64("user_id"),
                                  isBot: row.int64("is_bot") == 1, authorizedDCs: authorized)
        }
    }
}

private struct SendCodeRow: Sendable {
    var account: String
    var deadline: Double
}

/// What an operator sees of an account: never a key, never a phone number.
public struct AccountSummary: Sendable, Hashable {
    public var account: AccountID
    public var createdAt: UnixTime
    public var homeDC: Int?
    public var userID: Int64?
    public var isBot: Bool
    /// DCs with a stored key marked logged in.
    public var authorizedDCs: [Int]

    public init(account: AccountID, createdAt: UnixTime, homeDC: Int?, userID: Int64?, isBot: Bool, authorizedDCs: [Int]) {
        self.account = account
        self.createdAt = createdAt
        self.homeDC = homeDC
        self.userID = userID
        self.isBot = isBot
        self.authorizedDCs = authorizedDCs
    }
}
