import Foundation
import GRDB

/// Reading what still reads in a damaged SQLite file, for the salvages of the session store and
/// the job queue: the file is opened from a copy (so the original stays as found), and each table is
/// read in primary-key order from both ends, so a damaged page costs the rows between the two
/// places reading broke off rather than the whole table.
package enum DamagedSQLiteFile {
    /// How reading one table went.
    package struct TableRead: Sendable {
        package var rowsRead = 0
        /// False when reading broke off at damage.
        package var readInFull = true
        /// The key of the last row read from the start, and of the last read from the end (the
        /// rows between them, when reading broke off, are the ones lost). nil when that side read none.
        package var lastKeyFromStart: [DatabaseValue]?
        package var lastKeyFromEnd: [DatabaseValue]?
        /// What stopped reading, when something did.
        package var failure: String?

        package init(rowsRead: Int = 0, readInFull: Bool = true, failure: String? = nil) {
            self.rowsRead = rowsRead
            self.readInFull = readInFull
            self.failure = failure
        }
    }

    /// Opens `copy` (a copy of the damaged file, made by the caller) for reading what it holds. A
    /// schema naming pages past the end of a cut file is read anyway (`writable_schema`, as SQLite's
    /// own `.recover` does). Throws when SQLite cannot read the list of tables at all.
    package static func open(_ copy: String, busyTimeout: Double) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = false
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA writable_schema = ON") }
        return try DatabaseQueue(path: copy, configuration: configuration)
    }

    /// Whether the file has `table` at all (an older schema may not); true when its list of tables
    /// cannot say, so a table that may be there is counted as read in part, not as absent.
    package static func holds(_ table: String, in db: Database) -> Bool {
        (try? Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?)", arguments: [table])) ?? true
    }

    /// The table's columns and primary key in `db`; nil when the table is not there or its
    /// definition does not read (`holds` tells the two apart).
    package static func shape(of table: String, in db: Database) -> (columns: [String], key: [String])? {
        guard let rows = try? Row.fetchAll(db, sql: "SELECT name, pk FROM pragma_table_info(?)", arguments: [table]), !rows.isEmpty else { return nil }
        let columns = rows.compactMap { $0.string("name") }
        let key = rows.filter { ($0.int64("pk") ?? 0) > 0 }.sorted { ($0.int64("pk") ?? 0) < ($1.int64("pk") ?? 0) }
            .compactMap { $0.string("name") }
        return (columns, key)
    }

    /// Reads `columns` of `table` from the start in key order until the end or the damage, and then,
    /// if it broke off, from the end backwards until the damage or a row already read. `visit` sees
    /// each row once (an error it throws ends everything); the key is the primary key, or the rowid.
    package static func read(_ table: String, columns: [String], key: [String], from db: Database,
                             _ visit: (Row) throws -> Void) throws -> TableRead {
        let keyColumns = key.isEmpty ? ["rowid"] : key
        let list = (columns.map { "\"\($0)\"" } + keyColumns.map { "\"\($0)\" AS \"key.\($0)\"" }).joined(separator: ", ")
        var result = TableRead()
        var seen = Set<[DatabaseValue]>()
        do {
            return try readBothEnds()
        } catch let failure as VisitFailure {
            throw failure.error
        }

        func readBothEnds() throws -> TableRead {
        for direction in ["ASC", "DESC"] {
            let sql = "SELECT \(list) FROM \"\(table)\" ORDER BY \(keyColumns.map { "\"\($0)\" \(direction)" }.joined(separator: ", "))"
            do {
                let cursor = try Row.fetchCursor(db, sql: sql)
                while let row = try cursor.next() {
                    let rowKey = keyColumns.map { row["key." + $0] as DatabaseValue }
                    if direction == "ASC" {
                        seen.insert(rowKey)
                        result.lastKeyFromStart = rowKey
                    } else {
                        if seen.contains(rowKey) { return result }
                        result.lastKeyFromEnd = rowKey
                    }
                    result.rowsRead += 1
                    do { try visit(row) } catch { throw VisitFailure(error: error) }
                }
                return result
            } catch let error as DatabaseError where error.resultCode.primaryResultCode == .SQLITE_CORRUPT
                        || error.resultCode.primaryResultCode == .SQLITE_NOTADB || error.resultCode.primaryResultCode == .SQLITE_IOERR {
                // Damage: read from the other end (or stop, having read from both).
                if direction == "ASC" {
                    result.readInFull = false
                    result.failure = error.message ?? "\(error.resultCode)"
                }
            }
        }
        return result
        }
    }

    /// An error of the caller's `visit`, kept apart from the damage the reads meet.
    private struct VisitFailure: Error {
        let error: any Error
    }
}
