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
