import TL
import TLSchema

/// Users, usernames, history and sending.
extension DCState {
    enum ResolvedPeer {
        case user(World.User)
        case channel(World.Channel)
    }

    func resolveUser(_ input: Api.InputUser, viewer: Int64?) throws -> World.User {
        switch input {
        case .inputUserSelf:
            if let viewer, let me = user(id: viewer) { return me }
        case .inputUser(let value):
            if let found = user(id: value.userId), found.accessHash == value.accessHash { return found }
        default:
            break
        }
        throw RequestError(code: 400, message: "USER_ID_INVALID")
    }

    func resolvePeer(_ input: Api.InputPeer, viewer: Int64?) throws -> ResolvedPeer {
        switch input {
        case .inputPeerSelf:
            if let viewer, let me = user(id: viewer) { return .user(me) }
        case .inputPeerUser(let value):
            if let found = user(id: value.userId), found.accessHash == value.accessHash { return .user(found) }
        case .inputPeerChannel(let value):
            if let found = channel(id: value.channelId), found.accessHash == value.accessHash { return .channel(found) }
            throw RequestError(code: 400, message: "CHANNEL_INVALID")
        default:
            break
        }
        throw RequestError(code: 400, message: "PEER_ID_INVALID")
    }

    func resolveChannel(_ input: Api.InputChannel) throws -> World.Channel {
        if case .inputChannel(let value) = input, let found = channel(id: value.channelId), found.accessHash == value.accessHash {
            return found
        }
        throw RequestError(code: 400, message: "CHANNEL_INVALID")
    }

    func getUsers(_ request: Api.functions.users.GetUsers, viewer: Int64?) throws -> RPCAnswer {
        let users = request.id.compactMap { try? resolveUser($0, viewer: viewer) }
        var writer = TLWriter()
        writer.writeVector(users.map { apiUser($0, viewer: viewer) }) { $1.encode(to: &$0) }
        return .result(writer.bytes)
    }

    func getFullUser(_ request: Api.functions.users.GetFullUser, viewer: Int64?) throws -> RPCAnswer {
        let user = try resolveUser(request.id, viewer: viewer)
        let full = Api.UserFull.userFull(Api.UserFull.UserFull(
            id: user.id, about: user.bot ? "A bot of the test DC" : nil,
            settings: .peerSettings(Api.PeerSettings.PeerSettings()),
            notifySettings: .peerNotifySettings(Api.PeerNotifySettings.PeerNotifySettings()), commonChatsCount: 0))
        return .encode(Api.users.UserFull.userFull(Api.users.UserFull.UserFull(fullUser: full, chats: [], users: [apiUser(user, viewer: viewer)])))
    }

    func resolveUsername(_ request: Api.functions.contacts.ResolveUsername, viewer: Int64?) throws -> RPCAnswer {
        var name = request.username.lowercased()
        if name.hasPrefix("@") { name.removeFirst() }
        guard !name.isEmpty else { throw RequestError(code: 400, message: "USERNAME_INVALID") }
        if let user = world.users.first(where: { $0.username?.lowercased() == name }) {
            return .encode(Api.contacts.ResolvedPeer.resolvedPeer(Api.contacts.ResolvedPeer.ResolvedPeer(
                peer: .peerUser(Api.Peer.PeerUser(userId: user.id)), chats: [], users: [apiUser(user, viewer: viewer)])))
        }
        if let channel = world.channels.first(where: { $0.username?.lowercased() == name }) {
            return .encode(Api.contacts.ResolvedPeer.resolvedPeer(Api.contacts.ResolvedPeer.ResolvedPeer(
                peer: .peerChannel(Api.Peer.PeerChannel(channelId: channel.id)), chats: [apiChannel(channel)],
                users: apiUsers(channel.messages.compactMap(\.fromID), viewer: viewer))))
        }
        throw RequestError(code: 400, message: "USERNAME_NOT_OCCUPIED")
    }

    /// Telegram's paging, newest first: offset_id/offset_date pick the start (exclusive), add_offset
    /// shifts it, min_id/max_id bound the ids (exclusive), limit caps the page at 100.
    /// `newestFirst` is a lazy view (`reversed()` of the stored order); only the page is copied.
    static func page<Messages: RandomAccessCollection>(
        _ newestFirst: Messages, id: (Messages.Element) -> Int32, date: (Messages.Element) -> Int32,
        request: Api.functions.messages.GetHistory
    ) -> [Messages.Element] {
        let bounded = newestFirst.indices.filter { index in
            let messageID = id(newestFirst[index])
            return (request.maxId <= 0 || messageID < request.maxId) && (request.minId <= 0 || messageID > request.minId)
        }
        var start = 0
        if request.offsetId > 0 {
            start = bounded.firstIndex { id(newestFirst[$0]) < request.offsetId } ?? bounded.count
        } else if request.offsetDate > 0 {
            start = bounded.firstIndex { date(newestFirst[$0]) < request.offsetDate } ?? bounded.count
        }
        start += Int(request.addOffset)
        let limit = Int(max(0, min(request.limit == 0 ? 20 : request.limit, 100)))
        let lower = max(0, start)
        let upper = min(bounded.count, start + limit)
        guard lower < upper else { return [] }
        return bounded[lower..<upper].map { newestFirst[$0] }
    }

    func getHistory(_ request: Api.functions.messages.GetHistory, viewer: Int64?) throws -> RPCAnswer {
        let me = viewer ?? 0
        switch try resolvePeer(request.peer, viewer: viewer) {
        case .channel(let channel):
            let page = Self.page(channel.messages.reversed(), id: { $0.id }, date: { $0.date }, request: request)
            return .result(ChannelHistoryPage.serialized(
                pts: channelPts(channel), count: Int32(clamping: channel.messages.count), messages: page, channel: channel,
                chats: [apiChannel(channel)], users: apiUsers(page.compactMap(\.fromID), viewer: viewer)))
        case .user(let peer):
            let dialog = (privateBoxes[me] ?? []).filter { $0.peerUserID == peer.id }
            let page = Self.page(dialog.reversed(), id: { $0.id }, date: { $0.date }, request: request)
            let users = apiUsers([me, peer.id], viewer: viewer)
            if page.count == dialog.count {
                return .encode(Api.messages.Messages.messages(Api.messages.Messages.Messages(
                    messages: page.map(apiMessage), topics: [], chats: [], users: users)))
            }
            return .encode(Api.messages.Messages.messagesSlice(Api.messages.Messages.MessagesSlice(
                count: Int32(dialog.count), messages: page.map(apiMessage), topics: [], chats: [], users: users)))
        }
    }

    mutating func sendMessage(_ request: Api.functions.messages.SendMessage, viewer: Int64?, now: Double) throws -> RPCAnswer {
        guard let me = viewer else { throw RequestError(code: 401, message: "AUTH_KEY_UNREGISTERED") }
        let text = request.message
        guard !text.isEmpty else { throw RequestError(code: 400, message: "MESSAGE_EMPTY") }
        guard text.count <= 4096 else { throw RequestError(code: 400, message: "MESSAGE_TOO_LONG") }
        let date = Self.date(now)
        guard sentRandomIDs[me]?.contains(request.randomId) != true else {
            throw RequestError(code: 500, message: "RANDOM_ID_DUPLICATE")
        }
        switch try resolvePeer(request.peer, viewer: viewer) {
        case .user(let peer):
            let (id, update) = deliverPrivate(from: me, to: peer.id, text: text, date: date)
            sentRandomIDs[me, default: RecentRandomIDs()].insert(request.randomId)
            guard peer.id != me else {
                // Saved Messages: Telegram answers with the full `updates`, not updateShortSentMessage.
                return .encode(Api.Updates.updates(Api.Updates.Updates(
                    updates: [.updateMessageID(Api.Update.UpdateMessageID(id: id, randomId: request.randomId)), update],
                    users: apiUsers([me], viewer: me), chats: [], date: date, seq: 0)))
            }
            return .encode(Api.Updates.updateShortSentMessage(Api.Updates.UpdateShortSentMessage(out: true, id: id, pts: pts(user: me), ptsCount: 1, date: date)))
        case .channel(let channel):
            guard !channel.broadcast || channel.creatorID == me else { throw RequestError(code: 403, message: "CHAT_WRITE_FORBIDDEN") }
            let (stored, update) = try postToChannel(channel.id, author: me, text: text, date: date)
            sentRandomIDs[me, default: RecentRandomIDs()].insert(request.randomId)
            let updated = self.channel(id: channel.id) ?? channel
            var sent = update
            if case .updateNewChannelMessage(let value) = update, case .message(let plain) = value.message {
                // The author's copy is outgoing.
                let message = Api.Message.message(Api.Message.Message(out: true, post: plain.post, id: stored.id, fromId: plain.fromId, peerId: plain.peerId, date: date, message: text))
                sent = .updateNewChannelMessage(Api.Update.UpdateNewChannelMessage(message: message, pts: value.pts, ptsCount: value.ptsCount))
            }
            return .encode(Api.Updates.updates(Api.Updates.Updates(
                updates: [.updateMessageID(Api.Update.UpdateMessageID(id: stored.id, randomId: request.randomId)), sent],
                users: apiUsers([me], viewer: me), chats: [apiChannel(updated)], date: date, seq: 0)))
        }
    }

    mutating func appendPrivate(owner: Int64, peer: Int64, out: Bool, from: Int64, date: Int32, text: String, pairedID: Int32 = 0) -> Int32 {
        let id = (privateBoxes[owner]?.last?.id ?? 0) &+ 1
        privateBoxes[owner, default: []].append(PrivateMessage(id: id, peerUserID: peer, out: out, fromID: from, date: date, text: text, pairedID: pairedID))
        return id
    }

    mutating func pairPrivate(owner: Int64, id: Int32, with other: Int32) {
        guard let index = privateBoxes[owner]?.firstIndex(where: { $0.id == id }) else { return }
        privateBoxes[owner]?[index].pairedID = other
    }

    func channelMessages(_ request: Api.functions.channels.GetMessages, viewer: Int64?) throws -> RPCAnswer {
        let channel = try resolveChannel(request.channel)
        let messages: [Api.Message] = request.id.map { input in
            if case .inputMessageID(let wanted) = input, let found = channel.messages.first(where: { $0.id == wanted.id }) {
                return apiMessage(found, in: channel)
            }
            let id: Int32 = if case .inputMessageID(let wanted) = input { wanted.id } else { 0 }
            return .messageEmpty(Api.Message.MessageEmpty(id: id))
        }
        return .encode(Api.messages.Messages.channelMessages(Api.messages.Messages.ChannelMessages(
            pts: channelPts(channel), count: Int32(clamping: channel.messages.count),
            messages: messages, topics: [], chats: [apiChannel(channel)],
            users: apiUsers(channel.messages.compactMap(\.fromID), viewer: viewer))))
    }
}
