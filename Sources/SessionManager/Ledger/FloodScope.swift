import TLSchema

/// A request whose rate limits Telegram applies per chat: its flood waits (and always its
/// SLOWMODE_WAIT) are recorded with the peer, so a wait in one chat does not stop the others.
public protocol PeerScopedRequest {
    /// The chat the request acts in.
    var floodPeer: Api.InputPeer { get }
}

extension Api.functions.messages.SendMessage: PeerScopedRequest { public var floodPeer: Api.InputPeer { peer } }
extension Api.functions.messages.SendMedia: PeerScopedRequest { public var floodPeer: Api.InputPeer { peer } }
extension Api.functions.messages.SendMultiMedia: PeerScopedRequest { public var floodPeer: Api.InputPeer { peer } }
extension Api.functions.messages.ForwardMessages: PeerScopedRequest { public var floodPeer: Api.InputPeer { toPeer } }
extension Api.functions.messages.EditMessage: PeerScopedRequest { public var floodPeer: Api.InputPeer { peer } }
extension Api.functions.messages.SendReaction: PeerScopedRequest { public var floodPeer: Api.InputPeer { peer } }
extension Api.functions.messages.SendInlineBotResult: PeerScopedRequest { public var floodPeer: Api.InputPeer { peer } }

/// How the ledger and the rate gate name a peer: stable, short, and without access hashes
/// (they are per-account secrets of a sort and change nothing about the limit).
public enum FloodScope {
    /// "user:123", "chat:45", "channel:678", "self"; nil for an empty peer.
    public static func key(of peer: Api.InputPeer) -> String? {
        switch peer {
        case .inputPeerEmpty: nil
        case .inputPeerSelf: "self"
        case .inputPeerChat(let chat): "chat:\(chat.chatId)"
        case .inputPeerUser(let user): "user:\(user.userId)"
        case .inputPeerChannel(let channel): "channel:\(channel.channelId)"
        case .inputPeerUserFromMessage(let user): "user:\(user.userId)"
        case .inputPeerChannelFromMessage(let channel): "channel:\(channel.channelId)"
        }
    }

    /// The peer key of a request that acts in one chat, nil for every other request.
    public static func peerKey<Request>(of request: Request) -> String? {
        guard let scoped = request as? any PeerScopedRequest else { return nil }
        return key(of: scoped.floodPeer)
    }
}
