import MTProtoCrypto
import TL
import TLSchema

/// A login code that was sent: what the next step needs. Its description hides the hash.
public struct SentLoginCode: Sendable, CustomStringConvertible {
    /// Opaque server token tying the code to this request; secret enough not to be logged.
    public let phoneCodeHash: String
    public let type: Api.auth.SentCodeType
    public let nextType: Api.auth.CodeType?
    /// Seconds before `resendCode` may be used.
    public let timeout: Int32?

    public init(phoneCodeHash: String, type: Api.auth.SentCodeType, nextType: Api.auth.CodeType? = nil, timeout: Int32? = nil) {
        self.phoneCodeHash = phoneCodeHash
        self.type = type
        self.nextType = nextType
        self.timeout = timeout
    }

    public var description: String {
        "SentLoginCode(type: \(Self.typeName(type)), timeout: \(timeout.map(String.init) ?? "none"))"
    }

    /// How the code travels: "app", "sms", "fragment" (on fragment.com, for a number bought
    /// there), "call" or "email"; "setUpEmail" when none was sent: Telegram wants a login email set
    /// up first (auth.sentCodeTypeSetUpEmailRequired).
    public var channel: String { Self.typeName(type) }

    /// Where a code on Fragment is read (fragment.com, logged in with the wallet that holds the number).
    public var fragmentURL: String? {
        if case .sentCodeTypeFragmentSms(let fragment) = type { return fragment.url }
        return nil
    }

    /// No code was sent: Telegram wants a login email set up first (auth.sentCodeTypeSetUpEmailRequired).
    public var awaitsLoginEmailSetUp: Bool {
        if case .sentCodeTypeSetUpEmailRequired = type { return true }
        return false
    }

    /// The login email a code went to, as Telegram shows it ("a***@example.com").
    public var emailPattern: String? {
        if case .sentCodeTypeEmailCode(let email) = type { return email.emailPattern }
        return nil
    }

    /// For a code sent to the login email: seconds after sending before auth.resetLoginEmail is
    /// allowed (0 for Premium accounts); nil when Telegram offers no reset.
    public var loginEmailResetAvailablePeriod: Int32? {
        if case .sentCodeTypeEmailCode(let email) = type { return email.resetAvailablePeriod }
        return nil
    }

    /// For a code sent to the login email: a reset was requested and happens at this date (unix seconds).
    public var loginEmailResetPendingDate: Int32? {
        if case .sentCodeTypeEmailCode(let email) = type { return email.resetPendingDate }
        return nil
    }

    /// The code went to the account's login email: auth.signIn takes it as email_verification.
    public var isEmailCode: Bool {
        if case .sentCodeTypeEmailCode = type { return true }
        return false
    }

    static func typeName(_ type: Api.auth.SentCodeType) -> String {
        switch type {
        case .sentCodeTypeApp: "app"
        case .sentCodeTypeSms, .sentCodeTypeSmsWord, .sentCodeTypeSmsPhrase, .sentCodeTypeFirebaseSms: "sms"
        case .sentCodeTypeFragmentSms: "fragment"
        case .sentCodeTypeCall, .sentCodeTypeFlashCall, .sentCodeTypeMissedCall: "call"
        case .sentCodeTypeEmailCode: "email"
        case .sentCodeTypeSetUpEmailRequired: "setUpEmail"
        }
    }
}

/// How a code request ended.
public enum CodeRequestResult: Sendable {
    case codeSent(SentLoginCode)
    /// The server logged in without a code (auth.sentCodeSuccess: a future auth token in
    /// `codeSettings.logout_tokens` matched).
    case loggedIn(Api.User)
    /// No code was sent: a future auth token matched an account with a 2FA password, and the
    /// session waits for it. Continue with `checkPassword`.
    case passwordNeeded(hint: String?)
}

/// The login flows, written against the `invoke` seam only: phone code, sign-up, 2FA (SRP),
/// bot token, and QR login. The home-DC switch of PHONE_MIGRATE happens inside the client's
/// `invoke`, so these flows never see it. Secrets (phone number, code, password) are only passed
/// through to the request; nothing here logs or stores them.
public struct TelegramLogin: Sendable {
    public let invoker: any TelegramInvoking
    public let apiID: Int32
    public let apiHash: String
    private let entropy: any EntropySource

    public init(invoker: any TelegramInvoking, apiID: Int32, apiHash: String, entropy: any EntropySource = SystemEntropy()) {
        self.invoker = invoker
        self.apiID = apiID
        self.apiHash = apiHash
        self.entropy = entropy
    }

    public init(client: TelegramClient, entropy: any EntropySource = SystemEntropy()) {
        self.init(invoker: client, apiID: client.configuration.apiID, apiHash: client.configuration.apiHash, entropy: entropy)
    }

    /// auth.sendCode. AUTH_RESTART ("restart the authorization process": no code was sent) is
    /// asked again, twice at most, as the error says to. With future auth tokens in `settings`
    /// (the session manager's stack adds the ones it kept), the answer may be a login without a code
    /// (`.loggedIn`) or, for an account with a 2FA password, `.passwordNeeded`.
    public func sendCode(phoneNumber: String, settings: Api.CodeSettings = .codeSettings(Api.CodeSettings.CodeSettings())) async throws(LoginError) -> CodeRequestResult {
        let request = Api.functions.auth.SendCode(phoneNumber: phoneNumber, apiId: apiID, apiHash: apiHash, settings: settings)
        var restarts = 0
        let sent: Api.auth.SentCode
        while true {
            do throws(LoginError) {
                sent = try await call(request)
                break
            } catch .request(let error) where error.rpcError?.name == "AUTH_RESTART" && restarts < 2 {
                restarts += 1
            } catch .passwordNeeded {
                return .passwordNeeded(hint: await passwordHint())
            }
        }
        return try Self.codeRequestResult(sent)
    }

    /// What an auth.SentCode means for the login (from auth.sendCode, or from account.verifyEmail
    /// once a login email is set up).
    static func codeRequestResult(_ sent: Api.auth.SentCode) throws(LoginError) -> CodeRequestResult {
        switch sent {
        case .sentCode(let code):
            return .codeSent(SentLoginCode(phoneCodeHash: code.phoneCodeHash, type: code.type, nextType: code.nextType, timeout: code.timeout))
        case .sentCodeSuccess(let success):
            return .loggedIn(try Self.user(from: success.authorization))
        case .sentCodePaymentRequired:
            throw .paymentRequired
        }
    }

    /// auth.signIn with the code. Throws `.passwordNeeded` (continue with `checkPassword`) or
    /// `.signUpRequired` (continue with `signUp`).
    public func signIn(phoneNumber: String, code: String, sentCode: SentLoginCode) async throws(LoginError) -> Api.User {
        do throws(LoginError) {
            // A code sent to the login email is an email verification, not a phone code (api/auth).
            let request = sentCode.isEmailCode
                ? Api.functions.auth.SignIn(phoneNumber: phoneNumber, phoneCodeHash: sentCode.phoneCodeHash,
                                            emailVerification: .emailVerificationCode(Api.EmailVerification.EmailVerificationCode(code: code)))
                : Api.functions.auth.SignIn(phoneNumber: phoneNumber, phoneCodeHash: sentCode.phoneCodeHash, phoneCode: code)
            let authorization = try await call(request)
            return try Self.user(from: authorization)
        } catch .passwordNeeded {
            throw .passwordNeeded(hint: await passwordHint())
        }
    }

    /// auth.signUp, after signIn threw `.signUpRequired`.
    public func signUp(phoneNumber: String, sentCode: SentLoginCode, firstName: String, lastName: String = "") async throws(LoginError) -> Api.User {
        let authorization = try await call(Api.functions.auth.SignUp(
            phoneNumber: phoneNumber, phoneCodeHash: sentCode.phoneCodeHash, firstName: firstName, lastName: lastName))
        return try Self.user(from: authorization)
    }

    /// account.getPassword, the SRP proof (MTProtoCrypto), auth.checkPassword. The password is
    /// used for the proof and dropped; only the proof goes on the wire.
    /// `dc`: where the sign-in stopped (a QR login's `.passwordNeeded` names it when the account
    /// lives on another DC); nil for the home DC.
    public func checkPassword(_ password: String, dc: Int? = nil) async throws(LoginError) -> Api.User {
        let check = try await passwordCheck(password, dc: dc)
        let authorization = try await call(Api.functions.auth.CheckPassword(password: check), dc: dc)
        return try Self.user(from: authorization)
    }

    /// Whether this key's sign-in stopped at the 2FA password. Once auth.signIn is answered
    /// SESSION_PASSWORD_NEEDED, Telegram keeps the key waiting for `checkPassword` and answers its
    /// other calls with that error, also in a later process that loaded the key: the code is spent,
    /// and only the password completes the login (asking for a new code would be refused or wasted).
    /// Asks updates.getState, which never sends a code. False for a key that is logged in or not
    /// waiting; failures that say nothing about the key (the network, a timeout) are thrown.
    /// Call it through an invoker that does not count the answer as a lost login (a `TelegramClient`).
    public func awaitsPassword() async throws(LoginError) -> Bool {
        do throws(TelegramError) {
            _ = try await invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions(isIdempotent: true))
            return false
        } catch {
            guard let rpc = error.rpcError else { throw LoginError(error) }
            return rpc.message == "SESSION_PASSWORD_NEEDED"
        }
    }

    /// The hint the account's 2FA password was given, when it has one (account.getPassword).
    public func passwordHint(dc: Int? = nil) async -> String? {
        guard let password = try? await invoker.invoke(Api.functions.account.GetPassword(), options: InvokeOptions(dc: dc)) else { return nil }
        switch password {
        case .password(let value): return value.hint
        }
    }

    /// auth.importBotAuthorization.
    public func signInBot(token: String) async throws(LoginError) -> Api.User {
        let authorization = try await call(Api.functions.auth.ImportBotAuthorization(flags: 0, apiId: apiID, apiHash: apiHash, botAuthToken: token))
        return try Self.user(from: authorization)
    }

    /// One QR-login step: auth.exportLoginToken. Show `.token` as `tg://login?token=<base64url>`
    /// and call again after updateLoginToken (or when it expires). An account with a 2FA password
    /// answers the accepted token with SESSION_PASSWORD_NEEDED: `.passwordNeeded`, then `checkPassword`.
    public func exportLoginToken(exceptIDs: [Int64] = []) async throws(LoginError) -> QRLoginStep {
        let token: Api.auth.LoginToken
        do throws(LoginError) {
            token = try await call(Api.functions.auth.ExportLoginToken(apiId: apiID, apiHash: apiHash, exceptIds: exceptIDs))
        } catch .passwordNeeded {
            return .passwordNeeded(hint: await passwordHint(), dc: nil)
        }
        return try await step(from: token)
    }

    private func step(from token: Api.auth.LoginToken) async throws(LoginError) -> QRLoginStep {
        switch token {
        case .loginToken(let value):
            return .token(value.token, expires: value.expires)
        case .loginTokenMigrateTo(let migrate):
            // The account lives on another DC: import the token there; the client makes it home.
            let dc = Int(migrate.dcId)
            let imported: Api.auth.LoginToken
            do throws(LoginError) {
                imported = try await call(Api.functions.auth.ImportLoginToken(token: migrate.token), dc: dc)
            } catch .passwordNeeded {
                // The sign-in waits for the password on that DC, so the password goes there too.
                return .passwordNeeded(hint: await passwordHint(dc: dc), dc: dc)
            }
            return try await step(from: imported)
        case .loginTokenSuccess(let success):
            return .loggedIn(try Self.user(from: success.authorization))
        }
    }

    /// The whole phone login in one call: asks `code` for the code, `password` if the account has
    /// 2FA, `loginEmail` when Telegram wants a login email set up first (fails with
    /// `.loginEmailRequired` if nil), and signs up with `signUpName` when the number is new (fails
    /// with `.signUpRequired` if nil).
    public func logIn(
        phoneNumber: String,
        code: @Sendable (SentLoginCode) async throws -> String,
        password: @Sendable (_ hint: String?) async throws -> String,
        loginEmail: LoginEmailPrompts? = nil,
        signUpName: (first: String, last: String)? = nil
    ) async throws(LoginError) -> Api.User {
        var request = try await sendCode(phoneNumber: phoneNumber)
        if case .codeSent(let value) = request, value.awaitsLoginEmailSetUp {
            guard let loginEmail else { throw .loginEmailRequired }
            request = try await setUpLoginEmail(phoneNumber: phoneNumber, sentCode: value, prompts: loginEmail)
        }
        let sent: SentLoginCode
        switch request {
        case .loggedIn(let user): return user
        case .codeSent(let value): sent = value
        case .passwordNeeded(let hint):
            let entered: String
            do { entered = try await password(hint) } catch { throw .passwordNeeded(hint: hint) }
            return try await checkPassword(entered)
        }
        let enteredCode: String
        do { enteredCode = try await code(sent) } catch { throw .phoneCodeEmpty }
        do throws(LoginError) {
            return try await signIn(phoneNumber: phoneNumber, code: enteredCode, sentCode: sent)
        } catch .passwordNeeded(let hint) {
            let entered: String
            do { entered = try await password(hint) } catch { throw .passwordNeeded(hint: hint) }
            return try await checkPassword(entered)
        } catch .signUpRequired(let terms) {
            guard let signUpName else { throw .signUpRequired(termsOfService: terms) }
            return try await signUp(phoneNumber: phoneNumber, sentCode: sent, firstName: signUpName.first, lastName: signUpName.last)
        }
    }

    // MARK: - Helpers

    func call<Request: TLFunction>(_ request: Request, dc: Int? = nil) async throws(LoginError) -> Request.Result {
        do throws(TelegramError) {
            return try await invoker.invoke(request, options: InvokeOptions(dc: dc))
        } catch {
            throw LoginError(error)
        }
    }

    /// Builds inputCheckPasswordSRP from account.getPassword.
    func passwordCheck(_ password: String, dc: Int? = nil) async throws(LoginError) -> Api.InputCheckPasswordSRP {
        let settings = try await call(Api.functions.account.GetPassword(), dc: dc)
        guard case .password(let value) = settings else { throw .passwordNotSet }
        guard value.hasPassword, let algorithm = value.currentAlgo, let srpB = value.srpB, let srpID = value.srpId else {
            throw .passwordNotSet
        }
        guard case .passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(let kdf) = algorithm else {
            throw .unsupportedPasswordAlgorithm
        }
        let parameters = SRP.Parameters(salt1: kdf.salt1, salt2: kdf.salt2, g: kdf.g, p: kdf.p)
        var source = entropy
        do throws(SRPError) {
            let check = try SRP.computeCheck(password: password, parameters: parameters, srpB: srpB, entropy: &source)
            return .inputCheckPasswordSRP(Api.InputCheckPasswordSRP.InputCheckPasswordSRP(srpId: srpID, A: check.a, M1: check.m1))
        } catch {
            throw .unsafePasswordParameters(error)
        }
    }

    static func user(from authorization: Api.auth.Authorization) throws(LoginError) -> Api.User {
        switch authorization {
        case .authorization(let value):
            return value.user
        case .authorizationSignUpRequired(let required):
            throw .signUpRequired(termsOfService: required.termsOfService.map(Self.termsText))
        }
    }

    private static func termsText(_ terms: Api.help.TermsOfService) -> String {
        switch terms {
        case .termsOfService(let value): value.text
        }
    }
}

/// Where a QR login stands.
public enum QRLoginStep: Sendable {
    /// Show this token (as `tg://login?token=` + base64url) until `expires` (unix seconds).
    case token([UInt8], expires: Int32)
    case loggedIn(Api.User)
    /// The app accepted the token and the account has a 2FA password: finish with
    /// `checkPassword(_:dc:)`, passing `dc` (the DC the sign-in waits on; nil: the home DC).
    case passwordNeeded(hint: String?, dc: Int?)
}
