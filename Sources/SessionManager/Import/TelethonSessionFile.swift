import Foundation
import GRDB
import MTProtoClient
import MTProtoCrypto

/// Telethon's SQLite `.session` file. Telethon 1.45 writes schema version 8:
/// `sessions(dc_id, server_address, port, auth_key, takeout_id, tmp_auth_key)` with one row (the
/// current DC only), and `entities(id, hash, username, phone, name, date)` where the row with id 0
/// holds the own user id in `hash` (Telethon's way of remembering who is logged in without a schema
/// change). There is no bot flag. Older files (versions 1 to 7) lack `takeout_id` or
/// `tmp_auth_key`; the columns are read by name, so they import too.
public enum TelethonSessionFile {
    static let format = PortableSessionFormat.telethonFile
    public static let schemaVersion: Int64 = 8
    public static let supportedVersions: ClosedRange<Int64> = 1...8

    /// Reads the session of the file at `path`, opened read-only.
    public static func read(path: String) throws(SessionImportError) -> PortableSession {
        try parse(try SessionFileSnapshot.read(path: path))
    }

    /// The session in a snapshot of a Telethon database.
    public static func parse(_ snapshot: SessionFileSnapshot) throws(SessionImportError) -> PortableSession {
        try checkVersion(snapshot)
        let row = try sessionRow(snapshot, format: format)
        let dc = try SessionFieldRules.dc(try row.requiredInteger("dc_id"), format: format)
        guard let host = try row.text("server_address", try row.value("server_address")) else {
            throw .invalidField(format, field: "server_address", reason: "it is NULL")
        }
        let port = try SessionFieldRules.port(try row.requiredInteger("port"), format: format)
        guard let keyBytes = try row.blob("auth_key", try row.value("auth_key")) else { throw .noAuthKey(format) }
        let key = try SessionFieldRules.authKey(keyBytes, format: format)
        // Read the column, not Telethon's `tmp_auth_key` property: in 1.45 the property returns the
        // permanent key.
        var temporary: AuthKey?
        if let bytes = try row.blob("tmp_auth_key", row.optionalColumn("tmp_auth_key")) {
            temporary = try SessionFieldRules.authKey(bytes, format: format)
        }
        let cache = ForeignPeerCache.telethonPeers(snapshot)
        return PortableSession(
            dc: dc, authKey: key, address: try SessionFieldRules.address(host: host, port: port, format: format),
            userID: try selfUserID(snapshot), isBot: nil,
            takeoutID: try row.integer("takeout_id", row.optionalColumn("takeout_id")),
            temporaryAuthKey: temporary, peers: cache.peers, unreadablePeerRows: cache.leftOut,
            peerCacheError: snapshot.peerCacheError
        )
    }

    private static func checkVersion(_ snapshot: SessionFileSnapshot) throws(SessionImportError) {
        guard let table = snapshot.tables["version"] else { throw .missingTable(format, table: "version") }
        guard let first = table.rows.first else { throw .invalidField(format, field: "version", reason: "the version table is empty") }
        let reader = SessionRowReader(format: format, tableName: "version", table: table, row: first)
        let version = try reader.requiredInteger("version")
        guard supportedVersions.contains(version) else {
            throw .unsupportedVersion(format, found: version, supported: supportedVersions)
        }
    }

    /// The own user id from entity 0, nil when the client never saved it (a session that never
    /// logged in, or one written by a Telethon old enough not to record it).
    private static func selfUserID(_ snapshot: SessionFileSnapshot) throws(SessionImportError) -> Int64? {
        guard let table = snapshot.tables["entities"], let row = table.rows.first else { return nil }
        let reader = SessionRowReader(format: format, tableName: "entities", table: table, row: row)
        return try SessionFieldRules.userID(try reader.requiredInteger("hash"), format: format, field: "entities.hash")
    }

    /// Writes a new Telethon session file that `TelegramClient(path)` (or `SQLiteSession(path)`)
    /// loads: schema version 8, the session row, entity 0 with the user id when it is known, and
    /// the session's peers as Telethon's entities.
    /// Never replaces an existing file unless `overwrite` is set.
    public static func write(_ session: PortableSession, to path: String, overwrite: Bool = false) throws(SessionExportError) {
        guard let address = session.address else { throw .noAddress(dc: session.dc, format: format) }
        guard (1...65535).contains(address.port) else {
            throw .outOfRange(format, field: "port", value: "\(address.port)", allowed: "1 to 65535")
        }
        try SessionFileWriter.create(at: path, overwrite: overwrite) { db in
            // Telethon's own DDL (telethon/sessions/sqlite.py), so the file is indistinguishable
            // from one it created.
            try db.execute(sql: """
                CREATE TABLE version (version integer primary key);
                CREATE TABLE sessions (
                    dc_id integer primary key,
                    server_address text,
                    port integer,
                    auth_key blob,
                    takeout_id integer,
                    tmp_auth_key blob
                );
                CREATE TABLE entities (
                    id integer primary key,
                    hash integer not null,
                    username text,
                    phone integer,
                    name text,
                    date integer
                );
                CREATE TABLE sent_files (
                    md5_digest blob,
                    file_size integer,
                    type integer,
                    id integer,
                    hash integer,
                    primary key(md5_digest, file_size, type)
                );
                CREATE TABLE update_state (
                    id integer primary key,
                    pts integer,
                    qts integer,
                    date integer,
                    seq integer
                );
                """)
            try db.execute(sql: "INSERT INTO version VALUES (?)", arguments: [schemaVersion])
            try db.execute(
                sql: "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    session.dc, address.host, address.port, Data(session.authKey.bytes), session.takeoutID,
                    Data(session.temporaryAuthKey?.bytes ?? []),
                ]
            )
            if let userID = session.userID {
                try db.execute(
                    sql: "INSERT INTO entities VALUES (0, ?, NULL, NULL, NULL, ?)",
                    arguments: [userID, session.date ?? 0]
                )
            }
            try ForeignPeerCache.writeTelethon(session.peers, db)
        }
    }
}

/// The single row of a `sessions` table.
func sessionRow(_ snapshot: SessionFileSnapshot, format: PortableSessionFormat) throws(SessionImportError) -> SessionRowReader {
    guard let table = snapshot.tables["sessions"] else { throw .missingTable(format, table: "sessions") }
    guard let row = table.rows.first else { throw .noSessionRow(format) }
    guard table.rows.count == 1 else { throw .multipleSessionRows(format, count: table.rows.count) }
    return SessionRowReader(format: format, tableName: "sessions", table: table, row: row)
}
