import MTProto
import Synchronization
import TL
import TLSchema
import Testing
@testable import MTProtoClient

/// The login email's set-up (api/auth, "Email verification") against a scripted server.
@Suite struct LoginEmailTests {
    static let phone = "+19995550123"
    static let setUpHash = "set-up-hash"
    static let loginHash = "login-hash"
    static let user = makeUser(id: 42)
    static let askedForEmail = SentLoginCode(phoneCodeHash: setUpHash, type: .sentCodeTypeSetUpEmailRequired(.init()))

    static func purposeMatches(_ purpose: Api.EmailVerifyPurpose) -> Bool {
        guard case .emailVerifyPurposeLoginSetup(let setUp) = purpose else { return false }
        return setUp.phoneNumber == phone && setUp.phoneCodeHash == setUpHash
    }

    static func emailVerifiedLogin(_ sent: Api.auth.SentCode) -> [UInt8] {
        Api.account.EmailVerified.emailVerifiedLogin(Api.account.EmailVerified.EmailVerifiedLogin(email: "me@example.com", sentCode: sent)).serialized()
    }

    static let codeToTheEmail = Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(
        type: .sentCodeTypeEmailCode(.init(emailPattern: "m***@example.com", length: 5)), phoneCodeHash: loginHash, timeout: 60))

    /// A server that wants the set-up: a code request answers "set up a login email first", the
    /// address gets code 777777, and the login code 12345 then goes to it.
    static func server(mailCode: String = "777777") -> ScriptedInvoker {
        ScriptedInvoker { request, _ throws(TelegramError) in
            switch request {
            case is Api.functions.auth.SendCode:
                return Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(type: .sentCodeTypeSetUpEmailRequired(.init()), phoneCodeHash: setUpHash)).serialized()
            case let send as Api.functions.account.SendVerifyEmailCode:
                guard purposeMatches(send.purpose) else { throw rpcError(400, "PHONE_HASH_EXPIRED") }
                guard send.email.contains("@") else { throw rpcError(400, "EMAIL_INVALID") }
                return Api.account.SentEmailCode.sentEmailCode(.init(emailPattern: "m***@example.com", length: 6)).serialized()
            case let verify as Api.functions.account.VerifyEmail:
                guard purposeMatches(verify.purpose) else { throw rpcError(400, "PHONE_HASH_EXPIRED") }
                guard case .emailVerificationCode(let code) = verify.verification, code.code == mailCode else { throw rpcError(400, "EMAIL_CODE_INVALID") }
                return emailVerifiedLogin(codeToTheEmail)
            case let signIn as Api.functions.auth.SignIn:
                guard signIn.phoneCodeHash == loginHash, signIn.phoneCode == nil,
                      case .emailVerificationCode(let code)? = signIn.emailVerification, code.code == "12345" else { throw rpcError(400, "PHONE_CODE_INVALID") }
                return authorization(for: user).serialized()
            default:
                throw rpcError(400, "UNEXPECTED")
            }
        }
    }

    func login(_ invoker: ScriptedInvoker) -> TelegramLogin {
        TelegramLogin(invoker: invoker, apiID: 17, apiHash: "api-hash", entropy: SeededTestEntropy(seed: 1))
    }

    /// logIn asks for the address and the mailed code, then the login code, which goes back as an
    /// email verification under the hash the verification answered.
    @Test func logInSetsUpTheLoginEmailThenSignsInWithTheCodeMailedThere() async throws {
        let invoker = Self.server()
        let asked = Mutex<[String]>([])
        let prompts = LoginEmailPrompts(
            address: { asked.withLock { $0.append("address") }; return "me@example.com" },
            code: { mailed in
                asked.withLock { $0.append("mailed to \(mailed.emailPattern), \(mailed.length) digits") }
                return "777777"
            })
        let user = try await login(invoker).logIn(phoneNumber: Self.phone, code: { sent in
            asked.withLock { $0.append("login code via \(sent.channel) to \(sent.emailPattern ?? "?")") }
            return "12345"
        }, password: { _ in Issue.record("no password expected"); return "" }, loginEmail: prompts)
        #expect(user == Self.user)
        #expect(asked.withLock { $0 } == ["address", "mailed to m***@example.com, 6 digits", "login code via email to m***@example.com"])
        #expect(await invoker.methods == ["auth.sendCode", "account.sendVerifyEmailCode", "account.verifyEmail", "auth.signIn"])
    }

    /// Without prompts, logIn says what Telegram asks instead of typing a code that never came.
    @Test func logInWithoutPromptsFailsWithLoginEmailRequired() async throws {
        let invoker = Self.server()
        await #expect {
            _ = try await login(invoker).logIn(phoneNumber: Self.phone, code: { _ in "12345" }, password: { _ in "" })
        } throws: { error in
            guard case LoginError.loginEmailRequired = error else { return false }
            return String(describing: error).contains("login email")
        }
        #expect(await invoker.methods == ["auth.sendCode"])
    }

    /// A wrong mailed code is asked again (three tries); a refused address is a typed error that
    /// never carries the address.
    @Test func aWrongMailedCodeIsAskedAgainAndTheErrorsAreTyped() async throws {
        let tries = Mutex(0)
        let prompts = LoginEmailPrompts(address: { "me@example.com" }, code: { _ in
            tries.withLock { $0 += 1; return $0 < 3 ? "000000" : "777777" }
        })
        let answer = try await login(Self.server()).setUpLoginEmail(phoneNumber: Self.phone, sentCode: Self.askedForEmail, prompts: prompts)
        guard case .codeSent(let sent) = answer else { Issue.record("expected the login code sent"); return }
        #expect(sent.phoneCodeHash == Self.loginHash && sent.isEmailCode && tries.withLock { $0 } == 3)

        let alwaysWrong = LoginEmailPrompts(address: { "me@example.com" }, code: { _ in "000000" })
        await #expect(throws: LoginError.self) {
            _ = try await login(Self.server()).setUpLoginEmail(phoneNumber: Self.phone, sentCode: Self.askedForEmail, prompts: alwaysWrong)
        }
        await #expect {
            _ = try await login(Self.server()).sendLoginEmailCode(phoneNumber: Self.phone, sentCode: Self.askedForEmail, email: "secret-address")
        } throws: { error in
            guard case LoginError.emailInvalid = error else { return false }
            return !String(describing: error).contains("secret-address")
        }
    }

    /// A verification that logs in at once (sentCodeSuccess) ends the login; account.emailVerified
    /// (a change of an existing address) is not a login's answer.
    @Test func theVerificationsAnswerIsHandledAsACodeRequestsAnswer() async throws {
        let success = ScriptedInvoker { _, _ throws(TelegramError) in
            Self.emailVerifiedLogin(.sentCodeSuccess(.init(authorization: authorization(for: Self.user))))
        }
        guard case .loggedIn(let user) = try await login(success).verifyLoginEmail(phoneNumber: Self.phone, sentCode: Self.askedForEmail, code: "1") else {
            Issue.record("expected a login")
            return
        }
        #expect(user == Self.user)
        let change = ScriptedInvoker { _, _ throws(TelegramError) in Api.account.EmailVerified.emailVerified(.init(email: "me@example.com")).serialized() }
        await #expect {
            _ = try await login(change).verifyLoginEmail(phoneNumber: Self.phone, sentCode: Self.askedForEmail, code: "1")
        } throws: { error in
            guard case LoginError.request(.undecodableResult) = error else { return false }
            return true
        }
    }

    /// auth.resetLoginEmail names the code request; its answer is handled as a code request's, and
    /// the fields that say when a reset is allowed or pending are read from the email code.
    @Test func aResetOfTheLoginEmailAnswersWithTheNextCodeRequest() async throws {
        let byEmail = SentLoginCode(phoneCodeHash: Self.loginHash, type: .sentCodeTypeEmailCode(.init(
            emailPattern: "m***@example.com", length: 5, resetAvailablePeriod: 30, resetPendingDate: 1_800_086_400)))
        #expect(byEmail.loginEmailResetAvailablePeriod == 30 && byEmail.loginEmailResetPendingDate == 1_800_086_400)
        let invoker = ScriptedInvoker { request, _ throws(TelegramError) in
            guard let reset = request as? Api.functions.auth.ResetLoginEmail, reset.phoneNumber == Self.phone, reset.phoneCodeHash == Self.loginHash else {
                throw rpcError(400, "UNEXPECTED")
            }
            return Api.auth.SentCode.sentCode(.init(type: .sentCodeTypeSms(.init(length: 5)), phoneCodeHash: "sms-hash", timeout: 60)).serialized()
        }
        guard case .codeSent(let next) = try await login(invoker).resetLoginEmail(phoneNumber: Self.phone, sentCode: byEmail),
              next.channel == "sms", next.phoneCodeHash == "sms-hash" else { Issue.record("expected the code by SMS"); return }
        let twice = ScriptedInvoker { _, _ throws(TelegramError) in throw rpcError(400, "TASK_ALREADY_EXISTS") }
        await #expect {
            _ = try await login(twice).resetLoginEmail(phoneNumber: Self.phone, sentCode: byEmail)
        } throws: { error in
            guard case LoginError.loginEmailResetAlreadyRequested = error else { return false }
            return true
        }
    }

    @Test(arguments: [
        ("EMAIL_INVALID", "emailInvalid"),
        ("EMAIL_NOT_ALLOWED", "emailNotAllowed"),
        ("EMAIL_CODE_INVALID", "emailCodeInvalid"),
        ("CODE_INVALID", "emailCodeInvalid"),
        ("EMAIL_VERIFY_EXPIRED", "emailVerifyExpired"),
        ("PHONE_HASH_EXPIRED", "phoneCodeExpired"),
    ])
    func rpcErrorsBecomeLoginEmailCases(message: String, expected: String) {
        let error = LoginError(rpcError(400, message))
        let name: String =
            switch error {
            case .emailInvalid: "emailInvalid"
            case .emailNotAllowed: "emailNotAllowed"
            case .emailCodeInvalid: "emailCodeInvalid"
            case .emailVerifyExpired: "emailVerifyExpired"
            case .phoneCodeExpired: "phoneCodeExpired"
            default: "other"
            }
        #expect(name == expected)
    }
}
