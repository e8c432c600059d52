import MTProto
import TLSchema

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

    /// Methods tgsm calls on its own (the session check, the keep-alive, learning whose session it
    /// is): no job's rate to lower when Telegram limits them.
    public static let ownMethods: Set<String> = [
        Api.functions.updates.GetState.tlName, Api.functions.account.GetAccountTTL.tlName,
        Api.functions.users.GetFullUser.tlName, Api.functions.help.GetAppConfig.tlName,
    ]

    /// What lowers the risk of this wait again: a job's rate, or nothing for tgsm's own calls.
    public var rateAdvice: String {
        if Self.ownMethods.contains(method) {
            return "\(method) is one of tgsm's own calls (the session check, the keep-alive), not a job's: nothing to lower; tgsm makes no such call "
                + "before then, and jobs that do not need it go on."
        }
        // Logins are a person's (`tgsm auth`), not a job's: no job calls auth.*.
        if method.hasPrefix("auth.") {
            return "\(method) is a login step (`tgsm auth`), not a job's call: do not try to log in again before then; this step "
                + "is refused here until then without reaching Telegram, whose waits on login steps grow when they are ignored."
        }
        return "Lower the rate of the jobs that call \(method) for this account (`rateLimits` in the config file); repeated waits open the circuit "
            + "breaker and grow longer on Telegram's side."
    }
}
