import Logging
import MTProto
import MTProtoClient
import ServiceLifecycle
import SessionManager
import Synchronization

/// The workers' `AccountInvokers` over the session manager's `AccountRuntime`s: each account's
/// runtime is started at `start(_:)` or lazily at its first `invoker(for:)`, and its invoker (the
/// stack, through the runtime's gate) is what the workers call. An account whose session turned
/// out unusable (needs a login, deactivated) answers with the terminal guard's own refusal, so the
/// `WorkerPool` stops that account, marks it, and goes on with the others.
///
/// Also a `Service`: on graceful shutdown it stops every runtime (clients closed, leases
/// released). Put it *before* the `WorkerPool` in a `ServiceGroup`: services are shut down in
/// reverse order, so the workers finish or release their jobs while the sessions still run.
public final class AccountRuntimes: AccountInvokers, Service {
    public typealias Factory = @Sendable (AccountID) -> AccountRuntime

    private let factory: Factory
    private let clock: any TelegramClock
    private let logger: Logger
    private let slots = Mutex<[AccountID: Slot]>([:])
    /// The code of each account's last failed start, until one succeeds: the workers try again every
    /// few seconds while the store is out of reach, and the same failure is logged once.
    private let lastStartFailure = Mutex<[AccountID: String]>([:])
    /// Each account's lease a runtime gave up when the store did not let it be renewed, until a new
    /// runtime starts: that one takes it over even if the renewal behind it landed late.
    private let abandonedLeases = Mutex<[AccountID: Lease]>([:])
    /// Set once shutting down (`stopStarting`): no runtime starts any more, and one whose start was
    /// under way is stopped as soon as it is up.
    private let closing = Atomic<Bool>(false)

    private enum Slot {
        case starting(Task<Result<AccountRuntime, SessionManagerError>, Never>)
        case ready(AccountRuntime)
    }

    /// - Parameter factory: makes the (not yet started) runtime of an account.
    public init(clock: any TelegramClock = WallClock(), logger: Logger = Logger(label: "tgsm.runtimes"), factory: @escaping Factory) {
        self.factory = factory
        self.clock = clock
        self.logger = logger
    }

    /// What starting an account found.
    public enum StartOutcome: Sendable {
        /// Running; the verdict of its start-up check (`.networkDown` and `.rateLimited` run on).
        case running(SessionVerdict?)
        /// Not running: the lease is held by another process, the store failed, or the session
        /// needs a person (the error says which and what to do).
        case failed(SessionManagerError)
    }

    /// Starts the runtimes of `accounts` concurrently and reports each. Cancelling the calling task
    /// cuts the start-ups short (a process stopped while it starts); what did start is then stopped
    /// with `stopAll()`.
    public func start(_ accounts: [AccountID]) async -> [AccountID: StartOutcome] {
        await withTaskGroup(of: (AccountID, StartOutcome).self) { group in
            for account in accounts {
                group.addTask {
                    switch await self.runtime(for: account, cancellable: true) {
                    case .success(let runtime): return (account, .running(await runtime.verdict))
                    case .failure(let error): return (account, .failed(error))
                    }
                }
            }
            var outcomes: [AccountID: StartOutcome] = [:]
            for await (account, outcome) in group { outcomes[account] = outcome }
            return outcomes
        }
    }

    /// A runtime's invoker works only while it holds the account's lease.
    public var invokersAreExclusive: Bool { true }

    /// The process is on its way out (its first SIGTERM): a lease being taken back right now (a
    /// store that stalled) must not bring the account up again, holding it from the process that
    /// replaces this one. Runtimes already running go on for the jobs in flight. For good: a pool
    /// stopped to be replaced by another (the sandbox's stages) must not call it.
    public func stopStarting() {
        closing.store(true, ordering: .sequentiallyConsistent)
    }

    private var isClosing: Bool { closing.load(ordering: .sequentiallyConsistent) }

    private func closingRefusal(_ account: AccountID) -> SessionManagerError {
        SessionManagerError(.client(account: account, error: .closed))
    }

    public func invoker(for account: AccountID) async throws -> any TelegramInvoking {
        switch await runtime(for: account) {
        case .success(let runtime): return runtime.invoker
        case .failure(let error): throw TelegramError.middleware(error)
        }
    }

    /// The account's runtime when one was started (running or stopped).
    public func existingRuntime(for account: AccountID) -> AccountRuntime? {
        if case .ready(let runtime)? = slots.withLock({ $0[account] }) { return runtime }
        return nil
    }

    /// Every started runtime.
    public var runtimes: [AccountRuntime] {
        slots.withLock { slots in slots.values.compactMap { if case .ready(let runtime) = $0 { runtime } else { nil } } }
    }

    /// Stops every runtime (closing clients, releasing leases).
    public func stopAll() async {
        let all = runtimes
        await withDiscardingTaskGroup { group in
            for runtime in all { group.addTask { await runtime.stop() } }
        }
    }

    public func run() async throws {
        // Wait for graceful shutdown (or cancellation), then stop the sessions.
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        await withGracefulShutdownHandler {
            for await _ in stream {}
        } onGracefulShutdown: {
            continuation.finish()
        }
        await stopAll()
    }

    /// `cancellable`: the caller's cancellation reaches the start-up it waits for (only `start`
    /// passes it: a worker cancelled at shutdown must not cut short a start another one waits for).
    private func runtime(for account: AccountID, cancellable: Bool = false) async -> Result<AccountRuntime, SessionManagerError> {
        let task = slots.withLock { slots -> Task<Result<AccountRuntime, SessionManagerError>, Never>? in
            switch slots[account] {
            case .ready: return nil
            case .starting(let task): return task
            case nil:
                if isClosing { return nil }
                let task = Task { await self.startRuntime(account) }
                slots[account] = .starting(task)
                return task
            }
        }
        guard let task else {
            guard case .ready(let runtime)? = slots.withLock({ $0[account] }) else {
                if isClosing { return .failure(closingRefusal(account)) }
                return await self.runtime(for: account)
            }
            return await usable(runtime)
        }
        let result = cancellable ? await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() } : await task.value
        slots.withLock { slots in
            switch result {
            case .success(let runtime): slots[account] = .ready(runtime)
            // A failed start is not kept: the next call tries again (a lease may have been freed).
            case .failure: slots[account] = nil
            }
        }
        return result
    }

    private func startRuntime(_ account: AccountID) async -> Result<AccountRuntime, SessionManagerError> {
        let runtime = factory(account)
        do {
            let verdict = try await runtime.start(validate: true, reclaiming: abandonedLeases.withLock { $0[account] })
            abandonedLeases.withLock { _ = $0.removeValue(forKey: account) }
            if isClosing {
                // Up only after the shutdown began (its start waited out a stalled store): down at once,
                // the lease released, for the process that replaces this one.
                await runtime.stop()
                logger.notice("the account came up only after the shutdown began: stopped at once, its lease released",
                              metadata: ["account": "\(account)"])
                return .failure(closingRefusal(account))
            }
            if let verdict, var refusal = Self.refusal(for: verdict, account: account, now: clock.now()) {
                // The stored mark names the first cause (revoked from another device, say); the check
                // sees only its consequence (the key is logged out).
                if let mark = await runtime.terminalMark() {
                    refusal = SessionManagerError(.accountUnusable(account: account, status: mark, method: "updates.getState"))
                }
                logger.error("the account's session cannot be used; its workers stop", metadata: [
                    "account": "\(account)", "verdict": "\(verdict.label)", "code": "\(refusal.code)",
                ])
                return .failure(refusal)
            }
            lastStartFailure.withLock { _ = $0.removeValue(forKey: account) }
            return .success(runtime)
        } catch {
            let repeated = lastStartFailure.withLock { last in
                defer { last[account] = error.code }
                return last[account] == error.code
            }
            // A lease held elsewhere is a standby's every retry, which the worker pool reports once;
            // a failure like the last one is a retry of the same outage.
            let level: Logger.Level = if case .leaseHeld = error.reason { .debug } else if repeated { .debug } else { .error }
            logger.log(level: level, "the account's runtime did not start", metadata: ["account": "\(account)", "code": "\(error.code)", "error": "\(error.summary)"])
            return .failure(error)
        }
    }

    /// A started runtime that stopped by itself answers with why.
    private func usable(_ runtime: AccountRuntime) async -> Result<AccountRuntime, SessionManagerError> {
        switch await runtime.state {
        case .stopped(.leaseLost(let current)):
            // Forgotten, so that a later call starts a new runtime (and takes the lease back when the holder is gone).
            slots.withLock { slots in
                if case .ready(let kept)? = slots[runtime.account], kept === runtime { slots[runtime.account] = nil }
            }
            return .failure(SessionManagerError(.leaseHeld(account: runtime.account, holder: current ?? "another process", expires: nil)))
        case .stopped(.leaseExpired(let cause)):
            // Forgotten too: the next call starts a new runtime, which takes the lease again once
            // the store answers.
            if let abandoned = await runtime.abandonedLease {
                abandonedLeases.withLock { $0[runtime.account] = abandoned }
            }
            slots.withLock { slots in
                if case .ready(let kept)? = slots[runtime.account], kept === runtime { slots[runtime.account] = nil }
            }
            return .failure(SessionManagerError(.leaseExpired(account: runtime.account, cause: cause)))
        case .stopped(.terminal) where isClosing:
            return .failure(closingRefusal(runtime.account))
        case .stopped(.terminal):
            // Asked for again after a session error stopped it: the workers saw the account's mark
            // cleared (a person logged it in again), so a new runtime takes the new session up. Were
            // the session still unusable, the new runtime's start-up check says so.
            slots.withLock { slots in
                if case .ready(let kept)? = slots[runtime.account], kept === runtime { slots[runtime.account] = nil }
            }
            return await self.runtime(for: runtime.account)
        default:
            // Running, or stopped by a terminal error or on request: its invoker answers for itself
            // (the terminal guard's refusal, or `.closed` during shutdown).
            return .success(runtime)
        }
    }

    /// The refusal for a start-up verdict that needs a person: the terminal guard's own error, so the
    /// workers stop and mark the account exactly as for a terminal error met mid-job.
    static func refusal(for verdict: SessionVerdict, account: AccountID, now: UnixTime) -> SessionManagerError? {
        guard let status = AccountStatus(marking: verdict, at: now) else { return nil }
        return SessionManagerError(.accountUnusable(account: account, status: status, method: "updates.getState"))
    }
}
