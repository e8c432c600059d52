import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import Metrics
import TL
import TLSchema

/// A request that makes Telegram send a login code to a phone.
public protocol LoginCodeRequest {
    var codePhoneNumber: String { get }
}

extension Api.functions.auth.SendCode: LoginCodeRequest { public var codePhoneNumber: String { phoneNumber } }
extension Api.functions.auth.ResendCode: LoginCodeRequest { public var codePhoneNumber: String { phoneNumber } }

/// Keeps a deadline per phone before which no login code may be requested again, persisted in the
/// `FloodLedgerStore`, so a process that restarts in a loop can never ask for codes again and
/// again (Telegram answers that with PHONE_NUMBER_FLOOD for hours, or bans the number).
///
/// The deadline is written *before* the request goes out (write-ahead): a crash between sending and
/// recording cannot leave the phone unguarded. The answer then moves it: the code's own `timeout`,
/// or a FLOOD_WAIT's end, whichever is later.
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

    public init(account: AccountID, store: any FloodLedgerStore, policy: Policy = Policy(), clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.store = store
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    /// The current deadline for this phone, if any.
    public func deadline(phoneNumber: String) async throws -> UnixTime? {
        try await store.sendCodeDeadline(account: account, phoneKey: try await store.phoneKey(for: phoneNumber))
    }

    /// Removes the deadline: for an operator who is sure no code arrived.
    public func clear(phoneNumber: String) async throws {
        try await store.setSendCodeDeadline(nil, account: account, phoneKey: try await store.phoneKey(for: phoneNumber))
        logger.notice("send-code deadline cleared by hand", metadata: ["account": "\(account)"])
    }

    /// Refuses when the deadline lies ahead; otherwise writes the new deadline before the request goes out.
    func admit(phoneNumber: String, method: String) async throws(TelegramError) {
        let now = clock.now()
        let key: String
        let existing: UnixTime?
        do {
            key = try await store.phoneKey(for: phoneNumber)
            existing = try await store.sendCodeDeadline(account: account, phoneKey: key)
        } catch {
            // Fail closed: without the deadline we cannot know that asking is safe.
            throw .middleware(SessionManagerError(.storageFailed(account: account, reason: "reading the send-code deadline: \(error)")))
        }
        if let existing, now < existing {
            logger.warning("login code request refused: the previous one is too recent", metadata: ["account": "\(account)", "method": "\(method)"])
            Counter(label: "tgsm_send_code_refusals_total", dimensions: [("account", account.rawValue)]).increment()
            throw .middleware(SessionManagerError(.sendCodeGuard(account: account, method: method, deadline: existing)))
        }
        do {
            try await store.setSendCodeDeadline(now + policy.minimumInterval, account: account, phoneKey: key)
        } catch {
            throw .middleware(SessionManagerError(.storageFailed(account: account, reason: "writing the send-code deadline: \(error)")))
        }
    }

    /// Moves the deadline later when the answer says so (the code's timeout, a flood wait).
    func noteAnswer(phoneNumber: String, waitSeconds: Double?) async {
        guard let waitSeconds, waitSeconds > 0 else { return }
        let candidate = clock.now() + waitSeconds
        do {
            let key = try await store.phoneKey(for: phoneNumber)
            let current = try await store.sendCodeDeadline(account: account, phoneKey: key)
            if let current, current >= candidate { return }
            try await store.setSendCodeDeadline(candidate, account: account, phoneKey: key)
        } catch {
            logger.error("could not extend the send-code deadline", metadata: ["account": "\(account)", "error": "\(error)"])
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
            guard let codeRequest = request as? any LoginCodeRequest else {
                return try await next.invoke(request, options: options)
            }
            let phone = codeRequest.codePhoneNumber
            try await guardian.admit(phoneNumber: phone, method: Request.tlName)
            do {
                let result = try await next.invoke(request, options: options)
                if let sent = result as? Api.auth.SentCode, case .sentCode(let code) = sent, let timeout = code.timeout {
                    await guardian.noteAnswer(phoneNumber: phone, waitSeconds: Double(timeout))
                }
                return result
            } catch {
                if let seconds = error.rpcError?.waitSeconds {
                    await guardian.noteAnswer(phoneNumber: phone, waitSeconds: Double(seconds))
                }
                throw error
            }
        }
    }
}
