import Foundation
import GRDB
import MTProtoClient
import MTProtoCrypto

/// Pyrogram's (and kurigram's) SQLite `.session` file. kurigram (2.2.26) writes schema version 7:
/// `sessions(dc_id, server_address, port, api_id, test_mode, auth_key, date, user_id, is_bot)` with
/// one row, plus `peers`, `usernames`, `update_state` and `version`. The original Pyrogram's last
/// release (2.0.106) writes version 3: no address or port (it dials its own table for the DC) and
/// the username in `peers`. Older files (1 to 6) lack `api_id` (before 3) or the address and port
/// (before 7); they import with the address Pyrogram's own table gives the DC.
public enum PyrogramSessionFile {
    static let format = PortableSessionFormat.pyrogramFile
    public static let schemaVersion: Int64 = Schema.version7.rawValue
    public static let supportedVersions: ClosedRange<Int64> = 1...7

    /// The schema `write` gives a file: which Pyrogram can use it. Each library opens the other's
    /// files, but only these two are complete for one of them.
    public enum Schema: Int64, Sendable, CaseIterable, CustomStringConvertible {
        /// The original Pyrogram 2.0.106. No address: Pyrogram dials its table for the DC (so a
        /// DC it has no address for is refused). kurigram upgrades such a file to 7 when it opens it.
        case version3 = 3
        /// kurigram: the address in the file. Pyrogram 2.0.106 opens it but fails on the first update
        /// that carries users (it writes `peers.username`, which version 7 moved to `usernames`).
        case version7 = 7

        public var description: String {
            switch self {
            case .version3: "schema version 3 (Pyrogram 2.0.106)"
            case .version7: "schema version 7 (kurigram)"
            }
        }
    }

    /// Reads the session of the file at `path`, opened read-only.
    public static func read(path: String) throws(SessionImportError) -> PortableSession {
        try parse(try SessionFileSnapshot.read(path: path))
    }

    /// The session in a snapshot of a Pyrogram database.
    public static func parse(_ snapshot: SessionFileSnapshot) throws(SessionImportError) -> PortableSession {
        try checkVersion(snapshot)
        let row = try sessionRow(snapshot, format: format)
        let dc = try SessionFieldRules.dc(try row.requiredInteger("dc_id"), format: format)
        let testMode = try row.bool("test_mode", try row.value("test_mode"))
        guard let keyBytes = try row.blob("auth_key", try row.value("auth_key")) else { throw .noAuthKey(format) }
        let key = try SessionFieldRules.authKey(keyBytes, format: format)
        var userID: Int64?
        if let user = try row.integer("user_id", try row.value("user_id")) {
            userID = try SessionFieldRules.userID(user, format: format, field: "user_id")
        }
        let isBot = try row.bool("is_bot", try row.value("is_bot"))
        var apiID: Int64?
        if let api = try row.integer("api_id", row.optionalColumn("api_id")) {
            guard (0...Int64(UInt32.max)).contains(api) else {
                throw .invalidField(format, field: "api_id", reason: "\(api) is not an api_id (0 to \(UInt32.max))")
            }
            apiID = api
        }
        let date = try row.integer("date", try row.value("date"))

        let host = try row.text("server_address", row.optionalColumn("server_address"))
        let portValue = try row.integer("port", row.optionalColumn("port"))
        let address: DCAddress?
        if let host, let portValue {
            address = try SessionFieldRules.address(
                host: host, port: try SessionFieldRules.port(portValue, format: format), format: format
            )
        } else {
            address = PyrogramStringSession.defaultAddress(dc: dc, testMode: testMode ?? false)
        }
        let cache = ForeignPeerCache.pyrogramPeers(snapshot)
        return PortableSession(
            dc: dc, authKey: key, address: address, userID: userID, isBot: isBot ?? false, apiID: apiID,
            isTestMode: testMode ?? false, date: date, peers: cache.peers, unreadablePeerRows: cache.leftOut,
            peerCacheError: snapshot.peerCacheError
        )
    }

    private static func checkVersion(_ snapshot: SessionFileSnapshot) throws(SessionImportError) {
        guard let table = snapshot.tables["version"] else { throw .missingTable(format, table: "version") }
        guard let first = table.rows.first else { throw .invalidField(format, field: "number", reason: "the version table is empty") }
        let reader = SessionRowReader(format: format, tableName: "version", table: table, row: first)
        let version = try reader.requiredInteger("number")
        guard supportedVersions.contains(version) else {
            throw .unsupportedVersion(format, found: version, supported: supportedVersions)
        }
    }

    /// Writes a new Pyrogram session file that `Client(name, workdir=...)` loads: `schema` version 7
    /// for kurigram with the address, or version 3 for Pyrogram 2.0.106 without it. Pyrogram
    /// treats a session without a user id as logged out, so one is required; the address defaults
    /// to the one Pyrogram itself would dial for the DC. Never replaces an existing file unless
    /// `overwrite` is set.
    public static func write(
        _ session: PortableSession, to path: String, schema: Schema = .version7, overwrite: Bool = false
    ) throws(SessionExportError) {
        guard let userID = session.userID else {
            throw .missingField(format, field: "user_id", advice: "Pyrogram treats a session without a user id as logged out and would ask for a login; set the session's userID, then export.")
        }
        let dialed = PyrogramStringSession.defaultAddress(dc: session.dc, testMode: session.isTestMode ?? false)
        if schema == .version3, dialed == nil {
            // Version 3 has nowhere to put an address: Pyrogram 2.0.106 looks the DC up in its
            // table and fails (KeyError) on connect when the DC is not there.
            throw .outOfRange(
                format, field: "dc_id", value: "\(session.dc)\((session.isTestMode ?? false) ? " (test mode)" : "")",
                allowed: "a DC Pyrogram 2.0.106 has an address for (production 1 to 5 and 203, test 1 to 3); schema version 7 stores the address"
            )
        }
        guard let address = session.address ?? dialed else {
            throw .noAddress(dc: session.dc, format: format)
        }
        if let apiID = session.apiID, !(0...Int64(UInt32.max)).contains(apiID) {
            throw .outOfRange(format, field: "api_id", value: "\(apiID)", allowed: "0 to \(UInt32.max)")
        }
        switch schema {
        case .version3: try writeVersion3(session, userID: userID, to: path, overwrite: overwrite)
        case .version7: try writeVersion7(session, userID: userID, address: address, to: path, overwrite: overwrite)
        }
    }

    private static func writeVersion3(_ session: PortableSession, userID: Int64, to path: String, overwrite: Bool) throws(SessionExportError) {
        try SessionFileWriter.create(at: path, overwrite: overwrite) { db in
            // Pyrogram 2.0.106's own DDL (pyrogram/storage/sqlite_storage.py, SCHEMA).
            try db.execute(sql: """
                CREATE TABLE sessions
                (
                    dc_id     INTEGER PRIMARY KEY,
                    api_id    INTEGER,
                    test_mode INTEGER,
                    auth_key  BLOB,
                    date      INTEGER NOT NULL,
                    user_id   INTEGER,
                    is_bot    INTEGER
                );
                CREATE TABLE peers
                (
                    id             INTEGER PRIMARY KEY,
                    access_hash    INTEGER,
                    type           INTEGER NOT NULL,
                    username       TEXT,
                    phone_number   TEXT,
                    last_update_on INTEGER NOT NULL DEFAULT (CAST(STRFTIME('%s', 'now') AS INTEGER))
                );
                CREATE TABLE version
                (
                    number INTEGER PRIMARY KEY
                );
                CREATE INDEX idx_peers_id ON peers (id);
                CREATE INDEX idx_peers_username ON peers (username);
                CREATE INDEX idx_peers_phone_number ON peers (phone_number);
                CREATE TRIGGER trg_peers_last_update_on
                    AFTER UPDATE
                    ON peers
                BEGIN
                    UPDATE peers
                    SET last_update_on = CAST(STRFTIME('%s', 'now') AS INTEGER)
                    WHERE id = NEW.id;
                END;
                """)
            try db.execute(sql: "INSERT INTO version VALUES (?)", arguments: [Schema.version3.rawValue])
            try db.execute(
                sql: "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    session.dc, session.apiID, (session.isTestMode ?? false) ? 1 : 0, Data(session.authKey.bytes),
                    session.date ?? 0, userID, (session.isBot ?? false) ? 1 : 0,
                ]
            )
            try ForeignPeerCache.writePyrogram(session.peers, db, usernamesTable: false)
        }
    }

    private static func writeVersion7(
        _ session: PortableSession, userID: Int64, address: DCAddress, to path: String, overwrite: Bool
    ) throws(SessionExportError) {
        try SessionFileWriter.create(at: path, overwrite: overwrite) { db in
            // kurigram's own DDL (pyrogram/storage/sqlite_storage.py, SCHEMA).
            try db.execute(sql: """
                CREATE TABLE sessions
                (
                    dc_id          INTEGER PRIMARY KEY,
                    server_address TEXT,
                    port           INTEGER,
                    api_id         INTEGER,
                    test_mode      INTEGER,
                    auth_key       BLOB,
                    date           INTEGER NOT NULL,
                    user_id        INTEGER,
                    is_bot         INTEGER
                );
                CREATE TABLE peers
                (
                    id             INTEGER PRIMARY KEY,
                    access_hash    INTEGER,
                    type           INTEGER NOT NULL,
                    phone_number   TEXT,
                    last_update_on INTEGER NOT NULL DEFAULT (CAST(STRFTIME('%s', 'now') AS INTEGER))
                );
                CREATE TABLE usernames
                (
                    id       INTEGER,
                    username TEXT,
                    FOREIGN KEY (id) REFERENCES peers(id)
                );
                CREATE TABLE update_state
                (
                    id   INTEGER PRIMARY KEY,
                    pts  INTEGER,
                    qts  INTEGER,
                    date INTEGER,
                    seq  INTEGER
                );
                CREATE TABLE version
                (
                    number INTEGER PRIMARY KEY
                );
                CREATE INDEX idx_peers_id ON peers (id);
                CREATE INDEX idx_peers_phone_number ON peers (phone_number);
                CREATE INDEX idx_usernames_id ON usernames (id);
                CREATE INDEX idx_usernames_username ON usernames (username);
                CREATE TRIGGER trg_peers_last_update_on
                    AFTER UPDATE
                    ON peers
                BEGIN
                    UPDATE peers
                    SET last_update_on = CAST(STRFTIME('%s', 'now') AS INTEGER)
                    WHERE id = NEW.id;
                END;
                """)
            try db.execute(sql: "INSERT INTO version VALUES (?)", arguments: [schemaVersion])
            try db.execute(
                sql: "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    session.dc, address.host, address.port, session.apiID, (session.isTestMode ?? false) ? 1 : 0,
                    Data(session.authKey.bytes), session.date ?? 0, userID, (session.isBot ?? false) ? 1 : 0,
                ]
            )
            try ForeignPeerCache.writePyrogram(session.peers, db, usernamesTable: true)
        }
    }
}
