import MTProtoClient

/// When and how often a failed call is repeated: exponential backoff with full jitter, capped, for
/// retryable classes only. A call is repeated only when repeating cannot do harm:
///
/// - a flood wait at or under `maximumFloodWait` (the server refused the call, it did not run):
///   always, after exactly the wait;
/// - a server failure (500, -503), a timeout, a lost connection or a transport error: only when the
///   caller marked the call idempotent (`InvokeOptions.isIdempotent`), because it may have run;
/// - never: 4xx refusals, terminal errors, cancellation, the session manager's own refusals.
public struct RetryPolicy: Sendable, Hashable {
    public var maximumAttempts: Int
    public var baseDelay: Double
    public var multiplier: Double
    public var maximumDelay: Double
    /// Flood waits longer than this are not retried (the ledger fails them fast anyway).
    public var maximumFloodWait: Double

    public init(maximumAttempts: Int = 4, baseDelay: Double = 0.5, multiplier: Double = 2, maximumDelay: Double = 30, maximumFloodWait: Double = 10) {
        precondition(maximumAttempts >= 1 && baseDelay >= 0 && multiplier >= 1 && maximumDelay >= baseDelay && maximumFloodWait >= 0,
                     "a retry policy needs at least one attempt and non-negative, growing delays")
        self.maximumAttempts = maximumAttempts
        self.baseDelay = baseDelay
        self.multiplier = multiplier
        self.maximumDelay = maximumDelay
        self.maximumFloodWait = maximumFloodWait
    }

    public enum Verdict: Sendable, Hashable {
        case giveUp
        /// Repeat after exactly this many seconds (a flood wait).
        case after(Double)
        /// Repeat after the jittered backoff.
        case backoff
    }

    /// Whether `error` may be retried for a call with the given idempotency.
    public func classify(_ error: TelegramError, idempotent: Bool) -> Verdict {
        switch error {
        case .rpc(let rpc, _):
            switch rpc.advice {
            case .wait(let seconds, let reason):
                guard reason != .other || rpc.code == 420, Double(seconds) <= maximumFloodWait else { return .giveUp }
                return .after(Double(seconds))
            case .retryLater:
                return idempotent ? .backoff : .giveUp
            default:
                return .giveUp
            }
        case .floodWaitHeld(_, let seconds, let mayHaveRun):
            // Held back by the connection for a wait the DC answered: like the flood wait itself,
            // unless an earlier send of it may have run.
            guard !mayHaveRun || idempotent, Double(seconds) <= maximumFloodWait else { return .giveUp }
            return .after(Double(seconds))
        case .timeout(_, _, let delivery):
            // A request that never left the client did not run: repeating it is always safe.
            return idempotent || delivery == .notSent ? .backoff : .giveUp
        case .connectionFailed(_, _, _, let delivery):
            // One that never reached a connection did not run either.
            return idempotent || delivery == .notSent ? .backoff : .giveUp
        case .proxyRefused:
            // Knocking again cannot help until a person fixes the proxy's link.
            return .giveUp
        case .inDoubt:
            return idempotent ? .backoff : .giveUp
        case .transport(let code, _):
            return idempotent && code.rawValue != -404 ? .backoff : .giveUp
        case .handshakeFailed, .cancelled, .undecodableResult, .rejected, .closed, .unknownDC, .migrationLoop, .storage, .middleware:
            return .giveUp
        }
    }

    /// The backoff before retry number `retry` (1 = the first repeat): uniform in [0, cap) where
    /// cap = min(maximumDelay, baseDelay × multiplier^(retry-1)) ("full jitter"), so processes that
    /// failed together do not come back together.
    public func backoff(beforeRetry retry: Int, unit: Double) -> Double {
        var cap = baseDelay
        if retry > 1 {
            for _ in 1..<retry {
                cap *= multiplier
                if cap >= maximumDelay { break }
            }
        }
        return min(maximumDelay, cap) * min(max(unit, 0), 1)
    }
}
