import Foundation
import MTProto
import SessionManager
import Testing
@testable import Workers

/// `JobRetention`'s schedule: a purge at start, then one per interval, on a real SQLite queue.
@Suite(.timeLimit(.minutes(2))) struct JobRetentionTests {
    @Test func purgesAtStartThenEveryIntervalAndKeepsWhatIsYoung() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let clock = ManualClock()
        let longAgo = UnixTime(seconds: clock.now().seconds - 10_000), anHourAgo = UnixTime(seconds: clock.now().seconds - 3600)
        let old = try await queue.enqueue(NewJob(kind: "me", account: "alice"), now: longAgo).id
        try await queue.cancel(old, now: longAgo)
        let young = try await queue.enqueue(NewJob(kind: "me", account: "alice"), now: anHourAgo).id
        try await queue.cancel(young, now: anHourAgo)
        let dead = try await queue.enqueue(NewJob(kind: "me", account: "alice"), now: longAgo).id
        let claim = try #require(try await queue.claim(ClaimRequest(accounts: ["alice"], limit: 1, perAccountLimit: 1, owner: "w", leaseSeconds: 30),
                                                       now: longAgo).first)
        #expect(claim.job.id == dead)
        try await queue.retry(claim.claim, error: "PEER_ID_INVALID", retryAt: nil, now: longAgo)

        let retention = JobRetention(finishedFor: 7200, interval: 3600)
        let task = Task { await retention.run(queue: queue, clock: clock, logger: quietLogger) }
        await clock.waitForSleepers(1)
        #expect(try await queue.job(old) == nil, "finished 10,000 s ago: removed at start")
        #expect(try await queue.job(young) != nil)

        clock.advance(by: 3600)  // the young job is now exactly 7200 s old: kept
        await clock.waitForSleepers(1)
        #expect(try await queue.job(young) != nil)
        clock.advance(by: 3600)
        await clock.waitForSleepers(1)
        #expect(try await queue.job(young) == nil)
        #expect(try await queue.job(dead)?.state == .dead, "a dead letter waits for a person")

        task.cancel()
        await task.value
        try queue.writer.close()
    }
}
