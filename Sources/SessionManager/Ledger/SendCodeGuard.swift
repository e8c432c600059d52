import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import Metrics
import Synchronization
import TL
import TLSchema

/// A request that makes Telegram send a login code to a phone.
public protocol LoginCodeRequest {
    var codePhoneNumber: String { get }
}

extension Api.functions.auth.SendCode: LoginCodeRequest { public var codePhoneNumber: String { phoneNumber } }
extension Api.functions.auth.ResendCode: LoginCodeRequest { public var codePhoneNumber: String { phoneNumber } }

/// A request that uses a code sent to a phone (with its phone_code_hash).
public protocol LoginCodeUse {
    var codeUsePhoneNumber: String { get }
}

extension Api.functions.auth.SignIn: LoginCodeUse { public var codeUsePhoneNumber: String { phoneNumber } }
extension Api.functions.auth.SignUp: LoginCodeUse { public var codeUsePhoneNumber: String { phoneNumber } }

/// Keeps a deadline per phone before which no login code may be requested again, persisted in the
/// `FloodLedgerStore`, so a process that restarts in a loop can never ask for codes again and
/// again (Telegram answers that with PHONE_NUMBER_FLOOD for hours, or bans the number).
///
/// The deadline is written *before* the request goes out (write-ahead): a crash between sending and
/// recording cannot leave the phone unguarded. The answer then moves it: the code's own `timeout`,
/// or a FLOOD_WAIT's end, whichever is later.
///
/// The code sent is recorded with it (`PendingLoginCode`, until the deadline) and forgotten when a
/// sign-in, a sign-up or the 2FA password that completes the sign-in succeeds, or Telegram says it
/// expired: a login interrupted at the code prompt goes on with that code (`pendingCode`) instead of
/// waiting out the deadline for another.
public final class SendCodeGuard: Sendable {
    public struct Policy: Sendable, Hashable {
        /// Seconds after a code request during which no other is sent for that phone.
        public var minimumInterval: Double

        public init(minimumInterval: Double = 600) {
            self.minimumInterval = minimumInterval
        }
    }

    public let account: AccountID
    public let policy: Policy
    private let store: any FloodLedgerStore
    private let clock: any TelegramClock
    private let logger: Logger
    /// The phone whose sign-in this process saw answered SESSION_PASSWORD_NEEDED: the code worked,
    /// and the auth.checkPassword that succeeds completes its login (checkPassword names no phone).
    private let phoneAwaitingPassword = Mutex<String?>(nil)
    private let letARequestThrough = Mutex(false)

    /// Whether this guard let a code request go to Telegram (a code may be on its way).
    public var hasLetARequestThrough: Bool { letARequestThrough.withLock { $0 } }

    public init(account: AccountID, store: any FloodLedgerStore, policy: Policy = Policy(), clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.store = store
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    /// The current deadline for this phone, if any: this account's, or a later one another account
    /// of the store set (Telegram counts code requests per number, whichever session asked).
    public func deadline(phoneNumber: String) async throws -> UnixTime? {
        try await deadlineHolder(phoneNumber: phoneNumber)?.deadline
    }

    /// The current deadline for this phone and the account whose code request set it (this
    /// account's own among them).
    public func deadlineHolder(phoneNumber: String) async throws -> SendCodeDeadline? {
        try await store.latestSendCodeDeadline(phoneKey: try await store.phoneKey(for: phoneNumber))
    }

    /// Removes the phone's deadlines, every account's: for an operator who is sure no code arrived.
    public func clear(phoneNumber: String) async throws {
        let key = try await store.phoneKey(for: phoneNumber)
        try await store.setSendCodeDeadline(nil, account: account, phoneKey: key)
        // Bounded: a store whose delete left the row would otherwise hold the operator here for ever.
        var cleared: Set<AccountID> = [account]
        while let other = try await store.latestSendCodeDeadline(phoneKey: key), cleared.insert(other.account).inserted {
            try await store.setSendCodeDeadline(nil, account: other.account, phoneKey: key)
        }
        logger.notice("send-code deadline cleared by hand", metadata: ["account": "\(account)"])
    }

    /// Refusals of a code request that say no code was sent and asking again is no abuse: the
    /// request itself was wrong (the app's credentials, the number) or Telegram asks for the login
    /// to start over (AUTH_RESTART). The deadline written ahead of such a request is taken back, so
    /// fixing the cause and running the login again is not held up for the whole interval. Flood
    /// answers, other server errors and requests without an answer keep it: a code may be on its way.
    static let refusalsThatSentNoCode: Set<String> = [
        "AUTH_RESTART", "API_ID_INVALID", "API_ID_PUBLISHED_FLOOD", "PHONE_NUMBER_INVALID", "PHONE_NUMBER_BANNED",
        "PHONE_NUMBER_APP_SIGNUP_FORBIDDEN", "SMS_CODE_CREATE_FAILED", "UPDATE_APP_TO_LOGIN",
    ]

    /// Whether future auth tokens are kept for this phone: a code request offering them may go once
    /// before the phone's deadline (`admit`), as a matching one sends no code.
    public func keepsFutureAuthTokens(phoneNumber: String) async -> Bool {
        guard let key = try? await store.phoneKey(for: phoneNumber), let kept = try? await store.futureAuthTokens(phoneKey: key) else { return false }
        return !kept.isEmpty
    }

    /// Refuses when the deadline lies ahead; otherwise writes the new deadline before the request
    /// goes out. Returns the deadline it replaced (past, or nil), for `takeBack`.
    ///
    /// One exception: a request that offers the phone's kept future auth tokens goes before the
    /// deadline, because a matching token logs in without sending any code (a session lost soon
    /// after a login by code would otherwise wait out the deadline). The tokens are spent on it,
    /// dropped before it goes out: if Telegram sends a code anyway, or the answer is lost, none are
    /// left for a second early request, and only a completed login brings a new one. So a restart
    /// loop still sends at most one code request per interval, plus one per completed login.
    func admit(phoneNumber: String, method: String, offersFutureAuthTokens: Bool = false) async throws(TelegramError) -> UnixTime? {
        let now = clock.now()
        let key: String
        let existing: UnixTime?
        let latest: SendCodeDeadline?
        do {
            key = try await store.phoneKey(for: phoneNumber)
            existing = try await store.sendCodeDeadline(account: account, phoneKey: key)
            latest = try await store.latestSendCodeDeadline(phoneKey: key)
        } catch {
            // Fail closed: without the deadline we cannot know that asking is safe.
            throw .middleware(SessionManagerError(.storageFailed(account: account, reason: "reading the send-code deadline: \(error)", failure: DatabaseFailure.of(error))))
        }
        // The phone's latest deadline, whichever account of the store set it (this one's included).
        if let latest, now < latest.deadline {
            let spent = offersFutureAuthTokens ? ((try? await store.removeFutureAuthTokens(phoneKey: key)) ?? 0) : 0
            guard spent > 0 else {
                logger.warning("login code request refused: the previous one for this number is too recent",
                               metadata: ["account": "\(account)", "method": "\(method)", "requestedBy": "\(latest.account)"])
                Counter(label: "tgsm_send_code_refusals_total", dimensions: [("account", account.rawValue)]).increment()
                throw .middleware(SessionManagerError(.sendCodeGuard(account: account, method: method, deadline: latest.deadline)))
            }
            logger.notice("login code request let through before the phone's deadline: it offers future auth tokens, spent on it",
                          metadata: ["account": "\(account)", "method": "\(method)", "tokens": "\(spent)"])
        }
        do {
            try await store.setSendCodeDeadline(now + policy.minimumInterval, account: account, phoneKey: key)
        } catch {
            throw .middleware(SessionManagerError(.storageFailed(account: account, reason: "writing the send-code deadline: \(error)", failure: DatabaseFailure.of(error))))
        }
        letARequestThrough.withLock { $0 = true }
        return existing
    }

    /// Puts back the deadline `admit` replaced: Telegram sent no code (it refused the request, or
    /// a future auth token logged the session in or led straight to the 2FA password).
    func takeBack(_ previous: UnixTime?, phoneNumber: String, answer: String) async {
        do {
            try await store.setSendCodeDeadline(previous, account: account, phoneKey: try await store.phoneKey(for: phoneNumber))
            letARequestThrough.withLock { $0 = false }
            logger.notice("login code request answered without sending a code; its deadline is taken back",
                          metadata: ["account": "\(account)", "answer": "\(answer)"])
        } catch {
            // The deadline written ahead stays: the login waits longer than it had to, nothing worse.
            logger.error("could not take back the send-code deadline", metadata: ["account": "\(account)", "error": "\(error)"])
        }
    }

    /// The code sent for this phone that a login may still use: recorded by a code request through
    /// this guard, not used, not known to have expired, and not past the deadline it was sent under.
    /// A record that does not read back (damaged, or sealed under another key) is not offered: it
    /// would only cost the resume, and refusing every login over it would lock the account out.
    public func pendingCode(phoneNumber: String) async throws -> PendingLoginCode? {
        let key = try await store.phoneKey(for: phoneNumber)
        let stored: PendingLoginCode?
        do {
            stored = try await store.pendingLoginCode(account: account, phoneKey: key)
        } catch let error as SessionStoreError {
            guard case .corruptRecord = error else { throw error }
            logger.warning("the recorded login code does not read back; it is not offered", metadata: ["account": "\(account)", "error": "\(error)"])
            return nil
        }
        guard let code = stored, code.isOffered(at: clock.now()), code.sentCode != nil else { return nil }
        return code
    }

    /// Forgets the code sent: it was used, or Telegram no longer accepts it.
    func noteCodeSpent(phoneNumber: String) async {
        do {
            try await store.setPendingLoginCode(nil, account: account, phoneKey: try await store.phoneKey(for: phoneNumber))
        } catch {
            logger.error("could not forget the login code used", metadata: ["account": "\(account)", "error": "\(error)"])
        }
    }

    /// Drops the phone's kept tokens: Telegram sent a code although they were offered.
    func dropFutureAuthTokens(phoneNumber: String) async {
        do {
            let dropped = try await store.removeFutureAuthTokens(phoneKey: try await store.phoneKey(for: phoneNumber))
            logger.notice("future auth tokens dropped: Telegram sent a code although they were offered", metadata: ["account": "\(account)", "tokens": "\(dropped)"])
        } catch {
            logger.warning("could not drop the future auth tokens Telegram did not accept", metadata: ["account": "\(account)", "error": "\(error)"])
        }
    }

    func notePasswordNeeded(phoneNumber: String) {
        phoneAwaitingPassword.withLock { $0 = phoneNumber }
    }

    /// The 2FA password was accepted: the code that led to it is spent. Its phone is the one whose
    /// sign-in this process saw stop at the password, else the account's own from the answer: the
    /// sign-in began in a process that ended since (`TelegramLogin.awaitsPassword`).
    func notePasswordAccepted(_ answer: Api.auth.Authorization?) async {
        let seen = phoneAwaitingPassword.withLock { $0.take() }
        guard let phone = seen ?? answer.flatMap(Self.accountPhone) else { return }
        await noteCodeSpent(phoneNumber: phone)
    }

    static func accountPhone(_ answer: Api.auth.Authorization) -> String? {
        guard case .authorization(let authorization) = answer, case .user(let user) = authorization.user else { return nil }
        return user.phone
    }

    /// After a code request's answer: moves the deadline later when the answer says so (the code's
    /// timeout, a flood wait) and records the code `sent`, offered until that deadline.
    func noteAnswer(phoneNumber: String, waitSeconds: Double?, sent: SentLoginCode? = nil) async {
        let now = clock.now()
        do {
            let key = try await store.phoneKey(for: phoneNumber)
            let stored = try await store.sendCodeDeadline(account: account, phoneKey: key)
            var deadline = stored ?? now + policy.minimumInterval
            if let waitSeconds, waitSeconds > 0, stored == nil || now + waitSeconds > deadline {
                deadline = now + waitSeconds
                try await store.setSendCodeDeadline(deadline, account: account, phoneKey: key)
            }
            guard let sent else { return }
            try await store.setPendingLoginCode(PendingLoginCode(sent, sentAt: now, offeredUntil: deadline), account: account, phoneKey: key)
        } catch {
            // The deadline written before the request still guards the phone; what is lost is a
            // later deadline, or a rerun's chance to use this code.
            logger.error("could not note the answer to a login code request", metadata: ["account": "\(account)", "error": "\(error)"])
        }
    }
}

/// The guard as a middleware; every other request passes untouched.
public struct SendCodeGuardMiddleware: InvocationMiddleware {
    public let guardian: SendCodeGuard

    public init(_ guardian: SendCodeGuard) { self.guardian = guardian }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, guardian: guardian)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let guardian: SendCodeGuard

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            if let use = request as? any LoginCodeUse { return try await invoke(request, using: use.codeUsePhoneNumber, options: options) }
            if let setUp = Self.loginEmailSetUp(request) { return try await invoke(request, changingLoginEmailOf: setUp.phoneNumber, options: options) }
            if let reset = request as? Api.functions.auth.ResetLoginEmail { return try await invoke(request, changingLoginEmailOf: reset.phoneNumber, options: options) }
            if request is Api.functions.auth.CheckPassword {
                let result = try await next.invoke(request, options: options)
                await guardian.notePasswordAccepted(result as? Api.auth.Authorization)
                return result
            }
            guard let codeRequest = request as? any LoginCodeRequest else {
                return try await next.invoke(request, options: options)
            }
            let phone = codeRequest.codePhoneNumber
            let offersTokens = Self.offersFutureAuthTokens(request)
            let previous = try await guardian.admit(phoneNumber: phone, method: Request.tlName, offersFutureAuthTokens: offersTokens)
            do {
                let result = try await next.invoke(request, options: options)
                if let sent = result as? Api.auth.SentCode, case .sentCode(let code) = sent {
                    // "Set up a login email first" sent no code, but its phone_code_hash is what the
                    // set-up names: a rerun goes on with it.
                    let sentCode = SentLoginCode(phoneCodeHash: code.phoneCodeHash, type: code.type, nextType: code.nextType, timeout: code.timeout)
                    await guardian.noteAnswer(phoneNumber: phone, waitSeconds: code.timeout.map(Double.init), sent: sentCode)
                    // A code went out although tokens were offered: none of them matches any more.
                    if offersTokens { await guardian.dropFutureAuthTokens(phoneNumber: phone) }
                } else if let sent = result as? Api.auth.SentCode, case .sentCodeSuccess = sent {
                    // A future auth token logged the session in: no code went out.
                    await guardian.takeBack(previous, phoneNumber: phone, answer: "auth.sentCodeSuccess")
                }
                return result
            } catch {
                if let seconds = error.rpcError?.waitSeconds {
                    await guardian.noteAnswer(phoneNumber: phone, waitSeconds: Double(seconds))
                } else if let name = error.rpcError?.name, SendCodeGuard.refusalsThatSentNoCode.contains(name) {
                    await guardian.takeBack(previous, phoneNumber: phone, answer: name)
                } else if error.rpcError?.name == "SESSION_PASSWORD_NEEDED" {
                    // A future auth token matched an account with a 2FA password: no code went out,
                    // and the key now waits for the password alone.
                    await guardian.takeBack(previous, phoneNumber: phone, answer: "SESSION_PASSWORD_NEEDED")
                    guardian.notePasswordNeeded(phoneNumber: phone)
                }
                throw error
            }
        }

        /// Whether the request carries future auth tokens (`FutureAuthTokenMiddleware`, outside this
        /// guard, adds the phone's).
        static func offersFutureAuthTokens(_ request: some TLFunction) -> Bool {
            guard let sendCode = request as? Api.functions.auth.SendCode, case .codeSettings(let settings) = sendCode.settings else { return false }
            return !(settings.logoutTokens ?? []).isEmpty
        }

        /// The phone whose login email a request sets up (api/auth, "Email verification"); nil for
        /// every other request, a change of an existing login email included.
        static func loginEmailSetUp(_ request: some TLFunction) -> Api.EmailVerifyPurpose.EmailVerifyPurposeLoginSetup? {
            let purpose: Api.EmailVerifyPurpose
            if let verify = request as? Api.functions.account.VerifyEmail {
                purpose = verify.purpose
            } else if let send = request as? Api.functions.account.SendVerifyEmailCode {
                purpose = send.purpose
            } else {
                return nil
            }
            guard case .emailVerifyPurposeLoginSetup(let setUp) = purpose else { return nil }
            return setUp
        }

        /// A login email's set-up, which names the phone_code_hash of the code request that asked
        /// for it, or its reset (auth.resetLoginEmail, asked by a person who cannot read it). Their
        /// answer is the login's code request (to the verified address; another way after a reset;
        /// or the reset's date): recorded as the phone's pending code, as a code request's is, for a
        /// rerun to go on with. Neither asks for a code before the phone's deadline on its own: the
        /// deadline stays as the code request set it. A phone_code_hash Telegram no longer knows is
        /// forgotten: only a new code request helps.
        private func invoke<Request: TLFunction>(_ request: Request, changingLoginEmailOf phone: String, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            do {
                let result = try await next.invoke(request, options: options)
                let codeRequest: Api.auth.SentCode?
                if let verified = result as? Api.account.EmailVerified, case .emailVerifiedLogin(let login) = verified {
                    codeRequest = login.sentCode
                } else {
                    codeRequest = result as? Api.auth.SentCode
                }
                switch codeRequest {
                case .sentCode(let code)?:
                    let sent = SentLoginCode(phoneCodeHash: code.phoneCodeHash, type: code.type, nextType: code.nextType, timeout: code.timeout)
                    await guardian.noteAnswer(phoneNumber: phone, waitSeconds: code.timeout.map(Double.init), sent: sent)
                case .sentCodeSuccess?, .sentCodePaymentRequired?:
                    await guardian.noteCodeSpent(phoneNumber: phone)
                case nil:
                    break
                }
                return result
            } catch {
                if let name = error.rpcError?.name, ["PHONE_HASH_EXPIRED", "PHONE_CODE_EXPIRED"].contains(name) {
                    await guardian.noteCodeSpent(phoneNumber: phone)
                }
                throw error
            }
        }

        /// A sign-in or sign-up with the phone's code: the code is forgotten once it worked (with a
        /// 2FA password, once auth.checkPassword succeeds), or once Telegram says it is no longer
        /// valid. A wrong code (PHONE_CODE_INVALID), a password still to give or a sign-up still to
        /// make keeps it: a rerun may go on with it.
        private func invoke<Request: TLFunction>(_ request: Request, using phone: String, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            do {
                let result = try await next.invoke(request, options: options)
                // "Sign up first" is an answer, not a login: auth.signUp still needs the hash.
                if let authorization = result as? Api.auth.Authorization, case .authorizationSignUpRequired = authorization { return result }
                await guardian.noteCodeSpent(phoneNumber: phone)
                return result
            } catch {
                if let name = error.rpcError?.name, ["PHONE_CODE_EXPIRED", "PHONE_CODE_HASH_EMPTY", "PHONE_CODE_EMPTY"].contains(name) {
                    await guardian.noteCodeSpent(phoneNumber: phone)
                } else if error.rpcError?.name == "SESSION_PASSWORD_NEEDED" {
                    guardian.notePasswordNeeded(phoneNumber: phone)
                }
                throw error
            }
        }
    }
}
