// Claim latency and throughput of the job queue: SQLite (one file) against PostgreSQL with 1, 2
// and 4 worker processes, in one run (ratios only mean something within one run).
//
//   QueueBench [JOBS]            the coordinator: for each case, fresh data, JOBS jobs over three
//                                accounts, N child processes of itself that claim one job at a time
//                                and complete it at once, until the queue is empty. Needs
//                                TGSM_BENCH_POSTGRES_URL (scripts/bench-queue starts a server).
//   QueueBench worker SPEC OWNER a child: SPEC is a SQLite path or a PostgreSQL URL; prints
//                                "window START END COUNT" and "latencies US,US,..." on stdout.
import Foundation
import Logging
import MTProto
import PostgresStore
import SessionManager
import Workers

let accounts: Set<AccountID> = ["a0", "a1", "a2"]
let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }

func wallClock() -> Double { Date().timeIntervalSince1970 }

func openQueue(_ spec: String) async throws -> (any JobQueue, () async -> Void) {
    if PostgresURL.isPostgresURL(spec) {
        let queue = try await PostgresJobQueue.connect(url: spec, logger: quiet)
        return (queue, { await queue.close() })
    }
    let queue = try SQLiteJobQueue.open(path: spec)
    return (queue, { try? queue.writer.close() })
}

func worker(spec: String, owner: String) async throws {
    let (queue, close) = try await openQueue(spec)
    var latencies: [Int] = []
    let start = wallClock()
    while true {
        let asked = ContinuousClock.now
        let batch = try await queue.claim(
            ClaimRequest(accounts: accounts, limit: 1, perAccountLimit: 1000, owner: owner, leaseSeconds: 300), now: UnixTime(seconds: wallClock()))
        let elapsed = ContinuousClock.now - asked
        guard let job = batch.first else { break }
        latencies.append(Int(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000))
        try await queue.complete(job.claim, result: nil, now: UnixTime(seconds: wallClock()))
    }
    let end = wallClock()
    await close()
    print("window \(start) \(end) \(latencies.count)")
    print("latencies " + latencies.map(String.init).joined(separator: ","))
}

struct Outcome {
    var jobs: Int
    var seconds: Double
    var latencies: [Int]
    /// The coordinator's enqueues, one at a time before the workers start.
    var enqueueSeconds: Double = 0

    func percentile(_ p: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))
        return Double(sorted[index]) / 1000
    }
}

func runCase(spec: String, processes: Int, jobs: Int) async throws -> Outcome {
    let (setup, close) = try await openQueue(spec)
    let now = UnixTime(seconds: wallClock())
    let names = accounts.sorted()
    let enqueueStart = ContinuousClock.now
    for index in 0..<jobs {
        _ = try await setup.enqueue(NewJob(kind: "bench", account: names[index % names.count], idempotencyKey: "bench-\(index)"), now: now)
    }
    let enqueueTime = ContinuousClock.now - enqueueStart
    await close()
    let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var children: [(Process, Pipe)] = []
    for index in 0..<processes {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["worker", spec, "bench-\(index)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        children.append((process, pipe))
    }
    var starts: [Double] = []
    var ends: [Double] = []
    var latencies: [Int] = []
    var claimed = 0
    for (process, pipe) in children {
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError.child("a worker exited with \(process.terminationStatus)") }
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.first == "window", fields.count == 4, let start = Double(fields[1]), let end = Double(fields[2]), let count = Int(fields[3]) {
                starts.append(start)
                ends.append(end)
                claimed += count
            } else if fields.first == "latencies", fields.count == 2 {
                latencies += fields[1].split(separator: ",").compactMap { Int($0) }
            }
        }
    }
    guard claimed == jobs, let first = starts.min(), let last = ends.max() else {
        throw BenchError.child("claimed \(claimed) of \(jobs) jobs")
    }
    let enqueueSeconds = Double(enqueueTime.components.seconds) + Double(enqueueTime.components.attoseconds) / 1e18
    return Outcome(jobs: jobs, seconds: last - first, latencies: latencies, enqueueSeconds: enqueueSeconds)
}

enum BenchError: Error { case child(String), setup(String) }

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

func freshPostgres(_ admin: PostgresDatabase, base: String, name: String) async throws -> String {
    try await admin.execute(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    try await admin.execute(unsafeSQL: "CREATE DATABASE \(name)")
    guard var components = URLComponents(string: base) else { throw BenchError.setup("bad URL") }
    components.path = "/" + name
    guard let url = components.string else { throw BenchError.setup("bad URL") }
    return url
}

let arguments = CommandLine.arguments
if arguments.count >= 4, arguments[1] == "worker" {
    do { try await worker(spec: arguments[2], owner: arguments[3]) } catch {
        FileHandle.standardError.write(Data("worker failed: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}

let jobs = arguments.count >= 2 ? Int(arguments[1]) ?? 2000 : 2000
guard let base = ProcessInfo.processInfo.environment["TGSM_BENCH_POSTGRES_URL"] else {
    FileHandle.standardError.write(Data("set TGSM_BENCH_POSTGRES_URL (scripts/bench-queue starts a throwaway server and sets it)\n".utf8))
    exit(2)
}
do {
    #if DEBUG
    let build = "DEBUG build (not a release figure)"
    #else
    let build = "release build"
    #endif
    print("QueueBench: \(jobs) jobs over 3 accounts, claim 1 + complete per job, \(build); load before: \(loadAverage())")
    print("| engine | processes | jobs/s | claim p50 ms | claim p99 ms | enqueues/s (one caller) |")
    print("|---|---|---|---|---|---|")
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("queuebench-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    for processes in [1, 2, 4] {
        let path = directory.appendingPathComponent("jobs-\(processes).sqlite").path
        let outcome = try await runCase(spec: path, processes: processes, jobs: jobs)
        print(String(format: "| SQLite | %d | %.0f | %.2f | %.2f | %.0f |", processes, Double(outcome.jobs) / outcome.seconds,
                     outcome.percentile(0.5), outcome.percentile(0.99), Double(outcome.jobs) / outcome.enqueueSeconds))
    }
    let admin = try await PostgresDatabase.connect(url: base, logger: quiet)
    for processes in [1, 2, 4] {
        let url = try await freshPostgres(admin, base: base, name: "queuebench_\(processes)")
        let outcome = try await runCase(spec: url, processes: processes, jobs: jobs)
        print(String(format: "| PostgreSQL | %d | %.0f | %.2f | %.2f | %.0f |", processes, Double(outcome.jobs) / outcome.seconds,
                     outcome.percentile(0.5), outcome.percentile(0.99), Double(outcome.jobs) / outcome.enqueueSeconds))
        try await admin.execute(unsafeSQL: "DROP DATABASE IF EXISTS queuebench_\(processes) WITH (FORCE)")
    }
    await admin.close()
    print("load after: \(loadAverage())")
} catch {
    FileHandle.standardError.write(Data("QueueBench failed: \(error)\n".utf8))
    exit(1)
}
