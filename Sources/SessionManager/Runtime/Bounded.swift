import Synchronization

/// Thrown by `withBound` when the operation did not end within its bound.
public struct BoundExceeded: Error, Sendable, Hashable, CustomStringConvertible {
    public var what: String
    public var seconds: Double

    public init(what: String, seconds: Double) {
        self.what = what
        self.seconds = seconds
    }

    /// The bound in tenths: it is often what a lease had left, a figure like 9.935802459716797.
    public var description: String { "\(what): no answer within \((seconds * 10).rounded() / 10) s" }
}

/// Runs `operation` in a task of its own and waits for it at most `seconds` (`BoundExceeded`;
/// nil: no time limit) and, when `cancellable`, no longer than the calling task is not cancelled
/// (`CancellationError`).
/// Whichever comes first ends the wait; the operation is then cancelled and left to end on its
/// own. For awaits that must not hang a shutdown whatever is below them: a query on a
/// connection the server ended, a close that waits for it. The operation does not inherit the
/// caller's cancellation (uncancellable bookkeeping stays so, within its bound).
///
/// `endedBy`, when given, is handed a function that ends the wait at once with the error passed to
/// it: for an event the operation itself would never notice (the connection it waits on closed).
public func withBound<T: Sendable>(
    seconds: Double?, _ what: String, cancellable: Bool = true,
    endedBy: (@Sendable (_ end: @escaping @Sendable (any Error) -> Void) -> Void)? = nil,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = BoundRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            guard race.install(continuation) else { return }
            endedBy? { error in race.finish(.failure(error)) }
            let work = Task {
                do { race.finish(.success(try await operation())) } catch { race.finish(.failure(error)) }
            }
            guard let seconds else {
                race.attach([work])
                return
            }
            let timer = Task {
                do {
                    try await Task.sleep(for: .seconds(seconds))
                    race.finish(.failure(BoundExceeded(what: what, seconds: seconds)))
                } catch {}
            }
            race.attach([work, timer])
        }
    } onCancel: {
        if cancellable { race.finish(.failure(CancellationError())) }
    }
}

/// The first of the operation's end, its bound and the caller's cancellation; the others are cancelled.
private final class BoundRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var outcome: Result<T, any Error>?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// False when the race is already over (cancelled before it started): `continuation` is resumed.
    func install(_ continuation: CheckedContinuation<T, any Error>) -> Bool {
        let outcome = state.withLock { state -> Result<T, any Error>? in
            if let outcome = state.outcome { return outcome }
            state.continuation = continuation
            return nil
        }
        guard let outcome else { return true }
        continuation.resume(with: outcome)
        return false
    }

    func attach(_ tasks: [Task<Void, Never>]) {
        let over = state.withLock { state -> Bool in
            if state.outcome != nil { return true }
            state.tasks = tasks
            return false
        }
        if over { for task in tasks { task.cancel() } }
    }

    func finish(_ outcome: Result<T, any Error>) {
        let taken = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>])? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            defer {
                state.continuation = nil
                state.tasks = []
            }
            return (state.continuation, state.tasks)
        }
        guard let (continuation, tasks) = taken else { return }
        continuation?.resume(with: outcome)
        for task in tasks { task.cancel() }
    }
}
