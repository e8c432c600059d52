import GRDB
import MTProto
import MTProtoClient
import MTProtoCrypto
import MTProtoNIO
import SessionManager
import StoreTestSupport
import TLSchema
import Testing

@Suite struct TerminalGuardTests {
    private func setUp(storage: InMemorySessionStorage? = nil) -> (ScriptedInvoker, any TelegramInvoking, TerminalGuard, InMemoryAccountStatusStore) {
        let statuses = InMemoryAccountStatusStore()
        let guardian = TerminalGuard(account: "alice", statuses: statuses, keyReset: storage.map(AuthKeyReset.init(storage:)), clock: TestClock(), logger: quietLogger)
        let client = ScriptedInvoker()
        return (client, client.wrapped(in: [TerminalGuardMiddleware(guardian)]), guardian, statuses)
    }

    @Test(arguments: [
        ("AUTH_KEY_UNREGISTERED", AccountStatus.State.unauthorized, "TGSM-AUTH-001"),
        ("SESSION_REVOKED", .revoked, "TGSM-AUTH-002"),
        ("USER_DEACTIVATED", .deactivated, "TGSM-AUTH-005"),
    ])
    func aTerminalErrorMarksTheAccountAndStopsEveryLaterCall(message: String, state: AccountStatus.State, code: String) async throws {
        let (client, invoker, _, statuses) = setUp()
        client.script("updates.getState", .failure(rpc(401, message, method: "updates.getState")))
        let error = try #require(await failure(invoker, Api.functions.updates.GetState()))
        #expect(error.sessionManagerError?.code == code)
        #expect(await statuses.status(of: "alice")?.state == state)
        #expect(await statuses.status(of: "alice")?.code == code)
        let later = try #require(await failure(invoker, nearest))
        #expect(later.sessionManagerError?.code == "TGSM-SESSION-001")
        #expect(client.calls.count == 1)
    }

    @Test func aLoggedOutAccountMayStillUseTheLoginMethods() async throws {
        let (client, invoker, guardian, _) = setUp()
        client.script("updates.getState", .failure(rpc(401, "SESSION_REVOKED", method: "updates.getState")))
        _ = await failure(invoker, Api.functions.updates.GetState())
        let sendCode = Api.functions.auth.SendCode(phoneNumber: "15550001", apiId: 1, apiHash: "h", settings: .codeSettings(.init()))
        #expect(await failure(invoker, sendCode) == nil)
        #expect(await guardian.status().state == .revoked)
        // The 2FA step reads the password's SRP parameters first: without them an account with a
        // password could never log in again.
        client.script("account.getPassword", .success(Api.account.Password.password(.init(newAlgo: .passwordKdfAlgoUnknown(.init()), newSecureAlgo: .securePasswordKdfAlgoUnknown(.init()), secureRandom: []))))
        #expect(await failure(invoker, Api.functions.account.GetPassword()) == nil)
        // So does a login email's set-up, which Telegram may ask for before it sends any code; its
        // verification's answer is a code request, not yet a login: the mark stays.
        let purpose = Api.EmailVerifyPurpose.emailVerifyPurposeLoginSetup(.init(phoneNumber: "15550001", phoneCodeHash: "h"))
        client.script("account.sendVerifyEmailCode", .success(Api.account.SentEmailCode.sentEmailCode(.init(emailPattern: "a***@example.com", length: 6))))
        #expect(await failure(invoker, Api.functions.account.SendVerifyEmailCode(purpose: purpose, email: "a@example.com")) == nil)
        client.script("account.verifyEmail", .success(Api.account.EmailVerified.emailVerifiedLogin(.init(email: "a@example.com", sentCode: .sentCode(.init(
            type: .sentCodeTypeEmailCode(.init(emailPattern: "a***@example.com", length: 5)), phoneCodeHash: "h2"))))))
        #expect(await failure(invoker, Api.functions.account.VerifyEmail(purpose: purpose, verification: .emailVerificationCode(.init(code: "550001")))) == nil)
        #expect(await guardian.status().state == .revoked)
        // A sign-up request is not a login: the mark stays (the end-to-end suite logs in for real).
        client.script("auth.signIn", .success(Api.auth.Authorization.authorizationSignUpRequired(.init())))
        #expect(await failure(invoker, Api.functions.auth.SignIn(phoneNumber: "15550001", phoneCodeHash: "h", phoneCode: "10005")) == nil)
        #expect(await guardian.status().state == .revoked)
        #expect(await failure(invoker, nearest)?.sessionManagerError?.code == "TGSM-SESSION-001")
    }

    /// A call that was in flight when the session was revoked comes back AUTH_KEY_UNREGISTERED:
    /// the account stays marked revoked (the cause), and only a deactivation replaces a mark.
    @Test func theFirstTerminalMarkIsKeptUnlessTheAccountIsDeactivated() async throws {
        let (client, invoker, guardian, statuses) = setUp()
        client.script("updates.getState", .failure(rpc(401, "SESSION_REVOKED", method: "updates.getState")))
        _ = await failure(invoker, Api.functions.updates.GetState())
        // Login methods still go out on a revoked account: one meets the consequence.
        let sendCode = Api.functions.auth.SendCode(phoneNumber: "15550001", apiId: 1, apiHash: "h", settings: .codeSettings(.init()))
        client.script("auth.sendCode", .failure(rpc(401, "AUTH_KEY_UNREGISTERED", method: "auth.sendCode")))
        #expect(await failure(invoker, sendCode)?.sessionManagerError?.code == "TGSM-AUTH-001")
        #expect(await statuses.status(of: "alice")?.state == .revoked)
        #expect(await statuses.status(of: "alice")?.code == "TGSM-AUTH-002")
        client.script("auth.sendCode", .failure(rpc(401, "USER_DEACTIVATED", method: "auth.sendCode")))
        _ = await failure(invoker, sendCode)
        #expect(await guardian.status().state == .deactivated)
        #expect(await statuses.status(of: "alice")?.code == "TGSM-AUTH-005")
    }

    /// The rule both the guard and the workers apply before writing a mark.
    @Test func onlyAnUnmarkedAccountOrADeactivationReplacesAMark() {
        let active = AccountStatus.active(since: UnixTime(seconds: 0))
        let revoked = AccountStatus(state: .revoked, since: UnixTime(seconds: 1), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002")
        let deactivated = AccountStatus(state: .deactivated, since: UnixTime(seconds: 2), cause: "USER_DEACTIVATED", code: "TGSM-AUTH-005")
        for state in AccountStatus.State.allCases where state != .active { #expect(active.yields(to: state)) }
        #expect(!revoked.yields(to: .unauthorized) && !revoked.yields(to: .duplicated) && !revoked.yields(to: .revoked))
        #expect(revoked.yields(to: .deactivated))
        #expect(!deactivated.yields(to: .deactivated) && !deactivated.yields(to: .revoked))
    }

    @Test func aDeactivatedAccountNeverAsksForCodes() async throws {
        let (client, invoker, guardian, _) = setUp()
        await guardian.mark(AccountStatus(state: .deactivated, since: UnixTime(seconds: 0), cause: "USER_DEACTIVATED", code: "TGSM-AUTH-005"))
        let sendCode = Api.functions.auth.SendCode(phoneNumber: "15550004", apiId: 1, apiHash: "h", settings: .codeSettings(.init()))
        #expect(await failure(invoker, sendCode)?.sessionManagerError?.code == "TGSM-SESSION-001")
        #expect(client.calls.isEmpty)
    }

    @Test func aStoredMarkSurvivesARestart() async throws {
        let statuses = InMemoryAccountStatusStore([
            "alice": AccountStatus(state: .duplicated, since: UnixTime(seconds: 5), cause: "AUTH_KEY_DUPLICATED", code: "TGSM-AUTH-006"),
        ])
        let client = ScriptedInvoker()
        let guardian = TerminalGuard(account: "alice", statuses: statuses, clock: TestClock(), logger: quietLogger)
        let error = await failure(client.wrapped(in: [TerminalGuardMiddleware(guardian)]), nearest)
        #expect(error?.sessionManagerError?.recoverySteps.first?.contains("Stop every other process") == true)
        #expect(client.calls.isEmpty)
    }

    @Test func aDuplicatedKeyOnTheLoggedInHomeDCIsKeptAndStopsTheAccount() async throws {
        let key = try AuthKey([UInt8](repeating: 7, count: 256))
        let storage = InMemorySessionStorage(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key, isAuthorized: true)], userID: 1001))
        let (client, invoker, guardian, _) = setUp(storage: storage)
        client.script("updates.getState", .failure(rpc(406, "AUTH_KEY_DUPLICATED", method: "updates.getState")))
        let error = try #require(await failure(invoker, Api.functions.updates.GetState()))
        let typed = try #require(error.sessionManagerError)
        #expect(typed.code == "TGSM-AUTH-006")
        guard case .authKeyRejected(_, 2, true, .keptLoggedInHomeKey(2)) = typed.reason else {
            Issue.record("expected the home key to be kept, got \(typed)")
            return
        }
        #expect(typed.isTerminal)
        #expect(await storage.load()?.dcs[2]?.authKey == key)
        #expect(await guardian.status().state == .duplicated)
    }

    @Test func aRejectedKeyOfAnotherDCIsDroppedAndTheAccountGoesOn() async throws {
        let key = try AuthKey([UInt8](repeating: 7, count: 256))
        let storage = InMemorySessionStorage(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key, isAuthorized: true), 4: DCSessionState(authKey: key, isAuthorized: true)]))
        let (client, invoker, guardian, _) = setUp(storage: storage)
        client.script("upload.getFile", .failure(.transport(TransportErrorCode(rawValue: -404), dc: 4)))
        let error = try #require(await failure(invoker, Api.functions.upload.GetFile(location: .inputPeerPhotoFileLocation(.init(peer: .inputPeerSelf(.init()), photoId: 1)), offset: 0, limit: 1024), options: InvokeOptions(dc: 4)))
        let typed = try #require(error.sessionManagerError)
        #expect(typed.code == "TGSM-AUTH-007" && !typed.isTerminal)
        #expect(typed.description.contains("was dropped"))
        #expect(await storage.load()?.dcs[4] == nil)
        #expect(await storage.load()?.dcs[2]?.authKey == key)
        #expect(await guardian.status().state == .active)
    }

    @Test func anUnauthorizedAnswerFromAnotherDCIsNotTheAccountsDeath() async throws {
        let key = try AuthKey([UInt8](repeating: 7, count: 256))
        let storage = InMemorySessionStorage(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key, isAuthorized: true)]))
        let (client, invoker, guardian, _) = setUp(storage: storage)
        client.script("help.getNearestDc", .failure(rpc(401, "AUTH_KEY_UNREGISTERED")))
        #expect(await failure(invoker, nearest, options: InvokeOptions(dc: 4))?.rpcError?.message == "AUTH_KEY_UNREGISTERED")
        #expect(await guardian.status().state == .active)
    }

    @Test func ordinaryErrorsPassUnchanged() async throws {
        let (client, invoker, guardian, _) = setUp()
        client.script("help.getNearestDc", .failure(rpc(400, "PEER_ID_INVALID")), .failure(rpc(401, "SESSION_PASSWORD_NEEDED")))
        #expect(await failure(invoker, nearest)?.rpcError?.message == "PEER_ID_INVALID")
        #expect(await failure(invoker, nearest)?.rpcError?.message == "SESSION_PASSWORD_NEEDED")
        #expect(await guardian.status().state == .active)
    }

    @Test(arguments: StoreEngine.allCases) func onAStoreAMarkStopsTheAccountForEveryProcessUntilCleared(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let first = try await place.open()
            let second = try await place.open()
            let client = ScriptedInvoker()
            let guardian = TerminalGuard(account: "alice", statuses: first, clock: TestClock(), logger: quietLogger)
            client.script("updates.getState", .failure(rpc(401, "SESSION_REVOKED", method: "updates.getState")))
            _ = await failure(client.wrapped(in: [TerminalGuardMiddleware(guardian)]), Api.functions.updates.GetState())
            let mark = try #require(try await second.status(of: "alice"))
            #expect(mark.state == .revoked && mark.cause == "SESSION_REVOKED" && mark.code == "TGSM-AUTH-002")
            let other = TerminalGuard(account: "alice", statuses: second, clock: TestClock(), logger: quietLogger)
            let refused = await failure(client.wrapped(in: [TerminalGuardMiddleware(other)]), nearest)
            #expect(refused?.sessionManagerError?.code == "TGSM-SESSION-001")
            #expect(client.calls.count == 1)
            // An operator clears it by writing `.active`; deleting the account removes the mark.
            try await second.setStatus(.active(since: UnixTime(seconds: 5)), for: "alice")
            #expect(try await first.status(of: "alice")?.isTerminal == false)
            try await first.deleteAccount("alice")
            #expect(try await second.status(of: "alice") == nil)
            try await first.shutDown()
            try await second.shutDown()
        }
    }

    /// A mark this version cannot read (a state a newer tgsm wrote) may be a deactivation: the guard
    /// refuses every call, login calls too, and never writes over the row. Taken for a store outage,
    /// it let the account run on a guess.
    @Test func anUnknownStoredStateStopsTheAccountAndIsKept() async throws {
        let dir = TemporaryDirectory("status")
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        try store.close()
        let queue = try DatabaseQueue(path: dir.file("sessions.sqlite"))
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO account_status(account, state, since, cause, code) VALUES ('alice', 'hibernating', 1, 'X', '')")
        }
        let reopened = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        let thrown = await #expect(throws: SessionStoreError.self) { try await reopened.status(of: "alice") }
        #expect(thrown?.unreadableAccountStatus == "account status (unknown state \"hibernating\")")

        let guardian = TerminalGuard(account: "alice", statuses: reopened, clock: TestClock(), logger: quietLogger)
        let status = await guardian.status()
        #expect(status.state == .unreadable && status.cause == "account status (unknown state \"hibernating\")" && status.code == "store.corrupt_record")
        #expect(!status.allowsLogin && !status.yields(to: .deactivated) && !status.yields(to: .revoked))
        let client = ScriptedInvoker()
        let invoker = client.wrapped(in: [TerminalGuardMiddleware(guardian)])
        let refused = try #require(await failure(invoker, nearest))
        #expect(refused.sessionManagerError?.code == "TGSM-SESSION-001")
        #expect(refused.sessionManagerError?.recoverySteps.joined().contains("tgsm session clear-mark --account alice") == true)
        let login = Api.functions.auth.SendCode(phoneNumber: "+10000000000", apiId: 1, apiHash: "x", settings: .codeSettings(.init()))
        #expect(await failure(invoker, login)?.sessionManagerError?.code == "TGSM-SESSION-001", "no code is asked for: it may be banned")
        #expect(client.calls.isEmpty)
        // Nothing writes over it: an `.unreadable` mark, or a later one it does not yield to.
        await guardian.mark(.unreadable("x", readAt: UnixTime(seconds: 2)))
        let row = try await queue.read { try String.fetchOne($0, sql: "SELECT state FROM account_status WHERE account = 'alice'") }
        #expect(row == "hibernating")
        try queue.close()
        try reopened.close()
    }

    /// A store that cannot be read at all is an outage: the account runs on (its calls say soon
    /// enough whether it is still usable), and the log says so.
    @Test func aStoreOutageIsNotAMark() async throws {
        struct Unreachable: AccountStatusStore {
            func status(of account: AccountID) async throws -> AccountStatus? {
                throw SessionStoreError.database(operation: "read the status", reason: "disk I/O error", failure: .ioError)
            }
            func setStatus(_ status: AccountStatus, for account: AccountID) async throws {}
        }
        let guardian = TerminalGuard(account: "alice", statuses: Unreachable(), clock: TestClock(), logger: quietLogger)
        #expect(await guardian.status().state == .active)
    }

    @Test func theMarkOfAnErrorSeenOutsideTheGuardIsTheGuardsMark() async throws {
        let now = UnixTime(seconds: 77)
        for (error, state, cause, code) in [
            (rpc(401, "SESSION_REVOKED"), AccountStatus.State.revoked, "SESSION_REVOKED", "TGSM-AUTH-002"),
            (rpc(401, "USER_DEACTIVATED_BAN"), .deactivated, "USER_DEACTIVATED_BAN", "TGSM-AUTH-005"),
            (rpc(406, "AUTH_KEY_DUPLICATED"), .duplicated, "AUTH_KEY_DUPLICATED", "TGSM-AUTH-006"),
            (TelegramError.transport(TransportErrorCode(rawValue: -404), dc: 2), .duplicated, "AUTH_KEY_UNKNOWN", "TGSM-AUTH-007"),
        ] {
            #expect(AccountStatus.terminal(after: error, account: "alice", at: now) == AccountStatus(state: state, since: now, cause: cause, code: code))
            // The guard writes the same for the same error.
            let (client, invoker, _, statuses) = setUp()
            client.script("updates.getState", .failure(error))
            _ = await failure(invoker, Api.functions.updates.GetState())
            let marked = await statuses.status(of: "alice")
            #expect(marked?.state == state && marked?.cause == cause && marked?.code == code, "\(error)")
        }
        #expect(AccountStatus.terminal(after: rpc(420, "FLOOD_WAIT_30"), account: "alice", at: now) == nil)
        #expect(AccountStatus.terminal(after: rpc(401, "SESSION_PASSWORD_NEEDED"), account: "alice", at: now) == nil)
    }
}
