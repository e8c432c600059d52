import Foundation
import MTProtoClient
import SessionManager
import TLSchema

/// `send`: one text message, at most once per job (and so, with an idempotency key, at most once
/// per key: a second enqueue with the key is not stored).
///
/// The crash window: the RPC may reach Telegram and the worker die (or the answer be lost) before
/// `complete` is written. Three measures close it:
/// 1. the message's random_id is derived from the idempotency key (or the job id) and the job's
///    creation time, so every attempt of the job, and a requeue of it by hand, carries the same
///    random_id; Telegram refuses a second message with it (500 RANDOM_ID_DUPLICATE,
///    messages.sendMessage's documented error) instead of sending it again. Another job never
///    shares it: not one enqueued with the key of a job since purged, nor one whose id a new queue
///    gave again (their messages would otherwise be taken for sent, and silently dropped).
/// 2. before the call, a durable mark is written under the job's claim (`JobContext.atMostOnce`).
///    The mark is removed when Telegram answered with an error (nothing was sent) or a gate refused
///    the call (it was never sent), so those retry as usual.
/// 3. an attempt that finds the mark (the earlier one crashed, timed out or lost its connection
///    mid-call) sends again with the same random_id, within `doubtWindow` of the first: a message
///    means the first never arrived; RANDOM_ID_DUPLICATE means it did (the job completes with
///    `alreadySent`). Past the window, since how long Telegram remembers a random_id is not
///    documented, the job goes to the dead letters saying the send is in doubt and how to check.
/// So: never two messages for one key from the workers, and an interrupted send resolves itself.
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
        /// An interrupted earlier attempt had sent it: the repeat was refused as RANDOM_ID_DUPLICATE
        /// (so its id is not known here).
        public var alreadySent: Bool?
    }

    let archive: any MessageArchive
    /// How long after an interrupted send its doubt is resolved by sending again with the same
    /// random_id (seconds); later, the job is a dead letter for the operator to check.
    let doubtWindow: Double
    let peers: (any PeerDirectory)?
    /// This handler's jobs share one resolution per username in flight.
    let resolutions = UsernameResolutions()

    /// - Parameter peers: the accounts' peer cache (the session store), read before a username is
    ///   resolved and for the access hash of a peer given by id.
    public init(archive: any MessageArchive, doubtWindow: Double = 3600, peers: (any PeerDirectory)? = nil) {
        self.archive = archive
        self.doubtWindow = doubtWindow
        self.peers = peers
    }

    public func run(_ context: JobContext) async throws -> Data? {
        let payload = try context.payload(as: Payload.self)
        guard !payload.text.isEmpty else { throw JobFailure.permanent("the message text is empty") }
        let peer = try await payload.peer.resolve(context, archive: archive, peers: peers, resolutions: resolutions)
        // A mark an earlier attempt left names the random_id it sent; one written before marks kept
        // notes used the formula of then.
        let mark = context.mark(of: Self.step)
        let randomID = mark.started ? (mark.note.flatMap(Int64.init) ?? Self.legacyRandomID(for: context.job)) : Self.randomID(for: context.job)
        let request = Api.functions.messages.SendMessage(peer: peer.inputPeer, message: payload.text, randomId: randomID)
        let invoker = context.invoker
        let logger = context.logger
        // nil: Telegram already had a message with this random_id (an earlier attempt's).
        let send = { () async throws -> Api.Updates? in
            do {
                return try await invoker.invoke(request)
            } catch let error as TelegramError where Self.isDuplicate(error) {
                logger.info("an interrupted earlier attempt had sent the message (RANDOM_ID_DUPLICATE); not sent again")
                return nil
            }
        }
        let answer = try await context.atMostOnce(Self.step, note: String(randomID), send, resolvingDoubtWithin: doubtWindow, send)
        guard let answer else { return try JSONEncoder.jobs.encode(Result(messageID: nil, randomID: randomID, alreadySent: true)) }
        return try JSONEncoder.jobs.encode(Result(messageID: Self.messageID(in: answer, randomID: randomID), randomID: randomID))
    }

    /// Telegram's answer to a send repeating a random_id it already has, as the server sent it or
    /// under a session-manager error.
    static func isDuplicate(_ error: TelegramError) -> Bool {
        (error.rpcError ?? error.sessionManagerError?.underlying?.rpcError)?.message == "RANDOM_ID_DUPLICATE"
    }

    /// The at-most-once step of a send.
    static let step = "messages.sendMessage"

    /// FNV-1a over the idempotency key (or the job id) and the exact creation time: stable across
    /// the job's attempts and processes, different for every other job.
    static func randomID(for job: Job) -> Int64 {
        fnv1a((job.idempotencyKey.map { "key:" + $0 } ?? "job:\(job.id.rawValue)") + "@\(job.createdAt.seconds.bitPattern)")
    }

    /// The random_id of sends marked before marks kept notes (key or id alone).
    static func legacyRandomID(for job: Job) -> Int64 {
        fnv1a(job.idempotencyKey.map { "key:" + $0 } ?? "job:\(job.id.rawValue)")
    }

    private static func fnv1a(_ source: String) -> Int64 {
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
