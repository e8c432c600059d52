import Foundation
import OffThePool
import MTProto
import MTProtoClient
import SessionManager
import Synchronization
import Testing
@testable import Workers

#if canImport(Glibc)
import Glibc
#endif

/// Real worker processes (Tests/WorkersTestProcess) killed mid-job: the job is never lost.
@Suite(.timeLimit(.minutes(2))) struct CrashRecoveryTests {
    /// The worker executable, built beside this test bundle by `swift build`.
    static func workerExecutable() throws -> URL {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let candidate = me.deletingLastPathComponent().appendingPathComponent("WorkersTestProcess")
        guard FileManager.default.isExecutableFile(atPath: candidate.path) else {
            throw WorkerProcessMissing(path: candidate.path)
        }
        return candidate
    }

    struct WorkerProcessMissing: Error, CustomStringConvertible {
        let path: String
        var description: String { "\(path) is missing: build every product first (swift build --build-tests)" }
    }

    /// Starts the worker and returns once it printed "started <id>" (the job is under way).
    static func startWorker(_ arguments: [String]) async throws -> (Process, String) {
        let process = Process()
        process.executableURL = try workerExecutable()
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let handle = output.fileHandleForReading
        let line = await offThePool { () -> String in
            var buffer = Data()
            while !buffer.contains(UInt8(ascii: "\n")) {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
            }
            return String(decoding: buffer, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return (process, line)
    }

    @Test func aWorkerKilledMidJobLosesNothingAndAnotherCompletesTheJobOnce() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let t0 = 1_800_000_000.0
        let id = try await queue.enqueue(NewJob(kind: "block", account: "alice", idempotencyKey: "crash-1"), now: UnixTime(seconds: t0)).id

        let (child, line) = try await Self.startWorker([database.path, "crash", "\(t0)"])
        #expect(line == "started \(id.rawValue)")
        kill(child.processIdentifier, SIGKILL)
        await child.exited()
        #expect(child.terminationReason == .uncaughtSignal && child.terminationStatus == SIGKILL)

        let orphan = try #require(try await queue.job(id))
        #expect(orphan.state == .running && orphan.attempts == 1)
        #expect(JobProgress.decode(orphan.progress).data.map { String(decoding: $0, as: UTF8.self).contains("started in pid") } == true)

        // Another worker, once the dead one's 30 s lease is over, rescues and completes it.
        let clock = ManualClock(now: t0 + 31)
        let runs = Mutex(0)
        let finishing = ScriptedHandler(kind: "block") { context in
            runs.withLock { $0 += 1 }
            #expect(context.job.attempts == 2)
            #expect(context.savedProgress.map { String(decoding: $0, as: UTF8.self).contains("started in pid") } == true)
            return Data("done".utf8)
        }
        let pool = WorkerPool(
            queue: queue, handlers: [finishing], invokers: FixedAccountInvokers(["alice": NearestDCInvoker()]),
            accountStatus: InMemoryAccountStatusStore(),
            configuration: WorkerConfiguration(accounts: ["alice"], leaseSeconds: 30, heartbeatInterval: 10, pollInterval: 3600, owner: "survivor"),
            clock: clock, logger: quietLogger)
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        let event = await awaitEvent(&events) { isFinished($0) != nil }
        #expect(event.flatMap(isFinished) == .completed)
        pool.shutdownGracefully()
        try await task.value

        let job = try #require(try await queue.job(id))
        #expect(job.state == .completed && job.attempts == 2 && job.result == Data("done".utf8))
        #expect(runs.withLock { $0 } == 1)
        #expect(try await queue.counts(account: nil)[.completed] == 1)
        #expect(try await queue.enqueue(NewJob(kind: "block", account: "alice", idempotencyKey: "crash-1"), now: clock.now()) == .duplicate(id))
    }

    @Test func sigtermReleasesTheInFlightJobAndExitsCleanly() async throws {
        let database = try TemporaryDatabase()
        defer { database.remove() }
        let queue = try database.queue()
        let id = try await queue.enqueue(NewJob(kind: "block", account: "alice"), now: SystemClock().now()).id

        let (child, line) = try await Self.startWorker([database.path, "term"])
        #expect(line == "started \(id.rawValue)")
        let deadline = ChildDeadline(child, seconds: 60)
        kill(child.processIdentifier, SIGTERM)
        await child.exited()
        #expect(!deadline.finish(), "the worker did not stop within 60 s of SIGTERM")
        #expect(child.terminationReason == .exit && child.terminationStatus == 0)

        let job = try #require(try await queue.job(id))
        #expect(job.state == .queued && job.attempts == 0 && job.leaseOwner == nil)
        #expect(job.lastError?.contains("the worker stopped (a shutdown") == true, "\(job.lastError ?? "")")
    }
}
