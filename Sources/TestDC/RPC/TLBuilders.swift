import TLSchema

/// The world's records as the API's TL objects, seen by one viewer (the `self` flag, contacts).
extension DCState {
    func apiUser(_ user: World.User, viewer: Int64?) -> Api.User {
        let isSelf = user.id == viewer
        let isContact = viewer.map { v in world.contacts.contains { $0 == [v, user.id] } } ?? false
        let mutual = isContact && world.contacts.contains { $0 == [user.id, viewer ?? 0] }
        return .user(Api.User.User(
            isSelf: isSelf, contact: isContact, mutualContact: mutual, deleted: user.deactivated, bot: user.bot,
            id: user.id, accessHash: user.accessHash, firstName: user.firstName, lastName: user.lastName,
            username: user.username, phone: (isSelf || isContact) ? user.phone : nil,
            status: user.bot ? nil : .userStatusRecently(Api.UserStatus.UserStatusRecently()),
            botInfoVersion: user.bot ? 1 : nil
        ))
    }

    func apiChannel(_ channel: World.Channel) -> Api.Chat {
        .channel(Api.Chat.Channel(
            broadcast: channel.broadcast, megagroup: !channel.broadcast,
            id: channel.id, accessHash: channel.accessHash, title: channel.title, username: channel.username,
            photo: .chatPhotoEmpty(Api.ChatPhoto.ChatPhotoEmpty()), date: channel.messages.first?.date ?? 1_700_000_000
        ))
    }

    func apiMessage(_ message: World.Message, in channel: World.Channel) -> Api.Message {
        .message(Api.Message.Message(
            post: channel.broadcast, id: message.id, fromId: message.fromID.map { .peerUser(Api.Peer.PeerUser(userId: $0)) },
            peerId: .peerChannel(Api.Peer.PeerChannel(channelId: channel.id)), date: message.date, message: message.text,
            editDate: message.editDate
        ))
    }

    func apiMessage(_ message: PrivateMessage) -> Api.Message {
        .message(Api.Message.Message(
            out: message.out, id: message.id, fromId: .peerUser(Api.Peer.PeerUser(userId: message.fromID)),
            peerId: .peerUser(Api.Peer.PeerUser(userId: message.peerUserID)), date: message.date, message: message.text,
            editDate: message.editDate
        ))
    }

    func apiUsers(_ ids: some Sequence<Int64>, viewer: Int64?) -> [Api.User] {
        var seen = Set<Int64>()
        return ids.compactMap { id in
            guard seen.insert(id).inserted, let user = user(id: id) else { return nil }
            return apiUser(user, viewer: viewer)
        }
    }

    func config(thisDC: Int32, now: Int32) -> Api.Config {
        .config(Api.Config.Config(
            date: now, expires: Int32(clamping: Int64(now) + 3600), testMode: false, thisDc: thisDC,
            dcOptions: dcs.sorted { $0.key < $1.key }.map { .dcOption(Api.DcOption.DcOption(id: $0.key, ipAddress: $0.value.host, port: Int32($0.value.port))) },
            dcTxtDomainName: "testdc.invalid", chatSizeMax: 200, megagroupSizeMax: 200_000, forwardedCountMax: 100,
            onlineUpdatePeriodMs: 210_000, offlineBlurTimeoutMs: 5000, offlineIdleTimeoutMs: 30_000, onlineCloudTimeoutMs: 300_000,
            notifyCloudDelayMs: 30_000, notifyDefaultDelayMs: 1500, pushChatPeriodMs: 60_000, pushChatLimit: 2,
            editTimeLimit: 172_800, revokeTimeLimit: 2_147_483_647, revokePmTimeLimit: 2_147_483_647, ratingEDecay: 2_419_200,
            stickersRecentLimit: 200, channelsReadMediaPeriod: 604_800, callReceiveTimeoutMs: 20_000, callRingTimeoutMs: 90_000,
            callConnectTimeoutMs: 30_000, callPacketTimeoutMs: 10_000, meUrlPrefix: "https://t.me/", captionLengthMax: 1024,
            messageLengthMax: 4096, webfileDcId: 1
        ))
    }
}
