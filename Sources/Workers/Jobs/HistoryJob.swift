import Foundation
import MTProtoClient
import SessionManager
import TLSchema

/// `history`: a channel's, chat's or user's messages into the archive's `messages` table,
/// incrementally: only messages newer than the peer's cursor are fetched (messages.getHistory with
/// min_id, newest first, page by page). The cursor moves to the newest id only after every page
/// down to it is stored, so a crash mid-way leaves it where it was and the next attempt fetches
/// the same range again; storing is an upsert, so that is harmless (idempotent).
///
/// Payload `{"peer": {"username": "testnews"}}` (or `{"peer": {"type": "channel", "id": 2001,
/// "accessHash": ...}}`); `initialLimit` caps how many of the newest messages the first run of
/// a peer fetches (older ones are then never fetched); `pageSize` ≤ 100.
public struct HistoryJob: JobHandler {
    public static let kind: JobKind = "history"
    public var kind: JobKind { Self.kind }

    public struct Payload: Codable, Sendable, Hashable {
        public var peer: PeerReference
        public var initialLimit: Int?
        public var pageSize: Int?

        public init(peer: PeerReference, initialLimit: Int? = nil, pageSize: Int? = nil) {
            self.peer = peer
            self.initialLimit = initialLimit
            self.pageSize = pageSize
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// The peer key the messages are stored under ("channel:2001").
        public var peer: String
        /// Messages fetched by this run.
        public var fetched: Int
        /// The cursor before and after.
        public var from: Int32
        public var through: Int32
    }

    let archive: any MessageArchive
    let peers: (any PeerDirectory)?
    /// This handler's jobs share one resolution per username in flight.
    let resolutions = UsernameResolutions()

    /// - Parameter peers: the accounts' peer cache (the session store), read before a username is
    ///   resolved and for the access hash of a peer given by id.
    public init(archive: any MessageArchive, peers: (any PeerDirectory)? = nil) {
        self.archive = archive
        self.peers = peers
    }

    public func run(_ context: JobContext) async throws -> Data? {
        let payload = try context.payload(as: Payload.self)
        // A limit below 1 would move the cursor past messages never fetched (they are never fetched later).
        if let limit = payload.initialLimit, limit < 1 {
            throw JobFailure.permanent("initialLimit is \(limit); give at least 1 (or leave it out to fetch the whole history)")
        }
        if let size = payload.pageSize, !(1...100).contains(size) {
            throw JobFailure.permanent("pageSize is \(size); give 1 to 100 (or leave it out: 100)")
        }
        let pageSize = Int32(payload.pageSize ?? 100)
        let peer = try await payload.peer.resolve(context, archive: archive, peers: peers, resolutions: resolutions)
        let key = peer.key
        let cursor = try await archive.cursor(account: context.account, peer: key)
        var offsetID: Int32 = 0
        var newest = cursor
        var fetched = 0
        while true {
            let answer = try await context.invoker.invoke(Api.functions.messages.GetHistory(
                peer: peer.inputPeer, offsetId: offsetID, offsetDate: 0, addOffset: 0, limit: pageSize, maxId: 0, minId: cursor, hash: 0))
            let page = Self.messages(in: answer).filter { $0.id > cursor && (offsetID == 0 || $0.id < offsetID) }
            guard let oldest = page.map(\.id).min(), let top = page.map(\.id).max() else { break }
            try await archive.store(page, account: context.account, peer: key)
            fetched += page.count
            newest = max(newest, top)
            offsetID = oldest
            if page.count < Int(pageSize) { break }
            if cursor == 0, let limit = payload.initialLimit, fetched >= limit { break }
        }
        try await archive.advanceCursor(account: context.account, peer: key, to: newest)
        context.logger.debug("history stored", metadata: ["peer": "\(key)", "fetched": "\(fetched)", "through": "\(newest)"])
        return try JSONEncoder.jobs.encode(Result(peer: key, fetched: fetched, from: cursor, through: newest))
    }

    static func messages(in answer: Api.messages.Messages) -> [ArchivedMessage] {
        let list: [Api.Message] =
            switch answer {
            case .messages(let value): value.messages
            case .messagesSlice(let value): value.messages
            case .channelMessages(let value): value.messages
            case .messagesNotModified: []
            }
        return list.compactMap { message -> ArchivedMessage? in
            switch message {
            case .message(let value):
                ArchivedMessage(id: value.id, date: value.date, from: value.fromId?.key, text: value.message, raw: message.tlData)
            case .messageService(let value):
                ArchivedMessage(id: value.id, date: value.date, from: value.fromId?.key, text: "", raw: message.tlData)
            case .messageEmpty:
                nil
            }
        }
    }
}
