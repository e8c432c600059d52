import MTProto
import MTProtoClient
import SessionManager
import Synchronization
import TL
import TLSchema
import Testing

/// Future auth tokens (api/auth): kept from logins and log-outs, offered back with the code request
/// of the same phone only, and never a reason for a login to fail.
@Suite struct FutureAuthTokenMiddlewareTests {
    /// Answers each call from a script and keeps every auth.sendCode it saw.
    final class Recorder: TelegramInvoking {
        let answers = Mutex<[String: any Sendable]>([:])
        let sendCodes = Mutex<[Api.functions.auth.SendCode]>([])

        func answer(_ method: String, _ value: any Sendable) { answers.withLock { $0[method] = value } }

        var offered: [[UInt8]]? {
            sendCodes.withLock { $0.last }.flatMap { request in
                guard case .codeSettings(let settings) = request.settings else { return nil }
                return settings.logoutTokens
            }
        }

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            if let sendCode = request as? Api.functions.auth.SendCode { sendCodes.withLock { $0.append(sendCode) } }
            let answer = answers.withLock { $0[Request.tlName] } ?? ScriptedInvoker.defaultAnswer(Request.tlName)
            guard let result = answer as? Request.Result else { throw .undecodableResult(method: Request.tlName, reason: "no scripted answer") }
            return result
        }
    }

    static func login(phone: String?, token: [UInt8]?, bot: Bool = false) -> Api.auth.Authorization {
        .authorization(.init(futureAuthToken: token, user: .user(.init(bot: bot, id: 1001, phone: phone))))
    }

    static func sendCode(_ phone: String, tokens: [[UInt8]]? = nil) -> Api.functions.auth.SendCode {
        Api.functions.auth.SendCode(phoneNumber: phone, apiId: 1, apiHash: "h", settings: .codeSettings(.init(allowFlashcall: true, logoutTokens: tokens)))
    }

    static let signIn = Api.functions.auth.SignIn(phoneNumber: "15550001", phoneCodeHash: "hash", phoneCode: "12345")

    func wrapped(_ recorder: Recorder, store: any FloodLedgerStore, clock: TestClock = TestClock(), account: AccountID = "alice") -> any TelegramInvoking {
        recorder.wrapped(in: [FutureAuthTokenMiddleware(account: account, store: store, clock: clock, logger: quietLogger)])
    }

    @Test func aLoginsTokenIsOfferedWithTheNextCodeRequestOfThatPhoneOnly() async throws {
        let store = InMemoryFloodLedgerStore()
        let recorder = Recorder()
        let invoker = wrapped(recorder, store: store)
        _ = try await invoker.invoke(Self.sendCode("+1 555 0001"), options: InvokeOptions())
        #expect(recorder.offered == nil, "nothing kept yet: the request goes out as it was")
        recorder.answer("auth.signIn", Self.login(phone: "15550001", token: [1, 2, 3]))
        _ = try await invoker.invoke(Self.signIn, options: InvokeOptions())

        // Every other setting of the caller goes out unchanged.
        func settings(_ tokens: [[UInt8]]?) -> Api.CodeSettings {
            .codeSettings(.init(allowFlashcall: true, currentNumber: true, allowAppHash: true, allowMissedCall: true, allowFirebase: true,
                                unknownNumber: true, logoutTokens: tokens, token: "push-token", appSandbox: false))
        }
        _ = try await invoker.invoke(Api.functions.auth.SendCode(phoneNumber: "+1 555 0001", apiId: 1, apiHash: "h", settings: settings(nil)),
                                     options: InvokeOptions())
        #expect(recorder.offered == [[1, 2, 3]])
        let sent = try #require(recorder.sendCodes.withLock { $0.last?.settings })
        #expect(sent.serialized() == settings([[1, 2, 3]]).serialized())
        // Another account name of the store for the same number gets them too; another number does not.
        _ = try await wrapped(recorder, store: store, account: "alice-2").invoke(Self.sendCode("15550001"), options: InvokeOptions())
        #expect(recorder.offered == [[1, 2, 3]])
        _ = try await invoker.invoke(Self.sendCode("15550002"), options: InvokeOptions())
        #expect(recorder.offered == nil)
        // Tokens the caller passed itself are left as they are.
        _ = try await invoker.invoke(Self.sendCode("15550001", tokens: [[9]]), options: InvokeOptions())
        #expect(recorder.offered == [[9]])
    }

    @Test func everyKindOfLoginAnswerKeepsItsTokenNewestFirstUpToTwenty() async throws {
        let store = InMemoryFloodLedgerStore()
        let clock = TestClock()
        let recorder = Recorder()
        let invoker = wrapped(recorder, store: store, clock: clock)
        var expected: [[UInt8]] = []
        for n in 0..<24 {
            clock.advance(by: 1)
            let token: [UInt8] = [UInt8(n), 0xF7]
            expected.insert(token, at: 0)
            switch n % 3 {
            case 0:
                recorder.answer("auth.signIn", Self.login(phone: "15550001", token: token))
                _ = try await invoker.invoke(Self.signIn, options: InvokeOptions())
            case 1:
                recorder.answer("auth.sendCode", Api.auth.SentCode.sentCodeSuccess(.init(authorization: Self.login(phone: "15550001", token: token))))
                _ = try await invoker.invoke(Self.sendCode("15550001"), options: InvokeOptions())
            default:
                recorder.answer("auth.importLoginToken", Api.auth.LoginToken.loginTokenSuccess(.init(authorization: Self.login(phone: "15550001", token: token))))
                _ = try await invoker.invoke(Api.functions.auth.ImportLoginToken(token: [1]), options: InvokeOptions())
            }
        }
        let kept = await store.futureAuthTokens(phoneKey: store.phoneKey(for: "15550001"))
        #expect(kept.map(\.bytes) == Array(expected.prefix(FutureAuthToken.limit)))
        #expect(kept.first?.receivedAt == clock.now())
    }

    @Test func aLogOutsTokenGoesToThePhoneOfTheAccountsLogin() async throws {
        let store = InMemoryFloodLedgerStore()
        let recorder = Recorder()
        recorder.answer("auth.logOut", Api.auth.LoggedOut.loggedOut(.init(futureAuthToken: [7, 7])))
        // No login of this account was seen: whose number the token is for is unknown, so it is not kept.
        _ = try await wrapped(recorder, store: store, account: "bob").invoke(Api.functions.auth.LogOut(), options: InvokeOptions())
        #expect(await store.futureAuthTokenPhoneKey(account: "bob") == nil)

        let invoker = wrapped(recorder, store: store)
        recorder.answer("auth.signIn", Self.login(phone: "15550001", token: [1]))
        _ = try await invoker.invoke(Self.signIn, options: InvokeOptions())
        _ = try await invoker.invoke(Api.functions.auth.LogOut(), options: InvokeOptions())
        let kept = await store.futureAuthTokens(phoneKey: store.phoneKey(for: "15550001"))
        #expect(Set(kept.map(\.bytes)) == [[1], [7, 7]])
    }

    @Test func botsAndAnswersWithoutATokenKeepNothing() async throws {
        let store = InMemoryFloodLedgerStore()
        let recorder = Recorder()
        let invoker = wrapped(recorder, store: store)
        recorder.answer("auth.importBotAuthorization", Self.login(phone: nil, token: [4], bot: true))
        _ = try await invoker.invoke(Api.functions.auth.ImportBotAuthorization(flags: 0, apiId: 1, apiHash: "h", botAuthToken: "t"), options: InvokeOptions())
        recorder.answer("auth.signIn", Self.login(phone: "15550001", token: nil))
        _ = try await invoker.invoke(Self.signIn, options: InvokeOptions())
        #expect(await store.futureAuthTokenPhoneKey(account: "alice") == nil)
    }

    /// A store that cannot be read or written costs the shortcut, not the login.
    @Test func aBrokenStoreNeitherFailsTheLoginNorHoldsBackTheCodeRequest() async throws {
        let recorder = Recorder()
        let invoker = wrapped(recorder, store: BrokenLedgerStore())
        recorder.answer("auth.signIn", Self.login(phone: "15550001", token: [1]))
        _ = try await invoker.invoke(Self.signIn, options: InvokeOptions())
        _ = try await invoker.invoke(Self.sendCode("15550001"), options: InvokeOptions())
        #expect(recorder.offered == nil)
        #expect(recorder.sendCodes.withLock(\.count) == 1)
    }
}
