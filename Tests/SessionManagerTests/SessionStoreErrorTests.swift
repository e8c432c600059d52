import Foundation
import GRDB
import MTProto
import MTProtoClient
import SessionManager
import StoreTestSupport
import Testing

/// What the store's errors tell the operator, met through a real SQLite file.
@Suite struct SessionStoreErrorTests {
    /// A file another program holds in a transaction is busy, not damaged: the advice says so
    /// instead of "reopen the store (damage is then detected and the newest backup restored)".
    @Test func aLockedFileIsToldApartFromADamagedOne() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-errors-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = Fixtures.options()
        options.busyTimeout = 0.05
        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        let lock = try SQLiteFileLock(path: directory.path + "/sessions.sqlite")
        do {
            try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            Issue.record("a write went through a locked file")
        } catch {
            #expect("\(error)".contains("Another program holds the SQLite file"), "\(error)")
            #expect(!"\(error)".contains("reopen the store"), "\(error)")
            #expect(error.databaseFailure == .busy, "\(error)")
        }
        // A backup under the lock says the same, not "check free space and permissions".
        do {
            _ = try store.backup(reason: .manual)
            Issue.record("a backup was recorded in a locked file")
        } catch {
            #expect("\(error)".contains("Another program holds the store file") && !"\(error)".contains("free space"), "\(error)")
            #expect(error.databaseFailure == .busy, "\(error)")
        }
        lock.release()
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try store.close()
    }

    /// A store opened read-only (as `tgsm status` opens it) refuses a write with SQLITE_READONLY:
    /// the advice is about making it writable, not about the disk or damage.
    @Test func aWriteToAStoreThatCannotBeWrittenSaysSo() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-errors-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let options = Fixtures.options()
        try SQLiteSessionStore.open(directory: directory.path, options: options).close()
        let reader = try #require(SQLiteSessionStore.openForReading(directory: directory.path, options: options))
        do {
            try await reader.saveSession(Fixtures.session(), account: "alice", fence: nil)
            Issue.record("a read-only store took a write")
        } catch {
            #expect(error.databaseFailure == .notWritable, "\(error)")
            #expect("\(error)".contains("cannot be written") && !"\(error)".contains("tgsm check"), "\(error)")
        }
        try reader.close()
    }

    /// SQLite's own failures, made for real on scratch files, get their kind from the result code
    /// (not from the message's wording), and each kind its own advice.
    @Test func engineFailuresAreClassifiedByResultCode() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-errors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        // A database that may not grow past its pages: SQLITE_FULL, as on a full disk.
        let small = try DatabaseQueue(path: directory.path + "/small.sqlite")
        let full = try #require(throwing(try small.write { db in
            try db.execute(sql: "CREATE TABLE t(b BLOB)")
            try db.execute(sql: "PRAGMA max_page_count = \(try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 2)")
            try db.execute(sql: "INSERT INTO t VALUES (zeroblob(1000000))")
        }))
        #expect(DatabaseFailure(full) == .full)
        let fullError = SessionStoreError.databaseFailed(operation: "save the session", error: full)
        #expect(fullError.description.contains("A disk is full") && fullError.description.contains("do not restore a backup"), "\(fullError)")

        // A directory that does not exist: SQLITE_CANTOPEN, about the path and open files, not the mode.
        let nowhere = try #require(throwing(try DatabaseQueue(path: directory.path + "/missing/store.sqlite")))
        #expect(DatabaseFailure(nowhere) == .cannotOpen)
        #expect(SessionStoreError.databaseFailed(operation: "open", error: nowhere).description.contains("ulimit -n"))

        // A file that is not a database: SQLITE_NOTADB.
        let garbage = directory.path + "/garbage.sqlite"
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: garbage))
        let damaged = try #require(throwing(try DatabaseQueue(path: garbage).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }))
        #expect(DatabaseFailure(damaged) == .damaged)
        #expect(SessionStoreError.databaseFailed(operation: "read", error: damaged).description.contains("tgsm session restore"))

        // PostgreSQL's failures say what to check on its side, whatever the reason's wording.
        let postgres = SessionStoreError.database(operation: "save the session", reason: "serverClosedConnection", failure: .postgres)
        #expect(postgres.description.contains("PostgreSQL server is up") && !postgres.description.contains("SQLite"), "\(postgres)")

        // Not the engine's: no kind to go by, the general advice.
        struct Elsewhere: Error {}
        #expect(DatabaseFailure(Elsewhere()) == .other)
        #expect(SessionStoreError.databaseFailed(operation: "read", error: Elsewhere()).description.contains("If this repeats"))
    }

    private func throwing<T>(_ body: @autoclosure () throws -> T) -> (any Error)? {
        do {
            _ = try body()
            return nil
        } catch {
            return error
        }
    }
}
