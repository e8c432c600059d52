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
        var drainer: Task<Void, Never>?
        var isFinished = false
    }

    private let state: Mutex<State>
    private let handle: @Sendable (inout Context, Element) async -> Void

    init(context: Context, handle: @escaping @Sendable (inout Context, Element) async -> Void) {
        state = Mutex(State(context: context))
        self.handle = handle
    }

    func submit(_ element: Element) {
        state.withLock { state in
            guard !state.isFinished else { return }
            state.pending.append(element)
            guard state.drainer == nil else { return }
            state.drainer = Task { await self.drain() }
        }
    }

    /// Takes no more elements; `drained()` waits for those already taken.
    func finish() {
        state.withLock { $0.isFinished = true }
    }

    /// Waits until every element submitted so far is handled (call after `finish()` to wait for the last one).
    func drained() async {
        await state.withLock { $0.drainer }?.value
    }

    /// Changes the context while no element is being handled; nil (nothing done) while one is.
    func withIdleContext<Result>(_ body: (inout Context) -> Result) -> Result? {
        state.withLock { state in
            guard state.drainer == nil, var context = state.context else { return nil }
            let result = body(&context)
            state.context = context
            return result
        }
    }

    private func drain() async {
        // The drainer is the only one that takes the context out, and only one drainer runs.
        guard var context = state.withLock({ $0.context.take() }) else { return }
        while true {
            // A whole batch at a time: its array (and capacity) goes when the batch is done.
            let batch: [Element] = state.withLock { state in
                if state.pending.isEmpty {
                    // Given back in the same step that ends the drainer: the next one finds it.
                    state.context = context
                    state.drainer = nil
                    return []
                }
                var batch: [Element] = []
                swap(&batch, &state.pending)
                return batch
            }
            if batch.isEmpty { return }
            for element in batch { await handle(&context, element) }
        }
    }
}

extension OnDemandSerialQueue where Context == Void {
    convenience init(handle: @escaping @Sendable (Element) async -> Void) {
        self.init(context: ()) { _, element in await handle(element) }
    }
}
