import Foundation
import GRDB
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// Pyrogram session files through real SQLite files (kurigram's own files are in
/// PythonSessionInteropTests): write then read, older schemas, and damage as typed errors.
@Suite struct PyrogramSessionFileTests {
    static func session() throws -> PortableSession {
        PortableSession(
            dc: 1, authKey: try #require(TestKeys.key(seed: 41)), address: DCAddress(host: "149.154.175.10", port: 80),
            userID: 7_000_000_001, isBot: true, apiID: 21724, isTestMode: true, date: 1_700_000_123
        )
    }

    static func tampered(_ scratch: ScratchDirectory, _ sql: String) throws -> String {
        let path = scratch.path("tampered-\(UUID().uuidString).session")
        try PyrogramSessionFile.write(try session(), to: path)
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: sql) }
        try queue.close()
        return path
    }

    @Test func readsWhatItWrites() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path("bot.session")
        try PyrogramSessionFile.write(try Self.session(), to: path)
        #expect(try PyrogramSessionFile.read(path: path) == Self.session())
        #expect(try ForeignSession.readFile(path: path).format == .pyrogramFile)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(throws: SessionExportError.fileExists(path: path)) { try PyrogramSessionFile.write(try Self.session(), to: path) }
    }

    @Test func exportFillsWhatPyrogramNeedsAndRefusesWhatItCannot() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        // No address: the one Pyrogram dials for the DC. No api_id, date, flags: NULL, 0, false.
        let bare = PortableSession(dc: 4, authKey: try #require(TestKeys.key(seed: 42)), userID: 5)
        try PyrogramSessionFile.write(bare, to: scratch.path("bare.session"))
        let read = try PyrogramSessionFile.read(path: scratch.path("bare.session"))
        #expect(read.address == DCAddress(host: "149.154.167.91", port: 443))
        #expect(read.apiID == nil && read.date == 0 && read.isBot == false && read.isTestMode == false)

        var anonymous = bare
        anonymous.userID = nil
        #expect(throws: SessionExportError.self) { try PyrogramSessionFile.write(anonymous, to: scratch.path("anonymous.session")) }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("anonymous.session")))
        var unknownDC = bare
        unknownDC.dc = 9
        #expect(throws: SessionExportError.noAddress(dc: 9, format: .pyrogramFile)) {
            try PyrogramSessionFile.write(unknownDC, to: scratch.path("dc9.session"))
        }
    }

    /// Schema version 3, for Pyrogram 2.0.106 (its files are in PythonSessionInteropTests): no
    /// address column, the username in `peers`; it reads back with the address of Pyrogram's table.
    /// A DC that table lacks has no address Pyrogram 2.0.106 could dial: a typed error, no file.
    @Test func writesSchemaVersion3ForPyrogram2() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path("v3.session")
        var session = try Self.session()
        session.address = DCAddress(host: "10.0.0.1", port: 8443)
        try PyrogramSessionFile.write(session, to: path, schema: .version3)
        let queue = try DatabaseQueue(path: path)
        let (version, sessionColumns, peerColumns) = try queue.read { db in
            (try Int64.fetchOne(db, sql: "SELECT number FROM version"),
             try db.columns(in: "sessions").map(\.name), try db.columns(in: "peers").map(\.name))
        }
        try queue.close()
        #expect(version == 3)
        #expect(sessionColumns == ["dc_id", "api_id", "test_mode", "auth_key", "date", "user_id", "is_bot"])
        #expect(peerColumns.contains("username"))
        var expected = session
        expected.address = DCAddress(host: "149.154.175.10", port: 80)
        #expect(try PyrogramSessionFile.read(path: path) == expected)
        #expect(try ForeignSession.readFile(path: path).format == .pyrogramFile)

        var testDC4 = session
        testDC4.dc = 4
        let refused = scratch.path("test-dc4.session")
        #expect(throws: SessionExportError.self) { try PyrogramSessionFile.write(testDC4, to: refused, schema: .version3) }
        #expect(!FileManager.default.fileExists(atPath: refused))
        // Version 7 stores the address, so the same session is fine there.
        try PyrogramSessionFile.write(testDC4, to: refused, schema: .version7)
        #expect(try PyrogramSessionFile.read(path: refused) == testDC4)
    }

    /// Before version 7 there was no address or port (Pyrogram's upgrade derives them from the DC),
    /// before 3 no api_id.
    @Test func olderSchemasImport() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = try Self.tampered(scratch, """
            ALTER TABLE sessions DROP COLUMN server_address; ALTER TABLE sessions DROP COLUMN port;
            ALTER TABLE sessions DROP COLUMN api_id; UPDATE version SET number = 2
            """)
        var expected = try Self.session()
        expected.apiID = nil
        expected.address = DCAddress(host: "149.154.175.10", port: 80)
        #expect(try PyrogramSessionFile.read(path: path) == expected)
    }

    @Test func structuralDamageIsATypedError() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let cases: [(String, SessionImportError)] = [
            ("UPDATE version SET number = 8", .unsupportedVersion(.pyrogramFile, found: 8, supported: 1...7)),
            ("UPDATE version SET number = 0", .unsupportedVersion(.pyrogramFile, found: 0, supported: 1...7)),
            ("DROP TABLE version", .missingTable(.pyrogramFile, table: "version")),
            ("DELETE FROM sessions", .noSessionRow(.pyrogramFile)),
            ("INSERT INTO sessions (dc_id, date) VALUES (5, 0)", .multipleSessionRows(.pyrogramFile, count: 2)),
            ("UPDATE sessions SET auth_key = NULL", .noAuthKey(.pyrogramFile)),
            ("UPDATE sessions SET auth_key = randomblob(32)", .wrongKeySize(.pyrogramFile, length: 32)),
            ("UPDATE sessions SET user_id = 'me'", .invalidField(.pyrogramFile, field: "user_id", reason: "it holds text where an integer is stored")),
            ("UPDATE sessions SET api_id = -3", .invalidField(.pyrogramFile, field: "api_id", reason: "-3 is not an api_id (0 to \(UInt32.max))")),
            ("UPDATE sessions SET test_mode = 0.5", .invalidField(.pyrogramFile, field: "test_mode", reason: "it holds a real number where an integer is stored")),
            ("ALTER TABLE sessions DROP COLUMN is_bot", .missingColumn(.pyrogramFile, table: "sessions", column: "is_bot")),
        ]
        for (sql, expected) in cases {
            let path = try Self.tampered(scratch, sql)
            #expect(throws: expected, "after \(sql)") { try PyrogramSessionFile.read(path: path) }
        }
    }

    /// The row parser on snapshots no SQLite file could hold: ragged rows, no columns at all.
    @Test func raggedSnapshotsAreTypedErrors() {
        let version = SessionFileTable(columns: ["number"], rows: [[.integer(7)]])
        let ragged = SessionFileSnapshot(
            tableNames: ["version", "sessions"],
            tables: ["version": version, "sessions": SessionFileTable(columns: ["dc_id", "test_mode", "auth_key"], rows: [[.integer(2)]])]
        )
        #expect(throws: SessionImportError.missingColumn(.pyrogramFile, table: "sessions", column: "test_mode")) {
            try PyrogramSessionFile.parse(ragged)
        }
        let noColumns = SessionFileSnapshot(
            tableNames: ["version", "sessions"],
            tables: ["version": SessionFileTable(columns: [], rows: [[]]), "sessions": SessionFileTable(columns: [], rows: [])]
        )
        #expect(throws: SessionImportError.missingColumn(.pyrogramFile, table: "version", column: "number")) {
            try PyrogramSessionFile.parse(noColumns)
        }
    }
}
