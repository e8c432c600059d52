import MTProto

/// Token buckets kept where every process of a cluster reads and writes them (the PostgreSQL
/// store implements it), so a proactive limit ("20 sends a minute for this account") holds for the
/// account as a whole, not once per process. `RateGate` uses one when given (`SessionStack` takes
/// it from a ledger store that is also a `RateBucketStore`).
public protocol RateBucketStore: Sendable {
    /// In one transaction: refills each bucket to `now`, and when the longest wait for a token is
    /// within `maximumWait` takes one token from each (`RateGate.decide`); otherwise takes nothing.
    func reserveTokens(account: AccountID, buckets: [SharedBucket], now: UnixTime, maximumWait: Double) async throws -> RateGate.Decision
}

/// One bucket a call draws from: its stable name within the account ("send", "send|user:7") and
/// the policy's rate for it.
public struct SharedBucket: Sendable, Hashable {
    public var key: String
    public var rate: TokenBucket.Rate

    public init(key: String, rate: TokenBucket.Rate) {
        self.key = key
        self.rate = rate
    }
}
