import Foundation
import MTProtoClient
import SessionManager
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

    /// How long a username the account's peer cache saw is trusted without asking Telegram again
    /// (Pyrogram's choice too): usernames change hands, and a job must not act on a peer that no
    /// longer has the name. An answer that mentions the peer with its username refreshes it.
    public static let cachedUsernameLifetime: Double = 8 * 3600

    /// The peer, resolving a username when needed: what the account's peer cache (`peers`: every
    /// answer's users and chats, and those imported from Telethon or Pyrogram) saw with that
    /// username lately, else the archive's earlier resolution, and only then
    /// contacts.resolveUsername. The cache goes first because it is the fresher of the two: a
    /// username that moved to another peer shows there with the next answer that mentions it. A
    /// peer given by id without its access hash takes the one the peer cache knows.
    func resolve(_ context: JobContext, archive: any MessageArchive, peers: (any PeerDirectory)?,
                 resolutions: UsernameResolutions? = nil) async throws -> ResolvedPeer {
        if let type, let id {
            if let accessHash { return ResolvedPeer(type: type, id: id, accessHash: accessHash) }
            if type != .chat, let peers, let known = try await peers.peer(kind: type.recordKind, id: id, account: context.account),
               let hash = known.accessHash {
                return ResolvedPeer(type: type, id: id, accessHash: hash)
            }
            return ResolvedPeer(type: type, id: id, accessHash: 0)
        }
        guard let username = username?.trimmingCharacters(in: CharacterSet(charactersIn: "@ ")), !username.isEmpty else {
            throw JobFailure.permanent("the peer names neither a username nor a type and id; give one of them")
        }
        // Not copied into the archive: it would outlive the cache's lifetime there.
        if let known = try await Self.recentlySeen(username, peers: peers, context: context) { return known }
        if let cached = try await archive.peer(username: username, account: context.account) { return cached }
        let (invoker, account) = (context.invoker, context.account)
        let resolveAndKeep: @Sendable () async throws -> ResolvedPeer = {
            let peer = try await ResolveJob.resolveUsername(username, invoker: invoker)
            try await archive.savePeer(peer, username: username, account: account)
            return peer
        }
        guard let resolutions else { return try await resolveAndKeep() }
        return try await resolutions.resolve(username, account: account, resolveAndKeep)
    }

    /// The peer the account's cache saw with `username` within `cachedUsernameLifetime`, with the
    /// access hash it needs (a basic chat needs none).
    static func recentlySeen(_ username: String, peers: (any PeerDirectory)?, context: JobContext) async throws -> ResolvedPeer? {
        guard let peers, let known = try await peers.peer(username: username, account: context.account),
              context.clock.now().seconds - known.seenAt.seconds <= cachedUsernameLifetime
        else { return nil }
        switch known.kind {
        case .chat: return ResolvedPeer(type: .chat, id: known.id, accessHash: 0)
        case .user, .channel:
            guard let hash = known.accessHash else { return nil }
            return ResolvedPeer(type: known.kind == .user ? .user : .channel, id: known.id, accessHash: hash)
        }
    }
}

extension ResolvedPeer.PeerType {
    var recordKind: PeerRecord.Kind {
        switch self {
        case .user: .user
        case .chat: .chat
        case .channel: .channel
        }
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
