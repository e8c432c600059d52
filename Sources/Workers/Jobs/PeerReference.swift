import Foundation
import MTProtoClient
import TL
import TLSchema

/// How a job's payload names a peer: by username (resolved through the archive's cache, else
/// contacts.resolveUsername), or by type, id and access hash.
public struct PeerReference: Sendable, Hashable, Codable {
    public var username: String?
    public var type: ResolvedPeer.PeerType?
    public var id: Int64?
    public var accessHash: Int64?

    public init(username: String) {
        self.username = username
    }

    public init(_ peer: ResolvedPeer) {
        self.type = peer.type
        self.id = peer.id
        self.accessHash = peer.accessHash
    }

    /// The peer, resolving a username when needed.
    func resolve(_ context: JobContext, archive: any MessageArchive) async throws -> ResolvedPeer {
        if let type, let id {
            return ResolvedPeer(type: type, id: id, accessHash: accessHash ?? 0)
        }
        guard let username = username?.trimmingCharacters(in: CharacterSet(charactersIn: "@ ")), !username.isEmpty else {
            throw JobFailure.permanent("the peer names neither a username nor a type and id; give one of them")
        }
        if let cached = try await archive.peer(username: username, account: context.account) { return cached }
        let peer = try await ResolveJob.resolveUsername(username, invoker: context.invoker)
        try await archive.savePeer(peer, username: username, account: context.account)
        return peer
    }
}

extension ResolvedPeer {
    var inputPeer: Api.InputPeer {
        switch type {
        case .user: .inputPeerUser(.init(userId: id, accessHash: accessHash))
        case .chat: .inputPeerChat(.init(chatId: id))
        case .channel: .inputPeerChannel(.init(channelId: id, accessHash: accessHash))
        }
    }
}

extension Api.Peer {
    var key: String {
        switch self {
        case .peerUser(let user): "user:\(user.userId)"
        case .peerChat(let chat): "chat:\(chat.chatId)"
        case .peerChannel(let channel): "channel:\(channel.channelId)"
        }
    }
}

extension TLEncodable {
    var tlData: Data { Data(serialized()) }
}
