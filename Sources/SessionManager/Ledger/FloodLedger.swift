import Logging
import MTProto
import MTProtoClient
import Metrics
import Synchronization
import TL

/// The flood ledger of one account: every FLOOD_WAIT / FLOOD_PREMIUM_WAIT / SLOWMODE_WAIT Telegram
/// answered, with its exact until-time, persisted through a `FloodLedgerStore` (so every process on
/// the store and every restart honours it), and the decision before each call: go, wait inline
/// (at or under the threshold, cancellable), or fail fast with a rate-limit error without touching
/// the network.
public final class FloodLedger: Sendable {
    public struct Policy: Sendable, Hashable {
        /// Waits at or under this many seconds are slept through inline; longer ones fail fast.
        public var inlineWaitThreshold: Double
        /// How old (seconds) the in-process copy of the store's active waits may get before it is
        /// read again: the delay with which waits recorded by other processes are seen, unless the
        /// store announces them (`FloodLedgerStore.floodWaitChanges()`: PostgreSQL does, at once).
        public var refreshInterval: Double
        /// Record FLOOD_WAIT/FLOOD_PREMIUM_WAIT of peer-scoped requests (`PeerScopedRequest`) per
        /// peer (true), or account-wide for the method (false). SLOWMODE_WAIT is always per peer.
        public var floodWaitsPerPeer: Bool

        public init(inlineWaitThreshold: Double = 10, refreshInterval: Double = 1, floodWaitsPerPeer: Bool = true) {
            self.inlineWaitThreshold = inlineWaitThreshold
            self.refreshInterval = refreshInterval
            self.floodWaitsPerPeer = floodWaitsPerPeer
        }
    }

    /// What to do with a call now.
    public enum Decision: Sendable, Hashable {
        case proceed
        /// Sleep until the wait's `until`, then go.
        case waitInline(FloodWait)
        /// Refuse: the wait is longer than the threshold.
        case refuse(FloodWait)
    }

    public let account: AccountID
    public let policy: Policy
    private let store: any FloodLedgerStore
    private let clock: any TelegramClock
    private let logger: Logger

    private struct Cache {
        var waits: [FloodWait] = []
        var readAt: UnixTime?
        /// Counts the store's announcements of new waits: a read that was on its way when one came
        /// may have missed that wait, so it is not taken for a fresh copy.
        var changes: UInt64 = 0
    }

    /// A class of its own so the task that follows the store's announcements holds the copy, not the ledger.
    private final class CacheBox: Sendable {
        let state = Mutex(Cache())
    }

    private let cache = CacheBox()
    /// Follows `FloodLedgerStore.floodWaitChanges()` while the ledger lives (nil when the store has none).
    private let follower: Task<Void, Never>?

    public init(account: AccountID, store: any FloodLedgerStore, policy: Policy = Policy(), clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.store = store
        self.policy = policy
        self.clock = clock
        self.logger = logger
        if let changes = store.floodWaitChanges() {
            let box = cache
            // Another process recorded a wait for this account: the copy is stale now, whatever its age.
            follower = Task {
                for await changed in changes where changed == nil || changed == account {
                    box.state.withLock { cache in
                        cache.readAt = nil
                        cache.changes &+= 1
                    }
                }
            }
        } else {
            follower = nil
        }
    }

    deinit { follower?.cancel() }

    /// The pure rule: the latest-ending active wait that covers (method, peer) decides; an
    /// account-wide wait for the method covers every peer.
    public static func decide(method: String, peer: String?, waits: [FloodWait], now: UnixTime, threshold: Double) -> Decision {
        var binding: FloodWait?
        for wait in waits where wait.method == method && wait.isActive(at: now) && (wait.peer == nil || wait.peer == peer) {
            if binding.map({ wait.until > $0.until }) ?? true { binding = wait }
        }
        guard let binding else { return .proceed }
        return binding.until - now <= threshold ? .waitInline(binding) : .refuse(binding)
    }

    /// The waits this process knows to be active, reading the store when the copy is stale.
    public func activeWaits() async -> [FloodWait] {
        let now = clock.now()
        let (fresh, changes): ([FloodWait]?, UInt64) = cache.state.withLock { cache in
            guard let readAt = cache.readAt, now - readAt < policy.refreshInterval, now >= readAt else { return (nil, cache.changes) }
            return (cache.waits, cache.changes)
        }
        if let fresh { return fresh }
        do {
            let stored = try await store.activeFloodWaits(account: account, at: now)
            return cache.state.withLock { cache in
                // Keep waits recorded here meanwhile that the store did not return (its write may have failed).
                let local = cache.waits.filter { $0.isActive(at: now) && !stored.contains($0) }
                cache.waits = merge(stored + local)
                if cache.changes == changes { cache.readAt = now }
                return cache.waits
            }
        } catch {
            logger.error("flood ledger store failed to read; using the waits known in this process", metadata: ["account": "\(account)", "error": "\(error)"])
            return cache.state.withLock { $0.waits.filter { $0.isActive(at: now) } }
        }
    }

    /// Applies the decision for one call: returns when it may go (after an inline wait), throws
    /// `.middleware(rate limit)` to fail fast, or `.cancelled` when cancelled while waiting.
    public func admit(method: String, peer: String?) async throws(TelegramError) {
        let waits = await activeWaits()
        let decision = Self.decide(method: method, peer: peer, waits: waits, now: clock.now(), threshold: policy.inlineWaitThreshold)
        switch decision {
        case .proceed:
            return
        case .waitInline(let wait):
            let seconds = wait.until - clock.now()
            logger.debug("waiting out a recorded flood wait inline", metadata: ["account": "\(account)", "method": "\(method)", "seconds": "\(seconds)"])
            Counter(label: "tgsm_flood_inline_waits_total", dimensions: [("account", account.rawValue), ("kind", wait.kind.rawValue)]).increment()
            try await sleepCancellable(clock, seconds: seconds, method: method)
        case .refuse(let wait):
            Counter(label: "tgsm_flood_refusals_total", dimensions: [("account", account.rawValue), ("kind", wait.kind.rawValue)]).increment()
            throw .middleware(SessionManagerError(.floodWait(wait)))
        }
    }

    /// The wait an error imposes on (method, peer), if it is one the ledger keeps.
    public func floodWait(from error: TelegramError, method: String, peer: String?, dc: Int?, now: UnixTime) -> FloodWait? {
        let seconds: Int
        let reason: RPCErrorAdvice.WaitReason
        switch error {
        case .rpc(let rpc, _):
            guard case .wait(let wait, let why) = rpc.advice else { return nil }
            (seconds, reason) = (wait, why)
        case .floodWaitHeld(_, let left, _):
            // The connection held the call back for a wait it saw: the same wait, seen again.
            (seconds, reason) = (left, .flood)
        default:
            return nil
        }
        let kind: FloodWait.Kind
        let scope: String?
        switch reason {
        case .flood:
            kind = .floodWait
            scope = policy.floodWaitsPerPeer ? peer : nil
        case .floodPremium:
            kind = .premiumFloodWait
            scope = policy.floodWaitsPerPeer ? peer : nil
        case .slowMode:
            kind = .slowmodeWait
            scope = peer
        case .other:
            return nil
        }
        var wait = FloodWait(account: account, method: method, peer: scope, kind: kind, recordedAt: now, until: now + Double(seconds), dc: dc)
        if kind != .slowmodeWait, let chat = scope, let other = longWaitInAnotherChat(like: wait, besides: chat, now: now) {
            // A long wait for the method in a second chat while the first still runs: the limit is
            // the account's, not the chat's. Kept per chat, each new chat probes it, and Telegram
            // lengthens the wait at each probe (an hour, then two, then four).
            wait.peer = nil
            logger.warning("a flood wait for the method in a second chat: held back in every chat until it ends", metadata: [
                "account": "\(account)", "method": "\(method)", "chat": "\(chat)", "earlier-chat": "\(other.peer ?? "-")",
            ])
        }
        return wait
    }

    /// An active wait of the same method and kind, longer than the inline threshold, in another
    /// chat than `chat`; nil when `wait` itself is not longer than the threshold.
    private func longWaitInAnotherChat(like wait: FloodWait, besides chat: String, now: UnixTime) -> FloodWait? {
        let threshold = policy.inlineWaitThreshold
        guard wait.until - wait.recordedAt > threshold else { return nil }
        return cache.state.withLock { cache in
            cache.waits.first { known in
                guard known.method == wait.method, known.kind == wait.kind, let peer = known.peer, peer != chat else { return false }
                return known.isActive(at: now) && known.until - known.recordedAt > threshold
            }
        }
    }

    /// Records a wait: in this process at once, then in the store (a failed write is logged; the
    /// wait is still enforced here).
    public func record(_ wait: FloodWait) async {
        cache.state.withLock { cache in cache.waits = merge(cache.waits + [wait]) }
        logger.warning("flood wait recorded", metadata: [
            "account": "\(account)", "method": "\(wait.method)", "kind": "\(wait.kind.rawValue)",
            "seconds": "\(Int((wait.until - wait.recordedAt).rounded(.up)))", "peer": "\(wait.peer ?? "-")",
        ])
        Counter(label: "tgsm_flood_waits_total", dimensions: [("account", account.rawValue), ("method", wait.method), ("kind", wait.kind.rawValue)]).increment()
        Recorder(label: "tgsm_flood_wait_seconds", dimensions: [("kind", wait.kind.rawValue)]).record(wait.until - wait.recordedAt)
        do {
            try await store.recordFloodWait(wait)
        } catch {
            logger.error("flood ledger store failed to record a wait; it is enforced in this process only", metadata: ["account": "\(account)", "error": "\(error)"])
        }
    }

    /// Whether this process already knows `wait` (the same method and scope, ending no earlier but
    /// for the rounding of a held call's whole seconds): a call the connection held back for a wait
    /// it saw repeats that wait, and recording it again counted one FLOOD_WAIT twice in the log and
    /// `tgsm_flood_waits_total`.
    func knows(_ wait: FloodWait) -> Bool {
        let earliest = wait.until + -1
        return cache.state.withLock { cache in
            cache.waits.contains { known in
                guard known.method == wait.method, known.peer == wait.peer, known.kind == wait.kind else { return false }
                return known.until >= earliest
            }
        }
    }

    /// Keeps, per (method, peer), the wait that ends last: a late duplicate never shortens a wait.
    private func merge(_ waits: [FloodWait]) -> [FloodWait] {
        var latest: [String: FloodWait] = [:]
        for wait in waits {
            let key = wait.method + "\u{0}" + (wait.peer ?? "")
            if let existing = latest[key], existing.until >= wait.until { continue }
            latest[key] = wait
        }
        return latest.values.sorted { $0.until < $1.until }
    }
}

/// The ledger as a middleware: decides before the call, records after a flood answer (and passes
/// the server's error on unchanged, so callers such as the login flows still see it).
public struct FloodLedgerMiddleware: InvocationMiddleware {
    public let ledger: FloodLedger

    public init(_ ledger: FloodLedger) { self.ledger = ledger }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, ledger: ledger)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let ledger: FloodLedger

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            let method = Request.tlName
            let peer = FloodScope.peerKey(of: request)
            try await ledger.admit(method: method, peer: peer)
            var options = options
            if options.floodScope == nil, ledger.policy.floodWaitsPerPeer, let peer {
                // The connection holds back what the ledger would: this method in this chat.
                options.floodScope = "\(method) \(peer)"
            }
            do {
                return try await next.invoke(request, options: options)
            } catch {
                if let wait = ledger.floodWait(from: error, method: method, peer: peer, dc: options.dc, now: ledger.now()) {
                    // A held call's wait is recorded only when the answer that began it was not (a
                    // call outside this stack met it).
                    if case .floodWaitHeld = error, ledger.knows(wait) {} else { await ledger.record(wait) }
                }
                throw error
            }
        }
    }
}

extension FloodLedger {
    func now() -> UnixTime { clock.now() }
}

/// What the stack's caller hears about a flood answer the ledger recorded: the rate-limit error
/// (TGSM-RATE-001/002/003) with the recorded until-time, the server's error kept as `underlying`
/// (its advice still says `.wait`). Without it the first FLOOD_WAIT reached callers as the raw
/// rpc_error, which the guidance could only call "a server wait not recorded by a ledger"
/// (TGSM-RPC-003) and told to add the ledger that had just recorded it. It sits outside the retry
/// and breaker, which keep seeing the server's error as it came.
public struct FloodVerdictMiddleware: InvocationMiddleware {
    public let ledger: FloodLedger

    public init(_ ledger: FloodLedger) { self.ledger = ledger }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, ledger: ledger)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let ledger: FloodLedger

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            do {
                return try await next.invoke(request, options: options)
            } catch {
                let method = Request.tlName
                let peer = FloodScope.peerKey(of: request)
                guard ledger.floodWait(from: error, method: method, peer: peer, dc: options.dc, now: ledger.now()) != nil else { throw error }
                let waits = await ledger.activeWaits()
                switch FloodLedger.decide(method: method, peer: peer, waits: waits, now: ledger.now(), threshold: 0) {
                case .refuse(let wait), .waitInline(let wait):
                    throw .middleware(SessionManagerError(.floodWait(wait), underlying: error))
                case .proceed:
                    // Not recorded (a wait already over, a failed store read): the server's error as is.
                    throw error
                }
            }
        }
    }
}
