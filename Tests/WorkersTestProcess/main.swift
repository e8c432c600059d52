// A worker process for the crash and signal tests (Tests/WorkersTests/CrashRecoveryTests):
//   WorkersTestProcess <database> crash <now>   claims one "block" job at the fixed time <now>,
//                                               prints "started <id>" once it runs, and blocks
//                                               until the test SIGKILLs it;
//   WorkersTestProcess <database> term          same on the system clock, inside a ServiceGroup
//                                               that shuts down gracefully on SIGTERM/SIGINT with a
//                                               zero grace period, so the job is released; exit 0.
//   WorkersTestProcess <database> drain <now>   serves accounts a0, a1, a2 (2 at a time each) at the
//                                               fixed time <now>: "count" jobs complete at once with
//                                               "pid N" as their result, a "block" job blocks as in
//                                               crash mode (MultiProcessQueueTests).
// <database> is a SQLite path or a postgres:// URL (the PostgreSQL queue).
import Foundation
import Logging
import MTProto
import MTProtoClient
import ServiceLifecycle
import SessionManager
import TL
import PostgresStore
import Workers

struct FixedClock: TelegramClock {
    let time: Double
    func now() -> UnixTime { UnixTime(seconds: time) }
    func sleep(for seconds: Double) async throws {
        // Time never moves in this process: a sleeper waits until it is cancelled or killed.
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

struct NoSession: TelegramInvoking {
    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        throw .closed
    }
}

/// Announces that the job is under way (after a durable checkpoint), then waits to be killed or cancelled.
struct BlockingHandler: JobHandler {
    var kind: JobKind { "block" }
    func run(_ context: JobContext) async throws -> Data? {
        try await context.checkpoint(Data("started in pid \(getpid())".utf8))
        FileHandle.standardOutput.write(Data("started \(context.job.id.rawValue)\n".utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

/// Completes at once, naming the process that did it.
struct CountHandler: JobHandler {
    var kind: JobKind { "count" }
    func run(_ context: JobContext) async throws -> Data? { Data("pid \(getpid())".utf8) }
}

let arguments = CommandLine.arguments
guard arguments.count >= 3 else {
    FileHandle.standardError.write(Data("usage: WorkersTestProcess <database> crash <now> | term\n".utf8))
    exit(2)
}
let path = arguments[1]
let mode = arguments[2]
let clock: any TelegramClock
if mode == "crash" || mode == "drain", arguments.count >= 4, let time = Double(arguments[3]) {
    clock = FixedClock(time: time)
} else {
    clock = SystemClock()
}
var logger = Logger(label: "workers-test-process")
logger.logLevel = .warning
do {
    let queue: any JobQueue = if PostgresURL.isPostgresURL(path) {
        try await PostgresJobQueue.connect(url: path, logger: logger)
    } else {
        try SQLiteJobQueue.open(path: path)
    }
    let accounts: [AccountID] = mode == "drain" ? ["a0", "a1", "a2"] : ["alice"]
    let pool = WorkerPool(
        queue: queue, handlers: [BlockingHandler(), CountHandler()],
        invokers: FixedAccountInvokers(Dictionary(uniqueKeysWithValues: accounts.map { ($0, NoSession() as any TelegramInvoking) })),
        accountStatus: InMemoryAccountStatusStore(),
        configuration: WorkerConfiguration(
            accounts: accounts, concurrencyPerAccount: mode == "drain" ? 2 : 1, leaseSeconds: 30, heartbeatInterval: 10, pollInterval: 3600,
            gracePeriod: 0, owner: "child-\(getpid())"),
        clock: clock, logger: logger)
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [.init(service: pool)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    try await group.run()
    exit(0)
} catch {
    FileHandle.standardError.write(Data("WorkersTestProcess failed: \(error)\n".utf8))
    exit(1)
}
