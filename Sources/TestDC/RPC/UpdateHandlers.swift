import TL
import TLSchema

/// One event of a message box (an account's common box or a channel), kept so that
/// updates.getDifference / updates.getChannelDifference can replay what a client missed.
struct LoggedUpdate: Sendable, Equatable {
    /// The box's pts after the event, and how many events it holds (always 1 here).
    var pts: Int32
    var ptsCount: Int32
    var date: Int32
    var update: Api.Update
}

/// An update the DC sends to live connections without being asked (msg_id ≡ 3 mod 4).
public struct PendingPush: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        /// Every live connection logged in as this account.
        case user(Int64)
        /// The connections using one auth key (a QR-login session that is not logged in yet).
        case authKey(dc: Int32, keyID: Int64)
        /// Every live connection of this account except those on one key: the account's other
        /// sessions, told of a login made on that key.
        case otherSessions(of: Int64, exceptDC: Int32, keyID: Int64)
    }

    public var target: Target
    /// The TL name of the first update inside: what a `dropUpdates` fault rule's `method` matches.
    public var name: String
    /// A serialized `Updates`.
    public var body: [UInt8]
}

/// Message boxes, pts/seq, pushes, and the difference methods.
extension DCState {
    /// Most events one updates.getDifference returns; more come as updates.differenceSlice.
    static let differenceSliceLimit = 100
    /// Most events one updates.getChannelDifference returns (the request's limit may ask for fewer).
    static let channelDifferenceLimit = 100

    /// Takes the pushes made since the last call.
    mutating func takeOutbox() -> [PendingPush] {
        defer { outbox.removeAll() }
        return outbox
    }

    // MARK: - Logging events

    /// Appends one event to an account's common box: the next pts is passed to `make`.
    mutating func logUserUpdate(_ user: Int64, date: Int32, make: (Int32) -> Api.Update) -> Api.Update {
        let pts = nextPts(user: user)
        let update = make(pts)
        userUpdateLogs[user, default: []].append(LoggedUpdate(pts: pts, ptsCount: 1, date: date, update: update))
        return update
    }

    mutating func logChannelUpdate(_ channel: World.Channel, date: Int32, make: (Int32) -> Api.Update) -> Api.Update {
        let pts = channelPts(channel) &+ 1
        channelPts[channel.id] = pts
        boxesVersion &+= 1
        let update = make(pts)
        channelUpdateLogs[channel.id, default: []].append(LoggedUpdate(pts: pts, ptsCount: 1, date: date, update: update))
        return update
    }

    /// Queues `updates` for every live connection of `user`, with the account's next seq.
    mutating func push(to user: Int64, _ updates: [Api.Update], users: [Int64], chats: [Api.Chat], date: Int32) {
        guard let first = updates.first else { return }
        let seq = (userSeq[user] ?? 0) &+ 1
        userSeq[user] = seq
        boxesVersion &+= 1
        let body = Api.Updates.updates(Api.Updates.Updates(
            updates: updates, users: apiUsers(users, viewer: user), chats: chats, date: date, seq: seq))
        outbox.append(PendingPush(target: .user(user), name: Self.name(of: first), body: body.serialized()))
    }

    /// A service notification (updateServiceNotification) for every live connection of `user`, in
    /// an updateShort: outside every sequence (no pts, no seq), as Telegram sends one.
    mutating func pushServiceNotification(to user: Int64, type: String, message: String, popup: Bool, date: Int32) {
        let update = Api.Update.updateServiceNotification(Api.Update.UpdateServiceNotification(
            popup: popup, inboxDate: popup ? nil : date, type: type, message: message,
            media: .messageMediaEmpty(Api.MessageMedia.MessageMediaEmpty()), entities: []))
        let body = Api.Updates.updateShort(Api.Updates.UpdateShort(update: update, date: date))
        outbox.append(PendingPush(target: .user(user), name: Self.name(of: update), body: body.serialized()))
    }

    /// api/auth, "Confirming login": a person's new login is announced to the account's other
    /// sessions (updateNewAuthorization, unconfirmed, with the device the new key's initConnection
    /// named and where it came from), outside every sequence.
    mutating func announceLogin(of user: Int64, by context: CallContext, now: Double) {
        let device = initConnections.last { $0.dc == context.dc && $0.authKeyID == context.authKeyID }?.deviceModel ?? "an unknown device"
        let update = Api.Update.updateNewAuthorization(Api.Update.UpdateNewAuthorization(
            unconfirmed: true, hash: context.authKeyID, date: Self.date(now), device: device, location: "Test DC \(context.dc)"))
        let body = Api.Updates.updateShort(Api.Updates.UpdateShort(update: update, date: Self.date(now)))
        outbox.append(PendingPush(target: .otherSessions(of: user, exceptDC: context.dc, keyID: context.authKeyID), name: Self.name(of: update), body: body.serialized()))
    }

    // MARK: - Private messages and channel posts

    /// Stores a private message in both boxes and pushes updateNewMessage to the recipient. Returns
    /// the sender's copy and the sender's update (its pts is the sender's box pts).
    mutating func deliverPrivate(from sender: Int64, to recipient: Int64, text: String, date: Int32) -> (id: Int32, update: Api.Update) {
        let ownID = appendPrivate(owner: sender, peer: recipient, out: true, from: sender, date: date, text: text)
        let ownMessage = apiMessage(PrivateMessage(id: ownID, peerUserID: recipient, out: true, fromID: sender, date: date, text: text))
        let ownUpdate = logUserUpdate(sender, date: date) { .updateNewMessage(Api.Update.UpdateNewMessage(message: ownMessage, pts: $0, ptsCount: 1)) }
        guard recipient != sender else { return (ownID, ownUpdate) }
        let theirID = appendPrivate(owner: recipient, peer: sender, out: false, from: sender, date: date, text: text, pairedID: ownID)
        pairPrivate(owner: sender, id: ownID, with: theirID)
        let theirMessage = apiMessage(PrivateMessage(id: theirID, peerUserID: sender, out: false, fromID: sender, date: date, text: text))
        let theirUpdate = logUserUpdate(recipient, date: date) { .updateNewMessage(Api.Update.UpdateNewMessage(message: theirMessage, pts: $0, ptsCount: 1)) }
        push(to: recipient, [theirUpdate], users: [sender, recipient], chats: [], date: date)
        return (ownID, ownUpdate)
    }

    /// Appends a post to a channel, logs updateNewChannelMessage and pushes it to every account
    /// except `author` (who gets it as the answer). Every account of the world reads every channel.
    mutating func postToChannel(_ channelID: Int64, author: Int64?, text: String, date: Int32) throws -> (message: World.Message, update: Api.Update) {
        guard let index = world.channels.firstIndex(where: { $0.id == channelID }) else { throw RequestError(code: 400, message: "CHANNEL_INVALID") }
        guard !text.isEmpty else { throw RequestError(code: 400, message: "MESSAGE_EMPTY") }
        guard text.count <= 4096 else { throw RequestError(code: 400, message: "MESSAGE_TOO_LONG") }
        let (id, overflow) = (world.channels[index].messages.last?.id ?? 0).addingReportingOverflow(1)
        guard !overflow else { throw RequestError(code: 400, message: "MESSAGE_ID_INVALID") }
        let broadcast = world.channels[index].broadcast
        // Fix the pts before the post counts toward the default (one per stored message).
        if channelPts[channelID] == nil { channelPts[channelID] = channelPts(world.channels[index]) }
        let stored = World.Message(id: id, fromID: broadcast ? nil : author, date: date, text: text)
        world.channels[index].messages.append(stored)
        let channel = world.channels[index]
        let message = apiMessage(stored, in: channel)
        let update = logChannelUpdate(channel, date: date) { .updateNewChannelMessage(Api.Update.UpdateNewChannelMessage(message: message, pts: $0, ptsCount: 1)) }
        for user in world.users where user.id != author && !user.bot {
            push(to: user.id, [update], users: stored.fromID.map { [$0] } ?? [], chats: [apiChannel(channel)], date: date)
        }
        return (stored, update)
    }

    /// Edits a channel post (the control endpoint, or messages.editMessage by its author or the creator).
    mutating func editChannelMessage(_ channelID: Int64, id: Int32, text: String, editor: Int64?, date: Int32) throws -> Api.Update {
        guard let index = world.channels.firstIndex(where: { $0.id == channelID }) else { throw RequestError(code: 400, message: "CHANNEL_INVALID") }
        guard let position = world.channels[index].messages.firstIndex(where: { $0.id == id }) else { throw RequestError(code: 400, message: "MESSAGE_ID_INVALID") }
        guard !text.isEmpty else { throw RequestError(code: 400, message: "MESSAGE_EMPTY") }
        guard text.count <= 4096 else { throw RequestError(code: 400, message: "MESSAGE_TOO_LONG") }
        if let editor {
            let stored = world.channels[index].messages[position]
            guard stored.fromID == editor || world.channels[index].creatorID == editor else { throw RequestError(code: 403, message: "MESSAGE_AUTHOR_REQUIRED") }
        }
        guard world.channels[index].messages[position].text != text else { throw RequestError(code: 400, message: "MESSAGE_NOT_MODIFIED") }
        world.channels[index].messages[position].text = text
        world.channels[index].messages[position].editDate = date
        let channel = world.channels[index]
        let message = apiMessage(channel.messages[position], in: channel)
        let update = logChannelUpdate(channel, date: date) { .updateEditChannelMessage(Api.Update.UpdateEditChannelMessage(message: message, pts: $0, ptsCount: 1)) }
        for user in world.users where user.id != editor && !user.bot {
            push(to: user.id, [update], users: channel.messages[position].fromID.map { [$0] } ?? [], chats: [apiChannel(channel)], date: date)
        }
        return update
    }

    mutating func editMessage(_ request: Api.functions.messages.EditMessage, viewer: Int64?, now: Double) throws -> RPCAnswer {
        guard let me = viewer else { throw RequestError(code: 401, message: "AUTH_KEY_UNREGISTERED") }
        guard let text = request.message else { throw RequestError(code: 400, message: "MESSAGE_EMPTY") }
        let date = Self.date(now)
        switch try resolvePeer(request.peer, viewer: viewer) {
        case .channel(let channel):
            let update = try editChannelMessage(channel.id, id: request.id, text: text, editor: me, date: date)
            let updated = self.channel(id: channel.id) ?? channel
            return .encode(Api.Updates.updates(Api.Updates.Updates(
                updates: [update], users: apiUsers([me], viewer: me), chats: [apiChannel(updated)], date: date, seq: 0)))
        case .user(let peer):
            guard !text.isEmpty else { throw RequestError(code: 400, message: "MESSAGE_EMPTY") }
            guard text.count <= 4096 else { throw RequestError(code: 400, message: "MESSAGE_TOO_LONG") }
            guard let own = privateBoxes[me]?.firstIndex(where: { $0.id == request.id && $0.peerUserID == peer.id }) else {
                throw RequestError(code: 400, message: "MESSAGE_ID_INVALID")
            }
            guard privateBoxes[me]?[own].out == true else { throw RequestError(code: 403, message: "MESSAGE_AUTHOR_REQUIRED") }
            guard privateBoxes[me]?[own].text != text else { throw RequestError(code: 400, message: "MESSAGE_NOT_MODIFIED") }
            privateBoxes[me]?[own].text = text
            privateBoxes[me]?[own].editDate = date
            guard let mine = privateBoxes[me]?[own] else { throw RequestError(code: 400, message: "MESSAGE_ID_INVALID") }
            let ownMessage = apiMessage(mine)
            let ownUpdate = logUserUpdate(me, date: date) { .updateEditMessage(Api.Update.UpdateEditMessage(message: ownMessage, pts: $0, ptsCount: 1)) }
            if peer.id != me, let theirs = privateBoxes[peer.id]?.firstIndex(where: { $0.id == mine.pairedID && $0.peerUserID == me }) {
                privateBoxes[peer.id]?[theirs].text = text
                privateBoxes[peer.id]?[theirs].editDate = date
                if let copy = privateBoxes[peer.id]?[theirs] {
                    let theirMessage = apiMessage(copy)
                    let theirUpdate = logUserUpdate(peer.id, date: date) {
                        .updateEditMessage(Api.Update.UpdateEditMessage(message: theirMessage, pts: $0, ptsCount: 1))
                    }
                    push(to: peer.id, [theirUpdate], users: [me, peer.id], chats: [], date: date)
                }
            }
            return .encode(Api.Updates.updates(Api.Updates.Updates(
                updates: [ownUpdate], users: apiUsers([me, peer.id], viewer: me), chats: [], date: date, seq: 0)))
        }
    }

    // MARK: - State and difference

    func updatesState(of user: Int64, now: Double) -> Api.updates.State {
        .state(Api.updates.State.State(pts: pts(user: user), qts: 0, date: Self.date(now), seq: userSeq[user] ?? 0, unreadCount: 0))
    }

    /// The events of the account's box after the client's pts (sliced), plus updateChannelTooLong for
    /// every channel with events since the client's date, as the spec has clients fetch those per channel.
    func getDifference(_ request: Api.functions.updates.GetDifference, viewer: Int64, now: Double) -> RPCAnswer {
        let current = pts(user: viewer)
        let seq = userSeq[viewer] ?? 0
        // A pts from the future (a DC restarted without its boxes) cannot be caught up: start over.
        guard request.pts <= current else { return .encode(Api.updates.Difference.differenceTooLong(Api.updates.Difference.DifferenceTooLong(pts: current))) }
        let pending = (userUpdateLogs[viewer] ?? []).filter { $0.pts > request.pts }
        let limit = min(max(Int(request.ptsTotalLimit ?? Int32(Self.differenceSliceLimit)), 1), Self.differenceSliceLimit)
        let slice = Array(pending.prefix(limit))
        let isSlice = slice.count < pending.count
        var others: [Api.Update] = []
        var messages: [Api.Message] = []
        var userIDs: [Int64] = [viewer]
        for entry in slice {
            switch entry.update {
            case .updateNewMessage(let value):
                messages.append(value.message)
                userIDs += Self.userIDs(in: value.message)
            case .updateEditMessage(let value):
                others.append(entry.update)
                userIDs += Self.userIDs(in: value.message)
            default:
                others.append(entry.update)
            }
        }
        var chats: [Api.Chat] = []
        if !isSlice {
            for channel in world.channels where (channelUpdateLogs[channel.id] ?? []).contains(where: { $0.date >= request.date }) {
                others.append(.updateChannelTooLong(Api.Update.UpdateChannelTooLong(channelId: channel.id, pts: channelPts(channel))))
                chats.append(apiChannel(channel))
            }
        }
        if messages.isEmpty && others.isEmpty {
            return .encode(Api.updates.Difference.differenceEmpty(Api.updates.Difference.DifferenceEmpty(date: Self.date(now), seq: seq)))
        }
        let users = apiUsers(userIDs, viewer: viewer)
        if isSlice, let last = slice.last {
            let intermediate = Api.updates.State.state(Api.updates.State.State(pts: last.pts, qts: 0, date: last.date, seq: seq, unreadCount: 0))
            return .encode(Api.updates.Difference.differenceSlice(Api.updates.Difference.DifferenceSlice(
                newMessages: messages, newEncryptedMessages: [], otherUpdates: others, chats: chats, users: users, intermediateState: intermediate)))
        }
        return .encode(Api.updates.Difference.difference(Api.updates.Difference.Difference(
            newMessages: messages, newEncryptedMessages: [], otherUpdates: others, chats: chats, users: users, state: updatesState(of: viewer, now: now))))
    }

    func getChannelDifference(_ request: Api.functions.updates.GetChannelDifference, viewer: Int64?) throws -> RPCAnswer {
        let channel = try resolveChannel(request.channel)
        let current = channelPts(channel)
        let log = channelUpdateLogs[channel.id] ?? []
        // The DC keeps the events since it started; an older pts gets the channel's latest messages instead.
        let oldest = log.first.map { $0.pts - $0.ptsCount } ?? current
        guard request.pts > 0, request.pts >= oldest, request.pts <= current else {
            let latest = Array(channel.messages.suffix(Self.channelDifferenceLimit))
            let top = channel.messages.last?.id ?? 0
            let dialog = Api.Dialog.dialog(Api.Dialog.Dialog(
                peer: .peerChannel(Api.Peer.PeerChannel(channelId: channel.id)), topMessage: top, readInboxMaxId: top, readOutboxMaxId: top,
                unreadCount: 0, unreadMentionsCount: 0, unreadReactionsCount: 0, unreadPollVotesCount: 0,
                notifySettings: .peerNotifySettings(Api.PeerNotifySettings.PeerNotifySettings()), pts: current))
            return .encode(Api.updates.ChannelDifference.channelDifferenceTooLong(Api.updates.ChannelDifference.ChannelDifferenceTooLong(
                final: true, dialog: dialog, messages: latest.reversed().map { apiMessage($0, in: channel) }, chats: [apiChannel(channel)],
                users: apiUsers(latest.compactMap(\.fromID), viewer: viewer))))
        }
        let pending = log.filter { $0.pts > request.pts }
        guard !pending.isEmpty else {
            return .encode(Api.updates.ChannelDifference.channelDifferenceEmpty(Api.updates.ChannelDifference.ChannelDifferenceEmpty(final: true, pts: current, timeout: 30)))
        }
        let limit = request.limit <= 0 ? Self.channelDifferenceLimit : min(Int(request.limit), Self.channelDifferenceLimit)
        let slice = Array(pending.prefix(limit))
        let final = slice.count == pending.count
        var messages: [Api.Message] = []
        var others: [Api.Update] = []
        var userIDs: [Int64] = []
        for entry in slice {
            if case .updateNewChannelMessage(let value) = entry.update {
                messages.append(value.message)
                userIDs += Self.userIDs(in: value.message)
            } else {
                others.append(entry.update)
            }
        }
        return .encode(Api.updates.ChannelDifference.channelDifference(Api.updates.ChannelDifference.ChannelDifference(
            final: final, pts: final ? current : (slice.last?.pts ?? current), timeout: 30, newMessages: messages, otherUpdates: others,
            chats: [apiChannel(channel)], users: apiUsers(userIDs, viewer: viewer))))
    }

    /// The constructor name fault rules match; only the updates this DC pushes are named.
    static func name(of update: Api.Update) -> String {
        switch update {
        case .updateNewMessage: Api.Update.UpdateNewMessage.tlName
        case .updateEditMessage: Api.Update.UpdateEditMessage.tlName
        case .updateNewChannelMessage: Api.Update.UpdateNewChannelMessage.tlName
        case .updateEditChannelMessage: Api.Update.UpdateEditChannelMessage.tlName
        case .updateLoginToken: Api.Update.UpdateLoginToken.tlName
        case .updateServiceNotification: Api.Update.UpdateServiceNotification.tlName
        case .updateNewAuthorization: Api.Update.UpdateNewAuthorization.tlName
        default: "update"
        }
    }

    static func userIDs(in message: Api.Message) -> [Int64] {
        guard case .message(let value) = message else { return [] }
        var ids: [Int64] = []
        if case .peerUser(let from) = value.fromId { ids.append(from.userId) }
        if case .peerUser(let peer) = value.peerId { ids.append(peer.userId) }
        return ids
    }
}
