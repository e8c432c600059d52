import Foundation
import GRDB
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// Telethon session files through real SQLite files (Telethon's own files are in
/// PythonSessionInteropTests): write then read, the no-overwrite rule, 0600, and damaged or foreign
/// files as typed errors.
@Suite struct TelethonSessionFileTests {
    static func session() throws -> PortableSession {
        PortableSession(
            dc: 2, authKey: try #require(TestKeys.key(seed: 31)), address: DCAddress(host: "149.154.167.51", port: 443),
            userID: 123456, takeoutID: 77, temporaryAuthKey: TestKeys.key(seed: 32)
        )
    }

    /// Writes a valid file, then lets `tamper` change it with plain SQL.
    static func tampered(_ scratch: ScratchDirectory, _ sql: String) throws -> String {
        let path = scratch.path("tampered-\(UUID().uuidString).session")
        try TelethonSessionFile.write(try session(), to: path)
        let queue = try DatabaseQueue(path: path)
        try queue.write { try $0.execute(sql: sql) }
        try queue.close()
        return path
    }

    @Test func readsWhatItWrites() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let session = try Self.session()
        let path = scratch.path("a.session")
        try TelethonSessionFile.write(session, to: path)
        #expect(try TelethonSessionFile.read(path: path) == session)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600, "session files hold keys: owner only")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.url.path) == ["a.session"], "no temporary file left behind")

        var anonymous = session
        anonymous.userID = nil
        anonymous.takeoutID = nil
        anonymous.temporaryAuthKey = nil
        try TelethonSessionFile.write(anonymous, to: scratch.path("b.session"))
        #expect(try TelethonSessionFile.read(path: scratch.path("b.session")) == anonymous)
    }

    @Test func neverOverwritesUnlessAsked() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.path("taken.session")
        try Data("someone else's file".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: SessionExportError.fileExists(path: path)) { try TelethonSessionFile.write(try Self.session(), to: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data("someone else's file".utf8))
        try TelethonSessionFile.write(try Self.session(), to: path, overwrite: true)
        #expect(try TelethonSessionFile.read(path: path) == Self.session())
    }

    @Test func aMissingDirectoryIsAWriteError() throws {
        let path = "/nonexistent-\(UUID().uuidString)/a.session"
        #expect {
            try TelethonSessionFile.write(try Self.session(), to: path)
        } throws: { error in
            guard case SessionExportError.writeFailed(let failed, _) = error else { return false }
            return failed == path
        }
    }

    @Test func foreignAndDamagedFilesAreTypedErrors() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let missing = scratch.path("missing.session")
        #expect(throws: SessionImportError.fileNotFound(path: missing)) { try TelethonSessionFile.read(path: missing) }

        let empty = scratch.path("empty.session")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(throws: SessionImportError.emptyFile(path: empty)) { try TelethonSessionFile.read(path: empty) }

        let text = scratch.path("text.session")
        try Data("1BVtsOKABu...a string session saved as a file".utf8).write(to: URL(fileURLWithPath: text))
        #expect(throws: SessionImportError.notSQLite(path: text)) { try TelethonSessionFile.read(path: text) }

        #expect(throws: SessionImportError.unreadable(path: scratch.url.path, reason: "it is a directory")) {
            try TelethonSessionFile.read(path: scratch.url.path)
        }

        let other = scratch.path("other.sqlite")
        let queue = try DatabaseQueue(path: other)
        try queue.write { try $0.execute(sql: "CREATE TABLE notes (body TEXT)") }
        try queue.close()
        #expect(throws: SessionImportError.notASessionFile(path: other, tables: ["notes"])) { try ForeignSession.readFile(path: other) }
        #expect(throws: SessionImportError.missingTable(.telethonFile, table: "version")) { try TelethonSessionFile.read(path: other) }
    }

    @Test func structuralDamageIsATypedError() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let cases: [(String, SessionImportError)] = [
            ("UPDATE version SET version = 9", .unsupportedVersion(.telethonFile, found: 9, supported: 1...8)),
            ("DELETE FROM version", .invalidField(.telethonFile, field: "version", reason: "the version table is empty")),
            ("DROP TABLE sessions", .missingTable(.telethonFile, table: "sessions")),
            ("DELETE FROM sessions", .noSessionRow(.telethonFile)),
            ("INSERT INTO sessions (dc_id, server_address, port, auth_key) VALUES (4, '1.2.3.4', 443, x'01')",
             .multipleSessionRows(.telethonFile, count: 2)),
            ("UPDATE sessions SET auth_key = x''", .noAuthKey(.telethonFile)),
            ("UPDATE sessions SET auth_key = NULL", .noAuthKey(.telethonFile)),
            ("UPDATE sessions SET auth_key = zeroblob(256)", .noAuthKey(.telethonFile)),
            ("UPDATE sessions SET auth_key = randomblob(100)", .wrongKeySize(.telethonFile, length: 100)),
            ("UPDATE sessions SET auth_key = randomblob(257)", .wrongKeySize(.telethonFile, length: 257)),
            ("UPDATE sessions SET auth_key = 'not a key'",
             .invalidField(.telethonFile, field: "auth_key", reason: "it holds text where the key's bytes are stored")),
            ("UPDATE sessions SET port = 70000", .invalidField(.telethonFile, field: "port", reason: "70000 is not a TCP port (1 to 65535)")),
            ("UPDATE sessions SET port = 'https'", .invalidField(.telethonFile, field: "port", reason: "it holds text where an integer is stored")),
            ("UPDATE sessions SET dc_id = -1", .invalidField(.telethonFile, field: "dc_id", reason: "DC -1 does not exist; DC ids are positive")),
            ("UPDATE sessions SET server_address = NULL", .invalidField(.telethonFile, field: "server_address", reason: "it is NULL")),
            ("UPDATE sessions SET server_address = ''", .invalidField(.telethonFile, field: "server_address", reason: "it is empty")),
            ("ALTER TABLE sessions DROP COLUMN port", .missingColumn(.telethonFile, table: "sessions", column: "port")),
            ("UPDATE entities SET hash = -5 WHERE id = 0", .invalidField(.telethonFile, field: "entities.hash", reason: "user ids are positive, found -5")),
        ]
        for (sql, expected) in cases {
            let path = try Self.tampered(scratch, sql)
            #expect(throws: expected, "after \(sql)") { try TelethonSessionFile.read(path: path) }
        }
    }

    /// Older schema versions without takeout_id and tmp_auth_key still import.
    @Test func olderSchemasImport() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = try Self.tampered(scratch, """
            ALTER TABLE sessions DROP COLUMN tmp_auth_key; ALTER TABLE sessions DROP COLUMN takeout_id;
            UPDATE version SET version = 5
            """)
        var expected = try Self.session()
        expected.takeoutID = nil
        expected.temporaryAuthKey = nil
        #expect(try TelethonSessionFile.read(path: path) == expected)
    }

    /// A file cut short anywhere is a typed error or, when the cut spares every page the session
    /// lives on, the exact session: never a crash, never a wrong key.
    @Test func truncatedFilesNeverCrashOrLie() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let session = try Self.session()
        let original = scratch.path("whole.session")
        try TelethonSessionFile.write(session, to: original)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: original))
        var outcomes: [String: Int] = [:]
        for length in stride(from: 1, to: bytes.count, by: 97) + [15, 16, 99, 100, 4095, 4096, 4097] {
            let path = scratch.path("cut-\(length).session")
            try bytes.prefix(length).write(to: URL(fileURLWithPath: path))
            do {
                let read = try TelethonSessionFile.read(path: path)
                #expect(read == session, "a file cut at \(length) bytes read as a different session")
                outcomes["same session", default: 0] += 1
            } catch {
                // The case's name, not its description (which names the path).
                outcomes[Mirror(reflecting: error).children.first?.label ?? "\(error)", default: 0] += 1
                #expect(!error.description.isEmpty)
            }
        }
        #expect(outcomes["notSQLite"] ?? 0 > 0, "cuts inside the 16-byte magic are not SQLite: \(outcomes)")
        #expect(outcomes.keys.contains { $0 != "notSQLite" && $0 != "same session" }, "later cuts are damage: \(outcomes)")
    }
}
