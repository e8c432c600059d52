import TL
import TLSchema
import Testing
@testable import TestDC

/// api/auth, "Email verification": a number Telegram sends no code before it has a login email.
@Suite struct LoginEmailHandlersTests {
    typealias F = Api.functions
    static let now = 1_800_000_000.0
    static let client = CallContext(dc: 1, authKeyID: 91)
    static let phone = "15550001"

    struct Refused: Error { var answer: RPCAnswer? }

    func answer(_ state: inout DCState, _ request: some TLEncodable, now: Double = now) -> RPCAnswer? {
        state.handle(request.serialized(), context: Self.client, now: now).answer
    }

    func decode<T: TLDecodable>(_ answer: RPCAnswer?, as _: T.Type) throws -> T {
        guard case .result(let bytes) = answer else { throw Refused(answer: answer) }
        return try T(serialized: bytes)
    }

    /// A DC where alice must set up a login email before she gets a code.
    func stateAskingForALoginEmail() -> DCState {
        var state = DCState.forTests()
        if let index = state.world.users.firstIndex(where: { $0.id == 1001 }) { state.world.users[index].codeDelivery = .setUpEmail }
        return state
    }

    func sendCode(_ state: inout DCState, now: Double = now) throws -> Api.auth.SentCode.SentCode {
        let settings = Api.CodeSettings.codeSettings(Api.CodeSettings.CodeSettings())
        guard case .sentCode(let sent) = try decode(answer(&state, F.auth.SendCode(phoneNumber: Self.phone, apiId: 1, apiHash: "h", settings: settings), now: now),
                                                    as: Api.auth.SentCode.self) else { throw Refused(answer: nil) }
        return sent
    }

    func purpose(_ hash: String, phone: String = phone) -> Api.EmailVerifyPurpose {
        .emailVerifyPurposeLoginSetup(Api.EmailVerifyPurpose.EmailVerifyPurposeLoginSetup(phoneNumber: phone, phoneCodeHash: hash))
    }

    func mail(_ state: inout DCState, hash: String, to email: String, now: Double = now) -> RPCAnswer? {
        answer(&state, F.account.SendVerifyEmailCode(purpose: purpose(hash), email: email), now: now)
    }

    func verify(_ state: inout DCState, hash: String, code: String, now: Double = now) -> RPCAnswer? {
        answer(&state, F.account.VerifyEmail(purpose: purpose(hash), verification: .emailVerificationCode(Api.EmailVerification.EmailVerificationCode(code: code))),
               now: now)
    }

    /// The whole set-up: no code until an address is verified; then the login code goes there,
    /// signs in as an email verification, and the next login's code goes there too.
    @Test func aVerifiedLoginEmailGetsTheLoginCode() throws {
        var state = stateAskingForALoginEmail()
        let asked = try sendCode(&state)
        guard case .sentCodeTypeSetUpEmailRequired = asked.type else { Issue.record("expected a set-up, got \(asked.type)"); return }
        // No code to type yet: a sign-in with the request's hash is refused.
        #expect(answer(&state, F.auth.SignIn(phoneNumber: Self.phone, phoneCodeHash: asked.phoneCodeHash, phoneCode: DCState.loginCode(for: Self.phone)))
                == .error(code: 400, message: "PHONE_CODE_INVALID"))

        guard case .sentEmailCode(let mailed) = try decode(mail(&state, hash: asked.phoneCodeHash, to: "alice@example.com"), as: Api.account.SentEmailCode.self) else { return }
        #expect(mailed.emailPattern == "a***@example.com" && mailed.length == 6)
        #expect(state.sentCodes[Self.phone]?.code == "550001" && DCState.emailVerificationCode(for: Self.phone) == "550001")
        #expect(verify(&state, hash: asked.phoneCodeHash, code: "000000") == .error(code: 400, message: "EMAIL_CODE_INVALID"))

        guard case .emailVerifiedLogin(let verified) = try decode(verify(&state, hash: asked.phoneCodeHash, code: "550001"), as: Api.account.EmailVerified.self),
              case .sentCode(let sent) = verified.sentCode, case .sentCodeTypeEmailCode(let byEmail) = sent.type else {
            Issue.record("expected the login code sent to the new address")
            return
        }
        #expect(verified.email == "alice@example.com" && byEmail.emailPattern == "a***@example.com")
        #expect(state.loginEmails[1001] == "alice@example.com")
        // The set-up's hash is spent; the code goes back as an email verification under the new hash.
        #expect(verify(&state, hash: asked.phoneCodeHash, code: "550001") == .error(code: 400, message: "PHONE_HASH_EXPIRED"))
        #expect(answer(&state, F.auth.SignIn(phoneNumber: Self.phone, phoneCodeHash: sent.phoneCodeHash, phoneCode: DCState.loginCode(for: Self.phone)))
                == .error(code: 400, message: "PHONE_CODE_INVALID"))
        let signIn = F.auth.SignIn(phoneNumber: Self.phone, phoneCodeHash: sent.phoneCodeHash,
                                   emailVerification: .emailVerificationCode(Api.EmailVerification.EmailVerificationCode(code: DCState.loginCode(for: Self.phone))))
        guard case .authorization = try decode(answer(&state, signIn), as: Api.auth.Authorization.self) else { Issue.record("expected a login"); return }
        #expect(state.userID(for: Self.client) == 1001)

        // From now on the number's codes go to that address, with no set-up.
        guard case .sentCodeTypeEmailCode(let next) = try sendCode(&state, now: Self.now + 1_000).type else { Issue.record("expected an email code"); return }
        #expect(next.emailPattern == "a***@example.com")
    }

    /// What a set-up is refused for, each with the error api/auth names.
    @Test func refusesWhatTheSpecRefuses() throws {
        var state = stateAskingForALoginEmail()
        let hash = try sendCode(&state).phoneCodeHash
        for malformed in ["alice", "alice@", "@example.com", "alice@example", "al ice@example.com", "a@b@example.com"] {
            #expect(mail(&state, hash: hash, to: malformed) == .error(code: 400, message: "EMAIL_INVALID"), "\(malformed)")
        }
        #expect(mail(&state, hash: hash, to: "alice@mail.invalid") == .error(code: 400, message: "EMAIL_NOT_ALLOWED"))
        #expect(mail(&state, hash: "stale", to: "alice@example.com") == .error(code: 400, message: "PHONE_HASH_EXPIRED"))
        // Nothing mailed yet: there is no code to verify.
        #expect(verify(&state, hash: hash, code: "550001") == .error(code: 400, message: "EMAIL_VERIFY_EXPIRED"))
        #expect(mail(&state, hash: hash, to: "alice@example.com", now: Self.now + state.codeLifetime + 1) == .error(code: 400, message: "PHONE_HASH_EXPIRED"))
        guard case .result = mail(&state, hash: hash, to: "alice@example.com", now: Self.now + 10) else { Issue.record("expected a code mailed"); return }
        #expect(verify(&state, hash: hash, code: "550001", now: Self.now + 10 + state.codeLifetime + 1) == .error(code: 400, message: "EMAIL_VERIFY_EXPIRED"))
        #expect(state.loginEmails.isEmpty)
        // A change of a login email needs a logged-in account with one.
        let change = F.account.SendVerifyEmailCode(purpose: .emailVerifyPurposeLoginChange(Api.EmailVerifyPurpose.EmailVerifyPurposeLoginChange()), email: "a@example.com")
        #expect(answer(&state, change) == .error(code: 400, message: "EMAIL_NOT_SETUP"))
        // A number whose codes go by SMS has no set-up to name.
        var sms = DCState.forTests()
        let smsHash = try sendCode(&sms).phoneCodeHash
        #expect(mail(&sms, hash: smsHash, to: "alice@example.com") == .error(code: 400, message: "PHONE_HASH_EXPIRED"))
    }

    func reset(_ state: inout DCState, hash: String, now: Double = now) -> RPCAnswer? {
        answer(&state, F.auth.ResetLoginEmail(phoneNumber: Self.phone, phoneCodeHash: hash), now: now)
    }

    /// A DC where alice's codes go to her login email.
    func stateMailingTheCode() -> DCState {
        var state = DCState.forTests()
        if let index = state.world.users.firstIndex(where: { $0.id == 1001 }) { state.world.users[index].codeDelivery = .email }
        return state
    }

    /// auth.resetLoginEmail with no delay: the address is dropped and the code goes by SMS, now and
    /// for later logins; a reset asked too early waits, one for a stale request is refused.
    @Test func aResetDropsTheLoginEmailAndSendsTheCodeBySMS() throws {
        var state = stateMailingTheCode()
        state.loginEmailResetAvailablePeriod = 30
        let mailed = try sendCode(&state)
        guard case .sentCodeTypeEmailCode(let email) = mailed.type else { Issue.record("expected an email code, got \(mailed.type)"); return }
        #expect(email.resetAvailablePeriod == 30 && email.resetPendingDate == nil)
        #expect(reset(&state, hash: mailed.phoneCodeHash, now: Self.now + 10) == .error(code: 420, message: "FLOOD_WAIT_20"))
        #expect(reset(&state, hash: "stale", now: Self.now + 30) == .error(code: 400, message: "PHONE_CODE_EXPIRED"))
        guard case .sentCode(let bySMS) = try decode(reset(&state, hash: mailed.phoneCodeHash, now: Self.now + 30), as: Api.auth.SentCode.self),
              case .sentCodeTypeSms = bySMS.type else { Issue.record("expected the code by SMS"); return }
        #expect(state.world.users.first { $0.id == 1001 }?.codeDelivery == .sms)
        let signIn = F.auth.SignIn(phoneNumber: Self.phone, phoneCodeHash: bySMS.phoneCodeHash, phoneCode: DCState.loginCode(for: Self.phone))
        guard case .authorization = try decode(answer(&state, signIn, now: Self.now + 40), as: Api.auth.Authorization.self) else { Issue.record("expected a login"); return }
        guard case .sentCodeTypeSms = try sendCode(&state, now: Self.now + 1_000).type else { Issue.record("expected SMS from now on"); return }
    }

    /// With a delay, the reset is scheduled: the answer says when (the code still goes to the
    /// address and stays valid), a second request is TASK_ALREADY_EXISTS, and the first code request
    /// after the date finds the address gone.
    @Test func aDelayedResetIsScheduledAndHappensAtItsDate() throws {
        var state = stateMailingTheCode()
        state.loginEmailResetDelay = 86_400
        let mailed = try sendCode(&state)
        guard case .sentCode(let scheduled) = try decode(reset(&state, hash: mailed.phoneCodeHash), as: Api.auth.SentCode.self),
              case .sentCodeTypeEmailCode(let email) = scheduled.type else { Issue.record("expected the reset scheduled"); return }
        #expect(email.resetPendingDate == Int32(Self.now + 86_400) && scheduled.phoneCodeHash == mailed.phoneCodeHash)
        #expect(reset(&state, hash: mailed.phoneCodeHash) == .error(code: 400, message: "TASK_ALREADY_EXISTS"))
        guard case .sentCodeTypeEmailCode(let before) = try sendCode(&state, now: Self.now + 3_600).type else { Issue.record("expected email before the date"); return }
        #expect(before.resetPendingDate == Int32(Self.now + 86_400))
        guard case .sentCodeTypeSms = try sendCode(&state, now: Self.now + 86_400).type else { Issue.record("expected SMS after the date"); return }
        #expect(state.loginEmailResets.isEmpty)
    }
}
