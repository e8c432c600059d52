import Foundation
import MTProtoCrypto
import TL
import TLSchema
import Testing
@testable import TestDC

/// Message boxes, pushes and the difference methods, driven through `DCState.handle`.
@Suite struct UpdateHandlersTests {
    typealias F = Api.functions
    static let now = 1_800_000_000.0
    static let alice = CallContext(dc: 1, authKeyID: 71)
    static let bob = CallContext(dc: 1, authKeyID: 72)

    func loggedIn() -> DCState {
        var state = DCState.forTests()
        state.bind(Self.alice, to: 1001)
        state.bind(Self.bob, to: 1002)
        return state
    }

    func call<T: TLDecodable>(_ state: inout DCState, _ request: some TLEncodable, as context: CallContext = alice, now: Double = now, _: T.Type) throws -> T {
        guard case .result(let bytes) = state.handle(request.serialized(), context: context, now: now).answer else {
            throw Refused()
        }
        return try T(serialized: bytes)
    }

    struct Refused: Error {}

    static let alicePeer = Api.InputPeer.inputPeerUser(.init(userId: 1001, accessHash: 0x0A11CE))
    static let news = Api.InputChannel.inputChannel(.init(channelId: 2001, accessHash: 0x2001))

    @Test func aPrivateMessageIsPushedToTheRecipientWithPtsAndSeq() throws {
        var state = loggedIn()
        let before = try call(&state, F.updates.GetState(), Api.updates.State.self)
        _ = try call(&state, F.messages.SendMessage(peer: Self.alicePeer, message: "hi", randomId: 1), as: Self.bob, Api.Updates.self)
        let pushes = state.takeOutbox()
        #expect(pushes.count == 1)
        #expect(pushes.first?.target == .user(1001))
        #expect(pushes.first?.name == "updateNewMessage")
        guard case .state(let old) = before, let body = pushes.first?.body, case .updates(let updates) = try Api.Updates(serialized: body),
            case .updateNewMessage(let new) = updates.updates.first
        else {
            Issue.record("expected a pushed updates(updateNewMessage)")
            return
        }
        #expect(new.pts == old.pts + 1 && new.ptsCount == 1)
        #expect(updates.seq == old.seq + 1)
        #expect(updates.users.count == 2)
        #expect(state.takeOutbox().isEmpty)
    }

    /// A service notification goes to the user's connections in an updateShort, outside every
    /// sequence: no pts and no seq move, so no difference ever carries it.
    @Test func aServiceNotificationIsPushedOutsideEverySequence() throws {
        var state = loggedIn()
        state.pushServiceNotification(to: 1001, type: "AUTH_KEY_DROP_DUPLICATE", message: "Session ended", popup: true, date: 1_800_000_000)
        let pushed = try #require(state.takeOutbox().first)
        #expect(pushed.target == .user(1001) && pushed.name == "updateServiceNotification")
        guard case .updateShort(let short) = try Api.Updates(serialized: pushed.body),
              case .updateServiceNotification(let notice) = short.update else { Issue.record("expected an updateShort"); return }
        #expect(notice.type == "AUTH_KEY_DROP_DUPLICATE" && notice.message == "Session ended" && notice.popup && notice.inboxDate == nil)
        #expect(state.userSeq[1001] == nil && state.userPts[1001] == nil)
    }

    /// A person's login is announced to the account's other sessions (updateNewAuthorization,
    /// unconfirmed, the device the new key's initConnection named), never to the new key itself.
    @Test func aLoginIsAnnouncedToTheAccountsOtherSessions() throws {
        var state = loggedIn()
        let phone = CallContext(dc: 1, authKeyID: 73)
        let settings = Api.CodeSettings.codeSettings(Api.CodeSettings.CodeSettings())
        let initConnection = F.InvokeWithLayer(layer: 229, query: F.InitConnection(
            apiId: 1, deviceModel: "Pixel 9", systemVersion: "s", appVersion: "a", systemLangCode: "en", langPack: "", langCode: "en",
            query: F.auth.SendCode(phoneNumber: "15550001", apiId: 1, apiHash: "h", settings: settings)))
        guard case .sentCode(let sent) = try call(&state, initConnection, as: phone, Api.auth.SentCode.self) else { Issue.record("no code sent"); return }
        _ = state.takeOutbox()
        _ = try call(&state, F.auth.SignIn(phoneNumber: "15550001", phoneCodeHash: sent.phoneCodeHash, phoneCode: DCState.loginCode(for: "15550001")),
                     as: phone, Api.auth.Authorization.self)
        let pushed = try #require(state.takeOutbox().first)
        #expect(pushed.target == .otherSessions(of: 1001, exceptDC: 1, keyID: 73) && pushed.name == "updateNewAuthorization")
        guard case .updateShort(let short) = try Api.Updates(serialized: pushed.body),
              case .updateNewAuthorization(let login) = short.update else { Issue.record("expected an updateShort"); return }
        #expect(login.unconfirmed && login.device == "Pixel 9" && login.location == "Test DC 1" && login.hash == 73)
    }

    @Test func getDifferenceReturnsWhatWasMissedThenNothing() throws {
        var state = loggedIn()
        guard case .state(let start) = try call(&state, F.updates.GetState(), Api.updates.State.self) else { return }
        for (index, text) in ["one", "two", "three"].enumerated() {
            _ = try call(&state, F.messages.SendMessage(peer: Self.alicePeer, message: text, randomId: Int64(index + 1)), as: Self.bob, Api.Updates.self)
        }
        let difference = try call(&state, F.updates.GetDifference(pts: start.pts + 1, date: start.date, qts: 0), Api.updates.Difference.self)
        guard case .difference(let value) = difference, case .state(let end) = value.state else {
            Issue.record("expected a difference, got \(difference)")
            return
        }
        #expect(value.newMessages.compactMap { if case .message(let m) = $0 { m.message } else { nil } } == ["two", "three"])
        #expect(end.pts == start.pts + 3)
        #expect(value.users.contains { if case .user(let user) = $0 { user.id == 1002 } else { false } })
        let again = try call(&state, F.updates.GetDifference(pts: end.pts, date: end.date + 1, qts: 0), Api.updates.Difference.self)
        guard case .differenceEmpty = again else {
            Issue.record("expected differenceEmpty, got \(again)")
            return
        }
    }

    @Test func aLongDifferenceComesInSlices() throws {
        var state = loggedIn()
        for index in 0..<(DCState.differenceSliceLimit + 5) {
            _ = state.deliverPrivate(from: 1002, to: 1001, text: "m\(index)", date: 10)
        }
        let first = try call(&state, F.updates.GetDifference(pts: 1, date: 0, qts: 0), Api.updates.Difference.self)
        guard case .differenceSlice(let slice) = first, case .state(let middle) = slice.intermediateState else {
            Issue.record("expected a slice, got \(first)")
            return
        }
        #expect(slice.newMessages.count == DCState.differenceSliceLimit)
        let rest = try call(&state, F.updates.GetDifference(pts: middle.pts, date: middle.date, qts: 0), Api.updates.Difference.self)
        guard case .difference(let value) = rest else {
            Issue.record("expected the rest, got \(rest)")
            return
        }
        #expect(value.newMessages.count == 5)
    }

    @Test func aPtsFromTheFutureIsTooLong() throws {
        var state = loggedIn()
        let answer = try call(&state, F.updates.GetDifference(pts: 999, date: 0, qts: 0), Api.updates.Difference.self)
        #expect(answer == .differenceTooLong(.init(pts: 1)))
    }

    @Test func channelPostsAndEditsHaveChannelPtsAndAChannelDifference() throws {
        var state = loggedIn()
        let base = state.channelPts(state.channel(id: 2001) ?? World.default.channels[0])
        let (post, _) = try state.postToChannel(2001, author: nil, text: "news", date: 50)
        _ = try state.editChannelMessage(2001, id: post.id, text: "news, corrected", editor: nil, date: 60)
        let pushes = state.takeOutbox()
        #expect(pushes.filter { $0.target == .user(1001) }.map(\.name) == ["updateNewChannelMessage", "updateEditChannelMessage"])
        #expect(!pushes.contains { $0.target == .user(1005) })  // bots read no channels here
        let difference = try call(&state, F.updates.GetChannelDifference(channel: Self.news, filter: .channelMessagesFilterEmpty(.init()), pts: base, limit: 1), Api.updates.ChannelDifference.self)
        guard case .channelDifference(let first) = difference else {
            Issue.record("expected a channel difference, got \(difference)")
            return
        }
        #expect(!first.final && first.pts == base + 1 && first.newMessages.count == 1)
        let rest = try call(&state, F.updates.GetChannelDifference(channel: Self.news, filter: .channelMessagesFilterEmpty(.init()), pts: first.pts, limit: 10), Api.updates.ChannelDifference.self)
        guard case .channelDifference(let second) = rest else {
            Issue.record("expected the edit, got \(rest)")
            return
        }
        #expect(second.final && second.pts == base + 2 && second.otherUpdates.count == 1)
        let empty = try call(&state, F.updates.GetChannelDifference(channel: Self.news, filter: .channelMessagesFilterEmpty(.init()), pts: base + 2, limit: 10), Api.updates.ChannelDifference.self)
        #expect(empty == .channelDifferenceEmpty(.init(final: true, pts: base + 2, timeout: 30)))
        let old = try call(&state, F.updates.GetChannelDifference(channel: Self.news, filter: .channelMessagesFilterEmpty(.init()), pts: 3, limit: 10), Api.updates.ChannelDifference.self)
        guard case .channelDifferenceTooLong = old else {
            Issue.record("expected channelDifferenceTooLong for a pts before the log, got \(old)")
            return
        }
    }

    @Test func getDifferenceNamesChannelsWithNewsSinceTheClientsDate() throws {
        var state = loggedIn()
        _ = try state.postToChannel(2001, author: nil, text: "late news", date: 500)
        let difference = try call(&state, F.updates.GetDifference(pts: state.pts(user: 1001), date: 400, qts: 0), Api.updates.Difference.self)
        guard case .difference(let value) = difference, case .updateChannelTooLong(let tooLong) = value.otherUpdates.first else {
            Issue.record("expected updateChannelTooLong, got \(difference)")
            return
        }
        #expect(tooLong.channelId == 2001)
        #expect(value.chats.count == 1)
    }

    @Test func editingAPrivateMessageUpdatesBothBoxes() throws {
        var state = loggedIn()
        let bobPeer = Api.InputPeer.inputPeerUser(.init(userId: 1002, accessHash: 0x0B0B))
        guard case .updateShortSentMessage(let sent) = try call(&state, F.messages.SendMessage(peer: bobPeer, message: "helo", randomId: 1), Api.Updates.self) else { return }
        _ = state.takeOutbox()
        let edited = try call(&state, F.messages.EditMessage(peer: bobPeer, id: sent.id, message: "hello"), Api.Updates.self)
        guard case .updates(let own) = edited, case .updateEditMessage(let update) = own.updates.first else {
            Issue.record("expected updates(updateEditMessage), got \(edited)")
            return
        }
        #expect(update.pts == sent.pts + 1)
        #expect(state.privateBoxes[1002]?.last?.text == "hello")
        #expect(state.takeOutbox().map(\.name) == ["updateEditMessage"])
        #expect(state.handle(F.messages.EditMessage(peer: bobPeer, id: sent.id, message: "hello").serialized(), context: Self.alice, now: Self.now).answer
            == .error(code: 400, message: "MESSAGE_NOT_MODIFIED"))
    }

    @Test func savedMessagesAnswerWithFullUpdates() throws {
        var state = loggedIn()
        let answer = try call(&state, F.messages.SendMessage(peer: .inputPeerSelf(.init()), message: "note", randomId: 9), Api.Updates.self)
        guard case .updates(let updates) = answer, case .updateMessageID(let id) = updates.updates.first,
            case .updateNewMessage = updates.updates.last
        else {
            Issue.record("expected updates(updateMessageID, updateNewMessage), got \(answer)")
            return
        }
        #expect(id.randomId == 9)
        #expect(state.takeOutbox().isEmpty)
    }

    @Test func dropUpdatesRulesOnlyTouchPushes() throws {
        var engine = FaultEngine()
        try engine.add(FaultRule(match: FaultMatch(method: "updateNewMessage", account: 1001, count: 1), effect: FaultEffect(kind: .dropUpdates)))
        #expect(engine.decide(FaultCall(dc: 1, method: "updateNewMessage", account: 1001), now: 0).outcome == .proceed)
        let otherAccount = engine.dropsPush(FaultCall(dc: 1, method: "updateNewMessage", account: 1002))
        let first = engine.dropsPush(FaultCall(dc: 1, method: "updateNewMessage", account: 1001))
        let second = engine.dropsPush(FaultCall(dc: 1, method: "updateNewMessage", account: 1001))
        #expect(!otherAccount && first && !second)
    }

    @Test func theControlAPIPostsEditsAndSendsAndHealthHasNumbers() throws {
        let core = TestDCCore(state: DCState.forTests(), clock: { 1_800_000_000 })
        let api = ControlAPI(core: core, table: { ClusterTable(dcs: [], control: nil) })
        let posted = api.handle(method: .POST, uri: "/channels/2001/messages", body: Data(#"{"text": "from control"}"#.utf8))
        #expect(posted.status == .created)
        #expect(core.withState { $0.channel(id: 2001)?.messages.last?.text } == "from control")
        let edited = api.handle(method: .POST, uri: "/channels/2001/messages/31", body: Data(#"{"text": "edited"}"#.utf8))
        #expect(edited.status == .ok)
        #expect(core.withState { $0.channel(id: 2001)?.messages.last?.editDate } == 1_800_000_000)
        let sent = api.handle(method: .POST, uri: "/messages", body: Data(#"{"fromID": 1002, "toID": 1001, "text": "psst"}"#.utf8))
        #expect(sent.status == .created)
        #expect(core.withState { $0.privateBoxes[1001]?.last?.text } == "psst")
        let refused = api.handle(method: .POST, uri: "/channels/9999/messages", body: Data(#"{"text": "x"}"#.utf8))
        #expect(refused.status == .badRequest)
        let health = try JSONSerialization.jsonObject(with: api.handle(method: .GET, uri: "/health", body: Data()).body) as? [String: Any]
        #expect(health?["dcs"] is Int)
        #expect(health?["connections"] as? Int == 0)
        #expect(health?["status"] as? String == "ok")
    }
}
