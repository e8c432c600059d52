import TL
import TLSchema

/// The verification code Telegram mailed to a login email being set up (account.sentEmailCode).
public struct SentEmailCode: Sendable, Hashable, CustomStringConvertible {
    /// The address as Telegram shows it, partly hidden ("a***@example.com").
    public let emailPattern: String
    /// How many characters the code has.
    public let length: Int32

    public init(emailPattern: String, length: Int32) {
        self.emailPattern = emailPattern
        self.length = length
    }

    public var description: String { "SentEmailCode(to: \(emailPattern), length: \(length))" }
}

/// The questions a login asks a person when Telegram wants a login email set up first
/// (auth.sentCodeTypeSetUpEmailRequired): the address, then the code mailed to it.
public struct LoginEmailPrompts: Sendable {
    public var address: @Sendable () async throws -> String
    public var code: @Sendable (SentEmailCode) async throws -> String

    public init(address: @escaping @Sendable () async throws -> String, code: @escaping @Sendable (SentEmailCode) async throws -> String) {
        self.address = address
        self.code = code
    }
}

/// api/auth, "Email verification": a number that logs in often is asked to set up a login email
/// before Telegram sends it any code (auth.sentCodeTypeSetUpEmailRequired). The address is verified
/// by a code mailed to it (account.sendVerifyEmailCode, then account.verifyEmail with the purpose
/// emailVerifyPurposeLoginSetup, which names the phone and the phone_code_hash of the code request);
/// the answer carries the login's code request, whose code then goes to that address. A login
/// email nobody can read any more is reset with auth.resetLoginEmail.
/// Google and Apple ID verification need a browser sign-in this client does not make.
extension TelegramLogin {
    /// account.sendVerifyEmailCode: mails a verification code to `email`, the address Telegram sends
    /// this number's login codes to from then on. The address is passed through, never logged.
    public func sendLoginEmailCode(phoneNumber: String, sentCode: SentLoginCode, email: String) async throws(LoginError) -> SentEmailCode {
        let request = Api.functions.account.SendVerifyEmailCode(purpose: Self.loginSetUp(phoneNumber, sentCode), email: email)
        switch try await call(request) {
        case .sentEmailCode(let sent): return SentEmailCode(emailPattern: sent.emailPattern, length: sent.length)
        }
    }

    /// account.verifyEmail with the mailed code: the login email is set, and the login goes on with
    /// the code request it answers (its code usually goes to the new address: `signIn` as usual).
    public func verifyLoginEmail(phoneNumber: String, sentCode: SentLoginCode, code: String) async throws(LoginError) -> CodeRequestResult {
        let request = Api.functions.account.VerifyEmail(
            purpose: Self.loginSetUp(phoneNumber, sentCode),
            verification: .emailVerificationCode(Api.EmailVerification.EmailVerificationCode(code: code)))
        switch try await call(request) {
        case .emailVerifiedLogin(let verified):
            return try Self.codeRequestResult(verified.sentCode)
        case .emailVerified:
            // The answer to a change of an existing login email, not to a login's set-up.
            throw .request(.undecodableResult(method: Api.functions.account.VerifyEmail.tlName,
                                              reason: "account.emailVerified answers a login email change; a login's set-up expects account.emailVerifiedLogin"))
        }
    }

    /// The set-up in one call: asks `prompts` for the address and the mailed code (three tries for
    /// a wrong code), and returns the login's code request.
    public func setUpLoginEmail(phoneNumber: String, sentCode: SentLoginCode, prompts: LoginEmailPrompts) async throws(LoginError) -> CodeRequestResult {
        let address: String
        do { address = try await prompts.address() } catch { throw .loginEmailRequired }
        let mailed = try await sendLoginEmailCode(phoneNumber: phoneNumber, sentCode: sentCode, email: address)
        var attempts = 0
        while true {
            attempts += 1
            let code: String
            do { code = try await prompts.code(mailed) } catch { throw .loginEmailRequired }
            do throws(LoginError) {
                return try await verifyLoginEmail(phoneNumber: phoneNumber, sentCode: sentCode, code: code)
            } catch .emailCodeInvalid where attempts < 3 {
                continue
            }
        }
    }

    /// auth.resetLoginEmail, for a person who cannot read the login email a code went to: Telegram
    /// either drops the address and sends the code another way (`.codeSent` by SMS or the app), or
    /// schedules the reset (`.codeSent` to the email still, with `loginEmailResetPendingDate`). Allowed
    /// `loginEmailResetAvailablePeriod` seconds after the code was sent (0 for Premium accounts);
    /// a second request is `.loginEmailResetAlreadyRequested`.
    public func resetLoginEmail(phoneNumber: String, sentCode: SentLoginCode) async throws(LoginError) -> CodeRequestResult {
        try Self.codeRequestResult(try await call(Api.functions.auth.ResetLoginEmail(phoneNumber: phoneNumber, phoneCodeHash: sentCode.phoneCodeHash)))
    }

    static func loginSetUp(_ phoneNumber: String, _ sentCode: SentLoginCode) -> Api.EmailVerifyPurpose {
        .emailVerifyPurposeLoginSetup(Api.EmailVerifyPurpose.EmailVerifyPurposeLoginSetup(phoneNumber: phoneNumber, phoneCodeHash: sentCode.phoneCodeHash))
    }
}
