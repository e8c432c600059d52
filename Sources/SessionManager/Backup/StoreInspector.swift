#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import GRDB

/// Decides whether a file is a usable session store before anything is built on it: the header,
/// SQLite's own `integrity_check`, the format marker, and the row checks of accounts and DCs.
enum StoreInspector {
    enum Verdict: Equatable {
        /// No file.
        case absent
        /// A file with no tables: never written, nothing to lose.
        case empty
        case good(commitSequence: Int64)
        /// Our store, damaged.
        case damaged(String)
        /// Some other file.
        case foreign(String)
        /// The file could not be read for a reason outside it: permissions, a read-only filesystem
        /// (a WAL store writes its -shm even to read), a lock held past the busy timeout, memory.
        /// Not damage: nothing may be moved aside or restored for it.
        case unreachable(String)
    }

    /// SQLite's answers about access to the file, not its content.
    static let accessCodes: [ResultCode] = [
        .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_NOMEM, .SQLITE_AUTH, .SQLITE_FULL,
    ]

    static let sqliteHeader = Array("SQLite format 3\u{0}".utf8)

    static func inspect(_ path: String, busyTimeout: Double) -> Verdict {
        guard let size = FileSystem.size(path) else { return .absent }
        let walSize = FileSystem.size(path + "-wal") ?? 0
        if size == 0 && walSize == 0 { return .empty }
        if size > 0 {
            guard size >= 100 else { return .damaged("the file is truncated to \(size) bytes") }
            guard let head = readHead(path) else {
                return .unreachable("it cannot be read (\(String(cString: strerror(errno)))); check that this user may read it")
            }
            if Array(head.prefix(16)) != sqliteHeader {
                if head.allSatisfy({ $0 == 0 }) { return .damaged("its header is zeroed") }
                return .foreign("it does not start with the SQLite header")
            }
            if let problem = headerProblem(head) { return .damaged("its header is damaged: \(problem)") }
        }
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(busyTimeout)
            configuration.foreignKeysEnabled = false
            // Read-only: inspecting a damaged file must not change it (it is kept aside as found).
            configuration.readonly = true
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read { db in try verdict(db) }
        } catch let error as DatabaseError where accessCodes.contains(error.resultCode) {
            return .unreachable("SQLite cannot open it: \(error.message ?? "\(error.resultCode)") (SQLite error \(error.resultCode.primaryResultCode.rawValue))")
        } catch {
            return .damaged("SQLite cannot read it: \(error)")
        }
    }

    /// Whether the store at `path` holds auth keys in clear: it has no encryption header and at least
    /// one key. nil when it cannot be read. Read-only, like `inspect`.
    static func holdsKeysInClear(_ path: String, busyTimeout: Double) -> Bool? {
        readOnly(path, busyTimeout: busyTimeout) { db in
            try !hasEncryptionHeader(db) && (try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dc WHERE auth_key IS NOT NULL") ?? 0) > 0
        }
    }

    /// Whether the store at `path` seals its secrets (has an encryption header); nil when it cannot be read.
    static func hasEncryptionHeader(_ path: String, busyTimeout: Double) -> Bool? {
        readOnly(path, busyTimeout: busyTimeout, hasEncryptionHeader)
    }

    /// The store's encryption header as stored; nil without one or when it cannot be read.
    static func encryptionHeader(_ path: String, busyTimeout: Double) -> String? {
        readOnly(path, busyTimeout: busyTimeout) { db in try String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'encryption'") } ?? nil
    }

    private static func hasEncryptionHeader(_ db: Database) throws -> Bool {
        try String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'encryption'") != nil
    }

    private static func readOnly<T>(_ path: String, busyTimeout: Double, _ body: (Database) throws -> T) -> T? {
        guard FileSystem.size(path) != nil else { return nil }
        do {
            var configuration = Configuration()
            configuration.busyMode = .timeout(busyTimeout)
            configuration.readonly = true
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            return try queue.read(body)
        } catch {
            return nil
        }
    }

    static func verdict(_ db: Database) throws -> Verdict {
        let problems = try String.fetchAll(db, sql: "PRAGMA integrity_check(5)")
        guard problems == ["ok"] else {
            return .damaged("integrity_check: " + problems.prefix(2).joined(separator: "; "))
        }
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
        guard tables.contains("store_meta") else {
            return tables.isEmpty ? .empty : .foreign("it has tables (\(tables.prefix(4).joined(separator: ", "))) but none of a session store")
        }
        let meta = try Row.fetchAll(db, sql: "SELECT key, value FROM store_meta WHERE key IN ('format', 'commit_seq')")
        var format: String?
        var sequence: Int64?
        for row in meta {
            switch row.string("key") {
            case "format": format = row.string("value")
            case "commit_seq": sequence = row.int64("value")
            default: break
            }
        }
        guard format == SQLiteSchema.formatMarker else { return .foreign("its format marker is \(format ?? "missing")") }
        guard let sequence else { return .damaged("its commit counter is missing") }
        if let problem = try schemaProblem(db) { return .damaged(problem) }
        for row in try Row.fetchAll(db, sql: "SELECT id, home_dc, user_id, is_bot, row_check FROM account") {
            guard let id = row.string("id") else { return .damaged("an account row has no id") }
            let check = RowCheck.account(id: id, homeDC: row.int64("home_dc").map(Int.init), userID: row.int64("user_id"), isBot: row.int64("is_bot") == 1)
            if row.int64("row_check") != check { return .damaged("the account row of \(id) fails its check") }
        }
        let dcSQL = "SELECT account, dc_id, auth_key, auth_key_id, server_salt, time_offset, is_authorized, row_check FROM dc"
        for row in try Row.fetchAll(db, sql: dcSQL) {
            guard let account = row.string("account"), let dc = row.int64("dc_id"), let salt = row.int64("server_salt"),
                  let offset = row.double("time_offset")
            else { return .damaged("a DC row has missing fields") }
            let check = RowCheck.dc(account: account, dc: Int(dc), key: row.blob("auth_key"), keyID: row.int64("auth_key_id"),
                                    salt: salt, offset: offset, authorized: row.int64("is_authorized") == 1)
            if row.int64("row_check") != check { return .damaged("the DC \(dc) row of \(account) fails its check") }
        }
        return .good(commitSequence: sequence)
    }

    /// A changed byte in `sqlite_master`'s SQL passes `integrity_check` and breaks statements later:
    /// the store's own tables must read exactly as its migrations (up to the last applied) made them.
    /// Tables other layers add to the same database are not compared.
    static func schemaProblem(_ db: Database) throws -> String? {
        let migrator = SQLiteSchema.migrator()
        let applied = Set(try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
        let known = migrator.migrations
        guard applied.filter({ $0.hasPrefix("store.") }).isSubset(of: Set(known)) else { return nil }  // a newer tgsm's store
        guard let last = known.last(where: applied.contains) else { return "no store migration is recorded" }
        let pristine = try DatabaseQueue()
        try migrator.migrate(pristine, upTo: last)
        let query = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations' ORDER BY name"
        let expected = try pristine.read { db in try Row.fetchAll(db, sql: query) }
        let names = expected.compactMap { $0.string("name") }
        let actual = try Row.fetchAll(db, sql: query).filter { names.contains($0.string("name") ?? "") }
        guard actual == expected else { return "its schema differs from what migration \(last) made" }
        return nil
    }

    /// The header fields SQLite requires to hold fixed values (https://www.sqlite.org/fileformat.html).
    /// A wrong one can pass `integrity_check` yet stop every write (e.g. a write version above 2).
    static func headerProblem(_ head: [UInt8]) -> String? {
        let pageSize = Int(head[16]) << 8 | Int(head[17])
        guard pageSize == 1 || (pageSize >= 512 && pageSize & (pageSize - 1) == 0) else { return "page size \(pageSize)" }
        guard (1...2).contains(head[18]), (1...2).contains(head[19]) else { return "file format versions \(head[18]).\(head[19])" }
        guard head[21] == 64, head[22] == 32, head[23] == 32 else { return "payload fractions" }
        return nil
    }

    /// The first 100 bytes; nil when the file cannot be opened or read (`errno` says why).
    private static func readHead(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 100)
        let count = head.withUnsafeMutableBytes { read(fd, $0.baseAddress, 100) }
        return count == 100 ? head : nil
    }
}
