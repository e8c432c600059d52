import MTProto
import MTProtoClient
import TLSchema

/// What the start-up check found for one session.
public enum SessionVerdict: Sendable, Hashable {
    /// The session works; the account's user id when the store knows it.
    case valid(userID: Int64?)
    /// No login on the key (AUTH_KEY_UNREGISTERED, SESSION_EXPIRED, AUTH_KEY_INVALID, no key stored).
    case unauthorized(cause: String)
    /// SESSION_REVOKED: terminated from another device.
    case revoked
    /// AUTH_KEY_DUPLICATED: the key was used from two places at once and Telegram dropped it.
    case duplicated
    /// Transport error -404: the DC does not know the key (Telegram destroyed it, or the session
    /// names the wrong DC or another server), or an account marked so (`AccountStatus.keyUnknownCause`).
    /// Nothing proves a second client, unlike `duplicated`.
    case keyUnknown
    /// USER_DEACTIVATED(_BAN).
    case deactivated
    /// The account's mark in the store cannot be read (`AccountStatus.State.unreadable`; `what`
    /// says what), so nothing was sent: a person must clear it or run the version that wrote it.
    case markUnreadable(what: String)
    /// No answer: the network, the DC or the proxy is down (`reason` says which, when the client
    /// could tell: a refused connection, a proxy that rejected its credentials). Says nothing about
    /// the session.
    case networkDown(code: String, reason: String = "")
    /// Held back by a flood wait, the gate or the breaker until `until`. Says nothing about the session.
    case rateLimited(until: UnixTime?)
    /// Any other answer (the session manager's code), e.g. a refused request.
    case failed(code: String)

    /// Whether the session must be logged in again (by a person) before it can be used.
    public var needsLogin: Bool {
        switch self {
        case .unauthorized, .revoked, .duplicated, .keyUnknown: true
        default: false
        }
    }

    /// Whether nothing may run for the account until a person acts: a login, or a deactivation or
    /// an unreadable mark looked into.
    public var needsPerson: Bool {
        switch self {
        case .deactivated, .markUnreadable: true
        default: needsLogin
        }
    }

    public var label: String {
        switch self {
        case .valid: "valid"
        case .unauthorized: "unauthorized"
        case .revoked: "revoked"
        case .duplicated: "duplicated"
        case .keyUnknown: "key unknown to the DC"
        case .deactivated: "deactivated"
        case .markUnreadable: "mark unreadable"
        case .networkDown(let code, _) where code == SessionManagerError.proxyRefusedCode: "refused by the proxy"
        case .networkDown: "network down"
        case .rateLimited: "rate limited"
        case .failed: "failed"
        }
    }
}

/// The start-up check of a session: one cheap authorized call (updates.getState) through the
/// account's stack, classified. It never calls an auth.* method, so it can never make Telegram
/// send a login code, whatever the session's state; a session without a logged-in key in the
/// store is classified without touching the network at all.
/// How the check's call and its bound raced.
private enum CheckOutcome: Sendable {
    case answered
    case failed(TelegramError)
    case timedOut
    case cancelled
}

public struct SessionValidator: Sendable {
    /// The one call a check makes: a flood wait on it (and only on it) holds a check back.
    public static let checkMethod = Api.functions.updates.GetState.tlName
    public let account: AccountID
    let invoker: any TelegramInvoking
    let storage: (any SessionStorage)?
    let health: AccountHealth?
    let clock: any TelegramClock
    /// Seconds the check waits for its answer.
    public var timeout: Double

    public init(account: AccountID, invoker: any TelegramInvoking, storage: (any SessionStorage)? = nil, health: AccountHealth? = nil,
                clock: any TelegramClock, timeout: Double = 15) {
        self.account = account
        self.invoker = invoker
        self.storage = storage
        self.health = health
        self.clock = clock
        self.timeout = timeout
    }

    public func validate() async -> SessionVerdict {
        var userID: Int64?
        if let storage {
            do {
                guard let state = try await storage.load() else { return .unauthorized(cause: AccountStatus.noLoginFinished + ": no session stored") }
                guard state.dcs[state.homeDC]?.authKey != nil else { return .unauthorized(cause: "no auth key stored for the home DC") }
                // No user id and no login on the key: a `tgsm auth` ended before it logged in (an
                // imported session has its key logged in, even without a user id).
                guard state.isAuthorized else {
                    return .unauthorized(cause: state.userID == nil ? AccountStatus.noLoginFinished + ": the stored key was never logged in"
                        : "the stored key is not logged in")
                }
                userID = state.userID
            } catch {
                return .failed(code: SessionManagerError(.storageFailed(account: account, reason: "\(error)")).code)
            }
        }
        let started = clock.now()
        let (invoker, timeout) = (self.invoker, self.timeout)
        // The whole check, connecting and retries included, within `timeout` (of the process's own
        // time: a test clock that jumps when slept on would end it at once): with the DC or the
        // proxy unreachable, the connection's own budget and a retry took over 30 s, which a
        // start-up (and `tgsm auth`, and `/health` coming up) waited for.
        let outcome: CheckOutcome
        do {
            outcome = try await withBound(seconds: timeout, "the check") {
                do throws(TelegramError) {
                    _ = try await invoker.invoke(Api.functions.updates.GetState(),
                                                 options: InvokeOptions(timeout: timeout, isIdempotent: true, mayRetry: false))
                    return CheckOutcome.answered
                } catch {
                    return CheckOutcome.failed(error)
                }
            }
        } catch is BoundExceeded {
            outcome = .timedOut
        } catch {
            outcome = .cancelled
        }
        switch outcome {
        case .answered:
            health?.recordPing(rtt: clock.now() - started)
            return .valid(userID: userID)
        case .failed(let error):
            return Self.verdict(for: error.guidance(account: account), now: clock.now())
        case .cancelled:
            return .failed(code: SessionManagerError(.cancelled(account: account, method: Api.functions.updates.GetState.tlName)).code)
        case .timedOut:
            let code = SessionManagerError(.connectionFailed(account: account, dc: 0, attempts: 0, reason: "")).code
            return .networkDown(code: code, reason: "no answer within \(Int(timeout)) s: no connection was made in time (the network, the DC "
                + "or the proxy is down or slow)")
        }
    }

    /// The classification of a failed check.
    public static func verdict(for error: SessionManagerError, now: UnixTime) -> SessionVerdict {
        switch error.reason {
        case .authorizationLost(_, let loss, _, _):
            switch loss {
            case .sessionRevoked: return .revoked
            case .userDeactivated: return .deactivated
            case .keyUnregistered, .sessionExpired, .keyInvalid, .passwordNeeded: return .unauthorized(cause: loss.rawValue)
            }
        case .passwordNeeded:
            return .unauthorized(cause: "SESSION_PASSWORD_NEEDED")
        case .authKeyRejected(_, _, let duplicated, _):
            return duplicated ? .duplicated : .keyUnknown
        case .accountUnusable(_, let status, _):
            switch status.state {
            case .active: return .failed(code: error.code)
            case .unauthorized: return .unauthorized(cause: status.cause)
            case .revoked: return .revoked
            case .duplicated: return status.cause == AccountStatus.keyUnknownCause ? .keyUnknown : .duplicated
            case .deactivated: return .deactivated
            case .unreadable: return .markUnreadable(what: status.cause)
            }
        case .floodWait, .sendCodeGuard, .rateGate, .breakerOpen:
            return .rateLimited(until: error.until)
        case .serverWait(_, _, _, let seconds):
            return .rateLimited(until: now + Double(seconds))
        case .connectionFailed, .timeout, .inDoubt, .transport, .handshakeFailed, .proxyRefused:
            return .networkDown(code: error.code, reason: error.summary)
        case .leaseHeld, .storageFailed, .leaseExpired, .serverError, .requestRefused, .cancelled, .client:
            return .failed(code: error.code)
        }
    }

    /// Checks several sessions at once (each through its own stack).
    public static func validateAll(_ validators: [SessionValidator]) async -> [AccountID: SessionVerdict] {
        await withTaskGroup(of: (AccountID, SessionVerdict).self) { group in
            for validator in validators {
                group.addTask { (validator.account, await validator.validate()) }
            }
            var verdicts: [AccountID: SessionVerdict] = [:]
            for await (account, verdict) in group { verdicts[account] = verdict }
            return verdicts
        }
    }
}
