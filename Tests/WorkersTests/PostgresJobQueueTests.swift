import Foundation
import MTProto
import PostgresStore
import SessionManager
import StoreTestSupport
import Testing
import Workers

/// What only the PostgreSQL queue does: wake-ups that cross processes (LISTEN/NOTIFY) and a
/// schema that many processes may create at once. Skipped, loudly, without a server.
// The limit catches a hang, not slowness: a loaded 2-core machine can stall the whole test process for minutes.
@Suite(.timeLimit(.minutes(5))) struct PostgresJobQueueTests {
    let t0 = UnixTime(seconds: 1_800_000_000)

    @Test func anEnqueueInOneProcessWakesTheOthersThroughNotify() async throws {
        try await EngineQueue.with(.postgres) { database in
            let listener = try await database.queue()
            let other = try await database.queue()
            var signals = listener.enqueueSignals().makeAsyncIterator()
            _ = try await other.enqueue(NewJob(kind: "k", account: "carol"), now: t0)
            #expect(await signals.next() == "carol")
            // A requeue by an operator's process wakes them too.
            let id = try await other.enqueue(NewJob(kind: "k", account: "dave"), now: t0).id
            #expect(await signals.next() == "dave")
            try await other.cancel(id, now: t0)
            try await other.requeue(id, now: t0)
            #expect(await signals.next() == "dave")
        }
    }

    @Test func manyProcessesStartingAtOnceMigrateOnce() async throws {
        let scratch = try await ScratchPostgresDatabase.create()
        do {
            let opened = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let store = try await PostgresSessionStore.connect(url: scratch.url, logger: quietLogger)
                        let queue = try await PostgresJobQueue.connect(url: scratch.url, logger: quietLogger)
                        _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: self.t0)
                        _ = try await store.accounts()
                        await queue.close()
                        await store.close()
                        return true
                    }
                }
                var count = 0
                for try await ok in group where ok { count += 1 }
                return count
            }
            #expect(opened == 6)
            let queue = try await PostgresJobQueue.connect(url: scratch.url, logger: quietLogger)
            #expect(try await queue.counts(account: "alice")[.queued] == 6)
            await queue.close()
        } catch {
            await scratch.drop()
            throw error
        }
        await scratch.drop()
    }

    /// An enqueue whose COMMIT took effect but whose answer was lost (the connection ended after
    /// COMMIT was sent, through `CommitReplyCutter` in front of the real server) is inserted again
    /// under its token: the token finds the row the first attempt stored, and the caller hears
    /// `created` once instead of a doubt, with or without an idempotency key. Only when the second
    /// COMMIT's answer is lost too is the doubt the caller's.
    @Test func anEnqueueWhoseCommitAnswerWasLostSettlesItself() async throws {
        let scratch = try await ScratchPostgresDatabase.create()
        let cutter = try await CommitReplyCutter.start(before: scratch.url)
        let queue = try await PostgresJobQueue.connect(url: try cutter.proxied(scratch.url), logger: quietLogger)
        do {
            let job = NewJob(kind: "k", account: "alice", payload: Data("first".utf8), idempotencyKey: "once")
            cutter.loseTheNextCommitAnswer()
            let outcome = try await queue.enqueue(job, now: t0)
            #expect(cutter.cuts == 1, "the first COMMIT's answer was lost")
            guard case .created(let id) = outcome else {
                Issue.record("the enqueue whose answer was lost is this caller's: \(outcome)")
                throw CancellationError()
            }
            #expect(try await queue.counts(account: "alice")[.queued] == 1, "stored once")
            // The key still answers later callers, and another job under it is not taken for this one.
            #expect(try await queue.enqueue(job, now: t0) == .duplicate(id))
            var other = job
            other.payload = Data("second".utf8)
            cutter.loseTheNextCommitAnswer()
            #expect(try await queue.enqueue(other, now: t0) == .duplicate(id))
            #expect(cutter.cuts == 2)

            // Without a key: the token alone settles it.
            cutter.loseTheNextCommitAnswer()
            let keyless = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0)
            #expect(cutter.cuts == 3)
            guard case .created(let keylessID) = keyless, keylessID != id else {
                Issue.record("a keyless enqueue whose answer was lost is this caller's, and a job of its own: \(keyless)")
                throw CancellationError()
            }
            #expect(try await queue.counts(account: "alice")[.queued] == 2)

            // Both answers lost: the doubt is the caller's, and the job was still stored once.
            cutter.loseTheNextCommitAnswer(2)
            do {
                let outcome = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0)
                Issue.record("an enqueue whose two answers were lost cannot know: \(outcome)")
            } catch {
                guard case .storageInDoubt(let reason) = error else { throw error }
                #expect(reason.contains("COMMIT was sent") && reason.contains("unanswered too"), "\(reason)")
            }
            #expect(cutter.cuts == 5)
            #expect(try await queue.counts(account: "alice")[.queued] == 3, "the first attempt stored it; the second found it")
        } catch {
            await queue.close()
            await cutter.stop()
            await scratch.drop()
            throw error
        }
        await queue.close()
        await cutter.stop()
        await scratch.drop()
    }
}
