import Foundation
import GRDB
import Logging

/// What a salvage kept of a damaged store that had no verified backup (`SQLiteSessionStore.salvage`).
public struct StoreSalvageReport: Sendable, Equatable {
    public struct Table: Sendable, Equatable {
        public var name: String
        public var rowsKept: Int
        /// Rows read but not kept: they failed their row check, or belong to an account not kept.
        public var rowsDropped: Int
        /// False when reading broke off at damage: the rows between the two ends read are lost.
        public var readInFull: Bool
    }

    public var tables: [Table]
    /// Accounts kept with their home DC's auth key: they run again without a login.
    public var accountsWithSession: [AccountID]
    /// Accounts kept (identity, marks, limits) without their home DC's auth key: each needs a login.
    public var accountsWithoutSession: [AccountID]
    /// Accounts the damaged file named in a session row that could not be kept: each needs a login.
    public var accountsLost: [AccountID]
    /// The rows that failed their row check ("the DC 2 row of bob").
    public var rowsFailingTheirCheck: [String]
    /// Whether the secrets' header (encryption, the phone-key secret) was read. Without it, no
    /// secret is kept: a sealed key could not be opened, and a clear one could not be told apart.
    public var secretsKept: Bool
    /// Where the damaged file is now, as it was found.
    public var damagedFileMovedTo: String
    /// Backups that failed verification before the salvage, renamed `*.bad` as a restore does (so
    /// no later open tries them again), kept for a person to look at.
    public var backupsSetAside: [String] = []
}

/// Builds a new store from what still reads in a damaged file when no verified backup exists (the
/// alternative is logging every account in again, which needs each phone's code, and forgetting
/// the flood waits and send-code deadlines Telegram imposed: the next login or call would walk
/// into them). Reads only a copy, so the damaged file is moved aside exactly as found.
///
/// Each table is read in primary-key order from both ends, so damage in the middle of a table
/// costs the rows between the two places reading broke off, not the whole table. An account's and
/// a DC's row is kept only when its row check holds, which proves every field of it; other tables
/// take what reads (STRICT columns refuse a value of the wrong type). Leases, live reports and the
/// backup catalog are not carried: they describe processes and files of before the damage.
struct StoreSalvage {
    let recovery: StoreRecovery

    var path: String { recovery.path }
    var logger: Logger { recovery.logger }

    /// Carried in this order, parents first (the new store enforces foreign keys). The tables whose
    /// rows hold sealed secrets are carried only with the header that says how they were sealed.
    static let tables: [(name: String, holdsSecrets: Bool)] = [
        ("account", false), ("dc", true), ("future_salt", false), ("update_state", false), ("channel_pts", false), ("peer", false),
        ("flood_wait", false), ("send_code_deadline", false), ("account_status", false), ("pending_login_code", true),
        ("future_auth_token", true), ("service_notification", false), ("alert_sent", false), ("account_freeze", false),
    ]

    func salvage() throws(SessionStoreError) -> StoreSalvageReport {
        switch StoreInspector.inspect(path, busyTimeout: recovery.options.busyTimeout) {
        case .damaged:
            break
        case .good:
            throw .salvageRefused(path: path, reason: "the store is not damaged; it opens as it is")
        case .absent, .empty:
            throw .salvageRefused(path: path, reason: "there is no store file to salvage")
        case .foreign(let reason):
            throw .salvageRefused(path: path, reason: "it is not a session store (\(reason))")
        case .unreachable(let reason):
            throw .filesystem(path: path, operation: "read the store file to salvage it (nothing was changed)", reason: reason)
        }
        let users = StoreRecovery.otherUsers(of: path).filter(FileSystem.processIsAlive)
        if !users.isEmpty {
            throw .salvageRefused(path: path, reason: "process \(users.map(String.init).joined(separator: ", ")) has it open (a `tgsm run`?); "
                + "stop it first (it saves its sessions as it ends), so that nothing writes the file while it is read")
        }
        // A verified backup is exactly the last good state; what a salvage reads is only likely to be.
        let backups = try lookAtTheBackups()
        if let good = backups.good {
            throw .salvageRefused(path: path, reason: "the verified backup \(good) exists; opening the store restores it (`tgsm recover`)")
        }

        let source = path + ".salvage-source-\(getpid())"
        let staging = path + ".salvage-\(getpid())"
        let scratch = [source, staging].flatMap { file in ["", "-wal", "-shm", "-journal"].map { file + $0 } }
        for file in scratch { FileSystem.removeFile(file) }
        defer { for file in scratch { FileSystem.removeFile(file) } }
        for suffix in ["", "-wal"] where FileSystem.exists(path + suffix) { try FileSystem.copy(path + suffix, source + suffix) }
        try FileSystem.createPrivateFile(staging)

        var report: StoreSalvageReport
        do {
            report = try carry(from: source, into: staging)
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .databaseFailed(operation: "salvage \(path) into a new store (nothing was changed)", error: error)
        }
        guard case .good = StoreInspector.inspect(staging, busyTimeout: recovery.options.busyTimeout) else {
            throw .salvageRefused(path: path, reason: "the store built from it did not pass the store's checks; nothing was changed")
        }
        guard let movedTo = recovery.moveAside(reason: "damaged") else {
            throw .filesystem(path: path, operation: "move the damaged file aside (nothing was changed)", reason: "the rename failed")
        }
        do {
            try FileSystem.moveFile(staging, path)
        } catch {
            // The damaged file goes back rather than leave no store at its path (the next command
            // would start an empty one).
            for suffix in ["", "-wal", "-shm"] where FileSystem.exists(movedTo + suffix) { try? FileSystem.moveFile(movedTo + suffix, path + suffix) }
            throw error
        }
        FileSystem.syncFile((path as NSString).deletingLastPathComponent)
        report.damagedFileMovedTo = movedTo
        // Only now, with the salvage done (a refusal changes nothing): never tried again, kept for a person.
        for entry in backups.bad { recovery.catalog.quarantine(entry) }
        report.backupsSetAside = backups.bad.map(\.file)
        logger.warning("session store salvaged: a new store holds what still read in the damaged file", metadata: [
            "path": "\(path)", "damaged_file_moved_to": "\(movedTo)",
            "kept": "\(report.tables.filter { $0.rowsKept > 0 }.map { "\($0.name)=\($0.rowsKept)" }.joined(separator: ","))",
            "broken_off": "\(report.tables.filter { !$0.readInFull }.map(\.name).joined(separator: ","))",
            "accounts_with_session": "\(report.accountsWithSession.count)",
            "accounts_needing_login": "\(report.accountsWithoutSession.count + report.accountsLost.count)",
        ])
        return report
    }

    /// The newest backup that verifies, and those found bad on the way to it; throws when none
    /// verifies but one could not be checked now.
    private func lookAtTheBackups() throws(SessionStoreError) -> (good: String?, bad: [BackupCatalog.Sidecar]) {
        let staging = recovery.backupDirectory + "/.salvage-check-\(getpid()).sqlite"
        defer { FileSystem.removeFile(staging) }
        var unverifiable: [String] = []
        var bad: [BackupCatalog.Sidecar] = []
        for entry in recovery.catalog.entries() {
            switch recovery.catalog.check(entry, copyTo: staging, busyTimeout: recovery.options.busyTimeout) {
            case .good:
                return (entry.file, bad)
            case .bad(let problem):
                logger.warning("backup failed verification", metadata: ["backup": "\(entry.file)", "problem": "\(problem)"])
                bad.append(entry)
            case .unverifiable(let problem):
                unverifiable.append("\(entry.file): \(problem)")
            }
        }
        guard unverifiable.isEmpty else {
            throw .filesystem(path: recovery.backupDirectory, operation: "verify the backups before a salvage (nothing was changed)",
                              reason: unverifiable.joined(separator: "; "))
        }
        return (nil, bad)
    }

    private func carry(from source: String, into staging: String) throws -> StoreSalvageReport {
        var configuration = Configuration()
        configuration.busyMode = .timeout(recovery.options.busyTimeout)
        let queue = try DatabaseQueue(path: staging, configuration: configuration)
        defer { try? queue.close() }
        try SQLiteSchema.migrator().migrate(queue)
        // The damaged copy on a connection of its own, each read on its own: a read that meets the
        // damage ends that statement, never the new store's transaction.
        let damaged: DatabaseQueue
        do {
            damaged = try DamagedSQLiteFile.open(source, busyTimeout: recovery.options.busyTimeout)
        } catch where DatabaseFailure(error) == .damaged {
            throw SessionStoreError.salvageRefused(path: path, reason: "SQLite cannot read the file's list of tables (\((error as? DatabaseError)?.message ?? "\(error)")), "
                + "so no table in it can be found. Restore the store directory from your own backups, or log the accounts in again "
                + "(`tgsm auth`); keep the file: a specialist tool (`sqlite3 FILE .recover`) may still read rows from it")
        }
        defer { try? damaged.close() }
        return try damaged.inDatabase { old in
            let known = Set(SQLiteSchema.migrator().migrations)
            if let applied = try? String.fetchAll(old, sql: "SELECT identifier FROM grdb_migrations WHERE identifier LIKE 'store.%'"),
               let newer = applied.first(where: { !known.contains($0) }) {
                throw SessionStoreError.salvageRefused(path: path, reason: "a newer tgsm wrote it (migration \(newer)); salvage it with that version")
            }
            var report = StoreSalvageReport(tables: [], accountsWithSession: [], accountsWithoutSession: [], accountsLost: [],
                                            rowsFailingTheirCheck: [], secretsKept: false, damagedFileMovedTo: "")
            try queue.inTransaction { db in
                report.secretsKept = try carryMeta(from: old, into: db)
                var named = Set<String>()
                for (table, holdsSecrets) in Self.tables where !holdsSecrets || report.secretsKept {
                    guard let result = try carryTable(table, from: old, into: db, keepSecrets: report.secretsKept,
                                                      failing: &report.rowsFailingTheirCheck, named: &named) else { continue }
                    report.tables.append(result)
                }
                let kept = Set(try String.fetchAll(db, sql: "SELECT id FROM account"))
                // A key on another DC alone does not make a session: the account runs from its home DC.
                let withKey = Set(try String.fetchAll(db, sql: """
                    SELECT a.id FROM account a JOIN dc d ON d.account = a.id AND d.dc_id = a.home_dc WHERE d.auth_key IS NOT NULL
                    """))
                report.accountsWithSession = kept.intersection(withKey).sorted().map { AccountID($0) }
                report.accountsWithoutSession = kept.subtracting(withKey).sorted().map { AccountID($0) }
                report.accountsLost = named.subtracting(kept).sorted().map { AccountID($0) }
                return .commit
            }
            return report
        }
    }

    /// The store's own keys (the encryption header, the phone-key secret) and its commit counter,
    /// moved past the damaged file's. Whether every row read.
    private func carryMeta(from old: Database, into db: Database) throws -> Bool {
        var readInFull = true
        do {
            let cursor = try Row.fetchCursor(old, sql: "SELECT key, value FROM store_meta")
            while let row = try cursor.next() {
                guard let key = row.string("key") else { continue }
                switch key {
                case "format":
                    continue
                case "commit_seq":
                    if let sequence = row.int64("value") {
                        try db.execute(sql: "UPDATE store_meta SET value = ? WHERE key = 'commit_seq'", arguments: [sequence + 1])
                    }
                default:
                    try db.execute(sql: "INSERT OR REPLACE INTO store_meta(key, value) VALUES (?, ?)", arguments: [key, row["value"] as DatabaseValue])
                }
            }
        } catch {
            readInFull = false
            logger.warning("the damaged store's header rows do not read; no secret is carried", metadata: ["error": "\(error)"])
        }
        return readInFull
    }

    /// Copies one table's rows that read and pass their checks; nil when the old file has no such
    /// table (an older schema). A table whose definition does not read is reported read in part.
    private func carryTable(_ table: String, from old: Database, into db: Database, keepSecrets: Bool, failing: inout [String],
                            named: inout Set<String>) throws -> StoreSalvageReport.Table? {
        guard let shape = DamagedSQLiteFile.shape(of: table, in: old) else {
            return DamagedSQLiteFile.holds(table, in: old) ? StoreSalvageReport.Table(name: table, rowsKept: 0, rowsDropped: 0, readInFull: false) : nil
        }
        let mainColumns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table])
        let columns = mainColumns.filter(Set(shape.columns).contains)
        let insert = "INSERT OR IGNORE INTO \(table)(\(columns.map { "\"\($0)\"" }.joined(separator: ", "))) "
            + "VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"
        var result = StoreSalvageReport.Table(name: table, rowsKept: 0, rowsDropped: 0, readInFull: true)
        let read = try DamagedSQLiteFile.read(table, columns: columns, key: shape.key, from: old) { row in
            if let account = row.string("account"), table == "dc" { named.insert(account) }
            if table == "account", let id = row.string("id") { named.insert(id) }
            if let problem = Self.checkProblem(table: table, row: row) {
                failing.append(problem)
                result.rowsDropped += 1
                return
            }
            var values = columns.map { row[$0] as DatabaseValue }
            // An account's proxy link is sealed like the keys when the store seals secrets.
            if table == "account", !keepSecrets, let index = columns.firstIndex(of: "proxy") { values[index] = .null }
            do {
                try db.execute(sql: insert, arguments: StatementArguments(values))
                result.rowsKept += db.changesCount
            } catch {
                // A foreign key to an account not kept, a value of the wrong type.
                result.rowsDropped += 1
            }
        }
        result.readInFull = read.readInFull
        if let failure = read.failure {
            logger.warning("a table of the damaged store broke off; read from both ends", metadata: ["table": "\(table)", "error": "\(failure)"])
        }
        return result
    }

    /// Why an account's or a DC's row may not be kept: its row check fails. nil for other tables.
    static func checkProblem(table: String, row: Row) -> String? {
        switch table {
        case "account":
            guard let id = row.string("id") else { return "an account row without an id" }
            let check = RowCheck.account(id: id, homeDC: row.int64("home_dc").map(Int.init), userID: row.int64("user_id"),
                                         isBot: row.int64("is_bot") == 1)
            return row.int64("row_check") == check ? nil : "the account row of \(id)"
        case "dc":
            guard let account = row.string("account"), let dc = row.int64("dc_id"), let salt = row.int64("server_salt"),
                  let offset = row.double("time_offset") else { return "a DC row with missing fields" }
            let check = RowCheck.dc(account: account, dc: Int(dc), key: row.blob("auth_key"), keyID: row.int64("auth_key_id"),
                                    salt: salt, offset: offset, authorized: row.int64("is_authorized") == 1)
            return row.int64("row_check") == check ? nil : "the DC \(dc) row of \(account)"
        default:
            return nil
        }
    }
}

extension SQLiteSessionStore {
    /// Builds a new store from what still reads in the damaged store file of `directory` when no
    /// verified backup exists (`StoreSalvage`): the sessions whose rows pass their checks, the flood
    /// waits, send-code deadlines, marks and the rest that read. The damaged file is moved aside as
    /// found. Refused (`salvageRefused`) when the file is not damaged or a verified backup exists,
    /// and while another process has the file open. Open the store afterwards as usual.
    public static func salvage(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) throws(SessionStoreError) -> StoreSalvageReport {
        let recovery = StoreRecovery(path: directory + "/" + options.fileName, backupDirectory: directory + "/backups", options: options)
        return try StoreSalvage(recovery: recovery).salvage()
    }
}
