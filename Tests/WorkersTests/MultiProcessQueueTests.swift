import Foundation
import MTProto
import PostgresStore
import SessionManager
import StoreTestSupport
import Synchronization
import Testing
@testable import Workers

#if canImport(Glibc)
import Glibc
#endif

/// Several real worker processes (Tests/WorkersTestProcess) sharing one PostgreSQL queue: every
/// job completes exactly once, and a job whose process is SIGKILLed mid-job is taken over by a
/// process started later, once its lease has passed. Time is fixed in each process (no lease
/// runs out while they drain); the restarted process is started 31 s later on its own clock.
@Suite(.timeLimit(.minutes(3))) struct MultiProcessQueueTests {
    let t0 = 1_800_000_000.0

    /// A worker process and the lines it prints, read on a thread of their own.
    final class Worker: @unchecked Sendable {
        let process = Process()
        private let lines = Mutex<[String]>([])

        init(_ arguments: [String]) throws {
            process.executableURL = try CrashRecoveryTests.workerExecutable()
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let handle = output.fileHandleForReading
            Thread.detachNewThread { [self] in
                var buffer = Data()
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { return }
                    buffer.append(chunk)
                    while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                        buffer.removeSubrange(buffer.startIndex...newline)
                        self.lines.withLock { $0.append(line) }
                    }
                }
            }
        }

        var printed: [String] { lines.withLock { $0 } }
        var owner: String { "child-\(process.processIdentifier)" }

        func kill() {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Waits (polling, at most `seconds`) until `condition` holds; false if it never did.
    func eventually(_ seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    @Test func threeProcessesDrainTheQueueOnceAndARestartedOneTakesOverAKilledOnesJobs() async throws {
        try await EngineQueue.with(.postgres) { database in
            let queue = try await database.queue()
            let now = UnixTime(seconds: t0)
            let block = try await queue.enqueue(NewJob(kind: "block", account: "a0", priority: 10, idempotencyKey: "block"), now: now).id
            let total = 600
            for index in 0..<total {
                _ = try await queue.enqueue(NewJob(kind: "count", account: AccountID("a\(index % 3)"), idempotencyKey: "count-\(index)"), now: now)
            }
            // A repeated enqueue (an enqueuer that crashed and retried) adds nothing.
            let again = try await queue.enqueue(NewJob(kind: "count", account: "a1", idempotencyKey: "count-7"), now: now)
            #expect(again == .duplicate(again.id))

            let url = try #require(database.postgresURL)
            var workers: [Worker] = []
            defer { for worker in workers { worker.kill() } }
            for _ in 0..<3 { workers.append(try Worker([url, "drain", "\(t0)"])) }
            #expect(try await eventually { workers.contains { $0.printed.contains("started \(block.rawValue)") } })
            let victim = try #require(workers.first { $0.printed.contains("started \(block.rawValue)") })
            victim.kill()
            #expect(victim.process.terminationReason == .uncaughtSignal)

            // The survivors finish everything they may: all but the victim's jobs, and the queued jobs of
            // an account whose two slots (the per-account limit, over every process) the victim still holds.
            #expect(try await eventually {
                let running = try await queue.jobs(state: .running, account: nil, limit: 1000)
                guard running.allSatisfy({ $0.leaseOwner == victim.owner }) else { return false }
                for account in ["a0", "a1", "a2"] as [AccountID] where try await queue.counts(account: account)[.queued] > 0 {
                    if running.filter({ $0.account == account }).count < 2 { return false }
                }
                return true
            })
            // The victim's only: a completion of the victim's committed late (below) frees a slot, and a
            // survivor may claim a queued job into it between the check above and this listing.
            let orphans = try await queue.jobs(state: .running, account: nil, limit: 1000).filter { $0.leaseOwner == victim.owner }
            #expect(orphans.contains { $0.id == block })

            // A process started after the lease (30 s) ran out rescues them all.
            let restarted = try Worker([url, "drain", "\(t0 + 31)"])
            workers.append(restarted)
            #expect(try await eventually { restarted.printed.contains("started \(block.rawValue)") })
            #expect(try await eventually { try await queue.counts(account: nil)[.completed] == total })

            let blocked = try #require(try await queue.job(block))
            #expect(blocked.state == .running && blocked.attempts == 2 && blocked.leaseOwner == restarted.owner)
            #expect(blocked.lastError?.contains("rescued") == true)
            let done = try await queue.jobs(state: .completed, account: nil, limit: 10_000)
            #expect(done.count == total)
            #expect(Set(done.compactMap(\.idempotencyKey)).count == total, "one job per idempotency key")
            #expect(done.allSatisfy { $0.attempts <= 2 && $0.result.map { String(decoding: $0, as: UTF8.self).hasPrefix("pid ") } == true })
            // Work was spread over the processes, and the victim's unfinished jobs went to the restarted one.
            let completers = Set(done.compactMap { $0.result.map { String(decoding: $0, as: UTF8.self) } })
            #expect(completers.count >= 2)
            // A completion the victim had sent whole just before the kill may still commit after the
            // orphans were listed (the server reads what was already in the socket): that job was not
            // unfinished. Every other orphan is the restarted process's.
            let byRestarted = Data("pid \(restarted.process.processIdentifier)".utf8), byVictim = Data("pid \(victim.process.processIdentifier)".utf8)
            for orphan in orphans where orphan.id != block {
                let result = try await queue.job(orphan.id)?.result
                #expect(result == byRestarted || result == byVictim,
                        "orphan \(orphan.id) completed with \(result.map { String(decoding: $0, as: UTF8.self) } ?? "nothing")")
            }
        }
    }
}
