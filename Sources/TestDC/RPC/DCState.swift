import MTProto
import MTProtoCrypto
import MTProtoNIO
import TLSchema

/// Who is calling: the DC, the connection's auth key, and (once logged in) the account.
public struct CallContext: Sendable, Equatable {
    public var dc: Int32
    public var authKeyID: Int64
    public var connectionID: Int
    /// The client session and msg_id the request came in (auth.bindTempAuthKey checks both).
    public var sessionID: Int64
    public var messageID: Int64

    public init(dc: Int32, authKeyID: Int64, connectionID: Int = 0, sessionID: Int64 = 0, messageID: Int64 = 0) {
        self.dc = dc
        self.authKeyID = authKeyID
        self.connectionID = connectionID
        self.sessionID = sessionID
        self.messageID = messageID
    }
}

/// A PFS temporary key as the DC keeps it.
public struct TemporaryKeyRecord: Sendable, Equatable {
    public var key: AuthKey
    /// DC time (Unix seconds) after which the key is unknown (-404): the handshake's expires_in,
    /// shortened by the binding's expires_at.
    public var expiresAt: Double
    /// The permanent key id auth.bindTempAuthKey bound it to; nil until bound.
    public var boundTo: Int64?
}

/// A login code the DC "sent" (tests read it back instead of an SMS).
public struct SentLoginCode: Sendable, Equatable, Codable {
    public var phone: String
    public var code: String
    public var phoneCodeHash: String
    public var dc: Int32
    /// Unix seconds when it was sent.
    public var sentAt: Double
    /// Sent to the login email: auth.signIn must give it as email_verification.
    public var byEmail: Bool = false
    /// The request was answered "set up a login email first": no login code went out, and `code`
    /// is the verification code mailed to `verifiedEmail` (empty until one is).
    public var awaitsLoginEmail: Bool = false
    /// The address being verified for the login email.
    public var verifiedEmail: String? = nil
}

/// A message in someone's private box (ids are per account, as on Telegram).
struct PrivateMessage: Sendable, Equatable, Codable {
    var id: Int32
    /// The other side of the dialog (the box owner's peer).
    var peerUserID: Int64
    var out: Bool
    var fromID: Int64
    var date: Int32
    var text: String
    /// The same message's id in the other side's box (ids are per account), for edits.
    var pairedID: Int32 = 0
    var editDate: Int32?
}

/// The mutable state of the whole test cluster: the world, logins, auth keys, faults. Every DC of
/// a cluster shares one, as Telegram's DCs share the account database. A value type, guarded by the
/// server's lock; handlers take it `inout` so tests drive them without sockets.
public struct DCState: Sendable {
    public var world: World
    /// Where each DC of the cluster listens, by DC id, as help.getConfig lists them.
    public var dcs: [Int32: DCAddress]
    public var faults = FaultEngine()
    /// How many requests were answered AUTH_KEY_DUPLICATED (one key live on two connections at once).
    public var duplicatedKeyAnswers = 0
    /// (dc, auth key id) → user id.
    public private(set) var authorizations: [AuthKeyRef: Int64] = [:]
    /// Auth keys each DC has negotiated, by id.
    var authKeys: [AuthKeyRef: AuthKey] = [:]
    /// Keys dropped by a fault (AUTH_KEY_DUPLICATED): the transport answers -404 for them.
    var droppedKeys: Set<AuthKeyRef> = []
    /// PFS temporary keys (spec `api/pfs`): kept in memory only, never in `authkeys.json`, so a
    /// restart of the DC forgets them as Telegram's DCs may; each one is usable until `expiresAt`
    /// and acts as the permanent key it is bound to.
    public internal(set) var temporaryKeys: [AuthKeyRef: TemporaryKeyRecord] = [:]
    /// How many auth.bindTempAuthKey calls succeeded, for tests.
    public internal(set) var temporaryKeyBinds = 0
    /// Temporary keys that went with their permanent key: even a connection already using one
    /// gets -404, so its client makes a new temporary key instead of hearing AUTH_KEY_DUPLICATED.
    var forgottenTemporaryKeys: Set<AuthKeyRef> = []
    /// The last code sent to each phone.
    public private(set) var sentCodes: [String: SentLoginCode] = [:]
    /// Login emails set up through account.verifyEmail, by user id: their login codes go there.
    /// In memory, like the future auth tokens: a restarted DC asks for the set-up again.
    public internal(set) var loginEmails: [Int64: String] = [:]
    /// Seconds after a code to the login email before auth.resetLoginEmail is allowed (Telegram: 0
    /// for Premium accounts); earlier is FLOOD_WAIT for the rest.
    public var loginEmailResetAvailablePeriod: Int32 = 0
    /// How long a requested reset of a login email takes; 0 resets at once.
    public var loginEmailResetDelay: Double = 0
    /// Resets requested and not done yet: user id → when (unix seconds).
    public internal(set) var loginEmailResets: [Int64: Double] = [:]
    /// A pending 2FA check per key: account.getPassword's srp_id and SRP state.
    var pendingPasswordChecks: [AuthKeyRef: (srpID: Int64, session: SRPServerSession)] = [:]
    /// SRP parameters and verifier per user id, derived from the world's plain password on first use.
    var passwordVerifiers: [Int64: (parameters: SRP.Parameters, verifier: [UInt8])] = [:]
    /// Keys of logins waiting for the 2FA password: (dc, key) → user id.
    var awaitingPassword: [AuthKeyRef: Int64] = [:]
    /// auth.exportAuthorization tokens: id → (user, bytes, target dc).
    var exportedAuthorizations: [Int64: (userID: Int64, bytes: [UInt8], dc: Int32)] = [:]
    var privateBoxes: [Int64: [PrivateMessage]] = [:]
    /// pts of each account's common box and of each channel.
    var userPts: [Int64: Int32] = [:]
    var channelPts: [Int64: Int32] = [:]
    /// Every event of each account's common box and of each channel, so getDifference can replay them.
    var userUpdateLogs: [Int64: [LoggedUpdate]] = [:]
    var channelUpdateLogs: [Int64: [LoggedUpdate]] = [:]
    /// seq of each account's Updates sequence: bumped by every `updates` pushed to it.
    var userSeq: [Int64: Int32] = [:]
    /// The random_ids each user's sends carried, newest last: a send repeating one is refused with
    /// 500 RANDOM_ID_DUPLICATE (messages.sendMessage's documented error), as Telegram drops a message
    /// it already has. Kept in memory only (a DC restart forgets them), bounded per user.
    var sentRandomIDs: [Int64: RecentRandomIDs] = [:]
    /// Pushes made by the last handled call or control action, for the server to deliver.
    var outbox: [PendingPush] = []
    /// QR login tokens by their bytes.
    var loginTokens: [[UInt8]: LoginTokenRecord] = [:]
    /// Future auth tokens handed out with logins and log-outs, by their bytes: whose they are and
    /// until when (unix seconds). In memory only: a restarted DC no longer honours them, and the
    /// login falls back to a code, as after a token expired.
    var futureAuthTokens: [[UInt8]: (userID: Int64, expires: Double)] = [:]
    /// How long a future auth token logs its account in again.
    public var futureAuthTokenLifetime: Double = 30 * 86_400
    /// Where keys and logins are saved (`authkeys.json`); nil keeps them in memory only.
    var authKeyStore: AuthKeyStore?
    /// Bumped by every change to keys or logins; the store is written when it moved.
    var authVersion = 0
    var savedAuthVersion = 0
    /// Why the last save of the keys failed, until one works.
    var authSaveFailure: String?
    var lastAuthSaveAttempt: ContinuousClock.Instant?
    /// Where message boxes are saved (`boxes.json`); nil keeps them in memory only.
    var boxStore: MessageBoxStore?
    /// Bumped by every event in a box (a pts or seq moved); the store is written when it moved.
    var boxesVersion = 0
    var savedBoxesVersion = 0
    var lastBoxesSave: ContinuousClock.Instant?
    /// One salt schedule per auth key, so a reconnect with the same key keeps a valid salt.
    var saltSchedules: [AuthKeyRef: ServerSaltSchedule] = [:]
    var entropy: any EntropySource
    /// How many times each method's handler ran (by TL name): a request the DC answered from a
    /// session instead (a client asking again) does not count.
    public internal(set) var handlerRuns: [String: Int] = [:]
    /// How long a login code stays valid.
    public var codeLifetime: Double = 300
    /// Every initConnection received (the newest `initConnectionLogLimit`), in order.
    public internal(set) var initConnections: [InitConnectionRecord] = []

    public init(world: World, dcs: [Int32: DCAddress], entropy: any EntropySource = SystemEntropy()) {
        self.world = world
        self.dcs = dcs
        self.entropy = entropy
    }

    public struct AuthKeyRef: Hashable, Sendable {
        public var dc: Int32
        public var keyID: Int64
        public init(dc: Int32, keyID: Int64) {
            self.dc = dc
            self.keyID = keyID
        }
    }

    // MARK: - Keys and logins

    /// Records a key a handshake produced on `dc`.
    public mutating func registerAuthKey(_ key: AuthKey, dc: Int32) {
        let ref = AuthKeyRef(dc: dc, keyID: key.id)
        authKeys[ref] = key
        droppedKeys.remove(ref)
        authVersion &+= 1
    }

    /// A permanent key, or (with `now`) a temporary key that has not expired.
    public func authKey(id: Int64, dc: Int32, now: Double? = nil) -> AuthKey? {
        let ref = AuthKeyRef(dc: dc, keyID: id)
        if forgottenTemporaryKeys.contains(ref) { return nil }
        if let temporary = temporaryKeys[ref] {
            guard let now else { return temporary.key }
            return now < temporary.expiresAt ? temporary.key : nil
        }
        return droppedKeys.contains(ref) ? nil : authKeys[ref]
    }

    /// Records a temporary key a handshake produced (p_q_inner_data_temp_dc), forgetting expired ones.
    public mutating func registerTemporaryKey(_ key: AuthKey, dc: Int32, expiresAt: Double, now: Double) {
        temporaryKeys = temporaryKeys.filter { $0.value.expiresAt > now }
        temporaryKeys[AuthKeyRef(dc: dc, keyID: key.id)] = TemporaryKeyRecord(key: key, expiresAt: expiresAt)
    }

    /// Forgets every temporary key, as a restart of Telegram's DC does (they live in memory only):
    /// their clients meet -404 and create and bind new ones. Chaos runs use it to put key creation
    /// inside their kill window.
    public mutating func forgetTemporaryKeys() {
        for ref in temporaryKeys.keys { forgottenTemporaryKeys.insert(ref) }
        temporaryKeys.removeAll()
    }

    /// Whether `id` names a temporary key of `dc` whose time is up or that went with its
    /// permanent key (its connections get -404).
    public func temporaryKeyExpired(id: Int64, dc: Int32, now: Double) -> Bool {
        let ref = AuthKeyRef(dc: dc, keyID: id)
        if forgottenTemporaryKeys.contains(ref) { return true }
        guard let record = temporaryKeys[ref] else { return false }
        return now >= record.expiresAt
    }

    /// The context a call runs in: a bound temporary key acts as its permanent key.
    func permanentContext(_ context: CallContext) -> CallContext {
        guard let perm = temporaryKeys[AuthKeyRef(dc: context.dc, keyID: context.authKeyID)]?.boundTo else { return context }
        var resolved = context
        resolved.authKeyID = perm
        return resolved
    }

    public func authKeyIDs(dc: Int32) -> [Int64] {
        authKeys.keys.filter { $0.dc == dc && !droppedKeys.contains($0) }.map(\.keyID).sorted()
    }

    public func userID(for context: CallContext) -> Int64? {
        let resolved = permanentContext(context)
        return authorizations[AuthKeyRef(dc: resolved.dc, keyID: resolved.authKeyID)]
    }

    mutating func bind(_ context: CallContext, to userID: Int64) {
        let ref = AuthKeyRef(dc: context.dc, keyID: context.authKeyID)
        authorizations[ref] = userID
        authVersion &+= 1
        awaitingPassword[ref] = nil
        pendingPasswordChecks[ref] = nil
    }

    /// Logs the key out (auth.logOut, AUTH_KEY_UNREGISTERED and SESSION_REVOKED faults).
    public mutating func revokeAuthorization(dc: Int32, keyID: Int64) {
        authorizations[AuthKeyRef(dc: dc, keyID: keyID)] = nil
        authVersion &+= 1
    }

    /// Forgets the key itself (AUTH_KEY_DUPLICATED): later packets under it get transport error -404.
    public mutating func dropAuthKey(dc: Int32, keyID: Int64) {
        let ref = AuthKeyRef(dc: dc, keyID: keyID)
        authorizations[ref] = nil
        droppedKeys.insert(ref)
        // A temporary key only ever acted for its permanent key: it goes with it.
        for (temporary, record) in temporaryKeys where temporary.dc == dc && (record.boundTo == keyID || temporary.keyID == keyID) {
            temporaryKeys[temporary] = nil
            forgottenTemporaryKeys.insert(temporary)
        }
        authVersion &+= 1
    }

    /// The key's salt schedule, made by `make` on first use.
    public mutating func saltSchedule(dc: Int32, keyID: Int64, make: () -> ServerSaltSchedule) -> ServerSaltSchedule {
        let ref = AuthKeyRef(dc: dc, keyID: keyID)
        if let known = saltSchedules[ref] { return known }
        let schedule = make()
        saltSchedules[ref] = schedule
        return schedule
    }

    /// A forced salt change (the badServerSalt fault).
    public mutating func replaceSaltSchedule(_ schedule: ServerSaltSchedule, dc: Int32, keyID: Int64) {
        saltSchedules[AuthKeyRef(dc: dc, keyID: keyID)] = schedule
    }

    // MARK: - World lookups

    func user(id: Int64) -> World.User? { world.users.first { $0.id == id } }
    func user(phone: String) -> World.User? { world.users.first { $0.phone == phone } }
    func channel(id: Int64) -> World.Channel? { world.channels.first { $0.id == id } }

    /// The login code for a phone: its last five digits reversed, so a test can compute it too.
    public static func loginCode(for phone: String) -> String {
        let digits = World.normalizePhone(phone)
        let tail = String(digits.suffix(5).reversed())
        return tail.count == 5 ? tail : tail + String(repeating: "0", count: 5 - tail.count)
    }

    mutating func randomInt64() -> Int64 {
        let bytes = entropy.bytes(8)
        return bytes.reduce(Int64(0)) { ($0 << 8) | Int64($1) }
    }

    mutating func randomHex(_ count: Int) -> String {
        Hex.encode(entropy.bytes(count))
    }

    mutating func recordCode(_ code: SentLoginCode) { sentCodes[code.phone] = code }
    mutating func consumeCode(phone: String) { sentCodes[phone] = nil }

    mutating func nextPts(user: Int64) -> Int32 {
        let next = (userPts[user] ?? 1) &+ 1
        userPts[user] = next
        boxesVersion &+= 1
        return next
    }

    /// The pts of an account's common box (1 before its first event).
    public func pts(user: Int64) -> Int32 { userPts[user] ?? 1 }

    /// A TL date from the DC clock; a clock skewed past 2038 (or before 1970) is clamped, never a trap.
    static func date(_ now: Double) -> Int32 {
        guard now.isFinite else { return 0 }
        return Int32(max(Double(Int32.min), min(Double(Int32.max), now.rounded(.down))))
    }

    /// The channel's pts: one per message unless sends moved it on.
    func channelPts(_ channel: World.Channel) -> Int32 {
        channelPts[channel.id] ?? Int32(clamping: channel.messages.count + 1)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// A user's latest random_ids, bounded: the oldest are forgotten once `capacity` is passed twice over.
struct RecentRandomIDs: Sendable {
    static let capacity = 100_000
    private var known: Set<Int64> = []
    private var order: [Int64] = []

    func contains(_ id: Int64) -> Bool { known.contains(id) }

    mutating func insert(_ id: Int64) {
        guard known.insert(id).inserted else { return }
        order.append(id)
        if order.count > 2 * Self.capacity {
            for old in order.prefix(order.count - Self.capacity) { known.remove(old) }
            order.removeFirst(order.count - Self.capacity)
        }
    }
}
