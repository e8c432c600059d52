import Foundation
import GRDB

/// One stored SQLite value. The storage class is what counts, not the declared column type: SQLite
/// lets any column hold any class, so a damaged or hand-edited file can put text where a key is due.
public enum SessionFileValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    var kind: String {
        switch self {
        case .null: "NULL"
        case .integer: "an integer"
        case .real: "a real number"
        case .text: "text"
        case .blob: "a blob"
        }
    }
}

/// The columns and rows read from one table.
public struct SessionFileTable: Sendable, Hashable {
    public var columns: [String]
    public var rows: [[SessionFileValue]]

    public init(columns: [String], rows: [[SessionFileValue]]) {
        self.columns = columns
        self.rows = rows
    }

    /// The value of `column` in `row`, or nil when the table has no such column or the row is
    /// shorter than the column list (a snapshot built by hand or by a fuzzer may be ragged).
    func value(_ column: String, in row: [SessionFileValue]) -> SessionFileValue? {
        guard let index = columns.firstIndex(of: column), row.indices.contains(index) else { return nil }
        return row[index]
    }
}

/// What the importers read from a foreign session database: every table's name, and the contents
/// of the few tables they need. Reading it (SQLite, I/O errors) and understanding it (the formats'
/// rules) are separate steps, so the second is a pure function that tests and the fuzzer drive
/// with any snapshot.
public struct SessionFileSnapshot: Sendable, Hashable {
    public var tableNames: Set<String>
    public var tables: [String: SessionFileTable]
    /// The library's peer cache, most recently seen first: Telethon's `entities` without row 0,
    /// or Pyrogram's `peers` with a `username` column (kurigram keeps usernames in a table of their
    /// own: the first one of each peer is joined in). At most `peerRowLimit` rows.
    public var peerTables: [String: SessionFileTable]
    /// How many rows each peer table holds in the file, read or not.
    public var peerRowCounts: [String: Int]
    /// Why the peer cache could not be read (a damaged page in it, say), when it could not: the
    /// session itself is read apart from it, and imports without it.
    public var peerCacheError: String?

    public init(
        tableNames: Set<String>, tables: [String: SessionFileTable], peerTables: [String: SessionFileTable] = [:],
        peerRowCounts: [String: Int] = [:], peerCacheError: String? = nil
    ) {
        self.tableNames = tableNames
        self.tables = tables
        self.peerTables = peerTables
        self.peerRowCounts = peerRowCounts
        self.peerCacheError = peerCacheError
    }

    /// Rows read from a table at most: the session tables hold one row; a few more are read so that
    /// "several rows" can be reported without loading a huge damaged table.
    static let rowLimit = 8
    /// Peer cache rows read at most (the most recently seen): far more than an account talks to,
    /// and a bound on what a huge or damaged file costs to import.
    public static let peerRowLimit = 250_000

    /// Reads the tables both formats keep their session in (`version`, `sessions`) and Telethon's
    /// own-user entity (`entities` row 0), opening the file read-only.
    public static func read(path: String) throws(SessionImportError) -> SessionFileSnapshot {
        try checkHeader(path: path)
        var configuration = Configuration()
        configuration.readonly = true
        // A Python client may be saving at this moment; its write transactions are short.
        configuration.busyMode = .timeout(2)
        configuration.label = "session-import"
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            var snapshot = try queue.read { db in
                let names = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
                var tables: [String: SessionFileTable] = [:]
                for name in ["version", "sessions"] where names.contains(name) {
                    tables[name] = try readTable(db, name, filter: nil)
                }
                if names.contains("entities") {
                    let columns = try db.columns(in: "entities").map(\.name)
                    if columns.contains("id") {
                        tables["entities"] = try readTable(db, "entities", filter: "id = 0")
                    } else {
                        tables["entities"] = SessionFileTable(columns: columns, rows: [])
                    }
                }
                return SessionFileSnapshot(tableNames: Set(names), tables: tables)
            }
            // A read of its own: SQLite reports damage in the peer tables when a statement reaches
            // it, and the session read above must stand either way.
            do {
                let names = snapshot.tableNames
                (snapshot.peerTables, snapshot.peerRowCounts) = try queue.read { db in try readPeerCache(db, names: names) }
            } catch {
                snapshot.peerCacheError = (error as? DatabaseError)?.message ?? "\(error)"
            }
            return snapshot
        } catch let error as DatabaseError {
            throw map(error, path: path)
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
    }

    /// The peer tables (see `peerTables`), read in a statement of their own so that damage in them
    /// leaves the session readable.
    private static func readPeerCache(_ db: Database, names: Set<String>) throws -> ([String: SessionFileTable], [String: Int]) {
        var peerTables: [String: SessionFileTable] = [:]
        var peerRowCounts: [String: Int] = [:]
        if names.contains("entities") {
            let columns = try db.columns(in: "entities").map(\.name)
            if columns.contains("id") {
                let order = columns.contains("date") ? " ORDER BY date DESC" : ""
                peerTables["entities"] = try readPeers(db, sql: "SELECT * FROM entities WHERE id != 0\(order)")
                peerRowCounts["entities"] = try Int.fetchOne(db, sql: "SELECT count(*) FROM entities WHERE id != 0") ?? 0
            }
        }
        if names.contains("peers") {
            let columns = try db.columns(in: "peers").map(\.name)
            let order = columns.contains("last_update_on") ? " ORDER BY p.last_update_on DESC" : ""
            var usernameColumns: [String] = []
            if names.contains("usernames") { usernameColumns = try db.columns(in: "usernames").map(\.name) }
            let joinsUsernames = !columns.contains("username") && columns.contains("id")
                && usernameColumns.contains("id") && usernameColumns.contains("username")
            let username = joinsUsernames
                ? ", (SELECT u.username FROM usernames u WHERE u.id = p.id AND u.username IS NOT NULL ORDER BY u.rowid LIMIT 1) AS username"
                : ""
            peerTables["peers"] = try readPeers(db, sql: "SELECT p.*\(username) FROM peers p\(order)")
            peerRowCounts["peers"] = try Int.fetchOne(db, sql: "SELECT count(*) FROM peers") ?? 0
        }
        return (peerTables, peerRowCounts)
    }

    private static func readTable(_ db: Database, _ name: String, filter: String?) throws -> SessionFileTable {
        let columns = try db.columns(in: name).map(\.name)
        let quoted = "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let condition = filter.map { " WHERE \($0)" } ?? ""
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM \(quoted)\(condition) LIMIT \(rowLimit)")
        return SessionFileTable(columns: columns, rows: rows.map { row in row.databaseValues.map(SessionFileValue.init) })
    }

    private static func readPeers(_ db: Database, sql: String) throws -> SessionFileTable {
        let statement = try db.makeStatement(sql: sql + " LIMIT \(peerRowLimit)")
        let rows = try Row.fetchAll(statement)
        return SessionFileTable(columns: statement.columnNames, rows: rows.map { row in row.databaseValues.map(SessionFileValue.init) })
    }

    /// Existence, readability, emptiness and the SQLite magic are checked before SQLite sees the
    /// file, so each gets its own precise error rather than one generic "cannot open".
    private static func checkHeader(path: String) throws(SessionImportError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw .fileNotFound(path: path) }
        guard !isDirectory.boolValue else { throw .unreadable(path: path, reason: "it is a directory") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .unreadable(path: path, reason: "permission denied or not a regular file")
        }
        defer { try? handle.close() }
        let magic = Array("SQLite format 3\0".utf8)
        let head: [UInt8]
        do {
            head = Array(try handle.read(upToCount: magic.count) ?? Data())
        } catch {
            throw .unreadable(path: path, reason: "\(error)")
        }
        if head.isEmpty { throw .emptyFile(path: path) }
        guard head == magic else { throw .notSQLite(path: path) }
    }

    private static func map(_ error: DatabaseError, path: String) -> SessionImportError {
        let reason = error.message ?? "SQLite error \(error.resultCode.rawValue)"
        switch error.resultCode {
        case .SQLITE_READONLY: return .unfinishedWrite(path: path)
        case .SQLITE_NOTADB: return .notSQLite(path: path)
        case .SQLITE_BUSY, .SQLITE_LOCKED: return .busy(path: path)
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH: return .unreadable(path: path, reason: reason)
        default: return .corrupt(path: path, reason: reason)
        }
    }
}

extension SessionFileValue {
    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let integer): self = .integer(integer)
        case .double(let real): self = .real(real)
        case .string(let text): self = .text(text)
        case .blob(let data): self = .blob(Array(data))
        }
    }
}
