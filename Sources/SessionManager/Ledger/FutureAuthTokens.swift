import Logging
import MTProto
import MTProtoClient
import TL
import TLSchema

/// Keeps the future auth tokens Telegram hands this account's logins and log-outs, and offers them
/// back when a login code is requested (api/auth, "Future auth tokens"). If one matches the account
/// and has not expired, Telegram logs the session in without sending a code (auth.sentCodeSuccess),
/// or, for an account with a 2FA password, answers SESSION_PASSWORD_NEEDED and waits for the
/// password alone. An account whose session was lost (revoked key, deleted file, restored from an
/// old backup) then comes back without a person reading a code off the phone.
///
/// Tokens are kept per phone (`PhoneKey`), not per account name: logging the same number in under
/// another name of the store uses them too, and no other number's tokens are ever sent with a
/// request (each account of the store is a device of its own to Telegram). A token that could not be
/// kept or read is logged and the login goes on as without it: a token is a shortcut, never a reason
/// for a login to fail.
public struct FutureAuthTokenMiddleware: InvocationMiddleware {
    public let account: AccountID
    let store: any FloodLedgerStore
    let clock: any TelegramClock
    let logger: Logger

    public init(account: AccountID, store: any FloodLedgerStore, clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.store = store
        self.clock = clock
        self.logger = logger
    }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, tokens: self)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let tokens: FutureAuthTokenMiddleware

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            // Only a login's calls carry or return tokens; every other call passes without a cast.
            guard LoginAnswer.isLoginCall(Request.tlName) else { return try await next.invoke(request, options: options) }
            let result: Request.Result
            if let sendCode = request as? Api.functions.auth.SendCode, let offering = await tokens.offering(sendCode) as? Request {
                result = try await next.invoke(offering, options: options)
            } else {
                result = try await next.invoke(request, options: options)
            }
            await tokens.keep(from: result)
            return result
        }
    }

    /// The request with this phone's tokens in `codeSettings.logout_tokens`; as it was when the
    /// caller passed tokens of its own or none are kept.
    func offering(_ request: Api.functions.auth.SendCode) async -> Api.functions.auth.SendCode {
        guard case .codeSettings(let settings) = request.settings, settings.logoutTokens == nil else { return request }
        let kept: [FutureAuthToken]
        do {
            kept = try await store.futureAuthTokens(phoneKey: try await store.phoneKey(for: request.phoneNumber))
        } catch {
            logger.warning("the future auth tokens could not be read; the login code is requested without them",
                           metadata: ["account": "\(account)", "error": "\(error)"])
            return request
        }
        guard !kept.isEmpty else { return request }
        logger.info("offering future auth tokens with the login code request: a matching one logs in without a code",
                    metadata: ["account": "\(account)", "tokens": "\(kept.count)"])
        // The generated combinators are immutable: the settings are rebuilt field by field. A field
        // a newer schema adds must be copied here too (FutureAuthTokenMiddlewareTests checks them all).
        return Api.functions.auth.SendCode(
            phoneNumber: request.phoneNumber, apiId: request.apiId, apiHash: request.apiHash,
            settings: .codeSettings(Api.CodeSettings.CodeSettings(
                allowFlashcall: settings.allowFlashcall, currentNumber: settings.currentNumber, allowAppHash: settings.allowAppHash,
                allowMissedCall: settings.allowMissedCall, allowFirebase: settings.allowFirebase, unknownNumber: settings.unknownNumber,
                logoutTokens: kept.map(\.bytes), token: settings.token, appSandbox: settings.appSandbox)))
    }

    /// Keeps the token an answer carries: a login's auth.authorization (from a sign-in, sign-up,
    /// password, QR token or a code request a token answered) under the user's phone, or a log-out's
    /// under the phone of this account's earlier tokens.
    func keep(from result: Any) async {
        let token: [UInt8]
        let phone: String?
        if let loggedOut = result as? Api.auth.LoggedOut {
            guard case .loggedOut(let value) = loggedOut, let received = value.futureAuthToken else { return }
            token = received
            phone = nil
        } else {
            guard let authorization = LoginAnswer.authorization(in: result), case .authorization(let value) = authorization,
                  let received = value.futureAuthToken else { return }
            // Bots log in by their token and have no phone: nothing to keep.
            guard case .user(let user) = value.user, let number = user.phone, !number.isEmpty else { return }
            token = received
            phone = number
        }
        guard !token.isEmpty, token.count <= 1024 else { return }
        do {
            let phoneKey: String
            if let phone {
                phoneKey = try await store.phoneKey(for: phone)
            } else if let known = try await store.futureAuthTokenPhoneKey(account: account) {
                phoneKey = known
            } else {
                logger.notice("a log-out's future auth token is not kept: no earlier login of this account says whose number it is",
                              metadata: ["account": "\(account)"])
                return
            }
            try await store.addFutureAuthToken(FutureAuthToken(bytes: token, receivedAt: clock.now()), account: account, phoneKey: phoneKey)
            logger.debug("future auth token kept", metadata: ["account": "\(account)"])
        } catch {
            logger.warning("a future auth token could not be kept; a later lost session will need a login code",
                           metadata: ["account": "\(account)", "error": "\(error)"])
        }
    }
}
