import TL

/// The one seam of the client: send any API function, get its typed result or a `TelegramError`.
///
/// Everything above the client (rate gates, the flood-wait ledger, retries, workers) composes
/// around this protocol by wrapping another `TelegramInvoking`, the way gotd composes middlewares:
/// a wrapper receives the request and its options, may wait, rewrite options or retry, and calls
/// the wrapped invoker. `TelegramClient` is the innermost implementation.
public protocol TelegramInvoking: Sendable {
    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result
}

extension TelegramInvoking {
    /// Invokes on the home DC with the client's default timeout.
    public func invoke<Request: TLFunction>(_ request: Request) async throws(TelegramError) -> Request.Result {
        try await invoke(request, options: InvokeOptions())
    }
}

/// Per-call knobs a caller or a middleware may set.
public struct InvokeOptions: Sendable, Hashable {
    /// The DC to run the request on; nil means the home DC (the account's).
    public var dc: Int?
    /// Seconds to wait for the answer before failing with `.timeout`; nil uses the client's default.
    public var timeout: Double?
    /// Whether `*_MIGRATE_X` answers may be followed automatically (switching the home DC or
    /// re-invoking on another DC). A middleware that wants to see them itself turns this off.
    public var followsMigrations: Bool
    /// Whether running the request twice has the same effect as running it once (reads, getState,
    /// a send whose random_id the server deduplicates). Only then may a retry middleware repeat it
    /// after an answer that leaves in doubt whether it ran (500, a timeout, a lost connection).
    public var isIdempotent: Bool
    /// What a FLOOD_WAIT answer to this call applies to: until the wait ends the connection sends
    /// no call of the same scope (see `TelegramError.floodWaitHeld`). Nil: the method, which is how
    /// Telegram applies FLOOD_WAIT; a ledger that keeps waits per chat names the chat too.
    public var floodScope: String?
    /// Whether a retry middleware may repeat the call after a failure it would retry. A caller with
    /// a deadline of its own (the session check) says no: it gets the first failure, with its reason
    /// (a proxy that refused the password), rather than its deadline in the middle of a retry.
    public var mayRetry: Bool

    public init(dc: Int? = nil, timeout: Double? = nil, followsMigrations: Bool = true, isIdempotent: Bool = false, floodScope: String? = nil,
                mayRetry: Bool = true) {
        self.dc = dc
        self.timeout = timeout
        self.followsMigrations = followsMigrations
        self.isIdempotent = isIdempotent
        self.floodScope = floodScope
        self.mayRetry = mayRetry
    }
}
