import Crypto
import GRDB
import MTProto
import MTProtoClient
import SessionManager
import StoreTestSupport
import TLSchema
import Testing

@Suite struct SendCodeGuardTests {
    private let phone = "+1 555 0001"
    private func request(_ phone: String) -> Api.functions.auth.SendCode {
        Api.functions.auth.SendCode(phoneNumber: phone, apiId: 1, apiHash: "h", settings: .codeSettings(.init()))
    }

    private func stack(_ store: any FloodLedgerStore, clock: TestClock, client: ScriptedInvoker) -> any TelegramInvoking {
        client.wrapped(in: [SendCodeGuardMiddleware(SendCodeGuard(account: "alice", store: store, clock: clock, logger: quietLogger))])
    }

    /// A guard on a fresh in-memory store, and the middleware over a scripted client.
    private func guarded() -> (TestClock, ScriptedInvoker, SendCodeGuard, any TelegramInvoking) {
        let clock = TestClock()
        let client = ScriptedInvoker()
        let guardian = SendCodeGuard(account: "alice", store: InMemoryFloodLedgerStore(), clock: clock, logger: quietLogger)
        return (clock, client, guardian, client.wrapped(in: [SendCodeGuardMiddleware(guardian)]))
    }

    @Test func aRestartLoopNeverAsksForASecondCode() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        #expect(await failure(stack(store, clock: clock, client: client), request(phone)) == nil)
        // Ten "restarts", each a new guard on the same store, a minute apart.
        for _ in 0..<10 {
            clock.advance(by: 59)
            let error = try #require(await failure(stack(store, clock: clock, client: client), request(phone)))
            #expect(error.sessionManagerError?.code == "TGSM-RATE-004")
        }
        #expect(client.count("auth.sendCode") == 1)
        // Formatting does not make another phone of it.
        #expect(await failure(stack(store, clock: clock, client: client), request("15550001")) != nil)
        clock.advance(by: 10)
        #expect(await failure(stack(store, clock: clock, client: client), request(phone)) == nil)
        #expect(client.count("auth.sendCode") == 2)
    }

    @Test func theDeadlineIsWrittenBeforeTheRequestGoesOut() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        // The process "dies" mid-call: the request went out, no answer was seen.
        client.script("auth.sendCode", .failure(.connectionFailed(dc: 1, attempts: 6, reason: "killed")))
        _ = await failure(stack(store, clock: clock, client: client), request(phone))
        let deadline = await store.sendCodeDeadline(account: "alice", phoneKey: store.phoneKey(for: phone))
        #expect(deadline == clock.now() + 600)
    }

    @Test func theAnswersTimeoutAndFloodWaitsMoveTheDeadlineLater() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        client.script("auth.sendCode", .success(ScriptedInvoker.sentCode(timeout: 3600)))
        _ = await failure(stack(store, clock: clock, client: client), request(phone))
        let key = store.phoneKey(for: phone)
        #expect(await store.sendCodeDeadline(account: "alice", phoneKey: key) == clock.now() + 3600)
        clock.advance(by: 3600)
        client.script("auth.sendCode", .failure(rpc(420, "FLOOD_WAIT_86400", method: "auth.sendCode")))
        _ = await failure(stack(store, clock: clock, client: client), request(phone))
        #expect(await store.sendCodeDeadline(account: "alice", phoneKey: key) == clock.now() + 86400)
    }

    /// Refusals that say no code was sent (the app's credentials, AUTH_RESTART) take the deadline
    /// written ahead back to what it was, so the fixed login is not held up; a flood answer, another
    /// server error or no answer keep it, since a code may be on its way.
    @Test func aRefusalThatSentNoCodeTakesTheDeadlineBack() async throws {
        let (clock, client, guardian, invoker) = guarded()
        let refusals = [rpc(400, "API_ID_INVALID", method: "auth.sendCode"), rpc(500, "AUTH_RESTART", method: "auth.sendCode")]
        for refusal in refusals {
            client.script("auth.sendCode", .failure(refusal))
            #expect(await failure(invoker, request(phone)) != nil)
            #expect(try await guardian.deadline(phoneNumber: phone) == nil, "\(refusal)")
        }
        // Back to an earlier, passed deadline, not to none.
        client.script("auth.sendCode", .success(Self.sent))
        #expect(await failure(invoker, request(phone)) == nil)
        let passed = clock.now() + 600
        clock.advance(by: 601)
        client.script("auth.sendCode", .failure(rpc(500, "AUTH_RESTART", method: "auth.sendCode")))
        #expect(await failure(invoker, request(phone)) != nil)
        #expect(try await guardian.deadline(phoneNumber: phone) == passed)

        let kept = [rpc(400, "PHONE_NUMBER_FLOOD", method: "auth.sendCode"), rpc(500, "INTERNAL_SERVER_ERROR", method: "auth.sendCode"),
                    TelegramError.timeout(method: "auth.sendCode", seconds: 10, delivery: .sent)]
        for error in kept {
            clock.advance(by: 601)
            client.script("auth.sendCode", .failure(error))
            #expect(await failure(invoker, request(phone)) != nil)
            #expect(try await guardian.deadline(phoneNumber: phone) == clock.now() + 600, "\(error)")
        }
        #expect(client.count("auth.sendCode") == 7)
    }

    /// A future auth token answered the request: a login without a code (auth.sentCodeSuccess), or
    /// SESSION_PASSWORD_NEEDED for an account with a 2FA password. No code went out, so the
    /// deadline goes back, and the password that follows spends no code.
    @Test func aLoginByAFutureAuthTokenSentNoCodeAndHoldsNothingBack() async throws {
        let (_, client, guardian, invoker) = guarded()
        let user = Api.User.user(.init(id: 1001, phone: "15550001"))
        client.script("auth.sendCode", .success(Api.auth.SentCode.sentCodeSuccess(.init(authorization: .authorization(.init(user: user))))))
        #expect(await failure(invoker, request(phone)) == nil)
        #expect(try await guardian.deadline(phoneNumber: phone) == nil)
        client.script("auth.sendCode", .failure(rpc(401, "SESSION_PASSWORD_NEEDED", method: "auth.sendCode")))
        #expect(await failure(invoker, request(phone))?.rpcError?.name == "SESSION_PASSWORD_NEEDED")
        #expect(try await guardian.deadline(phoneNumber: phone) == nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == nil)
        #expect(client.count("auth.sendCode") == 2)
    }

    /// A code request that offers the phone's kept future auth tokens goes once before the deadline
    /// (a matching token sends no code), spending them; a code sent anyway, or a request offering
    /// tokens that are not kept, leaves the deadline in force.
    @Test func aRequestOfferingKeptTokensGoesOnceBeforeTheDeadlineAndSpendsThem() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        let guardian = SendCodeGuard(account: "alice", store: store, clock: clock, logger: quietLogger)
        let invoker = client.wrapped(in: [FutureAuthTokenMiddleware(account: "alice", store: store, clock: clock, logger: quietLogger),
                                          SendCodeGuardMiddleware(guardian)])
        let key = store.phoneKey(for: phone)
        #expect(await failure(invoker, request(phone)) == nil, "the first code request")
        let deadline = try #require(try await guardian.deadline(phoneNumber: phone))
        // A token of a login, then the session is lost at once: the request with it goes, a code comes anyway.
        await store.addFutureAuthToken(FutureAuthToken(bytes: [1], receivedAt: clock.now()), account: "alice", phoneKey: key)
        #expect(await guardian.keepsFutureAuthTokens(phoneNumber: phone))
        #expect(await failure(invoker, request(phone)) == nil)
        #expect(await store.futureAuthTokens(phoneKey: key).isEmpty, "spent")
        #expect(await failure(invoker, request(phone))?.sessionManagerError?.code == "TGSM-RATE-004", "no second early request")
        // Tokens the caller passes itself, none kept: refused like any request.
        let ownTokens = Api.functions.auth.SendCode(phoneNumber: phone, apiId: 1, apiHash: "h", settings: .codeSettings(.init(logoutTokens: [[9]])))
        #expect(await failure(invoker, ownTokens)?.sessionManagerError?.code == "TGSM-RATE-004")
        #expect(client.count("auth.sendCode") == 2)

        // A token that matches: logged in, no code; the answer's new token is kept; the deadline is as it was.
        await store.addFutureAuthToken(FutureAuthToken(bytes: [2], receivedAt: clock.now()), account: "alice", phoneKey: key)
        let user = Api.User.user(.init(id: 1001, phone: "15550001"))
        client.script("auth.sendCode", .success(Api.auth.SentCode.sentCodeSuccess(.init(authorization: .authorization(.init(futureAuthToken: [3], user: user))))))
        #expect(await failure(invoker, request(phone)) == nil)
        #expect(await store.futureAuthTokens(phoneKey: key).map(\.bytes) == [[3]])
        let after = try #require(try await guardian.deadline(phoneNumber: phone))
        #expect(after.seconds >= deadline.seconds, "still in force")
        #expect(client.count("auth.sendCode") == 3)
    }

    /// Past the deadline, a request that offered tokens and still got a code proves them useless:
    /// they are dropped, not offered (nor spent early) again.
    @Test func tokensTelegramDidNotAcceptAreDropped() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        let invoker = client.wrapped(in: [FutureAuthTokenMiddleware(account: "alice", store: store, clock: clock, logger: quietLogger),
                                          SendCodeGuardMiddleware(SendCodeGuard(account: "alice", store: store, clock: clock, logger: quietLogger))])
        let key = store.phoneKey(for: phone)
        await store.addFutureAuthToken(FutureAuthToken(bytes: [1], receivedAt: clock.now()), account: "alice", phoneKey: key)
        #expect(await failure(invoker, request(phone)) == nil)
        #expect(await store.futureAuthTokens(phoneKey: key).isEmpty)
    }

    /// Telegram counts code requests per number, whichever session asks: a second account of the
    /// store with the same phone (two logins of one person, or a mistyped account name) waits for
    /// the first one's deadline too, and hears whose it is; clearing by hand clears the phone.
    @Test func anotherAccountWithTheSamePhoneWaitsForTheFirstOnesDeadline() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        let work = SendCodeGuard(account: "work", store: store, clock: clock, logger: quietLogger)
        #expect(await failure(stack(store, clock: clock, client: client), request(phone)) == nil)
        let refused = try #require(await failure(client.wrapped(in: [SendCodeGuardMiddleware(work)]), request("15550001")))
        #expect(refused.sessionManagerError?.code == "TGSM-RATE-004")
        #expect(try await work.deadlineHolder(phoneNumber: phone) == SendCodeDeadline(account: "alice", deadline: clock.now() + 600))
        #expect(try await work.deadline(phoneNumber: phone) == clock.now() + 600)
        #expect(client.count("auth.sendCode") == 1)

        try await work.clear(phoneNumber: phone)
        #expect(await store.latestSendCodeDeadline(phoneKey: store.phoneKey(for: phone)) == nil)
        #expect(await failure(client.wrapped(in: [SendCodeGuardMiddleware(work)]), request(phone)) == nil)
        #expect(client.count("auth.sendCode") == 2)
    }

    @Test func theStoreNeverSeesThePhoneNumber() {
        let store = InMemoryFloodLedgerStore()
        let key = store.phoneKey(for: "+1 555 0001")
        #expect(key == store.phoneKey(for: "15550001"))
        #expect(key != store.phoneKey(for: "15550002"))
        #expect(key.count == 64 && !key.contains("5550001"))
        // Keyed per store: the same phone has another key elsewhere, so a copied table cannot be
        // matched against a dictionary of digests.
        #expect(key != InMemoryFloodLedgerStore().phoneKey(for: "15550001"))
    }

    @Test func anUnreadableStoreFailsClosed() async throws {
        let client = ScriptedInvoker()
        let error = await failure(stack(BrokenLedgerStore(), clock: TestClock(), client: client), request(phone))
        #expect(error?.sessionManagerError?.code == "TGSM-SESSION-003")
        #expect(client.calls.isEmpty)
    }

    @Test func clearingLetsOneRequestThrough() async throws {
        let (_, client, guardian, invoker) = guarded()
        _ = await failure(invoker, request(phone))
        try await guardian.clear(phoneNumber: phone)
        #expect(await failure(invoker, request(phone)) == nil)
        #expect(await failure(invoker, request(phone)) != nil)
        #expect(client.count("auth.sendCode") == 2)
    }

    // MARK: The code sent, for a rerun

    private func signIn(_ phone: String) -> Api.functions.auth.SignIn {
        Api.functions.auth.SignIn(phoneNumber: phone, phoneCodeHash: "hash-7f3a", phoneCode: "12345")
    }

    private static let sent = Api.auth.SentCode.sentCode(.init(type: .sentCodeTypeSms(.init(length: 5)), phoneCodeHash: "hash-7f3a", timeout: 120))
    private static let authorized = Api.auth.Authorization.authorization(.init(user: .userEmpty(.init(id: 1001))))

    /// A run interrupted at the code prompt leaves the code for the next: a wrong code or a 2FA
    /// password still to give keep it; the sign-in that works forgets it.
    @Test func theCodeSentIsOfferedToTheNextRunUntilASignInUsesIt() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        client.script("auth.sendCode", .success(Self.sent))
        let sentAt = clock.now()
        #expect(await failure(stack(store, clock: clock, client: client), request(phone)) == nil)
        clock.advance(by: 30)
        // The next run: a new guard on the same store, the number written another way.
        let rerun = SendCodeGuard(account: "alice", store: store, clock: clock, logger: quietLogger)
        let pending = try #require(try await rerun.pendingCode(phoneNumber: "15550001"))
        #expect(pending.phoneCodeHash == "hash-7f3a")
        #expect(pending.sentAt == sentAt && pending.offeredUntil == sentAt + 600)
        #expect(pending.sentCode?.channel == "sms" && pending.sentCode?.phoneCodeHash == "hash-7f3a")
        #expect(!"\(pending)".contains("hash-7f3a"), "the description may be logged: it leaves the hash out")
        let invoker = client.wrapped(in: [SendCodeGuardMiddleware(rerun)])
        client.script("auth.signIn", .failure(rpc(400, "PHONE_CODE_INVALID", method: "auth.signIn")),
                      .failure(rpc(401, "SESSION_PASSWORD_NEEDED", method: "auth.signIn")), .success(Self.authorized))
        #expect(await failure(invoker, signIn(phone)) != nil)
        #expect(try await rerun.pendingCode(phoneNumber: phone) == pending, "a wrong code keeps it")
        #expect(await failure(invoker, signIn(phone)) != nil)
        #expect(try await rerun.pendingCode(phoneNumber: phone) == pending, "a 2FA password still to give keeps it")
        #expect(await failure(invoker, signIn(phone)) == nil)
        #expect(try await rerun.pendingCode(phoneNumber: phone) == nil, "used")
        #expect(client.count("auth.sendCode") == 1)
    }

    /// api/auth, "Email verification": a request answered "set up a login email first" sent no code,
    /// but a rerun goes on with its phone_code_hash (the set-up names it); the verified address's
    /// answer is the code to type next, recorded as a code request's is, and so is a reset's; a hash
    /// Telegram no longer knows is forgotten. None of it asks for another code.
    @Test func aLoginEmailSetUpOrResetIsRecordedForTheNextRunWithTheCodeItBrings() async throws {
        let (clock, client, guardian, invoker) = guarded()
        client.script("auth.sendCode", .success(Api.auth.SentCode.sentCode(.init(type: .sentCodeTypeSetUpEmailRequired(.init()), phoneCodeHash: "set-up-hash"))))
        #expect(await failure(invoker, request(phone)) == nil)
        let asked = try #require(try await guardian.pendingCode(phoneNumber: phone))
        #expect(asked.sentCode?.awaitsLoginEmailSetUp == true && asked.phoneCodeHash == "set-up-hash")

        let purpose = Api.EmailVerifyPurpose.emailVerifyPurposeLoginSetup(.init(phoneNumber: "15550001", phoneCodeHash: "set-up-hash"))
        let verify = Api.functions.account.VerifyEmail(purpose: purpose, verification: .emailVerificationCode(.init(code: "777777")))
        client.script("account.verifyEmail", .failure(rpc(400, "EMAIL_CODE_INVALID", method: "account.verifyEmail")),
                      .success(Api.account.EmailVerified.emailVerifiedLogin(.init(email: "me@example.com", sentCode: .sentCode(.init(
                          type: .sentCodeTypeEmailCode(.init(emailPattern: "m***@example.com", length: 5)), phoneCodeHash: "email-hash", timeout: 60))))))
        #expect(await failure(invoker, verify) != nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == asked, "a wrong mailed code keeps the set-up")
        clock.advance(by: 20)
        #expect(await failure(invoker, verify) == nil)
        let mailed = try #require(try await guardian.pendingCode(phoneNumber: phone))
        #expect(mailed.phoneCodeHash == "email-hash" && mailed.sentCode?.isEmailCode == true && mailed.sentCode?.emailPattern == "m***@example.com")
        #expect(mailed.offeredUntil == asked.offeredUntil, "the set-up asks for no new code: the deadline stays")

        // A reset of that login email (the person cannot read it) sends the code by SMS: the code to type next.
        client.script("auth.resetLoginEmail", .success(Api.auth.SentCode.sentCode(.init(type: .sentCodeTypeSms(.init(length: 5)), phoneCodeHash: "sms-hash", timeout: 60))))
        #expect(await failure(invoker, Api.functions.auth.ResetLoginEmail(phoneNumber: "15550001", phoneCodeHash: "email-hash")) == nil)
        let bySMS = try #require(try await guardian.pendingCode(phoneNumber: phone))
        #expect(bySMS.phoneCodeHash == "sms-hash" && bySMS.sentCode?.channel == "sms" && bySMS.offeredUntil == asked.offeredUntil)

        // A set-up Telegram has forgotten leaves nothing to go on with.
        client.script("account.sendVerifyEmailCode", .failure(rpc(400, "PHONE_HASH_EXPIRED", method: "account.sendVerifyEmailCode")))
        #expect(await failure(invoker, Api.functions.account.SendVerifyEmailCode(purpose: purpose, email: "me@example.com")) != nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == nil)
        #expect(client.count("auth.sendCode") == 1)
    }

    /// A sign-in that needs the 2FA password keeps the code until the password is accepted: a
    /// wrong password keeps it too (a rerun goes on with the code), the right one completes the
    /// login and forgets it.
    @Test func thePasswordThatCompletesTheSignInForgetsTheCode() async throws {
        let (clock, client, guardian, invoker) = guarded()
        client.script("auth.sendCode", .success(Self.sent))
        #expect(await failure(invoker, request(phone)) == nil)
        client.script("auth.signIn", .failure(rpc(401, "SESSION_PASSWORD_NEEDED", method: "auth.signIn")))
        #expect(await failure(invoker, signIn(phone)) != nil)
        let checkPassword = Api.functions.auth.CheckPassword(password: .inputCheckPasswordEmpty(.init()))
        client.script("auth.checkPassword", .failure(rpc(400, "PASSWORD_HASH_INVALID", method: "auth.checkPassword")), .success(Self.authorized))
        #expect(await failure(invoker, checkPassword) != nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) != nil, "a wrong password keeps the code")
        #expect(await failure(invoker, checkPassword) == nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == nil, "the login is complete: the code is spent")
        #expect(try await guardian.deadline(phoneNumber: phone) == clock.now() + 600, "the phone stays guarded")
    }

    /// A sign-in that stopped at the password in a process that ended: the next process's guard
    /// never saw SESSION_PASSWORD_NEEDED, so the accepted password's answer names the phone (the
    /// account's own, digits only) whose code it spends. An answer without a phone leaves the code.
    @Test func aPasswordGivenInALaterProcessSpendsTheCodeOfTheAccountsPhone() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        let store = InMemoryFloodLedgerStore()
        let first = SendCodeGuard(account: "alice", store: store, clock: clock, logger: quietLogger)
        client.script("auth.sendCode", .success(Self.sent))
        #expect(await failure(client.wrapped(in: [SendCodeGuardMiddleware(first)]), request(phone)) == nil)

        let later = SendCodeGuard(account: "alice", store: store, clock: clock, logger: quietLogger)
        let invoker = client.wrapped(in: [SendCodeGuardMiddleware(later)])
        let checkPassword = Api.functions.auth.CheckPassword(password: .inputCheckPasswordEmpty(.init()))
        let withPhone = Api.auth.Authorization.authorization(.init(user: .user(Api.User.User(id: 1001, firstName: "A", phone: "15550001"))))
        client.script("auth.checkPassword", .success(Self.authorized), .success(withPhone))
        #expect(await failure(invoker, checkPassword) == nil)
        #expect(try await later.pendingCode(phoneNumber: phone) != nil, "no phone in the answer: nothing to go by")
        #expect(await failure(invoker, checkPassword) == nil)
        #expect(try await later.pendingCode(phoneNumber: phone) == nil, "the account's phone: its code is spent")
        #expect(try await later.deadline(phoneNumber: phone) == clock.now() + 600, "the phone stays guarded")
    }

    /// A code Telegram no longer accepts is forgotten (the deadline stays); one past the deadline
    /// is not offered; "sign up first" keeps it for auth.signUp.
    @Test func anExpiredOrOverdueCodeIsNotOfferedAndASignUpStillGetsIt() async throws {
        let (clock, client, guardian, invoker) = guarded()
        client.script("auth.sendCode", .success(Self.sent), .success(Self.sent))
        #expect(await failure(invoker, request(phone)) == nil)
        client.script("auth.signIn", .failure(rpc(400, "PHONE_CODE_EXPIRED", method: "auth.signIn")))
        #expect(await failure(invoker, signIn(phone)) != nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == nil)
        #expect(try await guardian.deadline(phoneNumber: phone) == clock.now() + 600, "the phone stays guarded")

        clock.advance(by: 600)
        #expect(await failure(invoker, request(phone)) == nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) != nil)
        clock.advance(by: 600)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == nil, "past its deadline")

        clock.advance(by: 1)
        client.script("auth.sendCode", .success(Self.sent))
        #expect(await failure(invoker, request(phone)) == nil)
        client.script("auth.signIn", .success(Api.auth.Authorization.authorizationSignUpRequired(.init())))
        #expect(await failure(invoker, signIn(phone)) == nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) != nil, "auth.signUp still needs the hash")
        client.script("auth.signUp", .success(Self.authorized))
        let signUp = Api.functions.auth.SignUp(phoneNumber: phone, phoneCodeHash: "hash-7f3a", firstName: "A", lastName: "")
        #expect(await failure(invoker, signUp) == nil)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == nil)
    }

    /// A recorded code whose hash no longer opens (a damaged row on an encrypted store) is not
    /// offered, and the phone stays guarded: the login is neither locked out nor sent a second code.
    @Test func aDamagedRecordedCodeIsNotOfferedAndThePhoneStaysGuarded() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let options = Fixtures.options(encryption: .key(SymmetricKey(size: .bits256)))
        let clock = TestClock()
        let client = ScriptedInvoker()
        let store = try SQLiteSessionStore.open(directory: dir.path, options: options)
        client.script("auth.sendCode", .success(Self.sent))
        #expect(await failure(stack(store, clock: clock, client: client), request(phone)) == nil)
        try store.close()
        let queue = try DatabaseQueue(path: dir.file("sessions.sqlite"))
        try await queue.write { db in try db.execute(sql: "UPDATE pending_login_code SET phone_code_hash = x'0102'") }
        try queue.close()

        let reopened = try SQLiteSessionStore.open(directory: dir.path, options: options)
        await #expect(throws: SessionStoreError.self) { _ = try await reopened.pendingLoginCode(account: "alice", phoneKey: try await reopened.phoneKey(for: phone)) }
        let guardian = SendCodeGuard(account: "alice", store: reopened, clock: clock, logger: quietLogger)
        #expect(try await guardian.pendingCode(phoneNumber: phone) == nil)
        #expect(try await guardian.deadline(phoneNumber: phone) == clock.now() + 600)
        #expect(await failure(stack(reopened, clock: clock, client: client), request(phone))?.sessionManagerError?.code == "TGSM-RATE-004")
        #expect(client.count("auth.sendCode") == 1)
        try reopened.close()
    }

    @Test(arguments: StoreEngine.allCases) func onAStoreADeadlineHoldsForEveryProcessOnTheSameData(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let first = try await place.open()
            let second = try await place.open()
            let clock = TestClock()
            let client = ScriptedInvoker()
            let asked = clock.now()
            #expect(await failure(stack(first, clock: clock, client: client), request(phone)) == nil)
            clock.advance(by: 60)
            let refused = await failure(stack(second, clock: clock, client: client), request("15550001"))
            #expect(refused?.sessionManagerError?.code == "TGSM-RATE-004")
            #expect(client.count("auth.sendCode") == 1)
            // One key scheme: the guard stored the deadline under the store's own keyed digest.
            let key = try await second.phoneKey(for: phone)
            #expect(try await second.sendCodeDeadline(account: "alice", phoneKey: key) == asked + 600)
            try await first.shutDown()
            try await second.shutDown()
        }
    }
}
