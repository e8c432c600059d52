import MTProtoCrypto
import TL
import TLSchema
import Testing
@testable import TestDC

/// The handlers driven through `DCState.handle`, as a connection would, with typed TL on both sides.
@Suite struct RPCHandlerTests {
    typealias F = Api.functions
    static let now = 1_800_000_000.0

    struct Client {
        var dc: Int32 = 1
        var keyID: Int64 = 77
        var context: CallContext { CallContext(dc: dc, authKeyID: keyID) }
    }

    func call(_ state: inout DCState, _ request: some TLEncodable, as client: Client = Client(), now: Double = now) -> RPCAnswer? {
        state.handle(request.serialized(), context: client.context, now: now).answer
    }

    func result<T: TLDecodable>(_ answer: RPCAnswer?, as _: T.Type) throws -> T {
        guard case .result(let bytes) = answer else {
            Issue.record("expected a result, got \(String(describing: answer))")
            throw TLDecodingErrorStub()
        }
        return try T(serialized: bytes)
    }

    struct TLDecodingErrorStub: Error {}

    func sendCode(_ state: inout DCState, phone: String, as client: Client = Client()) throws -> String {
        let sent = try result(call(&state, F.auth.SendCode(phoneNumber: phone, apiId: 1, apiHash: "h", settings: .codeSettings(Api.CodeSettings.CodeSettings())), as: client), as: Api.auth.SentCode.self)
        guard case .sentCode(let value) = sent else { throw TLDecodingErrorStub() }
        return value.phoneCodeHash
    }

    func signIn(_ state: inout DCState, phone: String, hash: String, code: String?, as client: Client = Client(), now: Double = now) -> RPCAnswer? {
        call(&state, F.auth.SignIn(phoneNumber: phone, phoneCodeHash: hash, phoneCode: code), as: client, now: now)
    }

    func userID(_ answer: RPCAnswer?) throws -> Int64? {
        guard case .authorization(let auth) = try result(answer, as: Api.auth.Authorization.self), case .user(let user) = auth.user else { return nil }
        return user.id
    }

    @Test func unwrapsLayerAndInitConnectionAndListsTheClusterInConfig() throws {
        var state = DCState.forTests()
        let request = F.InvokeWithLayer(layer: 229, query: F.InitConnection(
            apiId: 1, deviceModel: "d", systemVersion: "s", appVersion: "a", systemLangCode: "en", langPack: "", langCode: "en",
            query: F.InvokeWithoutUpdates(query: F.help.GetConfig())))
        guard case .config(let config) = try result(call(&state, request, as: Client(dc: 2)), as: Api.Config.self) else { return }
        #expect(config.thisDc == 2)
        let options = config.dcOptions.compactMap { option -> String? in
            guard case .dcOption(let value) = option else { return nil }
            return "\(value.id)=\(value.ipAddress):\(value.port)"
        }
        #expect(options == ["1=127.0.0.1:20001", "2=127.0.0.1:20002", "3=127.0.0.1:20003"])
    }

    @Test func callsBeforeLoginGet401AndUnknownMethodsGet400() {
        var state = DCState.forTests()
        #expect(call(&state, F.users.GetUsers(id: [.inputUserSelf(Api.InputUser.InputUserSelf())])) == .error(code: 401, message: "AUTH_KEY_UNREGISTERED"))
        var writer = TLWriter()
        writer.writeConstructorID(0x1234_5678)
        #expect(state.handle(writer.bytes, context: Client().context, now: Self.now).answer == .error(code: 400, message: "INPUT_METHOD_INVALID"))
        #expect(state.handle([1, 2], context: Client().context, now: Self.now).answer != nil)
    }

    @Test func codeLoginChecksCodeHashAndExpiry() throws {
        var state = DCState.forTests()
        let hash = try sendCode(&state, phone: "+15550001")
        #expect(state.sentCodes["15550001"]?.code == "10005")
        #expect(signIn(&state, phone: "15550001", hash: hash, code: "00000") == .error(code: 400, message: "PHONE_CODE_INVALID"))
        #expect(signIn(&state, phone: "15550001", hash: "stale", code: "10005") == .error(code: 400, message: "PHONE_CODE_EXPIRED"))
        #expect(signIn(&state, phone: "15550001", hash: hash, code: "10005", now: Self.now + 301) == .error(code: 400, message: "PHONE_CODE_EXPIRED"))
        #expect(try userID(signIn(&state, phone: "15550001", hash: hash, code: "10005")) == 1001)
        #expect(state.userID(for: Client().context) == 1001)
        let me = try result(call(&state, F.users.GetUsers(id: [.inputUserSelf(Api.InputUser.InputUserSelf())])), as: [Api.User].self)
        guard case .user(let user) = me.first else { Issue.record("no user"); return }
        #expect(user.isSelf && user.username == "alice")
    }

    @Test func accountsLiveOnTheirHomeDC() throws {
        var state = DCState.forTests()
        #expect(call(&state, F.auth.SendCode(phoneNumber: "15550003", apiId: 1, apiHash: "h", settings: .codeSettings(Api.CodeSettings.CodeSettings())))
                == .error(code: 303, message: "PHONE_MIGRATE_2"))
        let hash = try sendCode(&state, phone: "15550003", as: Client(dc: 2))
        #expect(try userID(signIn(&state, phone: "15550003", hash: hash, code: DCState.loginCode(for: "15550003"), as: Client(dc: 2))) == 1003)
    }

    @Test func unknownPhoneSignsUp() throws {
        var state = DCState.forTests()
        let hash = try sendCode(&state, phone: "19990000")
        let answer = try result(signIn(&state, phone: "19990000", hash: hash, code: DCState.loginCode(for: "19990000")), as: Api.auth.Authorization.self)
        guard case .authorizationSignUpRequired = answer else { Issue.record("expected sign-up required, got \(answer)"); return }
        let created = try userID(call(&state, F.auth.SignUp(phoneNumber: "19990000", phoneCodeHash: hash, firstName: "New", lastName: "")))
        #expect(created == 1006)
        #expect(state.world.users.last?.homeDC == 1)
    }

    @Test func twoFactorLoginVerifiesTheSRPProof() throws {
        var state = DCState.forTests()
        let hash = try sendCode(&state, phone: "15550002")
        #expect(signIn(&state, phone: "15550002", hash: hash, code: DCState.loginCode(for: "15550002")) == .error(code: 401, message: "SESSION_PASSWORD_NEEDED"))
        // Until the password comes, the key's calls say what it waits for (as Telegram's do); another key's do not.
        #expect(call(&state, F.updates.GetState()) == .error(code: 401, message: "SESSION_PASSWORD_NEEDED"))
        #expect(call(&state, F.updates.GetState(), as: Client(keyID: 99)) == .error(code: 401, message: "AUTH_KEY_UNREGISTERED"))
        var entropy = SeededEntropy(seed: 7)
        for (password, accepted) in [("wrong", false), ("hunter2", true)] {
            guard case .password(let info) = try result(call(&state, F.account.GetPassword()), as: Api.account.Password.self),
                  case .passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(let algo)? = info.currentAlgo,
                  let srpB = info.srpB, let srpID = info.srpId else {
                Issue.record("account.password has no current algorithm")
                return
            }
            #expect(info.hasPassword)
            let check = try SRP.computeCheck(password: password, parameters: SRP.Parameters(salt1: algo.salt1, salt2: algo.salt2, g: algo.g, p: algo.p), srpB: srpB, entropy: &entropy)
            let answer = call(&state, F.auth.CheckPassword(password: .inputCheckPasswordSRP(Api.InputCheckPasswordSRP.InputCheckPasswordSRP(srpId: srpID, A: check.a, M1: check.m1))))
            if accepted {
                #expect(try userID(answer) == 1002)
            } else {
                #expect(answer == .error(code: 400, message: "PASSWORD_HASH_INVALID"))
            }
        }
        if case .error(let code, let message)? = call(&state, F.updates.GetState()) {
            Issue.record("logged in by the password, yet updates.getState failed: \(code) \(message)")
        }
    }

    func futureToken(_ answer: RPCAnswer?) throws -> [UInt8]? {
        guard case .authorization(let auth) = try result(answer, as: Api.auth.Authorization.self) else { return nil }
        return auth.futureAuthToken
    }

    func sendCode(_ state: inout DCState, phone: String, tokens: [[UInt8]], as client: Client, now: Double = now) -> RPCAnswer? {
        call(&state, F.auth.SendCode(phoneNumber: phone, apiId: 1, apiHash: "h", settings: .codeSettings(Api.CodeSettings.CodeSettings(logoutTokens: tokens))),
             as: client, now: now)
    }

    /// api/auth, "Future auth tokens": a person's login and log-out hand one out; offered in a later
    /// auth.sendCode of the same account before it expires, it logs the new key in without a code
    /// (or, with a 2FA password, asks for the password alone), once.
    @Test func aFutureAuthTokenLogsInAgainWithoutACodeOnceAndUntilItExpires() throws {
        var state = DCState.forTests()
        let hash = try sendCode(&state, phone: "15550001")
        let token = try #require(try futureToken(signIn(&state, phone: "15550001", hash: hash, code: "10005")))
        #expect(token.count == 32)

        // A number without this account, or a token nobody issued: a code is sent as usual.
        #expect(try result(sendCode(&state, phone: "19990000", tokens: [token], as: Client(keyID: 80)), as: Api.auth.SentCode.self).isCodeSent)
        #expect(try result(sendCode(&state, phone: "15550001", tokens: [[1, 2, 3]], as: Client(keyID: 81)), as: Api.auth.SentCode.self).isCodeSent)
        // Expired: a code.
        #expect(try result(sendCode(&state, phone: "15550001", tokens: [token], as: Client(keyID: 82), now: Self.now + state.futureAuthTokenLifetime + 1),
                           as: Api.auth.SentCode.self).isCodeSent)

        let fresh = Client(keyID: 83)
        state.consumeCode(phone: "15550001")
        guard case .sentCodeSuccess(let success) = try result(sendCode(&state, phone: "15550001", tokens: [[9], token], as: fresh), as: Api.auth.SentCode.self),
              case .authorization(let auth) = success.authorization, case .user(let user) = auth.user else {
            Issue.record("the token did not log in")
            return
        }
        #expect(user.id == 1001)
        #expect(state.userID(for: fresh.context) == 1001)
        #expect(state.sentCodes["15550001"] == nil, "no code was sent")
        let next = try #require(auth.futureAuthToken, "the new login hands out a new token")
        #expect(next != token)
        // Used once: the same token again gets a code.
        #expect(try result(sendCode(&state, phone: "15550001", tokens: [token], as: Client(keyID: 84)), as: Api.auth.SentCode.self).isCodeSent)

        // auth.logOut hands one out too, and it logs the account in again.
        guard case .loggedOut(let out) = try result(call(&state, F.auth.LogOut(), as: fresh), as: Api.auth.LoggedOut.self) else { return }
        let afterLogOut = try #require(out.futureAuthToken)
        #expect(state.userID(for: fresh.context) == nil)
        guard case .sentCodeSuccess = try result(sendCode(&state, phone: "15550001", tokens: [afterLogOut], as: Client(keyID: 85)), as: Api.auth.SentCode.self) else {
            Issue.record("the log-out's token did not log in")
            return
        }
    }

    @Test func aFutureAuthTokenOfAnAccountWithAPasswordAsksForThePasswordAlone() throws {
        var state = DCState.forTests()
        var entropy = SeededEntropy(seed: 3)
        func logInWithPassword(_ client: Client) throws -> RPCAnswer? {
            guard case .password(let info) = try result(call(&state, F.account.GetPassword(), as: client), as: Api.account.Password.self),
                  case .passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(let algo)? = info.currentAlgo,
                  let srpB = info.srpB, let srpID = info.srpId else { throw TLDecodingErrorStub() }
            let check = try SRP.computeCheck(password: "hunter2", parameters: SRP.Parameters(salt1: algo.salt1, salt2: algo.salt2, g: algo.g, p: algo.p),
                                             srpB: srpB, entropy: &entropy)
            return call(&state, F.auth.CheckPassword(password: .inputCheckPasswordSRP(.init(srpId: srpID, A: check.a, M1: check.m1))), as: client)
        }
        let hash = try sendCode(&state, phone: "15550002")
        #expect(signIn(&state, phone: "15550002", hash: hash, code: DCState.loginCode(for: "15550002")) == .error(code: 401, message: "SESSION_PASSWORD_NEEDED"))
        let token = try #require(try futureToken(logInWithPassword(Client())))

        let fresh = Client(keyID: 90)
        state.consumeCode(phone: "15550002")
        #expect(sendCode(&state, phone: "15550002", tokens: [token], as: fresh) == .error(code: 401, message: "SESSION_PASSWORD_NEEDED"))
        #expect(state.sentCodes["15550002"] == nil, "no code was sent")
        #expect(call(&state, F.updates.GetState(), as: fresh) == .error(code: 401, message: "SESSION_PASSWORD_NEEDED"))
        #expect(try userID(logInWithPassword(fresh)) == 1002)
    }

    @Test func authorizationMovesToAnotherDCByExportAndImport() throws {
        var state = DCState.forTests()
        let hash = try sendCode(&state, phone: "15550001")
        _ = signIn(&state, phone: "15550001", hash: hash, code: "10005")
        guard case .exportedAuthorization(let token) = try result(call(&state, F.auth.ExportAuthorization(dcId: 2)), as: Api.auth.ExportedAuthorization.self) else { return }
        let other = Client(dc: 2, keyID: 99)
        #expect(call(&state, F.auth.ImportAuthorization(id: token.id, bytes: token.bytes + [0]), as: other) == .error(code: 400, message: "AUTH_BYTES_INVALID"))
        #expect(try userID(call(&state, F.auth.ImportAuthorization(id: token.id, bytes: token.bytes), as: other)) == 1001)
        #expect(call(&state, F.auth.ImportAuthorization(id: token.id, bytes: token.bytes), as: other) == .error(code: 400, message: "AUTH_BYTES_INVALID"))
    }

    @Test func botsLogInWithTheirToken() throws {
        var state = DCState.forTests()
        #expect(call(&state, F.auth.ImportBotAuthorization(flags: 0, apiId: 1, apiHash: "h", botAuthToken: "nope")) == .error(code: 400, message: "ACCESS_TOKEN_INVALID"))
        #expect(try userID(call(&state, F.auth.ImportBotAuthorization(flags: 0, apiId: 1, apiHash: "h", botAuthToken: "1005:test-bot-token"))) == 1005)
    }

    func loggedIn(_ phone: String = "15550001") throws -> DCState {
        var state = DCState.forTests()
        let hash = try sendCode(&state, phone: phone)
        _ = signIn(&state, phone: phone, hash: hash, code: DCState.loginCode(for: phone))
        return state
    }

    @Test func historyPagesNewestFirstWithOffsets() throws {
        var state = try loggedIn()
        let news = Api.InputPeer.inputPeerChannel(Api.InputPeer.InputPeerChannel(channelId: 2001, accessHash: 0x2001))
        func ids(_ request: F.messages.GetHistory) throws -> [Int32] {
            guard case .channelMessages(let page) = try result(call(&state, request), as: Api.messages.Messages.self) else { return [] }
            #expect(page.count == 30)
            return page.messages.compactMap { if case .message(let m) = $0 { m.id } else { nil } }
        }
        #expect(try ids(F.messages.GetHistory(peer: news, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 3, maxId: 0, minId: 0, hash: 0)) == [30, 29, 28])
        #expect(try ids(F.messages.GetHistory(peer: news, offsetId: 10, offsetDate: 0, addOffset: 0, limit: 3, maxId: 0, minId: 0, hash: 0)) == [9, 8, 7])
        #expect(try ids(F.messages.GetHistory(peer: news, offsetId: 10, offsetDate: 0, addOffset: -2, limit: 3, maxId: 0, minId: 0, hash: 0)) == [11, 10, 9])
        #expect(try ids(F.messages.GetHistory(peer: news, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 100, maxId: 6, minId: 2, hash: 0)) == [5, 4, 3])
        let wrongHash = Api.InputPeer.inputPeerChannel(Api.InputPeer.InputPeerChannel(channelId: 2001, accessHash: 1))
        #expect(call(&state, F.messages.GetHistory(peer: wrongHash, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 1, maxId: 0, minId: 0, hash: 0)) == .error(code: 400, message: "CHANNEL_INVALID"))
    }

    @Test func sentMessagesAppearInBothBoxes() throws {
        var state = try loggedIn()
        let bob = Api.InputPeer.inputPeerUser(Api.InputPeer.InputPeerUser(userId: 1002, accessHash: 0x0B0B))
        let sent = try result(call(&state, F.messages.SendMessage(peer: bob, message: "hi bob", randomId: 5)), as: Api.Updates.self)
        guard case .updateShortSentMessage(let short) = sent else { Issue.record("expected updateShortSentMessage, got \(sent)"); return }
        #expect(short.out && short.id == 1 && short.ptsCount == 1)
        #expect(state.privateBoxes[1002]?.map(\.text) == ["hi bob"])
        guard case .messages(let history) = try result(call(&state, F.messages.GetHistory(peer: bob, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 10, maxId: 0, minId: 0, hash: 0)), as: Api.messages.Messages.self) else { return }
        #expect(history.messages.count == 1)
        #expect(call(&state, F.messages.SendMessage(peer: bob, message: "", randomId: 6)) == .error(code: 400, message: "MESSAGE_EMPTY"))
        let news = Api.InputPeer.inputPeerChannel(Api.InputPeer.InputPeerChannel(channelId: 2001, accessHash: 0x2001))
        guard case .updates(let updates) = try result(call(&state, F.messages.SendMessage(peer: news, message: "post", randomId: 7)), as: Api.Updates.self) else { return }
        #expect(updates.updates.count == 2)
        #expect(state.world.channels[0].messages.last?.id == 31)
    }

    /// A send repeating a random_id of the same sender is refused and stores nothing (Telegram's
    /// duplicate protection); a refused send does not use its random_id up.
    @Test func aRepeatedRandomIDIsRefusedAsADuplicate() throws {
        var state = try loggedIn()
        let bob = Api.InputPeer.inputPeerUser(Api.InputPeer.InputPeerUser(userId: 1002, accessHash: 0x0B0B))
        #expect(call(&state, F.messages.SendMessage(peer: bob, message: "", randomId: 40)) == .error(code: 400, message: "MESSAGE_EMPTY"))
        _ = try result(call(&state, F.messages.SendMessage(peer: bob, message: "once", randomId: 40)), as: Api.Updates.self)
        #expect(call(&state, F.messages.SendMessage(peer: bob, message: "once", randomId: 40)) == .error(code: 500, message: "RANDOM_ID_DUPLICATE"))
        #expect(state.privateBoxes[1002]?.map(\.text) == ["once"])
        _ = try result(call(&state, F.messages.SendMessage(peer: bob, message: "twice", randomId: 41)), as: Api.Updates.self)
    }

    @Test func resolvesUsernamesOfUsersAndChannels() throws {
        var state = try loggedIn()
        guard case .resolvedPeer(let user) = try result(call(&state, F.contacts.ResolveUsername(username: "Carol")), as: Api.contacts.ResolvedPeer.self),
              case .resolvedPeer(let channel) = try result(call(&state, F.contacts.ResolveUsername(username: "testnews")), as: Api.contacts.ResolvedPeer.self) else { return }
        #expect(user.peer == .peerUser(Api.Peer.PeerUser(userId: 1003)))
        #expect(channel.peer == .peerChannel(Api.Peer.PeerChannel(channelId: 2001)))
        #expect(call(&state, F.contacts.ResolveUsername(username: "nobody")) == .error(code: 400, message: "USERNAME_NOT_OCCUPIED"))
    }

    @Test func faultsApplyBeforeTheHandlerAndRevocationLogsOut() throws {
        var state = try loggedIn()
        try state.faults.add(FaultRule(match: FaultMatch(method: "users.getFullUser", account: 1001, count: 1), effect: .floodWait(42)))
        let bob = F.users.GetFullUser(id: .inputUser(Api.InputUser.InputUser(userId: 1002, accessHash: 0x0B0B)))
        #expect(call(&state, bob) == .error(code: 420, message: "FLOOD_WAIT_42"))
        guard case .userFull(let full) = try result(call(&state, bob), as: Api.users.UserFull.self),
              case .userFull(let inner) = full.fullUser else { return }
        #expect(inner.id == 1002)
        try state.faults.add(FaultRule(match: FaultMatch(method: "updates.getState"), effect: FaultEffect(kind: .sessionRevoked)))
        #expect(call(&state, F.updates.GetState()) == .error(code: 401, message: "SESSION_REVOKED"))
        #expect(state.userID(for: Client().context) == nil)
    }

    @Test func aDroppedKeyIsRefusedOnEveryCallAndForgotten() throws {
        var state = DCState.forTests()
        let key = try AuthKeyFixture.make()
        state.registerAuthKey(key, dc: 1)
        let client = Client(dc: 1, keyID: key.id)
        state.bind(client.context, to: 1001)
        #expect(state.authKeyIDs(dc: 1) == [key.id])
        try state.faults.add(FaultRule(match: FaultMatch(method: "updates.getState", count: 1), effect: FaultEffect(kind: .authKeyDuplicated)))
        #expect(call(&state, F.updates.GetState(), as: client) == .error(code: 406, message: "AUTH_KEY_DUPLICATED"))
        #expect(call(&state, F.help.GetConfig(), as: client) == .error(code: 406, message: "AUTH_KEY_DUPLICATED"))
        #expect(state.authKeyIDs(dc: 1).isEmpty)
        #expect(state.authKey(id: key.id, dc: 1) == nil)
        #expect(state.userID(for: client.context) == nil)
    }

    @Test func aClockSkewedPast2038IsClampedNotATrap() throws {
        var state = DCState.forTests()
        guard case .config(let config) = try result(call(&state, F.help.GetConfig(), now: 1e12), as: Api.Config.self) else { return }
        #expect(config.date == Int32.max)
        #expect(DCState.date(-1e12) == Int32.min && DCState.date(.nan) == 0)
    }

    @Test func phoneFaultsMatchBeforeLogin() throws {
        var state = DCState.forTests()
        try state.faults.add(FaultRule(match: FaultMatch(method: "auth.sendCode", phone: "+1 555 0001"), effect: .migrate(.phone, to: 3)))
        #expect(call(&state, F.auth.SendCode(phoneNumber: "15550001", apiId: 1, apiHash: "h", settings: .codeSettings(Api.CodeSettings.CodeSettings())))
                == .error(code: 303, message: "PHONE_MIGRATE_3"))
    }

    @Test func deactivatedAccountsGetUserDeactivated() throws {
        var state = DCState.forTests()
        state.world.users[0].deactivated = true
        state.bind(Client().context, to: 1001)
        #expect(call(&state, F.updates.GetState()) == .error(code: 401, message: "USER_DEACTIVATED"))
    }
}

extension Api.auth.SentCode {
    var isCodeSent: Bool {
        if case .sentCode = self { return true }
        return false
    }
}
