import Foundation
import SessionManager
import Synchronization
import Workers

/// What the sandbox's workers did, collected from `WorkerPool.events()`: every outcome of every
/// job (a deferral is an outcome the queue row alone does not show once the job completed) and
/// every account the workers stopped.
final class SandboxWorkerLog: Sendable {
    private struct State {
        var outcomes: [JobID: [WorkerPool.JobOutcome]] = [:]
        var stops: [AccountID: AccountStop] = [:]
        var stoppedLoops: Set<AccountID> = []
    }

    private let state = Mutex(State())

    func record(_ event: WorkerEvent) {
        state.withLock { state in
            switch event {
            case .finished(let id, _, let outcome): state.outcomes[id, default: []].append(outcome)
            case .accountStopped(let account, let stop): state.stops[account] = stop
            case .stopped(let account): state.stoppedLoops.insert(account)
            case .claimed, .idle, .standingBy, .serving, .removed: break
            }
        }
    }

    func outcomes(of id: JobID) -> [WorkerPool.JobOutcome] { state.withLock { $0.outcomes[id] ?? [] } }

    func stop(of account: AccountID) -> AccountStop? { state.withLock { $0.stops[account] } }

    func loopEnded(_ account: AccountID) -> Bool { state.withLock { $0.stoppedLoops.contains(account) } }

    /// Follows a pool's events until the pool ends them.
    func follow(_ pool: WorkerPool) -> Task<Void, Never> {
        let events = pool.events()
        return Task { for await event in events { self.record(event) } }
    }
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass. The sandbox watches a live
/// system, so it waits on wall time (tests of the parts use injected clocks instead).
func waitUntil(seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
