import Foundation
import GRDB
import StoreTestSupport
import Testing

/// The test helper that plays "another program holds the store locked": it must take the lock
/// even while the code under test is writing, and must never wait without end (a synchronous wait
/// there holds a thread of the cooperative pool, so no test time limit can end it).
@Suite("SQLiteFileLock (test support)", .timeLimit(.minutes(1)))
struct SQLiteFileLockTests {
    /// A WAL file, as the session store and the job queue are.
    private func database() throws -> (path: String, writer: DatabasePool) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sqlite-lock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("store.sqlite").path
        let writer = try DatabasePool(path: path)
        try writer.write { db in try db.execute(sql: "CREATE TABLE t (v TEXT)") }
        return (path, writer)
    }

    @Test func aLockAskedForDuringAnotherWriteWaitsForItAndIsHeld() throws {
        let (path, writer) = try database()
        let writing = DispatchSemaphore(value: 0)
        let finish = DispatchSemaphore(value: 0)
        let write = Thread { try? writer.write { db in
            try db.execute(sql: "INSERT INTO t VALUES ('held')")
            writing.signal()
            finish.wait()
        } }
        write.start()
        writing.wait()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { finish.signal() }
        // Before: BEGIN EXCLUSIVE met SQLITE_BUSY, the error was dropped and this never returned.
        let lock = try SQLiteFileLock(path: path)
        var other = Configuration()
        other.busyMode = .immediateError
        let blocked = try DatabaseQueue(path: path, configuration: other)
        #expect(throws: DatabaseError.self) { try blocked.write { db in try db.execute(sql: "INSERT INTO t VALUES ('x')") } }
        lock.release()
        // The holder commits on its own thread: the next writer waits for it, as the code under test does.
        var patient = Configuration()
        patient.busyMode = .timeout(10)
        let next = try DatabaseQueue(path: path, configuration: patient)
        try next.write { db in try db.execute(sql: "INSERT INTO t VALUES ('after')") }
        #expect(try next.read { db in try String.fetchAll(db, sql: "SELECT v FROM t ORDER BY rowid") } == ["held", "after"])
    }

    @Test func aLockThatCannotBeTakenThrowsInsteadOfWaitingForever() throws {
        let (path, _) = try database()
        let first = try SQLiteFileLock(path: path)
        defer { first.release() }
        let start = Date()
        #expect(throws: SQLiteFileLock.NotTaken.self) { _ = try SQLiteFileLock(path: path, timeout: 0.5) }
        #expect(Date().timeIntervalSince(start) < 10)
    }
}
