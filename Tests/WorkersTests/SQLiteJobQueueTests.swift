import Foundation
import GRDB
import MTProto
import SessionManager
import Testing
@testable import Workers

@Suite(.timeLimit(.minutes(1))) struct SQLiteJobQueueTests {
    let t0 = UnixTime(seconds: 1_800_000_000)

    func request(_ accounts: Set<AccountID> = ["alice"], limit: Int = 10, perAccount: Int = 10, owner: String = "w1", lease: Double = 30) -> ClaimRequest {
        ClaimRequest(accounts: accounts, limit: limit, perAccountLimit: perAccount, owner: owner, leaseSeconds: lease)
    }

    @Test func enqueueClaimCompleteKeepsTheResult() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "me", account: "alice", payload: Data("{}".utf8)), now: t0).id
        let claimed = try await queue.claim(request(), now: t0)
        #expect(claimed.map(\.job.id) == [id])
        #expect(claimed.first?.job.attempts == 1)
        #expect(claimed.first?.leaseUntil == t0 + 30)
        let claim = try #require(claimed.first?.claim)
        try await queue.complete(claim, result: Data("done".utf8), now: t0 + 1)
        let job = try #require(try await queue.job(id))
        #expect(job.state == .completed && job.result == Data("done".utf8) && job.finishedAt == t0 + 1 && job.leaseOwner == nil)
        #expect(try await queue.claim(request(), now: t0 + 2).isEmpty)
        // Completing twice is refused: the claim is spent.
        await #expect(throws: JobQueueError.claimLost(claim)) { try await queue.complete(claim, result: nil, now: t0 + 3) }
    }

    @Test func anIdempotencyKeyStoresOneJobForever() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let first = try await queue.enqueue(NewJob(kind: "send", account: "alice", idempotencyKey: "greeting-1"), now: t0)
        let second = try await queue.enqueue(NewJob(kind: "send", account: "bob", idempotencyKey: "greeting-1"), now: t0)
        guard case .created(let id) = first else {
            Issue.record("the first enqueue should create")
            return
        }
        #expect(second == .duplicate(id))
        let claim = try #require(try await queue.claim(request(), now: t0).first?.claim)
        try await queue.complete(claim, result: nil, now: t0)
        #expect(try await queue.enqueue(NewJob(kind: "send", account: "alice", idempotencyKey: "greeting-1"), now: t0 + 100) == .duplicate(id))
        #expect(try await queue.counts(account: nil)[.completed] == 1)
        #expect(try await queue.jobs(state: nil, account: nil, limit: 10).count == 1)
    }

    @Test func claimsByPriorityThenRunAtAndNeverBeforeRunAt() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let low = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 0, runAt: t0), now: t0).id
        let high = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 5, runAt: t0 + 1), now: t0).id
        let later = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 9, runAt: t0 + 60), now: t0).id
        let older = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 0, runAt: UnixTime(seconds: t0.seconds - 10)), now: t0).id
        let claimed = try await queue.claim(request(), now: t0 + 2)
        #expect(claimed.map(\.job.id) == [high, older, low])
        #expect(try await queue.nextWakeup(accounts: ["alice"], kinds: nil) == t0 + 30 + 2)
        for job in claimed { try await queue.complete(job.claim, result: nil, now: t0 + 3) }
        #expect(try await queue.nextWakeup(accounts: ["alice"], kinds: nil) == t0 + 60)
        #expect(try await queue.claim(request(), now: t0 + 59).isEmpty)
        #expect(try await queue.claim(request(), now: t0 + 60).map(\.job.id) == [later])
    }

    @Test func claimsOnlyTheAccountsAndKindsAsked() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        _ = try await queue.enqueue(NewJob(kind: "history", account: "bob"), now: t0)
        let mine = try await queue.enqueue(NewJob(kind: "history", account: "alice"), now: t0).id
        _ = try await queue.enqueue(NewJob(kind: "unknown", account: "alice"), now: t0)
        var asked = request()
        asked.kinds = ["history"]
        #expect(try await queue.claim(asked, now: t0).map(\.job.id) == [mine])
    }

    @Test func thePerAccountLimitHoldsAcrossWorkers() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        for _ in 0..<5 { _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0) }
        for _ in 0..<5 { _ = try await queue.enqueue(NewJob(kind: "k", account: "bob"), now: t0) }
        let first = try await queue.claim(request(["alice", "bob"], perAccount: 2, owner: "w1"), now: t0)
        let second = try await queue.claim(request(["alice", "bob"], perAccount: 2, owner: "w2"), now: t0)
        #expect(first.count == 4 && second.isEmpty)
        #expect(first.filter { $0.job.account == "alice" }.count == 2)
        try await queue.complete(try #require(first.first { $0.job.account == "alice" }).claim, result: nil, now: t0)
        let third = try await queue.claim(request(["alice", "bob"], perAccount: 2, owner: "w2"), now: t0)
        #expect(third.map(\.job.account) == ["alice"])
    }

    /// Many claimers at once on one file (each with its own connection pool, as separate processes
    /// would be): every job is claimed exactly once.
    @Test func concurrentClaimsNeverHandOneJobTwice() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let setup = try database.queue()
        for index in 0..<200 { _ = try await setup.enqueue(NewJob(kind: "k", account: AccountID("a\(index % 4)")), now: t0) }
        let queues = try (0..<4).map { _ in try database.queue() }
        let claimedIDs = try await withThrowingTaskGroup(of: [JobID].self) { group in
            for (index, queue) in queues.enumerated() {
                group.addTask {
                    var mine: [JobID] = []
                    while true {
                        let batch = try await queue.claim(
                            ClaimRequest(accounts: ["a0", "a1", "a2", "a3"], limit: 3, perAccountLimit: 1000, owner: "w\(index)", leaseSeconds: 30),
                            now: self.t0)
                        if batch.isEmpty { return mine }
                        for claimed in batch {
                            mine.append(claimed.job.id)
                            try await queue.complete(claimed.claim, result: nil, now: self.t0)
                        }
                    }
                }
            }
            var all: [JobID] = []
            for try await ids in group { all += ids }
            return all
        }
        #expect(claimedIDs.count == 200)
        #expect(Set(claimedIDs).count == 200)
        #expect(try await setup.counts(account: nil)[.completed] == 200)
    }

    @Test func anExpiredClaimIsRescuedAndTheOldClaimIsFencedOut() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
        let dead = try #require(try await queue.claim(request(owner: "crashed", lease: 30), now: t0).first)
        // Before the lease ends nobody else gets it.
        #expect(try await queue.claim(request(owner: "w2"), now: t0 + 29).isEmpty)
        let rescued = try #require(try await queue.claim(request(owner: "w2"), now: t0 + 30).first)
        #expect(rescued.job.id == id && rescued.job.attempts == 2 && rescued.claim.token > dead.claim.token)
        #expect(rescued.job.lastError?.contains("crashed") == true)
        await #expect(throws: JobQueueError.claimLost(dead.claim)) { try await queue.complete(dead.claim, result: nil, now: t0 + 31) }
        await #expect(throws: JobQueueError.claimLost(dead.claim)) { _ = try await queue.heartbeat(dead.claim, leaseSeconds: 30, now: t0 + 31) }
        try await queue.complete(rescued.claim, result: nil, now: t0 + 32)
        #expect(try await queue.job(id)?.state == .completed)
    }

    @Test func aHeartbeatKeepsTheClaim() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0)
        let claimed = try #require(try await queue.claim(request(lease: 30), now: t0).first)
        #expect(try await queue.heartbeat(claimed.claim, leaseSeconds: 30, now: t0 + 20) == t0 + 50)
        #expect(try await queue.claim(request(owner: "w2"), now: t0 + 40).isEmpty)
        #expect(try await queue.claim(request(owner: "w2"), now: t0 + 50).count == 1)
    }

    @Test func retriesUntilMaxAttemptsThenTheDeadLetterKeepsTheLastError() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 3), now: t0).id
        var now = t0
        for attempt in 1...3 {
            let claimed = try #require(try await queue.claim(request(), now: now).first)
            #expect(claimed.job.attempts == attempt)
            let state = try await queue.retry(claimed.claim, error: "boom \(attempt)", retryAt: now + 10, now: now)
            #expect(state == (attempt < 3 ? .queued : .dead))
            #expect(try await queue.claim(request(), now: now + 9).isEmpty)
            now = now + 10
        }
        let job = try #require(try await queue.job(id))
        #expect(job.state == .dead && job.lastError == "boom 3" && job.attempts == 3)
        #expect(try await queue.jobs(state: .dead, account: "alice", limit: 10).map(\.id) == [id])
        // An operator puts it back with fresh attempts.
        try await queue.requeue(id, now: now)
        let again = try #require(try await queue.claim(request(), now: now).first)
        #expect(again.job.attempts == 1)
    }

    @Test func deferringAndReleasingSpendNoAttempt() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 1), now: t0).id
        let first = try #require(try await queue.claim(request(), now: t0).first)
        try await queue.deferJob(first.claim, until: t0 + 300, reason: "FLOOD_WAIT_300", now: t0)
        var job = try #require(try await queue.job(id))
        #expect(job.state == .queued && job.attempts == 0 && job.deferrals == 1 && job.runAt == t0 + 300 && job.lastError == "FLOOD_WAIT_300")
        #expect(try await queue.claim(request(), now: t0 + 299).isEmpty)
        let second = try #require(try await queue.claim(request(), now: t0 + 300).first)
        try await queue.release(second.claim, reason: "shutdown", now: t0 + 301)
        job = try #require(try await queue.job(id))
        #expect(job.state == .queued && job.attempts == 0 && job.deferrals == 2 && job.runAt == t0 + 301)
        // With one attempt allowed, it still runs: neither deferral nor release spent it.
        let third = try #require(try await queue.claim(request(), now: t0 + 301).first)
        #expect(third.job.attempts == 1)
    }

    @Test func aJobWhoseWorkerDiesOnItsLastAttemptGoesToTheDeadLetters() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 1), now: t0).id
        _ = try await queue.claim(request(lease: 10), now: t0)
        #expect(try await queue.claim(request(), now: t0 + 10).isEmpty)
        let job = try #require(try await queue.job(id))
        #expect(job.state == .dead && job.lastError?.contains("stopped renewing its lease") == true)
    }

    @Test func checkpointsSurviveAnotherAttempt() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
        let first = try #require(try await queue.claim(request(lease: 10), now: t0).first)
        try await queue.checkpoint(first.claim, progress: Data("page 3".utf8), now: t0)
        let second = try #require(try await queue.claim(request(), now: t0 + 10).first)
        #expect(second.job.id == id && second.job.progress == Data("page 3".utf8))
        await #expect(throws: JobQueueError.claimLost(first.claim)) {
            try await queue.checkpoint(first.claim, progress: Data(), now: t0 + 11)
        }
    }

    @Test func cancelAndRequeueFollowTheStates() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
        _ = try await queue.claim(request(), now: t0)
        await #expect(throws: JobQueueError.invalidTransition(id, from: .running, action: "cancelled")) { try await queue.cancel(id, now: t0) }
        await #expect(throws: JobQueueError.notFound(JobID(999))) { try await queue.cancel(JobID(999), now: t0) }
        let other = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
        try await queue.cancel(other, now: t0)
        #expect(try await queue.job(other)?.state == .cancelled)
        try await queue.requeue(other, now: t0)
        #expect(try await queue.job(other)?.state == .queued)
    }

    @Test func anEnqueueWakesSubscribers() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        var signals = queue.enqueueSignals().makeAsyncIterator()
        _ = try await queue.enqueue(NewJob(kind: "k", account: "carol"), now: t0)
        #expect(await signals.next() == "carol")
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
        #expect(applied == ["jobs.archive.v1", "jobs.v1", "jobs.v2.history", "store.v1"])
        _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0)
        #expect(try await queue.counts(account: "alice")[.queued] == 1)
    }

    @Test func refusesAJobThatCannotRun() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        await #expect(throws: JobQueueError.self) { _ = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 0), now: t0) }
        await #expect(throws: JobQueueError.self) { _ = try await queue.enqueue(NewJob(kind: "", account: "alice"), now: t0) }
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
