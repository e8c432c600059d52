import Foundation
import MTProtoClient
import TLSchema

/// `send`: one text message, at most once per job (and so, with an idempotency key, at most once
/// per key: a second enqueue with the key is not stored).
///
/// The crash window: the RPC may reach Telegram and the worker die (or the answer be lost) before
/// `complete` is written. Two measures close it:
/// 1. before the call, a durable mark is written under the job's claim (`JobContext.atMostOnce`);
///    an attempt that finds the mark does not call again: the job goes to the dead letters saying
///    the send is in doubt and how to check. The mark is removed when Telegram answered with an
///    error (nothing was sent) or a rate gate refused the call (it was never sent), so those retry.
/// 2. the message's random_id is derived from the idempotency key (or the job id), so even a
///    repeat made by hand with the same key carries the same random_id, which Telegram uses to
///    drop duplicates (RANDOM_ID_DUPLICATE).
/// So: never two sends for one key from the workers; a crash or a timeout in the window costs a
/// dead letter to check, never a duplicate message.
///
/// Payload `{"peer": {"username": "bob"}, "text": "hello"}`.
public struct SendJob: JobHandler {
    public static let kind: JobKind = "send"
    public var kind: JobKind { Self.kind }

    public struct Payload: Codable, Sendable, Hashable {
        public var peer: PeerReference
        public var text: String
        public init(peer: PeerReference, text: String) {
            self.peer = peer
            self.text = text
        }
    }

    public struct Result: Codable, Sendable, Hashable {
        /// The id of the sent message, when the answer carried it.
        public var messageID: Int32?
        public var randomID: Int64
    }

    let archive: any MessageArchive

    public init(archive: any MessageArchive) { self.archive = archive }

    public func run(_ context: JobContext) async throws -> Data? {
        let payload = try context.payload(as: Payload.self)
        guard !payload.text.isEmpty else { throw JobFailure.permanent("the message text is empty") }
        let peer = try await payload.peer.resolve(context, archive: archive)
        let randomID = Self.randomID(for: context.job)
        let request = Api.functions.messages.SendMessage(peer: peer.inputPeer, message: payload.text, randomId: randomID)
        let invoker = context.invoker
        let answer = try await context.atMostOnce("messages.sendMessage") {
            try await invoker.invoke(request)
        }
        return try JSONEncoder.jobs.encode(Result(messageID: Self.messageID(in: answer, randomID: randomID), randomID: randomID))
    }

    /// FNV-1a over the idempotency key (or the job id): stable across attempts and processes.
    static func randomID(for job: Job) -> Int64 {
        let source = job.idempotencyKey.map { "key:" + $0 } ?? "job:\(job.id.rawValue)"
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in source.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }

    static func messageID(in updates: Api.Updates, randomID: Int64) -> Int32? {
        let list: [Api.Update]
        switch updates {
        case .updateShortSentMessage(let sent): return sent.id
        case .updates(let value): list = value.updates
        case .updatesCombined(let value): list = value.updates
        default: return nil
        }
        for case .updateMessageID(let update) in list where update.randomId == randomID { return update.id }
        return nil
    }
}
