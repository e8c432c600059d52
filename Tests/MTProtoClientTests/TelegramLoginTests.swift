import MTProto
import MTProtoCrypto
import TL
import TLSchema
import Synchronization
import Testing
@testable import MTProtoClient

@Suite struct TelegramLoginTests {
    static let phone = "+19995550123"
    static let hash = "hash-1"
    static let user = makeUser(id: 42)

    static func sentCode() -> [UInt8] {
        Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(
            type: .sentCodeTypeApp(Api.auth.SentCodeType.SentCodeTypeApp(length: 5)), phoneCodeHash: hash, timeout: 60)).serialized()
    }

    private func login(_ invoker: ScriptedInvoker) -> TelegramLogin {
        TelegramLogin(invoker: invoker, apiID: 17, apiHash: "api-hash", entropy: SeededTestEntropy(seed: 1))
    }

    @Test func codeLoginSendsTheCodeWithTheHashAndReturnsTheUser() async throws {
        let invoker = ScriptedInvoker { request, _ throws(TelegramError) in
            switch request {
            case let send as Api.functions.auth.SendCode:
                #expect(send.phoneNumber == Self.phone && send.apiId == 17 && send.apiHash == "api-hash")
                return Self.sentCode()
            case let signIn as Api.functions.auth.SignIn:
                #expect(signIn.phoneCodeHash == Self.hash && signIn.phoneCode == "12345" && signIn.phoneNumber == Self.phone)
                return authorization(for: Self.user).serialized()
            default:
                throw rpcError(400, "UNEXPECTED")
            }
        }
        let user = try await login(invoker).logIn(phoneNumber: Self.phone, code: { sent in
            #expect(!sent.description.contains(Self.hash))
            return "12345"
        }, password: { _ in Issue.record("no password expected"); return "" })
        #expect(user == Self.user)
        #expect(await invoker.methods == ["auth.sendCode", "auth.signIn"])
    }

    /// The fake server holds a real SRP verifier and checks the client's proof, so only the right
    /// password logs in.
    static func passwordServer(password: String) throws -> SRPServerSession {
        let parameters = SRP.Parameters(salt1: Array(repeating: 1, count: 40), salt2: Array(repeating: 2, count: 16), g: 3, p: DHGroup.telegramPrime)
        let verifier = try SRP.verifier(password: password, parameters: parameters)
        var entropy = SeededTestEntropy(seed: 99)
        return try SRPServerSession(parameters: parameters, verifier: verifier, entropy: &entropy)
    }

    static func passwordInvoker(server: SRPServerSession) -> ScriptedInvoker {
        ScriptedInvoker { request, _ throws(TelegramError) in
            switch request {
            case is Api.functions.auth.SendCode:
                return Self.sentCode()
            case is Api.functions.auth.SignIn:
                throw rpcError(401, "SESSION_PASSWORD_NEEDED")
            default:
                return try passwordAnswer(request, server: server)
            }
        }
    }

    /// account.getPassword and auth.checkPassword as a server holding `server`'s verifier answers them.
    static func passwordAnswer(_ request: any TLFunction, server: SRPServerSession) throws(TelegramError) -> [UInt8] {
        switch request {
        case is Api.functions.account.GetPassword:
            let algo = Api.PasswordKdfAlgo.passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(.init(
                salt1: server.parameters.salt1, salt2: server.parameters.salt2, g: server.parameters.g, p: server.parameters.p))
            return Api.account.Password.password(Api.account.Password.Password(
                hasPassword: true, currentAlgo: algo, srpB: server.b, srpId: 555, hint: "pet",
                newAlgo: .passwordKdfAlgoUnknown(.init()), newSecureAlgo: .securePasswordKdfAlgoUnknown(.init()), secureRandom: [])).serialized()
        case let check as Api.functions.auth.CheckPassword:
            guard case .inputCheckPasswordSRP(let proof) = check.password, proof.srpId == 555 else { throw rpcError(400, "SRP_ID_INVALID") }
            let valid = (try? server.verify(SRPCheck(a: proof.A, m1: proof.M1))) ?? false
            guard valid else { throw rpcError(400, "PASSWORD_HASH_INVALID") }
            return authorization(for: Self.user).serialized()
        default:
            throw rpcError(400, "UNEXPECTED")
        }
    }

    @Test func twoFactorLoginProvesThePasswordWithSRP() async throws {
        let invoker = Self.passwordInvoker(server: try Self.passwordServer(password: "correct horse"))
        let user = try await login(invoker).logIn(phoneNumber: Self.phone, code: { _ in "12345" }, password: { hint in
            #expect(hint == "pet")
            return "correct horse"
        })
        #expect(user == Self.user)
        #expect(await invoker.methods == ["auth.sendCode", "auth.signIn", "account.getPassword", "account.getPassword", "auth.checkPassword"])
    }

    @Test func aWrongPasswordIsPasswordInvalid() async throws {
        let invoker = Self.passwordInvoker(server: try Self.passwordServer(password: "correct horse"))
        await #expect {
            _ = try await login(invoker).checkPassword("hunter2-guess")
        } throws: { error in
            guard case LoginError.passwordInvalid = error else { return false }
            return !String(describing: error).contains("hunter2")
        }
    }

    @Test func signUpRequiredCallsSignUpWithTheSameHash() async throws {
        let invoker = ScriptedInvoker { request, _ throws(TelegramError) in
            switch request {
            case is Api.functions.auth.SendCode:
                return Self.sentCode()
            case is Api.functions.auth.SignIn:
                return Api.auth.Authorization.authorizationSignUpRequired(.init()).serialized()
            case let signUp as Api.functions.auth.SignUp:
                #expect(signUp.phoneCodeHash == Self.hash && signUp.firstName == "Ada" && signUp.lastName == "L")
                return authorization(for: Self.user).serialized()
            default:
                throw rpcError(400, "UNEXPECTED")
            }
        }
        let flow = login(invoker)
        await #expect(throws: LoginError.self) {
            _ = try await flow.logIn(phoneNumber: Self.phone, code: { _ in "1" }, password: { _ in "" })
        }
        let user = try await flow.logIn(phoneNumber: Self.phone, code: { _ in "1" }, password: { _ in "" }, signUpName: ("Ada", "L"))
        #expect(user == Self.user)
    }

    @Test func botLoginImportsTheToken() async throws {
        let bot = makeUser(id: 7, bot: true)
        let invoker = ScriptedInvoker { request, _ throws(TelegramError) in
            guard let importBot = request as? Api.functions.auth.ImportBotAuthorization, importBot.botAuthToken == "7:token" else {
                throw rpcError(400, "ACCESS_TOKEN_INVALID")
            }
            return authorization(for: bot).serialized()
        }
        #expect(try await login(invoker).signInBot(token: "7:token") == bot)
        await #expect {
            _ = try await login(invoker).signInBot(token: "bad")
        } throws: { error in
            if case LoginError.botTokenInvalid = error { return true }
            return false
        }
    }

    /// The key's own calls tell whether its sign-in stopped at the password: SESSION_PASSWORD_NEEDED
    /// yes; logged in or another 401 no; no answer is no verdict (thrown). Only updates.getState is
    /// asked, never an auth.* method that could send a code.
    @Test func awaitsPasswordAsksTheKeysOwnCallsAndNeverSendsACode() async throws {
        func answering(_ reply: @escaping @Sendable () throws(TelegramError) -> [UInt8]) -> ScriptedInvoker {
            ScriptedInvoker { request, _ throws(TelegramError) in
                guard request is Api.functions.updates.GetState else { throw rpcError(400, "UNEXPECTED") }
                return try reply()
            }
        }
        let waiting = answering { () throws(TelegramError) in throw rpcError(401, "SESSION_PASSWORD_NEEDED") }
        #expect(try await login(waiting).awaitsPassword())
        #expect(await waiting.methods == ["updates.getState"])
        #expect(try await !login(answering { () throws(TelegramError) in throw rpcError(401, "AUTH_KEY_UNREGISTERED") }).awaitsPassword())
        let state = Api.updates.State.state(.init(pts: 1, qts: 0, date: 1, seq: 0, unreadCount: 0)).serialized()
        #expect(try await !login(answering { state }).awaitsPassword())
        await #expect {
            _ = try await login(answering { () throws(TelegramError) in
                throw TelegramError.timeout(method: "updates.getState", seconds: 5, delivery: .notSent)
            }).awaitsPassword()
        } throws: { error in
            if case LoginError.request(.timeout) = error { return true }
            return false
        }
    }

    @Test func qrLoginFollowsMigrateToOnTheNamedDC() async throws {
        let invoker = ScriptedInvoker { request, options throws(TelegramError) in
            switch request {
            case is Api.functions.auth.ExportLoginToken:
                return Api.auth.LoginToken.loginTokenMigrateTo(.init(dcId: 4, token: [1, 2, 3])).serialized()
            case let importToken as Api.functions.auth.ImportLoginToken:
                #expect(options.dc == 4 && importToken.token == [1, 2, 3])
                return Api.auth.LoginToken.loginTokenSuccess(.init(authorization: authorization(for: Self.user))).serialized()
            default:
                throw rpcError(400, "UNEXPECTED")
            }
        }
        guard case .loggedIn(let user) = try await login(invoker).exportLoginToken() else {
            Issue.record("QR login did not complete")
            return
        }
        #expect(user == Self.user)
    }

    /// QR login of an account with 2FA: the accepted token is answered SESSION_PASSWORD_NEEDED on the
    /// DC the import went to (here 4, after loginTokenMigrateTo), and the password goes there too.
    @Test func qrLoginOfAnAccountWithAPasswordAsksForItOnTheDCItWaitsOn() async throws {
        let server = try Self.passwordServer(password: "correct horse")
        let invoker = ScriptedInvoker { request, options throws(TelegramError) in
            switch request {
            case is Api.functions.auth.ExportLoginToken:
                return Api.auth.LoginToken.loginTokenMigrateTo(.init(dcId: 4, token: [1, 2, 3])).serialized()
            case is Api.functions.auth.ImportLoginToken:
                throw rpcError(401, "SESSION_PASSWORD_NEEDED")
            default:
                guard options.dc == 4 else { throw rpcError(401, "AUTH_KEY_UNREGISTERED") }
                return try Self.passwordAnswer(request, server: server)
            }
        }
        guard case .passwordNeeded(let hint, let dc) = try await login(invoker).exportLoginToken() else {
            Issue.record("expected the password step")
            return
        }
        #expect(hint == "pet" && dc == 4)
        #expect(try await login(invoker).checkPassword("correct horse", dc: dc) == Self.user)
        #expect(await invoker.calls.filter { $0.method != "auth.exportLoginToken" }.allSatisfy { $0.options.dc == 4 })

        // On the DC the token was exported on, the export itself answers it.
        let here = ScriptedInvoker { request, _ throws(TelegramError) in
            if request is Api.functions.auth.ExportLoginToken { throw rpcError(401, "SESSION_PASSWORD_NEEDED") }
            return try Self.passwordAnswer(request, server: server)
        }
        guard case .passwordNeeded(_, nil) = try await login(here).exportLoginToken() else {
            Issue.record("expected the password step on the home DC")
            return
        }
    }

    @Test(arguments: [
        ("PHONE_NUMBER_INVALID", "phoneNumberInvalid"),
        ("PHONE_CODE_INVALID", "phoneCodeInvalid"),
        ("PHONE_CODE_EXPIRED", "phoneCodeExpired"),
        ("PASSWORD_HASH_INVALID", "passwordInvalid"),
        ("SESSION_PASSWORD_NEEDED", "passwordNeeded"),
        ("PHONE_NUMBER_BANNED", "phoneNumberBanned"),
        ("FLOOD_WAIT_40", "floodWait"),
        ("SOMETHING_ELSE", "request"),
    ])
    func rpcErrorsBecomeLoginCases(message: String, expected: String) {
        let error = LoginError(rpcError(400, message))
        #expect(String(describing: error).isEmpty == false)
        #expect(Self.caseName(error) == expected)
        if case .floodWait(let seconds) = error { #expect(seconds == 40) }
    }

    /// A session manager's rate-limit error around a flood answer is still a wait for the login;
    /// other middleware errors stay `.request`.
    @Test func aMiddlewaresFloodWaitIsAWaitForTheLogin() {
        struct Refusal: TelegramMiddlewareError {
            var advice: RPCErrorAdvice?
            var code: String { "TEST-RATE" }
            var description: String { "refused" }
        }
        if case .floodWait(let seconds) = LoginError(.middleware(Refusal(advice: .wait(seconds: 90, reason: .flood)))) {
            #expect(seconds == 90)
        } else {
            Issue.record("a flood advice should map to floodWait")
        }
        #expect(Self.caseName(LoginError(.middleware(Refusal(advice: nil)))) == "request")
        #expect(Self.caseName(LoginError(.middleware(Refusal(advice: .wait(seconds: 5, reason: .other))))) == "request")
        // A repeat the connection held back during the wait it saw.
        if case .floodWait(let seconds) = LoginError(.floodWaitHeld(method: "auth.sendCode", seconds: 40, mayHaveRun: false)) {
            #expect(seconds == 40)
        } else {
            Issue.record("a call held back for a flood wait should map to floodWait")
        }
    }

    static func caseName(_ error: LoginError) -> String {
        switch error {
        case .phoneNumberInvalid: "phoneNumberInvalid"
        case .phoneCodeInvalid: "phoneCodeInvalid"
        case .phoneCodeExpired: "phoneCodeExpired"
        case .passwordInvalid: "passwordInvalid"
        case .passwordNeeded: "passwordNeeded"
        case .phoneNumberBanned: "phoneNumberBanned"
        case .floodWait: "floodWait"
        case .request: "request"
        default: "other"
        }
    }

    @Test func sendCodeMapsPhoneNumberInvalid() async {
        let invoker = ScriptedInvoker { _, _ throws(TelegramError) in throw rpcError(400, "PHONE_NUMBER_INVALID") }
        await #expect {
            _ = try await login(invoker).sendCode(phoneNumber: "12")
        } throws: { error in
            guard case LoginError.phoneNumberInvalid = error else { return false }
            return !String(describing: error).contains("12")
        }
    }

    /// A code sent to the account's login email goes back as email_verification, not phone_code
    /// (api/auth); a Fragment code names where to read it.
    @Test func anEmailCodeSignsInAsAnEmailVerification() async throws {
        let invoker = ScriptedInvoker { request, _ throws(TelegramError) in
            guard let signIn = request as? Api.functions.auth.SignIn else { throw rpcError(400, "UNEXPECTED") }
            guard signIn.phoneCode == nil, case .emailVerificationCode(let verification)? = signIn.emailVerification, verification.code == "54321" else {
                throw rpcError(400, "PHONE_CODE_INVALID")
            }
            return authorization(for: Self.user).serialized()
        }
        let byEmail = SentLoginCode(phoneCodeHash: Self.hash, type: .sentCodeTypeEmailCode(.init(emailPattern: "l***@example.com", length: 5)))
        #expect(byEmail.channel == "email" && byEmail.isEmailCode)
        #expect(try await login(invoker).signIn(phoneNumber: Self.phone, code: "54321", sentCode: byEmail) == Self.user)

        let fragment = SentLoginCode(phoneCodeHash: Self.hash, type: .sentCodeTypeFragmentSms(.init(url: "https://fragment.com/x", length: 5)))
        #expect(fragment.channel == "fragment" && fragment.fragmentURL == "https://fragment.com/x" && !fragment.isEmailCode)
        let setUp = SentLoginCode(phoneCodeHash: Self.hash, type: .sentCodeTypeSetUpEmailRequired(.init()))
        #expect(setUp.channel == "setUpEmail" && setUp.awaitsLoginEmailSetUp && !byEmail.awaitsLoginEmailSetUp)
    }

    /// AUTH_RESTART ("restart the authorization process") is asked again, twice at most.
    @Test func sendCodeStartsOverOnAuthRestartTwiceAtMost() async throws {
        let restarts = Mutex(1)
        let once = ScriptedInvoker { _, _ throws(TelegramError) in
            if restarts.withLock({ count in defer { count -= 1 }; return count > 0 }) { throw rpcError(500, "AUTH_RESTART") }
            return Self.sentCode()
        }
        guard case .codeSent = try await login(once).sendCode(phoneNumber: Self.phone) else {
            Issue.record("expected the code sent after a restart")
            return
        }
        #expect(await once.methods == ["auth.sendCode", "auth.sendCode"])

        let always = ScriptedInvoker { _, _ throws(TelegramError) in throw rpcError(500, "AUTH_RESTART") }
        await #expect {
            _ = try await login(always).sendCode(phoneNumber: Self.phone)
        } throws: { error in
            guard case LoginError.request(let cause) = error else { return false }
            return cause.rpcError?.name == "AUTH_RESTART"
        }
        #expect(await always.methods.count == 3)
    }
}
