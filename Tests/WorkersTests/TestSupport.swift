import Foundation
import GRDB
import Logging
import MTProto
import MTProtoClient
import SessionManager
import TL
import Synchronization
import Testing
@testable import Workers

/// A clock that moves only when the test says so. Sleepers wake when `advance` passes their
/// deadline; `waitForSleepers` lets a test advance only once the code under test is asleep.
final class ManualClock: TelegramClock {
    private struct Sleeper {
        let deadline: Double
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Double
        var nextID = 0
        var sleepers: [Int: Sleeper] = [:]
        var cancelledBeforeSleeping: Set<Int> = []
        var waiters: [(id: Int, count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: Mutex<State>

    init(now: Double = 1_800_000_000) { state = Mutex(State(now: now)) }

    func now() -> UnixTime { UnixTime(seconds: state.withLock { $0.now }) }

    func sleep(for seconds: Double) async throws {
        try Task.checkCancellation()
        guard seconds > 0 else { return }
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (cancelled, ready) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                    if state.cancelledBeforeSleeping.remove(id) != nil { return (true, []) }
                    state.sleepers[id] = Sleeper(deadline: state.now + seconds, continuation: continuation)
                    return (false, Self.takeReadyWaiters(&state))
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
                for waiter in ready { waiter.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                if let sleeper = state.sleepers.removeValue(forKey: id) { return sleeper }
                state.cancelledBeforeSleeping.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    func advance(by seconds: Double) {
        let due = state.withLock { state -> [Sleeper] in
            state.now += seconds
            let now = state.now
            let ready = state.sleepers.filter { $0.value.deadline <= now }
            for id in ready.keys { state.sleepers.removeValue(forKey: id) }
            return Array(ready.values)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Returns once at least `count` tasks sleep on this clock, or the test is cancelled (its time
    /// limit): a wait that ignored cancellation outlived the limit and held the whole run.
    func waitForSleepers(_ count: Int) async {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if state.sleepers.count >= count || state.cancelledBeforeSleeping.remove(id) != nil { return true }
                    state.waiters.append((id, count, continuation))
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let index = state.waiters.firstIndex(where: { $0.id == id }) { return state.waiters.remove(at: index).continuation }
                state.cancelledBeforeSleeping.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }

    private static func takeReadyWaiters(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        let count = state.sleepers.count
        let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
        state.waiters.removeAll { $0.count <= count }
        return ready
    }
}

/// A temporary folder holding a real SQLite file, removed at the end.
struct TemporaryDatabase {
    let folder: URL
    var path: String { folder.appendingPathComponent("tgsm.sqlite").path }

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("workers-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func queue() throws -> SQLiteJobQueue { try SQLiteJobQueue.open(path: path) }

    func remove() { try? FileManager.default.removeItem(at: folder) }
}

/// Silent, unless WORKERS_TEST_LOG is set (then everything goes to standard error).
let quietLogger: Logger = {
    guard ProcessInfo.processInfo.environment["WORKERS_TEST_LOG"] != nil else {
        return Logger(label: "workers-tests") { _ in SwiftLogNoOpLogHandler() }
    }
    var logger = Logger(label: "workers-tests") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .trace
    return logger
}()

/// An invoker for jobs that never call Telegram, or that must fail with a given error.
struct FailingInvoker: TelegramInvoking {
    let error: TelegramError
    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        throw error
    }
}

/// An invoker that fails with a given error until told otherwise, then answers help.getNearestDc.
final class SwitchableInvoker: TelegramInvoking {
    private let failure: Mutex<TelegramError?>

    init(failing error: TelegramError?) { failure = Mutex(error) }

    func fails(with error: TelegramError?) { failure.withLock { $0 = error } }

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        if let error = failure.withLock({ $0 }) { throw error }
        return try await NearestDCInvoker().invoke(request, options: options)
    }
}

/// Invokers handed out by runtimes that cannot always start: while `down`, handing one out fails
/// as a runtime that cannot take its lease does (by default the store's error, TGSM-SESSION-003;
/// `failing` gives another, e.g. the lease held by another process). Counts the tries then.
final class OutageInvokers: AccountInvokers {
    private let invokers: [AccountID: any TelegramInvoking]
    private let failure: @Sendable (AccountID) -> TelegramError
    private let state = Mutex((down: false, lookups: 0, handedOut: 0))

    init(
        _ invokers: [AccountID: any TelegramInvoking],
        failing failure: @escaping @Sendable (AccountID) -> TelegramError = { account in
            .middleware(SessionManagerError(.storageFailed(account: account, reason: "taking the lease: database is locked")))
        }
    ) {
        self.invokers = invokers
        self.failure = failure
    }

    func down(_ down: Bool) { state.withLock { $0.down = down } }

    /// Lookups made while down.
    var lookups: Int { state.withLock { $0.lookups } }

    /// The first account's invokers handed out (its session taken up: lease, start-up check).
    var handedOut: Int { state.withLock { $0.handedOut } }

    /// Only the first account's lookups fail while down; the others' are always handed out.
    func invoker(for account: AccountID) async throws -> any TelegramInvoking {
        let first = invokers.keys.sorted().first
        let down = state.withLock { state -> Bool in
            guard account == first else { return false }
            guard state.down else {
                state.handedOut += 1
                return false
            }
            state.lookups += 1
            return true
        }
        if down { throw failure(account) }
        guard let invoker = invokers[account] else { throw FixedAccountInvokers.UnknownAccount(account: account) }
        return invoker
    }
}

/// Every event a pool sends from now on, in order.
final class RecordedEvents: Sendable {
    private final class Log: Sendable {
        let events = Mutex<[WorkerEvent]>([])
    }

    private let log: Log
    private let recording: Task<Void, Never>

    init(_ pool: WorkerPool) {
        let stream = pool.events(), log = Log()
        self.log = log
        recording = Task { for await event in stream { log.events.withLock { $0.append(event) } } }
    }

    deinit { recording.cancel() }

    var all: [WorkerEvent] { log.events.withLock { $0 } }
}

/// A gate a test opens to let blocked handlers go on.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Reads worker events until one satisfies `predicate`, which it returns (nil if the stream ended).
@discardableResult
func awaitEvent(_ iterator: inout AsyncStream<WorkerEvent>.Iterator, where predicate: (WorkerEvent) -> Bool) async -> WorkerEvent? {
    while let event = await iterator.next() {
        if predicate(event) { return event }
    }
    return nil
}

func isFinished(_ event: WorkerEvent) -> WorkerPool.JobOutcome? {
    if case .finished(_, _, let outcome) = event { return outcome }
    return nil
}
