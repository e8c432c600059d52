import Foundation
import MTProtoClient
import TLSchema

/// `resolve`: a username to a peer (contacts.resolveUsername, always: it is how an operator refreshes
/// what the archive keeps), kept in the archive for the other jobs and returned as the job's result. Payload `{"username": "testnews"}`. Idempotent.
public struct ResolveJob: JobHandler {
    public static let kind: JobKind = "resolve"
    public var kind: JobKind { Self.kind }

    public struct Payload: Codable, Sendable, Hashable {
        public var username: String
        public init(username: String) { self.username = username }
    }

    public struct Result: Codable, Sendable, Hashable {
        public var username: String
        public var peer: ResolvedPeer
    }

    let archive: any MessageArchive

    public init(archive: any MessageArchive) { self.archive = archive }

    public func run(_ context: JobContext) async throws -> Data? {
        let payload = try context.payload(as: Payload.self)
        let username = payload.username.trimmingCharacters(in: CharacterSet(charactersIn: "@ "))
        guard !username.isEmpty else { throw JobFailure.permanent("the username is empty") }
        let peer = try await Self.resolveUsername(username, invoker: context.invoker)
        try await archive.savePeer(peer, username: username, account: context.account)
        return try JSONEncoder.jobs.encode(Result(username: username, peer: peer))
    }

    static func resolveUsername(_ username: String, invoker: any TelegramInvoking) async throws -> ResolvedPeer {
        let answer = try await invoker.invoke(Api.functions.contacts.ResolveUsername(username: username))
        guard case .resolvedPeer(let resolved) = answer else {
            throw JobFailure.permanent("contacts.resolveUsername answered with an unknown constructor")
        }
        switch resolved.peer {
        case .peerUser(let peer):
            for case .user(let user) in resolved.users where user.id == peer.userId {
                return ResolvedPeer(type: .user, id: user.id, accessHash: user.accessHash ?? 0)
            }
            return ResolvedPeer(type: .user, id: peer.userId, accessHash: 0)
        case .peerChannel(let peer):
            for case .channel(let channel) in resolved.chats where channel.id == peer.channelId {
                return ResolvedPeer(type: .channel, id: channel.id, accessHash: channel.accessHash ?? 0)
            }
            return ResolvedPeer(type: .channel, id: peer.channelId, accessHash: 0)
        case .peerChat(let peer):
            return ResolvedPeer(type: .chat, id: peer.chatId, accessHash: 0)
        }
    }
}
