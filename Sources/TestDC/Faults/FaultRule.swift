/// Which calls a fault rule applies to. Every field left nil matches anything.
public struct FaultMatch: Codable, Sendable, Equatable {
    /// The DC id (1, 2, 3...).
    public var dc: Int32?
    /// The TL name of the method, e.g. `"auth.sendCode"`; nil matches every method.
    public var method: String?
    /// The user id of the logged-in account making the call.
    public var account: Int64?
    /// The phone number the call is about (auth.sendCode/signIn/signUp) or the account's phone.
    public var phone: String?
    /// Let this many matching calls pass before the rule fires.
    public var skip: Int?
    /// Fire this many times, then stop matching (nil: forever).
    public var count: Int?

    public init(dc: Int32? = nil, method: String? = nil, account: Int64? = nil, phone: String? = nil, skip: Int? = nil, count: Int? = nil) {
        self.dc = dc
        self.method = method
        self.account = account
        self.phone = phone.map(World.normalizePhone)
        self.skip = skip
        self.count = count
    }

    func matches(_ call: FaultCall) -> Bool {
        if let dc, dc != call.dc { return false }
        if let method, method != call.method { return false }
        if let account, account != call.account { return false }
        if let phone, World.normalizePhone(phone) != call.phone { return false }
        return true
    }
}

/// What a fault does to a matching call.
public struct FaultEffect: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// 420 FLOOD_WAIT_<seconds>, optionally escalating (see `escalation`).
        case floodWait
        /// 420 SLOWMODE_WAIT_<seconds>.
        case slowmodeWait
        /// 420 FLOOD_PREMIUM_WAIT_<seconds>.
        case floodPremiumWait
        /// 303 <migrateKind>_MIGRATE_<dc>.
        case migrate
        /// 500 INTERNAL (or `message`).
        case internalError
        /// Any rpc_error: `code` and `message`.
        case rpcError
        /// A transport error frame: −`code` (404, 429, 503...), then the connection stays open.
        case transportError
        /// Close the connection without answering.
        case dropBeforeAnswer
        /// Answer, then close the connection.
        case dropAfterAnswer
        /// Run the call and never send its answer; the connection stays open (the server reports
        /// the request as received and being processed): what makes a client's request in doubt.
        case swallowAnswer
        /// Hold the answer for `milliseconds`.
        case delay
        /// Answer this call with bad_server_salt: the DC moves to a new salt first.
        case badServerSalt
        /// 401 AUTH_KEY_UNREGISTERED: the key's authorization is dropped.
        case authKeyUnregistered
        /// 401 SESSION_REVOKED: the key's authorization is dropped.
        case sessionRevoked
        /// 401 USER_DEACTIVATED.
        case userDeactivated
        /// 406 AUTH_KEY_DUPLICATED: the key is dropped from the DC.
        case authKeyDuplicated
        /// Drop pushed updates (never calls): `method` matches the update's name (e.g. `updateNewMessage`),
        /// `account` the recipient. The events stay in the boxes, so getDifference still returns them.
        case dropUpdates
    }

    public enum MigrateKind: String, Codable, Sendable {
        case phone = "PHONE"
        case user = "USER"
        case network = "NETWORK"
        case file = "FILE"
    }

    /// FLOOD_WAIT that grows with repeated calls, as auth.sendCode does on the real service: the n-th
    /// hit within `windowSeconds` of the first waits `seconds * factor^(n-1)`, capped at `maxSeconds`.
    public struct Escalation: Codable, Sendable, Equatable {
        public var windowSeconds: Int
        public var factor: Int
        public var maxSeconds: Int

        public init(windowSeconds: Int, factor: Int, maxSeconds: Int) {
            self.windowSeconds = windowSeconds
            self.factor = factor
            self.maxSeconds = maxSeconds
        }
    }

    /// One hour: longer holds are better modelled as a dropped connection.
    public static let maxDelayMilliseconds = 3_600_000

    public var kind: Kind
    public var seconds: Int?
    public var escalation: Escalation?
    public var migrateKind: MigrateKind?
    public var dc: Int32?
    public var code: Int32?
    public var message: String?
    public var milliseconds: Int?

    public init(
        kind: Kind, seconds: Int? = nil, escalation: Escalation? = nil, migrateKind: MigrateKind? = nil, dc: Int32? = nil,
        code: Int32? = nil, message: String? = nil, milliseconds: Int? = nil
    ) {
        self.kind = kind
        self.seconds = seconds
        self.escalation = escalation
        self.migrateKind = migrateKind
        self.dc = dc
        self.code = code
        self.message = message
        self.milliseconds = milliseconds
    }

    public static func floodWait(_ seconds: Int, escalation: Escalation? = nil) -> FaultEffect {
        FaultEffect(kind: .floodWait, seconds: seconds, escalation: escalation)
    }
    public static func migrate(_ kind: MigrateKind, to dc: Int32) -> FaultEffect { FaultEffect(kind: .migrate, migrateKind: kind, dc: dc) }
    public static func rpcError(_ code: Int32, _ message: String) -> FaultEffect { FaultEffect(kind: .rpcError, code: code, message: message) }
    public static func transportError(_ code: Int32) -> FaultEffect { FaultEffect(kind: .transportError, code: code) }
    public static func delay(milliseconds: Int) -> FaultEffect { FaultEffect(kind: .delay, milliseconds: milliseconds) }
    public static let dropBeforeAnswer = FaultEffect(kind: .dropBeforeAnswer)
    public static let dropAfterAnswer = FaultEffect(kind: .dropAfterAnswer)
    public static let swallowAnswer = FaultEffect(kind: .swallowAnswer)

    /// Checks that the fields the kind needs are present and sane.
    public func validate() throws(FaultError) {
        func need(_ present: Bool, _ field: String) throws(FaultError) {
            guard present else { throw .missingField(kind: kind.rawValue, field: field) }
        }
        switch kind {
        case .floodWait, .slowmodeWait, .floodPremiumWait:
            try need((0...Int(Int32.max)).contains(seconds ?? -1), "seconds (0...2147483647)")
            if let escalation {
                try need(escalation.windowSeconds > 0 && escalation.factor >= 1 && escalation.maxSeconds >= 0, "escalation {windowSeconds > 0, factor >= 1, maxSeconds >= 0}")
            }
        case .migrate:
            try need(migrateKind != nil, "migrateKind (PHONE, USER, NETWORK or FILE)")
            try need((dc ?? 0) > 0, "dc (> 0)")
        case .rpcError:
            try need(code != nil, "code")
            try need(!(message ?? "").isEmpty, "message")
        case .transportError:
            try need((code ?? 0) > 0, "code (404, 429, 503...)")
        case .delay:
            try need((0...Self.maxDelayMilliseconds).contains(milliseconds ?? -1), "milliseconds (0...\(Self.maxDelayMilliseconds))")
        case .internalError, .dropBeforeAnswer, .dropAfterAnswer, .swallowAnswer, .badServerSalt, .authKeyUnregistered, .sessionRevoked,
            .userDeactivated, .authKeyDuplicated, .dropUpdates:
            break
        }
    }
}

/// A rule: when `match` holds, `effect` happens.
public struct FaultRule: Codable, Sendable, Equatable {
    /// Assigned by the engine when the rule is added.
    public var id: Int
    public var match: FaultMatch
    public var effect: FaultEffect

    public init(id: Int = 0, match: FaultMatch, effect: FaultEffect) {
        self.id = id
        self.match = match
        self.effect = effect
    }

    enum CodingKeys: String, CodingKey { case id, match, effect }

    /// `id` and `match` may be omitted in JSON: the engine assigns the id, an empty match matches all.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decodeIfPresent(Int.self, forKey: .id) ?? 0
        match = try container.decodeIfPresent(FaultMatch.self, forKey: .match) ?? FaultMatch()
        effect = try container.decode(FaultEffect.self, forKey: .effect)
    }
}

/// One call as the fault engine sees it.
public struct FaultCall: Sendable, Equatable {
    public var dc: Int32
    public var method: String
    public var account: Int64?
    public var phone: String?

    public init(dc: Int32, method: String, account: Int64? = nil, phone: String? = nil) {
        self.dc = dc
        self.method = method
        self.account = account
        self.phone = phone
    }
}

public enum FaultError: Error, Equatable, CustomStringConvertible {
    case missingField(kind: String, field: String)
    case unknownRule(id: Int)

    public var description: String {
        switch self {
        case .missingField(let kind, let field):
            "a \(kind) fault needs \(field); add it to the rule's effect (see docs/TESTDC.md, Faults)"
        case .unknownRule(let id):
            "no fault rule has id \(id); list the rules with GET /faults"
        }
    }
}
