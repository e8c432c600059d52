import MTProto
import MTProtoCrypto

/// What the client keeps about one DC between runs.
public struct DCSessionState: Sendable, Equatable {
    /// The permanent auth key for this DC. Secret: never logged.
    public var authKey: AuthKey?
    /// The last server salt in use, so a restart does not start with bad_server_salt.
    public var serverSalt: Int64
    /// Server clock minus local clock, seconds.
    public var timeOffset: Double
    /// Whether this key is bound to the account (logged in, or an authorization was imported).
    public var isAuthorized: Bool
    /// With PFS on: the temporary key bound to `authKey` that carries the traffic (the salt and
    /// time offset above are then this key's). Kept so a restart reuses it while it is valid.
    public var temporaryKey: BoundTemporaryKey?
    /// The salts the DC announced ahead (get_future_salts) for the key that carries the traffic
    /// (the temporary one with PFS), so a restart moves to the next salt on time too.
    public var futureSalts: [FutureSalt]

    public init(
        authKey: AuthKey? = nil, serverSalt: Int64 = 0, timeOffset: Double = 0, isAuthorized: Bool = false, temporaryKey: BoundTemporaryKey? = nil,
        futureSalts: [FutureSalt] = []
    ) {
        self.authKey = authKey
        self.serverSalt = serverSalt
        self.timeOffset = timeOffset
        self.isAuthorized = isAuthorized
        self.temporaryKey = temporaryKey
        self.futureSalts = futureSalts
    }
}

/// A PFS temporary key that auth.bindTempAuthKey bound to the DC's permanent key. Secret.
public struct BoundTemporaryKey: Sendable, Equatable {
    public var key: AuthKey
    /// When the DC forgets it, on the client's clock.
    public var expiresAt: UnixTime

    public init(key: AuthKey, expiresAt: UnixTime) {
        self.key = key
        self.expiresAt = expiresAt
    }
}

/// Everything the client persists: the home DC, the per-DC keys, and who is logged in.
public struct SessionState: Sendable, Equatable {
    public var homeDC: Int
    public var dcs: [Int: DCSessionState]

    /// The ids of the permanent keys held, any DC: two accounts holding one of them connect with
    /// it at once, and Telegram destroys it for both.
    public var authKeyIDs: Set<Int64> { Set(dcs.values.compactMap { $0.authKey?.id }) }
    /// The logged-in user's id, when known.
    public var userID: Int64?
    public var isBot: Bool
    /// Where the account's update sequences stand (pts, qts, seq, date, channel pts); nil until
    /// updates were started once. Saved after every batch of updates handed out.
    public var updates: UpdatesState?

    public init(homeDC: Int, dcs: [Int: DCSessionState] = [:], userID: Int64? = nil, isBot: Bool = false, updates: UpdatesState? = nil) {
        self.homeDC = homeDC
        self.dcs = dcs
        self.userID = userID
        self.isBot = isBot
        self.updates = updates
    }

    public var isAuthorized: Bool { dcs[homeDC]?.isAuthorized ?? false }
}

/// Where the client loads its session from and saves it to. The client saves after every change
/// that matters (new key, home DC move, login, imported authorization); the session manager
/// supplies a persistent implementation, tests and throwaway clients use `InMemorySessionStorage`.
public protocol SessionStorage: Sendable {
    /// The stored session, or nil when none exists yet.
    func load() async throws -> SessionState?
    func save(_ state: SessionState) async throws
}

/// Keeps the session in memory only: it is lost with the process.
public actor InMemorySessionStorage: SessionStorage {
    private var state: SessionState?

    public init(_ state: SessionState? = nil) {
        self.state = state
    }

    public func load() -> SessionState? { state }

    public func save(_ state: SessionState) { self.state = state }
}
