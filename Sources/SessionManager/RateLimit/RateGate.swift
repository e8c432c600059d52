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
        // Login steps: one a minute, bursts of 3 (codes have their own guard).
        .auth: .per(60, burst: 3),
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

    public let account: AccountID
    public let policy: RateGatePolicy
    private let clock: any TelegramClock
    private let logger: Logger
    private let buckets = Mutex<[Key: TokenBucket]>([:])

    public init(account: AccountID, policy: RateGatePolicy = RateGatePolicy(), clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    public enum Decision: Sendable, Hashable {
        /// Tokens taken; sleep this long (0: go now).
        case go(after: Double)
        /// Nothing taken: the wait would end at `until`.
        case refuse(until: UnixTime)
    }

    /// Takes the tokens for one call if the wait is acceptable.
    public func reserve(category: MethodCategory, peer: String?, now: UnixTime) -> Decision {
        var keys: [(Key, TokenBucket.Rate)] = []
        if let rate = policy.perAccount[category] { keys.append((Key(category: category, peer: nil), rate)) }
        if category.isPerPeer, let peer, let rate = policy.perPeer[category] { keys.append((Key(category: category, peer: peer), rate)) }
        guard !keys.isEmpty else { return .go(after: 0) }
        return buckets.withLock { buckets in
            var wait = 0.0
            for (key, rate) in keys {
                var bucket = buckets[key] ?? TokenBucket(rate: rate, now: now)
                wait = max(wait, bucket.waitForToken(now: now))
                buckets[key] = bucket
            }
            guard wait <= policy.maximumInlineWait else { return .refuse(until: now + wait) }
            for (key, _) in keys { buckets[key]?.take(now: now) }
            return .go(after: wait)
        }
    }

    func admit(method: String, peer: String?) async throws(TelegramError) {
        let category = MethodCategory(method: method)
        switch reserve(category: category, peer: peer, now: clock.now()) {
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
