import MTProto

/// One rate limit Telegram imposed: until `until`, `method` (on `peer`, where the limit is per
/// peer, as SLOWMODE_WAIT is) must not be called for `account`. Persisted so every process on
/// the store, and every restart, honours it.
public struct FloodWait: Sendable, Hashable {
    /// Which RPC error imposed it.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case floodWait = "FLOOD_WAIT"
        case premiumFloodWait = "FLOOD_PREMIUM_WAIT"
        case slowmodeWait = "SLOWMODE_WAIT"
    }

    public var account: AccountID
    /// The TL name of the method, e.g. "messages.sendMessage".
    public var method: String
    /// The peer the limit applies to, as a stable key ("user:123", "channel:456"); nil when the
    /// limit is account-wide for the method.
    public var peer: String?
    public var kind: Kind
    /// When Telegram answered with the error.
    public var recordedAt: UnixTime
    /// The first instant at which the call may be made again.
    public var until: UnixTime
    /// The DC that answered, for diagnostics.
    public var dc: Int?

    public init(account: AccountID, method: String, peer: String? = nil, kind: Kind, recordedAt: UnixTime, until: UnixTime, dc: Int? = nil) {
        self.account = account
        self.method = method
        self.peer = peer
        self.kind = kind
        self.recordedAt = recordedAt
        self.until = until
        self.dc = dc
    }

    public func isActive(at now: UnixTime) -> Bool { now < until }
}
