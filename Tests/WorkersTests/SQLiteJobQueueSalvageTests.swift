import Foundation
import GRDB
import MTProto
import SessionManager
import Testing
@testable import Workers

/// `SQLiteJobQueue.salvage` on real damaged files: every job that reads comes back exactly as it
/// was, the ids that may be lost are exactly the ones missing, and no id is given out again.
@Suite(.timeLimit(.minutes(5))) struct SQLiteJobQueueSalvageTests {
    let t0 = UnixTime(seconds: 1_800_000_000)

    /// 3,000 jobs over many pages (200-byte payloads), each with an idempotency key; 20 of alice's
    /// claimed and 10 of those completed. Returns them as stored, with every page in the main file.
    func fill(_ database: TemporaryDatabase) async throws -> [Job] {
        let queue = try database.queue()
        for i in 1...3000 {
            _ = try await queue.enqueue(NewJob(kind: "k", account: i % 2 == 0 ? "alice" : "bob", payload: Data(repeating: UInt8(i % 251), count: 200),
                                               idempotencyKey: "key-\(i)"), now: t0 + Double(i))
        }
        let request = ClaimRequest(accounts: ["alice"], limit: 20, perAccountLimit: 20, owner: "w1", leaseSeconds: 30)
        for claimed in try await queue.claim(request, now: t0 + 4000).prefix(10) {
            try await queue.complete(claimed.claim, result: Data("done".utf8), now: t0 + 4001)
        }
        let all = try await queue.jobs(state: nil, account: nil, limit: 10_000).sorted { $0.id.rawValue < $1.id.rawValue }
        // The message archive shares the file, as in `tgsm run`: 500 of a channel's messages, complete through 500.
        let archive = try SQLiteMessageArchive(writer: queue.writer)
        try await archive.store(Self.archived, account: "alice", peer: "channel:1")
        try await archive.advanceCursor(account: "alice", peer: "channel:1", to: 500)
        try await archive.savePeer(ResolvedPeer(type: .channel, id: 1, accessHash: 77), username: "news", account: "alice")
        try queue.writer.close()
        try Self.checkpoint(database.path)
        return all
    }

    static let archived = (1...500).map { ArchivedMessage(id: Int32($0), date: 1_700_000_000 + Int32($0), from: "user:1001",
                                                           text: "message \($0)", raw: Data(repeating: UInt8($0 % 256), count: 200)) }

    /// Every page in the main file, where the damage goes.
    static func checkpoint(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try queue.close()
    }

    /// Zeroes the `index`-th leaf page of `table` (negative: from the end); returns the file as damaged.
    func zeroJobsLeaf(_ database: TemporaryDatabase, index: Int, table: String = "jobs") throws -> Data {
        let (leaves, pageSize) = try Self.leafPages(database.path, table: table)
        #expect(leaves.count > 10, "\(leaves.count) leaf pages of \(table)")
        let page = leaves[index >= 0 ? index : leaves.count + index]
        var file = try Data(contentsOf: URL(fileURLWithPath: database.path))
        file.replaceSubrange((page - 1) * pageSize..<page * pageSize, with: Data(count: pageSize))
        try file.write(to: URL(fileURLWithPath: database.path))
        return file
    }

    static func leafPages(_ path: String, table: String = "jobs") throws -> ([Int], Int) {
        let reader = try DatabaseQueue(path: path)
        defer { try? reader.close() }
        return try reader.read { db in
            (try Int.fetchAll(db, sql: "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", arguments: [table]),
             try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
        }
    }

    @Test func aDamagedQueueKeepsEveryJobThatReadsAndNamesTheIDsThatMayBeLost() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let saved = try await fill(database)
        let damaged = try zeroJobsLeaf(database, index: 10)

        // Before: the queue opens, and listing it says the file is damaged, naming the way out.
        let broken = try database.queue()
        await #expect {
            _ = try await broken.jobs(state: nil, account: nil, limit: 10_000)
        } throws: { error in
            guard case .unreadable(_, _)? = error as? JobQueueError else { return false }
            return "\(error)".contains("tgsm jobs salvage")
        }
        try broken.writer.close()

        let report = try SQLiteJobQueue.salvage(path: database.path, now: t0 + 5000)
        #expect(!report.jobsReadInFull)
        let lost = try #require(report.possiblyLost)
        let through = try #require(lost.through)
        #expect(try Data(contentsOf: URL(fileURLWithPath: report.damagedFileMovedTo)) == damaged)

        let queue = try database.queue()
        defer { try? queue.writer.close() }
        let kept = try await queue.jobs(state: nil, account: nil, limit: 10_000)
        #expect(kept.count == report.jobsKept && report.jobsKeptByState.values.reduce(0, +) == kept.count)
        let byID = Dictionary(uniqueKeysWithValues: saved.map { ($0.id.rawValue, $0) })
        for job in kept {
            guard var before = byID[job.id.rawValue] else { Issue.record("job \(job.id) was never stored"); continue }
            // The 10 alice was running: rescued at once (aJobRunningWhenTheFileWasDamagedIsRescuedAtOnce).
            if before.state == .running {
                before.state = .queued
                before.leaseOwner = nil
                before.leaseUntil = nil
                before.runAt = t0 + 5000
                before.updatedAt = t0 + 5000
                before.lastError = job.lastError
            }
            #expect(before == job, "job \(job.id) comes back exactly as it was")
        }
        #expect(report.claimsRescued == 10)
        let keptIDs = Set(kept.map(\.id.rawValue))
        let lostIDs = Set(lost.from...through)
        #expect(keptIDs.isDisjoint(with: lostIDs))
        #expect(keptIDs.union(lostIDs) == Set(byID.keys), "the ids not kept are exactly the range named: \(lost.from)-\(through)")
        #expect(lostIDs.count > 0 && lostIDs.count < 200, "one page's jobs: \(lostIDs.count)")
        // What they were, from the history (other pages): each only enqueued, so each is to enqueue again.
        #expect(report.lostJobs.map(\.id.rawValue) == Array(lost.from...through) && report.lostJobsNamed == lostIDs.count)
        #expect(report.lostJobs.allSatisfy { $0.lastEvent == .enqueued && !$0.hadEnded && $0.kind == "k" && $0.lastChangeAt == t0 + Double($0.id.rawValue) })
        #expect(report.lostJobs.allSatisfy { $0.account == ($0.id.rawValue % 2 == 0 ? "alice" : "bob") })
        #expect(Dictionary(grouping: kept, by: \.state).mapValues(\.count) == report.jobsKeptByState)
        #expect(report.historyRowsKept > 3000, "the history came along: \(report.historyRowsKept)")
        // The archive sharing the file came along whole, its cursor with it.
        #expect(report.archiveReadInFull && report.archivedMessagesKept == 500 && report.resolvedPeersKept == 1)
        let archive = try SQLiteMessageArchive(writer: queue.writer)
        #expect(try await archive.messages(account: "alice", peer: "channel:1") == Self.archived)
        #expect(try await archive.cursor(account: "alice", peer: "channel:1") == 500)
        #expect(try await archive.peer(username: "news", account: "alice") == ResolvedPeer(type: .channel, id: 1, accessHash: 77))

        // No id is given out twice; a lost job's key is free again, a kept one's is not.
        let next = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0 + 6000)
        #expect(next.id.rawValue > 3000, "\(next)")
        let lostKey = try await queue.enqueue(NewJob(kind: "k", account: "alice", idempotencyKey: "key-\(lost.from)"), now: t0 + 6000)
        guard case .created = lostKey else { Issue.record("a lost job's key: \(lostKey)"); return }
        let keptKey = try await queue.enqueue(NewJob(kind: "k", account: "alice", idempotencyKey: "key-1"), now: t0 + 6000)
        #expect(keptKey == .duplicate(JobID(1)))
        // The history triggers are back: the new jobs were recorded.
        let recorded = try await queue.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_history WHERE at = ?", arguments: [(self.t0 + 6000).seconds]) }
        #expect(recorded == 2)
        let enqueuedOnce = try await queue.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job_history WHERE job = 1 AND event = 'enqueued'") }
        #expect(enqueuedOnce == 1, "copying a job records nothing new")
    }

    /// The jobs a worker held when the file was damaged: their worker stopped with that file (a
    /// salvage is refused while any process has it open), so they are rescued at once, as at their
    /// claim's end: queued again with the attempt spent, dead on a last attempt, history `rescued`.
    /// Before, they kept their leases, and with them their accounts' slots: the salvaged queue ran
    /// none of those accounts' jobs until the leases ran out (the sandbox found it).
    @Test func aJobRunningWhenTheFileWasDamagedIsRescuedAtOnce() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        _ = try await fill(database)
        let queue = try database.queue()
        _ = try await queue.enqueue(NewJob(kind: "k", account: "carol", maxAttempts: 1), now: t0 + 4005)
        // Within alice's leases (30 s from t0 + 4000): this claim's own rescue leaves them be.
        let request = ClaimRequest(accounts: ["carol"], limit: 1, perAccountLimit: 1, owner: "w2", leaseSeconds: 3600)
        let lastTry = try #require(try await queue.claim(request, now: t0 + 4010).first)
        try queue.writer.close()
        try Self.checkpoint(database.path)
        _ = try zeroJobsLeaf(database, index: 10)

        let report = try SQLiteJobQueue.salvage(path: database.path, now: t0 + 5000)
        #expect(report.claimsRescued == 11)
        #expect(report.jobsKeptByState[.running] == nil && report.jobsKeptByState[.dead] == 1, "\(report.jobsKeptByState)")
        let salvaged = try database.queue()
        defer { try? salvaged.writer.close() }
        let alices = try await salvaged.jobs(state: nil, account: "alice", limit: 10_000).filter { $0.attempts == 1 && $0.state != .completed }
        #expect(alices.count == 10)
        for job in alices {
            #expect(job.state == .queued && job.leaseOwner == nil && job.runAt == t0 + 5000, "\(job)")
            #expect(job.lastError?.hasPrefix("rescued: the worker w1 held it when the queue's file was found damaged (salvaged)") == true, "\(job)")
        }
        let carols = try #require(try await salvaged.job(lastTry.job.id))
        #expect(carols.state == .dead && carols.lastError?.contains("on its last allowed attempt when the queue's file was found damaged") == true,
                "\(carols)")
        let events = try await salvaged.writer.read { db in
            try String.fetchAll(db, sql: "SELECT event FROM job_history WHERE at = ? ORDER BY job", arguments: [(self.t0 + 5000).seconds])
        }
        #expect(events == Array(repeating: "rescued", count: 10) + ["dead"], "\(events)")
        // Queued again, the rescued jobs are claimed at once: nothing holds alice's slots.
        let again = try await salvaged.claim(ClaimRequest(accounts: ["alice"], limit: 2, perAccountLimit: 2, owner: "w3", leaseSeconds: 30), now: t0 + 5001)
        #expect(again.count == 2)
    }

    /// The first page lost: among its jobs, alice's that had completed are named as ended (nothing
    /// to enqueue again), the rest as not ended, with their kind, account and last change.
    @Test func theLostJobsAreNamedAsTheHistoryKnowsThem() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let saved = try await fill(database)
        _ = try zeroJobsLeaf(database, index: 0)
        let report = try SQLiteJobQueue.salvage(path: database.path, now: t0 + 5000)
        let lost = try #require(report.possiblyLost)
        #expect(lost.from == 1)
        let byID = Dictionary(uniqueKeysWithValues: saved.map { ($0.id, $0) })
        #expect(report.lostJobs.count == Int(try #require(lost.through)))
        for job in report.lostJobs {
            let before = try #require(byID[job.id])
            #expect(job.kind == before.kind && job.account == before.account)
            #expect(job.hadEnded == (before.state == .completed), "\(job) was \(before.state)")
            #expect(job.lastEvent == (before.state == .completed ? .completed : .enqueued), "\(job)")
        }
        #expect(report.lostJobs.contains { $0.hadEnded } && report.lostJobs.contains { !$0.hadEnded })
    }

    @Test func damageAtTheEndNamesTheIDsUpToTheHighestEverGiven() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        _ = try await fill(database)
        _ = try zeroJobsLeaf(database, index: -1)
        let report = try SQLiteJobQueue.salvage(path: database.path, now: t0 + 5000)
        #expect(report.possiblyLost?.through == 3000, "\(String(describing: report.possiblyLost))")
        #expect(report.possiblyLost.map { $0.from > 2800 } == true)
        // The highest ids were lost with the page: they are still never given out again.
        let queue = try database.queue()
        defer { try? queue.writer.close() }
        let next = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0 + 6000)
        #expect(next.id.rawValue == 3001, "\(next)")
    }

    /// A damaged page among the archived messages: the others are kept, and the channel's cursor
    /// ("complete through 500") is dropped, so the next history job fetches again what was lost.
    @Test func anArchiveThatBrokeOffDropsItsCursors() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        _ = try await fill(database)
        _ = try zeroJobsLeaf(database, index: 5, table: "messages")
        let report = try SQLiteJobQueue.salvage(path: database.path, now: t0 + 5000)
        #expect(report.jobsReadInFull && report.possiblyLost == nil && report.jobsKept == 3000)
        #expect(!report.archiveReadInFull && report.archivedMessagesKept > 400 && report.archivedMessagesKept < 500, "\(report)")
        let queue = try database.queue()
        defer { try? queue.writer.close() }
        let archive = try SQLiteMessageArchive(writer: queue.writer)
        let kept = try await archive.messages(account: "alice", peer: "channel:1")
        #expect(kept.count == report.archivedMessagesKept && Set(kept).isSubset(of: Set(Self.archived)))
        #expect(try await archive.cursor(account: "alice", peer: "channel:1") == 0)
    }

    @Test func anIntactQueueIsNotSalvaged() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        _ = try await fill(database)
        let before = try Data(contentsOf: URL(fileURLWithPath: database.path))
        #expect(throws: JobQueueError.salvageRefused(path: database.path,
                                                     reason: "the queue is not damaged (it passes SQLite's integrity_check); it opens as it is")) {
            _ = try SQLiteJobQueue.salvage(path: database.path, now: t0)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: database.path)) == before)
    }
}
