import Logging
import MTProto
import MTProtoClient
import Metrics
import Synchronization
import TL
import TLSchema

/// The peer cache of one account: remembers the users and chats every answer mentions (id, access
/// hash, username) in the session store, so a worker can address a peer later (`inputPeerUser`
/// needs the access hash) and find it by username without asking Telegram again — every
/// contacts.resolveUsername counts against a small daily budget.
///
/// Writing is off the caller's path: `remember` only extracts the records and queues them (a lock
/// and an append), and one background writer stores everything queued since its last write in one
/// `rememberPeers` transaction. Records of the same peer queued meanwhile are merged (bounded by
/// the number of distinct peers, however many answers arrive). A peer whose access hash and
/// username are what this cache last wrote less than `refreshInterval` ago is not written again
/// (most answers mention the same few peers, e.g. the account itself): only its `seen_at` would
/// change, so `seen_at` is at most that much older than the last answer that mentioned it. A failed write is logged as an
/// error with its code and counted in `tgsm_peer_cache_write_failures_total`; its records are not
/// retried (the next answer that mentions those peers brings them again). `flush()` waits until
/// everything queued so far is written or its failure logged (tests, shutdown).
public final class PeerCache: Sendable {
    public let account: AccountID
    private let store: any SessionStore
    private let fence: LeaseToken?
    private let clock: any TelegramClock
    private let logger: Logger
    private let state = Mutex(State())

    private struct Key: Hashable {
        var kind: PeerRecord.Kind
        var id: Int64
    }

    /// How long an unchanged peer goes without being written again (its `seen_at` refreshed).
    public static let refreshInterval: Double = 60
    /// At most this many peers are remembered as written; past it the memory starts over (the
    /// next mention of each is written once more), so a history of many senders stays bounded.
    static let writtenLimit = 10_000

    private struct State {
        var pending: [Key: PeerRecord] = [:]
        /// What this cache last stored for each peer (a successful write only).
        var written: [Key: PeerRecord] = [:]
        var writing = false
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// - Parameters:
    ///   - account: the account whose peers are cached.
    ///   - store: where they are kept.
    ///   - fence: the account's lease token; every write is fenced with it, like the
    ///     session's own writes (a process that lost the lease writes nothing).
    ///   - clock: stamps each entry.
    ///   - logger: reports failed writes (a cache miss, never a failed call).
    public init(account: AccountID, store: any SessionStore, fence: LeaseToken?, clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.store = store
        self.fence = fence
        self.clock = clock
        self.logger = logger
    }

    /// Queues the peers `result` carries, if its type carries any (`PeerCarrying`).
    public func remember(result: some Any) {
        guard let carrier = result as? any PeerCarrying else { return }
        remember(users: carrier.carriedUsers, chats: carrier.carriedChats)
    }

    /// Queues the peers of `users` and `chats` (an answer's, or an update's from the updates stream).
    public func remember(users: [Api.User], chats: [Api.Chat]) {
        guard !users.isEmpty || !chats.isEmpty else { return }
        let records = PeerRecord.records(users: users, chats: chats, seenAt: clock.now())
        guard !records.isEmpty else { return }
        let startsWriter = state.withLock { state -> Bool in
            for record in records {
                let key = Key(kind: record.kind, id: record.id)
                state.pending[key] = state.pending[key].map { Self.merge(earlier: $0, later: record) } ?? record
            }
            guard !state.writing else { return false }
            state.writing = true
            return true
        }
        if startsWriter { Task { await self.writeQueued() } }
    }

    /// Queues the peers that came with an update of the client's updates stream: its one consumer
    /// calls this for each event (the cache cannot tap the stream without taking it over).
    public func remember(_ event: UpdateEvent) {
        remember(users: event.users, chats: event.chats)
    }

    /// Returns once everything queued before the call is written or its failure logged.
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { state -> Bool in
                guard state.writing else { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// The same rule as the store's, applied before it so a merged record loses nothing: a record
    /// without an access hash (a `min` constructor) keeps the hash and username already known.
    static func merge(earlier: PeerRecord, later: PeerRecord) -> PeerRecord {
        guard later.accessHash == nil else { return later }
        var merged = later
        merged.accessHash = earlier.accessHash
        if merged.username == nil { merged.username = earlier.username }
        return merged
    }

    private func writeQueued() async {
        while true {
            enum Next {
                case write([PeerRecord])
                case idle([CheckedContinuation<Void, Never>])
            }
            let next = state.withLock { state -> Next in
                guard !state.pending.isEmpty else {
                    state.writing = false
                    defer { state.idleWaiters = [] }
                    return .idle(state.idleWaiters)
                }
                defer { state.pending = [:] }
                return .write(state.pending.compactMap { key, record in Self.isUnchanged(record, since: state.written[key]) ? nil : record })
            }
            let batch: [PeerRecord]
            switch next {
            case .idle(let waiters):
                for waiter in waiters { waiter.resume() }
                return
            case .write(let records) where records.isEmpty:
                continue
            case .write(let records):
                batch = records
            }
            do {
                try await store.rememberPeers(batch, account: account, fence: fence)
                state.withLock { state in
                    if state.written.count + batch.count > Self.writtenLimit { state.written = [:] }
                    for record in batch { state.written[Key(kind: record.kind, id: record.id)] = record }
                }
            } catch {
                let code = (error as? SessionStoreError)?.code ?? "store.unknown"
                logger.error("peer cache could not store the peers of an answer; they are stored when an answer mentions them again", metadata: [
                    "account": "\(account)", "peers": "\(batch.count)", "code": "\(code)", "error": "\(error)",
                ])
                Counter(label: "tgsm_peer_cache_write_failures_total", dimensions: [("account", account.rawValue), ("code", code)]).increment()
            }
        }
    }

    /// Whether writing `record` would change nothing but `seen_at`, and that was refreshed recently.
    static func isUnchanged(_ record: PeerRecord, since written: PeerRecord?) -> Bool {
        guard let written else { return false }
        return record.accessHash == written.accessHash && record.username == written.username
            && record.seenAt >= written.seenAt && record.seenAt - written.seenAt < refreshInterval
    }
}

/// Feeds every successful answer's users and chats into a `PeerCache`. Innermost in the stack
/// (next to the client), so it sees exactly the answers that came from the network, once each.
public struct PeerCacheMiddleware: InvocationMiddleware {
    public let cache: PeerCache

    public init(_ cache: PeerCache) { self.cache = cache }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, cache: cache)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let cache: PeerCache

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            let result = try await next.invoke(request, options: options)
            cache.remember(result: result)
            return result
        }
    }
}
