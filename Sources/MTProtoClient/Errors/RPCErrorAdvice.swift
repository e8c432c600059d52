import MTProto

/// What a caller should do about an `RPCError`, decided once so that middlewares and operators
/// switch on a small enum instead of matching message strings.
public enum RPCErrorAdvice: Sendable, Hashable, CustomStringConvertible {
    /// FLOOD_WAIT_X, FLOOD_PREMIUM_WAIT_X, SLOWMODE_WAIT_X, ...: repeat no earlier than `seconds` from now.
    case wait(seconds: Int, reason: WaitReason)
    /// A 303 `*_MIGRATE_X`: the request belongs on DC `dc`.
    case migrate(MigrationKind, dc: Int)
    /// The authorization behind this session is gone: log in again (and, for a deactivated
    /// account, do not, until the account is restored).
    case reLogin(AuthorizationLoss)
    /// The server used this auth key from two connections with different sessions at once, or it
    /// saw the key in a way it refuses: create a new auth key and log in again.
    case newAuthKey
    /// A server-side failure (500, -503): the request may or may not have run; repeat it later if
    /// it is safe to repeat.
    case retryLater
    /// The request itself was refused (400, 403, 404, 406): change it, repeating it unchanged will fail again.
    case fixRequest

    public enum WaitReason: String, Sendable, Hashable {
        case flood = "FLOOD_WAIT"
        case floodPremium = "FLOOD_PREMIUM_WAIT"
        case slowMode = "SLOWMODE_WAIT"
        case other = "WAIT"
    }

    public var description: String {
        switch self {
        case .wait(let seconds, let reason): "wait \(seconds) s (\(reason.rawValue)) before repeating the request"
        case .migrate(let kind, let dc): "\(kind) migration: repeat the request on DC \(dc)"
        case .reLogin(let loss): "log in again: \(loss)"
        case .newAuthKey: "drop this auth key, create a new one and log in again"
        case .retryLater: "a server-side failure: repeat later if the request is safe to repeat"
        case .fixRequest: "the request was refused as sent: change it before repeating"
        }
    }
}

/// Which `*_MIGRATE_X` the server answered; decides between moving the home DC and re-invoking elsewhere.
public enum MigrationKind: String, Sendable, Hashable, CustomStringConvertible {
    case phone = "PHONE_MIGRATE"
    case network = "NETWORK_MIGRATE"
    case user = "USER_MIGRATE"
    case file = "FILE_MIGRATE"
    case stats = "STATS_MIGRATE"
    case other = "MIGRATE"

    public var description: String { rawValue }
}

/// Why the server no longer accepts this session's authorization (api/errors, 401).
public enum AuthorizationLoss: String, Sendable, Hashable, CustomStringConvertible {
    /// AUTH_KEY_UNREGISTERED: the key is not bound to a user (never logged in, or logged out).
    case keyUnregistered = "AUTH_KEY_UNREGISTERED"
    /// SESSION_REVOKED: the user terminated this session from another device.
    case sessionRevoked = "SESSION_REVOKED"
    /// SESSION_EXPIRED: the authorization expired.
    case sessionExpired = "SESSION_EXPIRED"
    /// USER_DEACTIVATED / USER_DEACTIVATED_BAN: the account was deleted or banned.
    case userDeactivated = "USER_DEACTIVATED"
    /// AUTH_KEY_INVALID: the key is not valid on this DC.
    case keyInvalid = "AUTH_KEY_INVALID"
    /// SESSION_PASSWORD_NEEDED outside a login: 2FA must be completed before anything else.
    case passwordNeeded = "SESSION_PASSWORD_NEEDED"

    public var description: String {
        switch self {
        case .keyUnregistered: "the auth key is not logged in (AUTH_KEY_UNREGISTERED); run the login again"
        case .sessionRevoked: "the session was terminated from another device (SESSION_REVOKED); run the login again"
        case .sessionExpired: "the authorization expired (SESSION_EXPIRED); run the login again"
        case .userDeactivated: "the account was deleted or banned (USER_DEACTIVATED); do not retry, check the account first"
        case .keyInvalid: "the auth key is not valid on this DC (AUTH_KEY_INVALID); create a new key and log in again"
        case .passwordNeeded: "the account has a 2FA password that was not checked yet (SESSION_PASSWORD_NEEDED); finish the login with the password"
        }
    }
}

extension RPCError {
    /// The decision for this error; see `RPCErrorAdvice`.
    public var advice: RPCErrorAdvice {
        if let seconds = waitSeconds {
            let reason: RPCErrorAdvice.WaitReason =
                switch name {
                case "FLOOD_WAIT_X": .flood
                case "FLOOD_PREMIUM_WAIT_X": .floodPremium
                case "SLOWMODE_WAIT_X": .slowMode
                default: .other
                }
            return .wait(seconds: seconds, reason: reason)
        }
        if let dc = migrateToDC {
            return .migrate(MigrationKind(rawValue: String(name.dropLast(2))) ?? .other, dc: dc)
        }
        if let loss = authorizationLoss { return .reLogin(loss) }
        if message == "AUTH_KEY_DUPLICATED" { return .newAuthKey }
        // A temporary key without its binding: a new binding helps, a new login does not (the
        // connection renews the key, and the client repeats the call once before this surfaces).
        if message == "AUTH_KEY_PERM_EMPTY" { return .retryLater }
        if code == 500 || code == -503 || code == 503 { return .retryLater }
        // A frozen account stays frozen: waiting a second and repeating (the answer to another 420
        // without seconds) would call Telegram for ever from an account it has flagged.
        if isAccountFrozen { return .fixRequest }
        if code == 420 {
            // A flood error whose number is not named *_WAIT_X is still its seconds
            // (TAKEOUT_INIT_DELAY_X: a day); one second is only for a 420 that names none.
            return .wait(seconds: argument ?? 1, reason: .other)
        }
        // api/errors: a code other than those it lists "may be considered the same as a 500 error".
        return [303, 400, 401, 403, 404, 406].contains(code) ? .fixRequest : .retryLater
    }

    /// Set when the error means the user must log in again.
    public var authorizationLoss: AuthorizationLoss? {
        switch message {
        case "AUTH_KEY_UNREGISTERED": .keyUnregistered
        case "SESSION_REVOKED": .sessionRevoked
        case "SESSION_EXPIRED": .sessionExpired
        case "USER_DEACTIVATED", "USER_DEACTIVATED_BAN": .userDeactivated
        case "AUTH_KEY_INVALID": .keyInvalid
        default: nil
        }
    }
}
