import MTProto

/// A token bucket as a value: `capacity` tokens at most, refilled at `refillPerSecond`. Taking a
/// token may drive the level below zero: the next caller then waits for the debt to be repaid,
/// so concurrent callers queue in order instead of all waking at once.
public struct TokenBucket: Sendable, Hashable {
    public struct Rate: Sendable, Hashable, Codable {
        /// The burst: tokens available after a quiet period.
        public var capacity: Double
        /// Tokens added per second.
        public var refillPerSecond: Double

        public init(capacity: Double, refillPerSecond: Double) {
            precondition(capacity >= 1 && refillPerSecond > 0, "a bucket needs room for one token and a positive refill")
            self.capacity = capacity
            self.refillPerSecond = refillPerSecond
        }

        /// `count` calls per `seconds`, with a burst of `burst`.
        public static func per(_ seconds: Double, count: Double = 1, burst: Double) -> Rate {
            Rate(capacity: burst, refillPerSecond: count / seconds)
        }
    }

    public let rate: Rate
    public private(set) var tokens: Double
    public private(set) var updatedAt: UnixTime

    public init(rate: Rate, now: UnixTime) {
        self.rate = rate
        self.tokens = rate.capacity
        self.updatedAt = now
    }

    /// A bucket as a shared store kept it (`RateBucketStore`). A level above the capacity (the
    /// policy was lowered since) is cut to it.
    public init(rate: Rate, tokens: Double, updatedAt: UnixTime) {
        self.rate = rate
        self.tokens = min(tokens, rate.capacity)
        self.updatedAt = updatedAt
    }

    /// Whether the bucket has refilled to its capacity by `now`: then it is the same as a new one.
    public func isFull(at now: UnixTime) -> Bool {
        tokens + max(0, now - updatedAt) * rate.refillPerSecond >= rate.capacity
    }

    private mutating func refill(now: UnixTime) {
        // A clock that went back (NTP stepped it, or another process wrote the bucket ahead of
        // ours) adds nothing, and the bucket counts on from now: kept at the later time, it would
        // refill nothing until the clock caught up, while every call still took a token.
        guard now > updatedAt else {
            updatedAt = now
            return
        }
        tokens = min(rate.capacity, tokens + (now - updatedAt) * rate.refillPerSecond)
        updatedAt = now
    }

    /// Seconds from `now` until a token taken now would be covered (0: available at once).
    public mutating func waitForToken(now: UnixTime) -> Double {
        refill(now: now)
        return tokens >= 1 ? 0 : (1 - tokens) / rate.refillPerSecond
    }

    /// Takes one token (the caller then waits `waitForToken` before using it).
    public mutating func take(now: UnixTime) {
        refill(now: now)
        tokens -= 1
    }
}
