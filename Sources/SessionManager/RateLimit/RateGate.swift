import Logging
import MTProto
import MTProtoClient
import Metrics
import Synchronization
import TL

/// The conservative budgets of the rate gate. They sit well below what Telegram is observed to
/// allow a user account, because a FLOOD_WAIT costs far more than a little patience; every number
/// is documented in docs/SESSIONS.md (rate gate) and may be raised knowingly.
public struct RateGatePolicy: Sendable, Hashable {
    /// The account-wide bucket of each category.
    public var perAccount: [MethodCategory: TokenBucket.Rate]
    /// The per-chat bucket of categories with `isPerPeer`.
    public var perPeer: [MethodCategory: TokenBucket.Rate]
    /// Waits at or under this many seconds are slept inline; longer ones fail fast.
    public var maximumInlineWait: Double

    public init(perAccount: [MethodCategory: TokenBucket.Rate] = RateGatePolicy.defaultPerAccount,
                perPeer: [MethodCategory: TokenBucket.Rate] = RateGatePolicy.defaultPerPeer,
                maximumInlineWait: Double = 30) {
        self.perAccount = perAccount
        self.perPeer = perPeer
        self.maximumInlineWait = maximumInlineWait
    }

    public static let defaultPerAccount: [MethodCategory: TokenBucket.Rate] = [
        // ~20 messages a minute overall, bursts of 5.
        .send: .per(3, burst: 5),
        // History pages: 2 a second, bursts of 10.
        .read: .per(0.5, burst: 10),
        // Username resolution: ~190 a day (Telegram starts long waits around 200).
        .resolve: .per(450, burst: 3),
        // Joins: one an hour, bursts of 2.
        .join: .per(3600, burst: 2),
        // Login steps: one a minute, bursts of 8: one whole login with typos (send the code, three tries at it,
        // three at the 2FA password, sign-up) must fit, a loop must not. Codes have their own guard.
        .auth: .per(60, burst: 8),
        // Everything else: 5 a second, bursts of 20.
        .other: .per(0.2, burst: 20),
    ]

    public static let defaultPerPeer: [MethodCategory: TokenBucket.Rate] = [
        // One message every 3 s into one chat, bursts of 3 (groups allow ~20 a minute).
        .send: .per(3, burst: 3),
    ]
}

/// Token buckets per (account, method category[, peer]): before a call a token is taken from each
/// bucket that applies; when the wait for them is within the inline limit the call sleeps, else
/// it fails fast with TGSM-RATE-005 and takes nothing.
public final class RateGate: Sendable {
    private struct Key: Hashable {
        var category: MethodCategory
        var peer: String?
    }

    /// Buckets kept in this process before the full per-chat ones are dropped.
    static let bucketsKept = 256

    public let account: AccountID
    public let policy: RateGatePolicy
    private let clock: any TelegramClock
    private let logger: Logger
    private let buckets = Mutex<[Key: TokenBucket]>([:])
    /// Where the buckets live when every process must share them (PostgreSQL); nil: in this process.
    public let shared: (any RateBucketStore)?

    /// - Parameters:
    ///   - account: the account whose calls are gated.
    ///   - policy: the buckets' budgets.
    ///   - clock: refills the buckets and times inline waits.
    ///   - logger: reports refusals and fallbacks.
    ///   - shared: a store every process of the cluster uses; given, the buckets are kept
    ///     there (cluster-wide limits), and this process's own buckets are only the fallback while the
    ///     store fails.
    public init(account: AccountID, policy: RateGatePolicy = RateGatePolicy(), clock: any TelegramClock, logger: Logger,
                shared: (any RateBucketStore)? = nil) {
        self.account = account
        self.policy = policy
        self.clock = clock
        self.logger = logger
        self.shared = shared
    }

    public enum Decision: Sendable, Hashable {
        /// Tokens taken; sleep this long (0: go now).
        case go(after: Double)
        /// Nothing taken: the wait would end at `until`.
        case refuse(until: UnixTime)
    }

    /// This process's buckets held now (diagnostics: per-chat ones come and go).
    public var bucketsHeld: Int { buckets.withLock { $0.count } }

    /// Takes the tokens for one call if the wait is acceptable (this process's buckets).
    public func reserve(category: MethodCategory, peer: String?, now: UnixTime) -> Decision {
        let keys = applicable(category: category, peer: peer)
        guard !keys.isEmpty else { return .go(after: 0) }
        return buckets.withLock { buckets in
            var chosen = keys.map { key, rate in buckets[key] ?? TokenBucket(rate: rate, now: now) }
            let decision = Self.decide(&chosen, now: now, maximumWait: policy.maximumInlineWait)
            for ((key, _), bucket) in zip(keys, chosen) { buckets[key] = bucket }
            // One bucket per chat written to: an account that messages many chats over weeks would
            // keep them all. A full bucket is the same as a new one, so those go.
            if buckets.count > Self.bucketsKept { buckets = buckets.filter { $0.key.peer == nil || !$0.value.isFull(at: now) } }
            return decision
        }
    }

    /// Takes the tokens for one call: from the shared store when there is one (every process of
    /// the cluster draws from the same buckets), else, or while the store fails, from this process's.
    public func reserveShared(category: MethodCategory, peer: String?, now: UnixTime) async -> Decision {
        let keys = applicable(category: category, peer: peer)
        guard let shared, !keys.isEmpty else { return reserve(category: category, peer: peer, now: now) }
        let requests = keys.map { key, rate in SharedBucket(key: key.category.rawValue + (key.peer.map { "|" + $0 } ?? ""), rate: rate) }
        do {
            return try await shared.reserveTokens(account: account, buckets: requests, now: now, maximumWait: policy.maximumInlineWait)
        } catch {
            logger.warning("shared rate buckets failed; this process's own buckets limit the call", metadata: [
                "account": "\(account)", "category": "\(category.rawValue)", "error": "\(error)",
            ])
            return reserve(category: category, peer: peer, now: now)
        }
    }

    private func applicable(category: MethodCategory, peer: String?) -> [(Key, TokenBucket.Rate)] {
        var keys: [(Key, TokenBucket.Rate)] = []
        if let rate = policy.perAccount[category] { keys.append((Key(category: category, peer: nil), rate)) }
        if category.isPerPeer, let peer, let rate = policy.perPeer[category] { keys.append((Key(category: category, peer: peer), rate)) }
        return keys
    }

    /// The one decision rule, for this process's buckets and for a shared store's: the wait is the
    /// longest any bucket needs; within `maximumWait` a token is taken from each, else none.
    public static func decide(_ buckets: inout [TokenBucket], now: UnixTime, maximumWait: Double) -> Decision {
        var wait = 0.0
        for index in buckets.indices { wait = max(wait, buckets[index].waitForToken(now: now)) }
        guard wait <= maximumWait else { return .refuse(until: now + wait) }
        for index in buckets.indices { buckets[index].take(now: now) }
        return .go(after: wait)
    }

    func admit(method: String, peer: String?) async throws(TelegramError) {
        let category = MethodCategory(method: method)
        switch await reserveShared(category: category, peer: peer, now: clock.now()) {
        case .go(let after):
            if after > 0 {
                Counter(label: "tgsm_rate_gate_waits_total", dimensions: [("account", account.rawValue), ("category", category.rawValue)]).increment()
                try await sleepCancellable(clock, seconds: after, method: method)
            }
        case .refuse(let until):
            logger.warning("rate gate refused a call", metadata: ["account": "\(account)", "method": "\(method)", "category": "\(category.rawValue)"])
            Counter(label: "tgsm_rate_gate_refusals_total", dimensions: [("account", account.rawValue), ("category", category.rawValue)]).increment()
            throw .middleware(SessionManagerError(.rateGate(account: account, method: method, category: category, peer: category.isPerPeer ? peer : nil, until: until)))
        }
    }
}

public struct RateGateMiddleware: InvocationMiddleware {
    public let gate: RateGate

    public init(_ gate: RateGate) { self.gate = gate }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, gate: gate)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let gate: RateGate

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            try await gate.admit(method: Request.tlName, peer: FloodScope.peerKey(of: request))
            return try await next.invoke(request, options: options)
        }
    }
}
