/// When a failed attempt is tried again: exponential backoff with full jitter (a uniformly random
/// delay between 0 and min(cap, base × 2^(attempt-1))), so that jobs failing together (a DC
/// outage) do not come back together.
public struct BackoffPolicy: Sendable, Hashable {
    /// The ceiling of the first retry's delay, seconds.
    public var base: Double
    /// The largest delay, seconds.
    public var cap: Double

    public init(base: Double = 2, cap: Double = 600) {
        self.base = max(0, base)
        self.cap = max(0, cap)
    }

    /// The ceiling for the retry after attempt number `attempt` (1 for the first attempt).
    public func ceiling(afterAttempt attempt: Int) -> Double {
        let exponent = Double(max(0, min(attempt - 1, 62)))
        return min(cap, base * pow2(exponent))
    }

    /// The delay for the retry after `attempt`, with `unit` uniform in [0, 1).
    public func delay(afterAttempt attempt: Int, unit: Double) -> Double {
        ceiling(afterAttempt: attempt) * min(max(unit, 0), 1)
    }

    private func pow2(_ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 {
            result *= 2
            remaining -= 1
        }
        return result
    }
}
