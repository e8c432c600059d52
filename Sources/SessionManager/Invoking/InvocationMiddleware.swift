import MTProtoClient

/// One layer around the client's `TelegramInvoking` seam, gotd style: it receives the request and
/// its options, may wait, refuse, rewrite the options or retry, and calls the invoker it wraps.
public protocol InvocationMiddleware: Sendable {
    func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking
}

extension TelegramInvoking {
    /// This invoker wrapped in `middlewares`, the first one outermost (it sees each call first).
    public func wrapped(in middlewares: [any InvocationMiddleware]) -> any TelegramInvoking {
        var invoker: any TelegramInvoking = self
        for middleware in middlewares.reversed() { invoker = middleware.wrap(invoker) }
        return invoker
    }
}

/// Runs `operation`, turning `CancellationError` from an injected clock's sleep into the client's
/// `.cancelled`, so every middleware wait is cancellable and reports it like the client does.
func sleepCancellable(_ clock: any TelegramClock, seconds: Double, method: String) async throws(TelegramError) {
    guard seconds > 0 else { return }
    do {
        try await clock.sleep(for: seconds)
    } catch {
        throw .cancelled(method: method, delivery: .notSent)
    }
    if Task.isCancelled { throw .cancelled(method: method, delivery: .notSent) }
}
