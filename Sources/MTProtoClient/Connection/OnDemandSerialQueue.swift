import Synchronization

/// Hands submitted elements to `handle` one at a time, in submission order, with a state that
/// each call may change: what a task looping over an `AsyncStream` does, except that the task
/// exists only while elements wait. A suspended task keeps every stack slab it has ever grown
/// (1 KiB each, 3-4 KiB for the update engine's loop) for as long as it lives; with 1,000 idle
/// clients the two loops each client had cost 8 KiB per client, so an idle queue holds no task.
///
/// Elements submitted after `finish()` are dropped, as an `AsyncStream` drops what is yielded
/// after `finish()`; those submitted before are still handled.
final class OnDemandSerialQueue<Element: Sendable, Context: Sendable>: Sendable {
    private struct State {
        var pending: [Element] = []
        /// Nil while the drainer has it.
        var context: Context?
        /// Set by the submit that starts a drainer, cleared by the drainer in the step that finds
        /// nothing left: at most one drainer runs.
        var isDraining = false
        var isFinished = false
        /// `drained()` callers, resumed when the drainer ends.
        var drainWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>
    private let handle: @Sendable (inout Context, Element) async -> Void

    init(context: Context, handle: @escaping @Sendable (inout Context, Element) async -> Void) {
        state = Mutex(State(context: context))
        self.handle = handle
    }

    func submit(_ element: Element) {
        let startsDrainer = state.withLock { state in
            guard !state.isFinished else { return false }
            state.pending.append(element)
            guard !state.isDraining else { return false }
            state.isDraining = true
            return true
        }
        // Created outside the lock: the new task may start at once on another thread and ask for
        // the lock while task creation (an enqueue that can wake a thread) is still under way here.
        if startsDrainer { Task { await self.drain() } }
    }

    /// Takes no more elements; `drained()` waits for those already taken.
    func finish() {
        state.withLock { $0.isFinished = true }
    }

    /// Waits until every element submitted so far is handled (call after `finish()` to wait for the last one).
    func drained() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let isIdle = state.withLock { state in
                guard state.isDraining else { return true }
                state.drainWaiters.append(waiter)
                return false
            }
            if isIdle { waiter.resume() }
        }
    }

    /// Changes the context while no element is being handled; nil (nothing done) while one is.
    func withIdleContext<Result>(_ body: (inout Context) -> Result) -> Result? {
        state.withLock { state in
            guard !state.isDraining, var context = state.context else { return nil }
            let result = body(&context)
            state.context = context
            return result
        }
    }

    private func drain() async {
        // The drainer is the only one that takes the context out, and only one drainer runs: the
        // last one gave it back in the step that cleared `isDraining`.
        guard var context = state.withLock({ $0.context.take() }) else { return }
        while true {
            // A whole batch at a time: its array (and capacity) goes when the batch is done.
            let (batch, waiters): ([Element], [CheckedContinuation<Void, Never>]) = state.withLock { state in
                if state.pending.isEmpty {
                    // Given back in the same step that ends the drainer: the next one finds it.
                    state.context = context
                    state.isDraining = false
                    var waiters: [CheckedContinuation<Void, Never>] = []
                    swap(&waiters, &state.drainWaiters)
                    return ([], waiters)
                }
                var batch: [Element] = []
                swap(&batch, &state.pending)
                return (batch, [])
            }
            if batch.isEmpty {
                for waiter in waiters { waiter.resume() }
                return
            }
            for element in batch { await handle(&context, element) }
        }
    }
}

extension OnDemandSerialQueue where Context == Void {
    convenience init(handle: @escaping @Sendable (Element) async -> Void) {
        self.init(context: ()) { _, element in await handle(element) }
    }
}
