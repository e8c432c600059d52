import Foundation
import GRDB
import MTProto
import SessionManager
import Testing
@testable import Workers

/// What only the SQLite queue does (its file, sharing a GRDB database); the contract every engine
/// keeps is in JobQueueContractTests.
// The limit catches a hang, not slowness: a loaded 2-core machine can stall the whole test process for minutes.
@Suite(.timeLimit(.minutes(5))) struct SQLiteJobQueueTests {
    let t0 = UnixTime(seconds: 1_800_000_000)

    func request(_ accounts: Set<AccountID> = ["alice"], limit: Int = 10, perAccount: Int = 10, owner: String = "w1", lease: Double = 30) -> ClaimRequest {
        ClaimRequest(accounts: accounts, limit: limit, perAccountLimit: perAccount, owner: owner, leaseSeconds: lease)
    }

    /// Processes that open a new queue file at the same moment (two `tgsm run` started together)
    /// each create its tables: the slower one used to fail on "table messages already exists" and
    /// exit at start-up (caught by the chaos storm). Each connection pool here is what a process has.
    @Test func queuesAndArchivesOpenedAtOnceOnANewFileAllOpen() async throws {
        for round in 0..<5 {
            let database = try TemporaryDatabase()
            defer { database.remove() }
            let path = database.path
            let opened = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let queue = try SQLiteJobQueue(writer: try SQLiteDatabase.open(path: path))
                        _ = try SQLiteMessageArchive(writer: queue.writer)
                        try queue.writer.close()
                        return true
                    }
                }
                var count = 0
                for try await ok in group where ok { count += 1 }
                return count
            }
            #expect(opened == 6, "round \(round)")
        }
    }

    @Test func itsOwnFileIsPrivateAndInWALMode() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0)
        let mode = try FileManager.default.attributesOfItem(atPath: database.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let journal = try await queue.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
    }

    /// The session store shares its database: the queue adds its tables and migrations ("jobs.*")
    /// beside the store's own, and leaves them alone.
    @Test func sharesADatabaseWithOtherMigrations() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let pool = try SQLiteDatabase.open(path: database.path)
        var storeMigrator = DatabaseMigrator()
        storeMigrator.registerMigration("store.v1") { db in try db.execute(sql: "CREATE TABLE sessions (account TEXT PRIMARY KEY)") }
        try storeMigrator.migrate(pool)
        let queue = try SQLiteJobQueue(writer: pool)
        _ = try SQLiteMessageArchive(writer: pool)
        try storeMigrator.migrate(pool)
        _ = try SQLiteJobQueue(writer: pool)
        let applied = try await pool.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
        #expect(applied == ["jobs.archive.v1", "jobs.v1", "jobs.v2.history", "jobs.v3.finished", "store.v1"])
        _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0)
        #expect(try await queue.counts(account: "alice")[.queued] == 1)
    }
}

extension SQLiteJobQueueTests {
    @Test func everyStateChangeLeavesAHistoryEntryWithTheCallersTime() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let ids = try await (0..<5).asyncMap { index in
            try await queue.enqueue(NewJob(kind: "me", account: "alice", payload: Data("{\"n\":\(index)}".utf8), maxAttempts: 2), now: t0).id
        }
        func claimOne(_ at: UnixTime) async throws -> JobClaim { try #require(try await queue.claim(request(limit: 1), now: at).first?.claim) }
        try await queue.complete(try await claimOne(t0 + 1), result: nil, now: t0 + 2)
        try await queue.retry(try await claimOne(t0 + 3), error: "timeout", retryAt: t0 + 1000, now: t0 + 4)
        try await queue.deferJob(try await claimOne(t0 + 5), until: t0 + 2000, reason: "FLOOD_WAIT_2000", now: t0 + 6)
        try await queue.release(try await claimOne(t0 + 7), reason: "shutdown", now: t0 + 8)
        try await queue.retry(try await claimOne(t0 + 9), error: "refused", retryAt: nil, now: t0 + 10)
        try await queue.cancel(ids[4], now: t0 + 11)
        try await queue.requeue(ids[4], now: t0 + 12)
        // A claim whose lease runs out is rescued by the next claim (here one for another account).
        _ = try await claimOne(t0 + 13)
        _ = try await queue.claim(request(["nobody"]), now: t0 + 100)
        _ = try await queue.claim(request(), now: t0 + 100)

        let history = try await queue.history(since: t0, limit: 100)
        let events = history.filter { $0.event != .enqueued }.map { [$0.event.rawValue, "\($0.at.seconds - t0.seconds)", "\($0.depthDelta)", $0.error ?? "-"] }
        #expect(history.filter { $0.event == .enqueued }.count == 5)
        #expect(history.filter { $0.event == .enqueued }.allSatisfy { $0.at == t0 && $0.depthDelta == 1 && $0.account == "alice" && $0.kind == "me" })
        #expect(Array(events.prefix(7)) == [
            ["completed", "2.0", "-1", "-"],
            ["retried", "4.0", "0", "timeout"],
            ["deferred", "6.0", "0", "FLOOD_WAIT_2000"],
            ["released", "8.0", "0", "shutdown"],
            ["dead", "10.0", "-1", "refused"],
            ["cancelled", "11.0", "0", "-"],  // from the dead letters: it was not open
            ["requeued", "12.0", "1", "-"],
        ])
        #expect(events.dropFirst(7).first?.prefix(3) == ["rescued", "100.0", "0"])
        // The depth now equals the sum of every change: nothing open was missed.
        let counts = try await queue.counts(account: nil)
        #expect(history.map(\.depthDelta).reduce(0, +) == counts[.queued] + counts[.running])
        #expect(try await queue.history(since: t0 + 11, limit: 100).first?.event == .cancelled)
        // A limit keeps the newest entries, still oldest first.
        #expect(try await queue.history(since: t0, limit: 2) == Array(history.suffix(2)))
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
