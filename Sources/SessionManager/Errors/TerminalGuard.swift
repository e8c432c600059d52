import Logging
import MTProto
import MTProtoClient
import Metrics
import Synchronization
import TL
import TLSchema

/// Stops a dead account: terminal errors (the 401 family, AUTH_KEY_DUPLICATED, transport -404 on
/// the logged-in home DC, USER_DEACTIVATED) mark the account's status and come back as
/// `SessionManagerError`; once marked, every call is refused without touching the network (login
/// calls excepted while a new login can help), so nothing above keeps reconnecting or retrying.
/// AUTH_KEY_DUPLICATED and -404 drop the key where no login is lost, and the error says what was done.
public final class TerminalGuard: Sendable {
    public let account: AccountID
    private let statuses: any AccountStatusStore
    private let keyReset: AuthKeyReset?
    private let clock: any TelegramClock
    private let logger: Logger
    /// The status as last read or written; nil until the store was read once.
    private let cached: Mutex<AccountStatus??>

    public init(account: AccountID, statuses: any AccountStatusStore, keyReset: AuthKeyReset? = nil, clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.statuses = statuses
        self.keyReset = keyReset
        self.clock = clock
        self.logger = logger
        self.cached = Mutex(nil)
    }

    /// The account's current status (active when never marked). A store that cannot be read is
    /// taken for an outage, during which the account runs on; a mark that cannot be read is not
    /// (`.unreadable`): the store has it, and it may be a deactivation.
    public func status() async -> AccountStatus {
        if let known = cached.withLock({ $0 }) { return known ?? .active(since: UnixTime(seconds: 0)) }
        let loaded: AccountStatus?
        do {
            loaded = try await statuses.guardedStatus(of: account, now: clock.now())
        } catch {
            logger.error("account status store failed; treating the account as active", metadata: ["account": "\(account)", "error": "\(error)"])
            return .active(since: clock.now())
        }
        if let loaded, loaded.state == .unreadable {
            logger.error("the account's mark in the store cannot be read; nothing is sent for the account",
                         metadata: ["account": "\(account)", "mark": "\(loaded.cause)", "code": "\(loaded.code)"])
        }
        cached.withLock { $0 = .some(loaded) }
        return loaded ?? .active(since: UnixTime(seconds: 0))
    }

    /// Marks the account (an operator clearing a mark passes `.active`). `.unreadable` is never
    /// written: it would replace the row this version could not read.
    public func mark(_ status: AccountStatus) async {
        guard status.state != .unreadable else { return }
        cached.withLock { $0 = .some(status) }
        do {
            try await statuses.setStatus(status, for: account)
        } catch {
            logger.error("could not persist the account status", metadata: ["account": "\(account)", "state": "\(status.state.rawValue)", "error": "\(error)"])
        }
    }

    /// The calls a login makes: auth.*, and account.getPassword, whose SRP parameters the 2FA step
    /// needs (refusing it left a logged-out account with a password unable to log in again).
    static func isLoginMethod(_ method: String) -> Bool { LoginAnswer.isLoginCall(method) }

    /// Nil when the call may go out; else the refusal.
    func refusal(method: String) async -> SessionManagerError? {
        let status = await status()
        guard status.isTerminal else { return nil }
        if status.allowsLogin, Self.isLoginMethod(method) { return nil }
        return SessionManagerError(.accountUnusable(account: account, status: status, method: method))
    }

    /// Turns a terminal error into the session manager's error, marking the account; nil when the
    /// error is not terminal.
    func handle(_ error: TelegramError, method: String, dc: Int?) async -> SessionManagerError? {
        let now = clock.now()
        switch error {
        case .rpc(let rpc, _):
            if let loss = rpc.authorizationLoss {
                // A DC other than home refusing an imported authorization says nothing about the
                // login itself: the client imports it again; only the home DC's verdict is terminal.
                if let dc, let home = await homeDC(), dc != home, loss != .userDeactivated { return nil }
                let result = SessionManagerError(.authorizationLost(account: account, loss: loss, method: method, dc: dc), underlying: error)
                await escalate(result, state: AccountStatus.State(loss), cause: rpc.message, now: now)
                return result
            }
            if rpc.message == "AUTH_KEY_DUPLICATED" {
                return await keyRejected(error, dc: dc, duplicated: true, now: now)
            }
            return nil
        case .transport(let code, let transportDC) where code.rawValue == -404:
            return await keyRejected(error, dc: transportDC, duplicated: false, now: now)
        default:
            return nil
        }
    }

    /// A completed login (an auth.* answer carrying an authorization) clears an earlier mark that allowed it.
    func noteLogin<Result>(_ result: Result, method: String) async {
        guard Self.completesLogin(result) else { return }
        let status = await status()
        guard status.isTerminal, status.allowsLogin else { return }
        logger.notice("account logged in again; clearing its terminal mark", metadata: ["account": "\(account)", "was": "\(status.state.rawValue)", "method": "\(method)"])
        await mark(.active(since: clock.now()))
    }

    /// Whether an answer is a finished login (auth.authorization, a login token's success, a
    /// sent code that logged in at once); a sign-up request or a sent code is not.
    static func completesLogin<Result>(_ result: Result) -> Bool {
        guard case .authorization? = LoginAnswer.authorization(in: result) else { return false }
        return true
    }

    private func homeDC() async -> Int? {
        guard let storage = keyReset?.storage else { return nil }
        return try? await storage.load()?.homeDC
    }

    private func keyRejected(_ error: TelegramError, dc: Int?, duplicated: Bool, now: UnixTime) async -> SessionManagerError {
        let outcome = await keyReset?.reset(dc: dc) ?? .notAttempted
        let dcID: Int =
            switch outcome {
            case .dropped(let value), .keptLoggedInHomeKey(let value), .dropFailed(let value, _): value
            case .notAttempted: dc ?? 0
            }
        let result = SessionManagerError(.authKeyRejected(account: account, dc: dcID, duplicated: duplicated, reset: outcome), underlying: error)
        if outcome.dropped {
            logger.warning("auth key rejected by the DC and dropped (it held no login)", metadata: ["account": "\(account)", "dc": "\(dcID)", "code": "\(result.code)"])
            Counter(label: "tgsm_auth_keys_dropped_total", dimensions: [("account", account.rawValue)]).increment()
        } else {
            await escalate(result, state: .duplicated, cause: AccountStatus.keyRejectedCause(duplicated: duplicated), now: now)
        }
        return result
    }

    private func escalate(_ error: SessionManagerError, state: AccountStatus.State, cause: String, now: UnixTime) async {
        let current = await status()
        guard current.yields(to: state) else {
            logger.warning("terminal error on an account already marked: keeping the first mark", metadata: [
                "account": "\(account)", "code": "\(error.code)", "kept": "\(current.state.rawValue)",
            ])
            return
        }
        await mark(AccountStatus(state: state, since: now, cause: cause, code: error.code))
        logger.error("account stopped: terminal error", metadata: ["account": "\(account)", "code": "\(error.code)", "state": "\(state.rawValue)"])
        Counter(label: "tgsm_account_terminal_total", dimensions: [("account", account.rawValue), ("state", state.rawValue)]).increment()
    }
}

/// The guard as a middleware.
public struct TerminalGuardMiddleware: InvocationMiddleware {
    public let guardian: TerminalGuard

    public init(_ guardian: TerminalGuard) { self.guardian = guardian }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, guardian: guardian)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let guardian: TerminalGuard

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            let method = Request.tlName
            if let refusal = await guardian.refusal(method: method) { throw .middleware(refusal) }
            do {
                let result = try await next.invoke(request, options: options)
                if TerminalGuard.isLoginMethod(method) { await guardian.noteLogin(result, method: method) }
                return result
            } catch {
                if let terminal = await guardian.handle(error, method: method, dc: options.dc) { throw .middleware(terminal) }
                throw error
            }
        }
    }
}
