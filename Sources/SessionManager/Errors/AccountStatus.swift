import MTProto
import MTProtoClient

/// Whether an account may be used, as the terminal-error guard marks it. Anything but `.active`
/// stops the account: no reconnects, no retries, no calls (login calls excepted where a new login
/// can help), until a login succeeds or an operator clears the mark.
public struct AccountStatus: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        case active
        /// AUTH_KEY_UNREGISTERED / AUTH_KEY_INVALID / SESSION_EXPIRED: the key is not logged in.
        case unauthorized
        /// SESSION_REVOKED: terminated from another device.
        case revoked
        /// AUTH_KEY_DUPLICATED (or -404) on the logged-in home DC: the key is gone.
        case duplicated
        /// USER_DEACTIVATED / USER_DEACTIVATED_BAN: deleted or banned.
        case deactivated
        /// The stored mark cannot be read (a state a newer tgsm wrote, a hand edit): whether the
        /// account may run is not known, so it does not, and no login code is asked for (it may be
        /// banned). Never written: what a reader takes such a row for (`AccountStatusStore.guardedStatus`).
        case unreadable

        public init(_ loss: AuthorizationLoss) {
            switch loss {
            case .sessionRevoked: self = .revoked
            case .userDeactivated: self = .deactivated
            case .keyUnregistered, .keyInvalid, .sessionExpired, .passwordNeeded: self = .unauthorized
            }
        }
    }

    public var state: State
    /// When it was marked.
    public var since: UnixTime
    /// The error that caused it ("SESSION_REVOKED", "AUTH_KEY_DUPLICATED"...), never a secret.
    public var cause: String
    /// The session manager's code of that error ("TGSM-AUTH-002").
    public var code: String

    public init(state: State, since: UnixTime, cause: String, code: String) {
        self.state = state
        self.since = since
        self.cause = cause
        self.code = code
    }

    public static func active(since: UnixTime) -> AccountStatus {
        AccountStatus(state: .active, since: since, cause: "ok", code: "")
    }

    public var isTerminal: Bool { state != .active }

    /// What a mark `what` describes that this version cannot read is taken for (its `code` is the
    /// store's: the mark's own cause is unknown). `since` is when it was read.
    public static func unreadable(_ what: String, readAt since: UnixTime) -> AccountStatus {
        AccountStatus(state: .unreadable, since: since, cause: what, code: SessionStoreError.corruptRecord(account: "", what: what).code)
    }

    /// Whether a new terminal mark in `state` should replace this one. The first mark names the
    /// cause; a later one is usually its consequence (a call in flight when the session was
    /// revoked comes back AUTH_KEY_UNREGISTERED) and would hide it. Only a deactivation, which
    /// changes what a person must do, replaces another mark; a repeat of the same state keeps the
    /// first one's time and cause.
    /// An unreadable mark yields to nothing: writing over it would lose what a newer tgsm recorded,
    /// and no call that could meet a new cause goes out for it anyway.
    public func yields(to state: State) -> Bool {
        !isTerminal || (state == .deactivated && self.state != .deactivated && self.state != .unreadable)
    }

    /// Whether a new login may fix it (so auth.* calls are still let through). A deactivated
    /// account cannot log in; asking for codes for it only risks the phone number, and an
    /// unreadable mark may be a deactivation.
    public var allowsLogin: Bool { state != .deactivated && state != .unreadable }

    /// The start of the cause of an account no login was ever finished for: a `tgsm auth` that ended
    /// at the code prompt, a number Telegram refused, a login given up. Its steps are not those of
    /// a session lost later.
    public static let noLoginFinished = "no login was finished"
    /// The mark's code for such an account (TGSM-AUTH-001 is a session Telegram ended).
    public static let noLoginFinishedCode = "TGSM-AUTH-009"

    /// The cause of a `duplicated` mark whose key the DC answered -404 for: nothing proves a second client.
    public static let keyUnknownCause = "AUTH_KEY_UNKNOWN"

    /// The cause of a `duplicated` mark: AUTH_KEY_DUPLICATED, or the key unknown to the DC.
    public static func keyRejectedCause(duplicated: Bool) -> String { duplicated ? "AUTH_KEY_DUPLICATED" : keyUnknownCause }

    public var recoverySteps: [String] { Self.steps(for: state, cause: cause) }

    /// The steps with the account's name where they give a command for it: what a person can run as it is.
    public func recoverySteps(account: AccountID) -> [String] {
        Self.steps(for: state, cause: cause, account: account)
    }

    /// The steps for `state`, their commands naming `account`.
    static func steps(for state: State, cause: String = "", account: AccountID) -> [String] {
        steps(for: state, cause: cause).map { $0.replacingOccurrences(of: "--account NAME", with: "--account \(account.rawValue)") }
    }

    static func steps(for state: State, cause: String = "") -> [String] {
        switch state {
        case .active:
            ["Nothing to do."]
        case .unauthorized where cause.hasPrefix(noLoginFinished):
            [
                "Finish the login with `tgsm auth --account NAME --phone NUMBER`, with the number it was started for (it asks for the code an "
                    + "unfinished one requested, when that is still valid).",
                "If the account was a mistake (a wrong number, a login given up), remove it: `tgsm session remove --account NAME` "
                    + "(on a SQLite store a backup is taken first). Until then /health counts it as not ready.",
            ]
        case .unauthorized:
            [
                "Log the account in again with `tgsm auth --account NAME`: a future auth token kept from an earlier login of the number may let Telegram "
                    + "log it in without a code (or with the 2FA password alone); otherwise a login code is needed, and a person must be there.",
                "If this was unexpected, check for a logout from another device or an expired authorization TTL (the keep-alive prevents the latter).",
            ]
        case .revoked:
            [
                "Someone terminated this session from another device (Settings > Devices): find out who before logging in again.",
                "Log the account in again with `tgsm auth --account NAME`; the account is refused until then.",
            ]
        case .duplicated where cause == keyUnknownCause:
            // The DC answered -404: nothing proves a second client (an audit's imported session
            // only named the wrong DC, and the steps below sent the operator hunting for one).
            [
                "The DC does not know this key: Telegram destroyed it (a logout that dropped it, or the key used by two clients), "
                    + "or the session names the wrong DC (an imported session: check the DC its source client used).",
                "Log the account in again with `tgsm auth --account NAME` (a new key is created); for an imported session whose DC "
                    + "was wrong, import it again from its source instead (`tgsm session import --replace`).",
            ]
        case .duplicated:
            [
                "Stop every other process that used this account's key: two live connections with one key made Telegram revoke it.",
                "Log the account in again with `tgsm auth --account NAME` (a new key is created): the old key is dead on Telegram's side.",
                "Keep the ownership lease enabled so only one process runs the account.",
            ]
        case .unreadable:
            [
                "This version of tgsm cannot read the account's mark in the store (a newer tgsm wrote it, or it was edited by hand), "
                    + "so it does not guess: nothing is sent for the account and no login code is asked for.",
                "Run the tgsm version that wrote the mark, which reads it; or, once you know the account may run, clear it with "
                    + "`tgsm session clear-mark --account NAME` (the session is kept; if the account was in fact stopped, its first call marks it again).",
            ]
        case .deactivated:
            [
                "Do not retry and do not ask for login codes: the account is deleted or banned.",
                "Check the account from an official app or contact Telegram support (recover@telegram.org for bans).",
                "Once Telegram has restored the account, log it in again with `tgsm auth --account NAME --restored`, which clears the mark; "
                    + "until then the account is refused and no login code is asked for.",
            ]
        }
    }
}

extension AccountStatus {
    /// The mark a terminal client error puts on `account`: the state, cause and code the terminal
    /// guard records, for code that sees the error without going through the guard (the workers,
    /// whose invoker may be a bare client). Nil when the error is not terminal (a rejected key
    /// that was dropped lost no login).
    public static func terminal(after error: TelegramError, account: AccountID, at now: UnixTime) -> AccountStatus? {
        let managed = error.guidance(account: account)
        guard managed.isTerminal else { return nil }
        switch managed.reason {
        case .accountUnusable(_, let status, _):
            return status
        case .authorizationLost(_, let loss, _, _):
            return AccountStatus(state: State(loss), since: now, cause: error.rpcError?.message ?? loss.rawValue, code: managed.code)
        case .authKeyRejected(_, _, let duplicated, _):
            return AccountStatus(state: .duplicated, since: now, cause: keyRejectedCause(duplicated: duplicated), code: managed.code)
        default:
            return nil
        }
    }
}

extension AccountStatusStore {
    /// The account's status as the terminal guard and the workers must take it: a mark this version
    /// cannot read is `.unreadable`, which stops the account. Thrown as a store error, it was taken
    /// for an outage (during which an account runs on) and the account ran on a guess. Other
    /// failures are thrown.
    public func guardedStatus(of account: AccountID, now: UnixTime) async throws -> AccountStatus? {
        do {
            return try await status(of: account)
        } catch let error as SessionStoreError {
            guard let what = error.unreadableAccountStatus else { throw error }
            return .unreadable(what, readAt: now)
        }
    }
}

extension AccountStatus {
    /// The mark a start-up verdict that needs a person puts on the account, as the terminal guard
    /// would for the error behind it; nil for a verdict that says nothing about the session.
    public init?(marking verdict: SessionVerdict, at now: UnixTime) {
        switch verdict {
        case .unauthorized(let why):
            // A login never finished is not a session Telegram ended (AUTH_KEY_UNREGISTERED, TGSM-AUTH-001):
            // a code of its own, so the docs' table and alerting rules tell the two apart.
            self.init(state: .unauthorized, since: now, cause: why, code: why.hasPrefix(Self.noLoginFinished) ? Self.noLoginFinishedCode : "TGSM-AUTH-001")
        case .revoked: self.init(state: .revoked, since: now, cause: "SESSION_REVOKED", code: "TGSM-AUTH-002")
        case .duplicated: self.init(state: .duplicated, since: now, cause: Self.keyRejectedCause(duplicated: true), code: "TGSM-AUTH-006")
        case .keyUnknown: self.init(state: .duplicated, since: now, cause: Self.keyUnknownCause, code: "TGSM-AUTH-007")
        case .deactivated: self.init(state: .deactivated, since: now, cause: "USER_DEACTIVATED", code: "TGSM-AUTH-005")
        case .markUnreadable(let what): self = .unreadable(what, readAt: now)
        case .valid, .networkDown, .rateLimited, .failed: return nil
        }
    }
}

/// Where accounts' statuses are kept: the one contract the terminal guard (layer 6) and the
/// workers (layer 7) share. `SQLiteSessionStore` implements it persistently (its `account_status`
/// table, so every process on the store sees a mark); the in-memory implementation serves tests
/// and single runs. No status, or `.active`, means the account may be used; clearing a mark is
/// writing `.active`.
public protocol AccountStatusStore: Sendable {
    func status(of account: AccountID) async throws -> AccountStatus?
    /// Stores the mark; `.unreadable`, which only a reader makes, is not written (the row it stands
    /// for is kept as it is).
    func setStatus(_ status: AccountStatus, for account: AccountID) async throws
    /// Whether the store still has the account: one removed (`tgsm session remove`) has no status
    /// either, which must not read as "the mark was cleared".
    func isKnownAccount(_ account: AccountID) async throws -> Bool
}

extension AccountStatusStore {
    /// Statuses kept apart from any account list: every account is known.
    public func isKnownAccount(_ account: AccountID) async throws -> Bool { true }
}

public actor InMemoryAccountStatusStore: AccountStatusStore {
    private var statuses: [AccountID: AccountStatus]
    private var removed: Set<AccountID> = []

    public init(_ statuses: [AccountID: AccountStatus] = [:]) {
        self.statuses = statuses
    }

    public func status(of account: AccountID) -> AccountStatus? { statuses[account] }

    public func setStatus(_ status: AccountStatus, for account: AccountID) {
        guard status.state != .unreadable else { return }
        statuses[account] = status
        removed.remove(account)
    }

    /// Every account is known but those removed (`removeAccount`) since their last status.
    public func isKnownAccount(_ account: AccountID) -> Bool { !removed.contains(account) }

    /// Forgets the account, as a store's `deleteAccount` does.
    public func removeAccount(_ account: AccountID) {
        statuses[account] = nil
        removed.insert(account)
    }

    /// Every status, for status output and tests.
    public var all: [AccountID: AccountStatus] { statuses }
}
