import Foundation
import GRDB
import Synchronization
import Testing
@testable import Workers

/// The queue's group commit: writes submitted while a transaction runs share the next one, each
/// caller hears back only after that commit, and a failure in a batch fails all of it.
@Suite(.timeLimit(.minutes(2))) struct GroupCommitTests {
    /// A writer with one table, and a gate that holds the first transaction open until released,
    /// so the writes submitted meanwhile are known to share the next batch.
    struct Fixture {
        let writer: DatabaseQueue
        let commits: GroupCommit

        init() throws {
            writer = try DatabaseQueue()
            try writer.write { db in try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)") }
            commits = GroupCommit(writer: writer, isOwnError: { $0 is JobQueueError })
        }

        func values() throws -> [String] {
            try writer.read { db in try String.fetchAll(db, sql: "SELECT v FROM t ORDER BY id") }
        }

        /// Starts a write that blocks the writer until `release` is signalled; returns once it runs.
        func holdTheWriter(release: DispatchSemaphore) async -> Task<Void, any Error> {
            let started = DispatchSemaphore(value: 0)
            let task = Task {
                try await commits.perform { db in
                    started.signal()
                    release.wait()
                    try db.execute(sql: "INSERT INTO t (v) VALUES ('first')")
                }
            }
            await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    started.wait()
                    continuation.resume()
                }
            }
            return task
        }

        /// Waits (polling, no clock) until `count` writes wait behind the running transaction; ends
        /// with the test's time limit (a yield loop went on spinning after it).
        func untilPending(_ count: Int) async throws {
            while commits.pendingCount < count { try await Task.sleep(for: .milliseconds(1)) }
        }
    }

    @Test func writesSubmittedDuringACommitShareTheNextOneAndEachGetsItsResult() async throws {
        let fixture = try Fixture()
        // Added before the writer is held: adding an observer waits for the writer.
        let commits = CommitCounter()
        fixture.writer.add(transactionObserver: commits)
        let release = DispatchSemaphore(value: 0)
        let first = await fixture.holdTheWriter(release: release)
        var writes: [Task<Int, any Error>] = []
        for index in 0..<20 {
            writes.append(Task {
                try await fixture.commits.perform { db -> Int in
                    try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: ["w\(index)"])
                    return index
                }
            })
            // One after another: tasks started together reach the queue in any order (they did on
            // a loaded machine), and the batch is to run in submission order.
            try await fixture.untilPending(index + 1)
        }
        release.signal()
        try await first.value
        var results: [Int] = []
        for write in writes { results.append(try await write.value) }
        #expect(results == Array(0..<20))
        // The held transaction, then one for all 20, which ran in submission order.
        #expect(commits.count.load(ordering: .relaxed) == 2)
        #expect(try fixture.values() == ["first"] + (0..<20).map { "w\($0)" })
        #expect(fixture.commits.pendingCount == 0)
    }

    final class CommitCounter: TransactionObserver, Sendable {
        let count = Atomic<Int>(0)
        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
        func databaseDidChange(with event: DatabaseEvent) {}
        func databaseDidCommit(_ db: Database) { count.add(1, ordering: .relaxed) }
        func databaseDidRollback(_ db: Database) {}
    }

    @Test func aWriteThatFailsOnItsOwnLeavesTheRestOfTheBatchCommitted() async throws {
        let fixture = try Fixture()
        let release = DispatchSemaphore(value: 0)
        let first = await fixture.holdTheWriter(release: release)
        let before = Task { try await fixture.commits.perform { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('before')") } }
        try await fixture.untilPending(1)
        let lost = Task {
            try await fixture.commits.perform { _ in throw JobQueueError.notFound(JobID(7)) }
        }
        try await fixture.untilPending(2)
        let after = Task { try await fixture.commits.perform { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('after')") } }
        try await fixture.untilPending(3)
        release.signal()
        try await first.value
        try await before.value
        try await after.value
        await #expect(throws: JobQueueError.notFound(JobID(7))) { try await lost.value }
        #expect(try fixture.values() == ["first", "before", "after"])
    }

    /// A database error aborts the transaction: every write of that batch fails and none is kept,
    /// as if each had been a failed transaction of its own; the next batch is unaffected.
    @Test func aDatabaseErrorRollsTheWholeBatchBackAndFailsEveryWriteInIt() async throws {
        let fixture = try Fixture()
        let release = DispatchSemaphore(value: 0)
        let first = await fixture.holdTheWriter(release: release)
        let kept = Task { try await fixture.commits.perform { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('lost')") } }
        try await fixture.untilPending(1)
        let broken = Task { try await fixture.commits.perform { db in try db.execute(sql: "INSERT INTO t (v) VALUES (NULL)") } }
        try await fixture.untilPending(2)
        release.signal()
        try await first.value
        await #expect(throws: DatabaseError.self) { try await kept.value }
        await #expect(throws: DatabaseError.self) { try await broken.value }
        #expect(try fixture.values() == ["first"])

        try await fixture.commits.perform { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('next')") }
        #expect(try fixture.values() == ["first", "next"])
    }

    @Test func aCancelledCallerWritesNothing() async throws {
        let fixture = try Fixture()
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await fixture.commits.perform { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('x')") }
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(try fixture.values() == [])
    }
}
