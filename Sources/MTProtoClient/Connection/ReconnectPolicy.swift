/// How often and how patiently a lost connection is re-established: exponential backoff, bounded
/// both in delay and in attempts, so a dead DC turns into `TelegramError.connectionFailed` instead
/// of an endless loop.
public struct ReconnectPolicy: Sendable, Hashable {
    /// Delay before the second attempt (the first reconnect is immediate).
    public var initialDelay: Double
    public var multiplier: Double
    public var maximumDelay: Double
    /// Attempts in a row (the first one included) before the pending calls fail.
    public var maximumAttempts: Int
    /// Seconds a connection must stay up before its loss starts a fresh budget. A connection that
    /// the server (or a middlebox) kills within seconds, again and again, counts as a failed
    /// attempt: otherwise a flapping DC would be reconnected to forever, as fast as the backoff's
    /// first step allows.
    public var stableAfter: Double

    public init(initialDelay: Double = 0.25, multiplier: Double = 2, maximumDelay: Double = 15, maximumAttempts: Int = 6, stableAfter: Double = 10) {
        precondition(initialDelay >= 0 && multiplier >= 1 && maximumDelay >= initialDelay && maximumAttempts >= 1 && stableAfter >= 0,
                     "a reconnect policy needs non-negative, growing delays, at least one attempt and a non-negative stable time")
        self.initialDelay = initialDelay
        self.multiplier = multiplier
        self.maximumDelay = maximumDelay
        self.maximumAttempts = maximumAttempts
        self.stableAfter = stableAfter
    }

    /// Whether a connection that was established and lived `seconds` restarts the attempt budget
    /// when it ends (true), or counts as one more failed attempt (false).
    public func resetsBudget(afterLinkLasting seconds: Double) -> Bool {
        seconds >= stableAfter
    }

    /// The wait before attempt number `attempt` (1-based) after `attempt - 1` failures, or nil when
    /// the budget is spent.
    public func delay(beforeAttempt attempt: Int) -> Double? {
        guard attempt >= 1, attempt <= maximumAttempts else { return nil }
        if attempt == 1 { return 0 }
        var delay = initialDelay
        for _ in 2..<attempt { delay = min(maximumDelay, delay * multiplier) }
        return min(maximumDelay, delay)
    }
}
