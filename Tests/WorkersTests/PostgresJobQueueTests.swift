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
}
