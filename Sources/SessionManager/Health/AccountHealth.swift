import Foundation
import Logging
import MTProto
import MTProtoClient
import Metrics
import Synchronization
import TL
import TLSchema

/// How an account is doing, for workers, the CLI and the dashboard.
public enum HealthState: String, Sendable, Hashable, CaseIterable {
    /// Nothing observed yet.
    case unknown
    case healthy
    /// Recent network failures, but not enough to call it down.
    case degraded
    /// Several network failures in a row: no working connection.
    case down
    /// Telegram (or the ledger, gate, breaker) is holding calls back.
    case rateLimited
    /// A terminal error: the account needs a person.
    case terminal
}

/// One snapshot of an account's health.
public struct HealthSnapshot: Sendable, Hashable {
    public var account: AccountID
    public var state: HealthState
    public var lastSuccess: UnixTime?
    public var lastFailure: UnixTime?
    /// The session manager's code of the last failure ("TGSM-NET-001").
    public var lastFailureCode: String?
    /// What the last failure was, in a sentence ("no connection to DC 2 after 6 attempts (Connection
    /// refused connecting to the SOCKS5 proxy …)"): what `/health` says when the account is down.
    public var lastFailureSummary: String?
    /// Round-trip time of the last keep-alive (or validation) call, seconds.
    public var pingRTT: Double?
    public var consecutiveFailures: Int
    /// Until when calls are held back, in `.rateLimited`.
    public var rateLimitedUntil: UnixTime?
    /// When Telegram first answered that the account is frozen (FROZEN_METHOD_INVALID,
    /// FROZEN_PARTICIPANT_MISSING): read-only until an appeal is accepted, so the account stays
    /// `.degraded` for the process's life, reads succeeding or not.
    public var frozenSince: UnixTime?
    /// What help.getAppConfig said of the freeze (when it is deleted, where to appeal), once read.
    public var freeze: AccountFreeze?
    /// The service notifications Telegram sent this account since the process started, oldest
    /// first, the newest `ReceivedServiceNotification.kept`.
    public var serviceNotifications: [ReceivedServiceNotification] = []
    /// When Telegram last asked this session to log out (a notification of type AUTH_KEY_DROP_...):
    /// the account stays `.degraded` for the process's life, as a person should look at it.
    public var sessionDropAskedAt: UnixTime?
    /// Since when the session's state could not be saved to the store (a full disk, a store re-keyed
    /// under this process), with the last error; nil once a save succeeds. Calls may still work, but
    /// a restart would lose what changed since (a new key, a temporary key, salts): `.degraded`.
    public var sessionNotSavedSince: UnixTime?
    public var sessionSaveError: String?
    /// When the account's way to Telegram (its proxy) last changed in this process: a success before
    /// it says nothing of the new way.
    public var routeChangedAt: UnixTime?

    /// Whether no call succeeded since the start or since the way to Telegram last changed.
    public var hasSucceededOnThisRoute: Bool {
        guard let lastSuccess else { return false }
        return routeChangedAt.map { lastSuccess >= $0 } ?? true
    }

    /// Something that keeps the account `.degraded` whatever its calls do: a freeze, a request to
    /// log the session out, session saves failing.
    var hasLastingTrouble: Bool { frozenSince != nil || sessionDropAskedAt != nil || sessionNotSavedSince != nil }

    public init(account: AccountID, state: HealthState, lastSuccess: UnixTime? = nil, lastFailure: UnixTime? = nil, lastFailureCode: String? = nil,
                pingRTT: Double? = nil, consecutiveFailures: Int = 0, rateLimitedUntil: UnixTime? = nil, frozenSince: UnixTime? = nil) {
        self.account = account
        self.state = state
        self.lastSuccess = lastSuccess
        self.lastFailure = lastFailure
        self.lastFailureCode = lastFailureCode
        self.pingRTT = pingRTT
        self.consecutiveFailures = consecutiveFailures
        self.rateLimitedUntil = rateLimitedUntil
        self.frozenSince = frozenSince
    }
}

/// A service notification as the health monitor keeps it.
public struct ReceivedServiceNotification: Sendable, Hashable {
    /// How many a snapshot keeps.
    public static let kept = 10
    public var notification: ServiceNotification
    public var receivedAt: UnixTime
    /// The same type arrived within 15 minutes before: the spec allows ignoring it, so it was not
    /// logged again.
    public var isRepeat: Bool

    public init(notification: ServiceNotification, receivedAt: UnixTime, isRepeat: Bool) {
        self.notification = notification
        self.receivedAt = receivedAt
        self.isRepeat = isRepeat
    }
}

/// Something that changed about an account's health.
public struct HealthEvent: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case stateChanged(from: HealthState, to: HealthState)
        case ping(rtt: Double)
        case failure(code: String)
        /// Telegram sent the account a service notification of this type (see the snapshot's list).
        case serviceNotification(type: String)
        /// The account was seen frozen, or more was learnt of its freeze (see the snapshot's
        /// `frozenSince` and `freeze`): what the runtime keeps in the store.
        case frozen
    }

    public var account: AccountID
    public var at: UnixTime
    public var kind: Kind
}

/// The health monitor of one account: fed by the health middleware (every call's outcome) and by
/// the keep-alive (ping RTT); read as snapshots or followed as an `AsyncSequence` of events.
public final class AccountHealth: Sendable {
    public struct Policy: Sendable, Hashable {
        /// Consecutive network failures after which the account is `.down` (below: `.degraded`).
        public var failuresForDown: Int

        public init(failuresForDown: Int = 3) {
            self.failuresForDown = failuresForDown
        }
    }

    public let account: AccountID
    public let policy: Policy
    private let clock: any TelegramClock
    private let logger: Logger

    private struct State {
        var snapshot: HealthSnapshot
        var subscribers: [Int: AsyncStream<HealthEvent>.Continuation] = [:]
        var nextSubscriber = 0
        /// A help.getAppConfig for the freeze's details is under way or done.
        var freezeLookupClaimed = false
    }

    private let state: Mutex<State>

    public init(account: AccountID, policy: Policy = Policy(), clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.policy = policy
        self.clock = clock
        self.logger = logger
        self.state = Mutex(State(snapshot: HealthSnapshot(account: account, state: .unknown, consecutiveFailures: 0)))
    }

    public var snapshot: HealthSnapshot { state.withLock { $0.snapshot } }

    /// Every event from now on, until the monitor is released or the consumer stops iterating.
    /// Each call gives an independent stream; a slow consumer keeps the newest 256 events.
    public func events() -> AsyncStream<HealthEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: HealthEvent.self, bufferingPolicy: .bufferingNewest(256))
        let id = state.withLock { state in
            let id = state.nextSubscriber
            state.nextSubscriber += 1
            state.subscribers[id] = continuation
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// A call that succeeded.
    public func recordSuccess() {
        let now = clock.now()
        update(at: now) { snapshot in
            snapshot.lastSuccess = now
            snapshot.consecutiveFailures = 0
            snapshot.rateLimitedUntil = nil
            snapshot.state = snapshot.hasLastingTrouble ? .degraded : .healthy
            return []
        }
    }

    /// The session's state could not be saved to the store (`error`), or was saved again (nil).
    public func recordSessionSave(failure error: String?) {
        let now = clock.now()
        update(at: now) { snapshot in
            if let error {
                if snapshot.sessionNotSavedSince == nil { snapshot.sessionNotSavedSince = now }
                snapshot.sessionSaveError = error
                if snapshot.state == .healthy || snapshot.state == .unknown { snapshot.state = .degraded }
            } else {
                guard snapshot.sessionNotSavedSince != nil else { return [] }
                snapshot.sessionNotSavedSince = nil
                snapshot.sessionSaveError = nil
                if snapshot.state == .degraded, !snapshot.hasLastingTrouble, snapshot.consecutiveFailures == 0 { snapshot.state = .healthy }
            }
            return []
        }
    }

    /// A service notification Telegram sent the account (`TelegramClient.onServiceNotification`):
    /// kept in the snapshot and logged with login-code-like digits masked; one asking the session to
    /// log out (AUTH_KEY_DROP_...) degrades the account and is logged as an error. A repeat of a type
    /// within 15 minutes is kept but not logged again (the spec allows ignoring it).
    public func recordServiceNotification(_ notification: ServiceNotification) {
        let now = clock.now()
        var isRepeat = false
        update(at: now) { snapshot in
            // Each new login is an event of its own (another device); the spec's 15 minutes are for service notifications.
            isRepeat = !notification.isNewLogin
                && snapshot.serviceNotifications.contains { $0.notification.type == notification.type && now - $0.receivedAt < 900 }
            snapshot.serviceNotifications.append(ReceivedServiceNotification(notification: notification, receivedAt: now, isRepeat: isRepeat))
            if snapshot.serviceNotifications.count > ReceivedServiceNotification.kept {
                snapshot.serviceNotifications.removeFirst(snapshot.serviceNotifications.count - ReceivedServiceNotification.kept)
            }
            if notification.asksToDropTheSession {
                snapshot.sessionDropAskedAt = now
                if snapshot.state == .healthy || snapshot.state == .unknown { snapshot.state = .degraded }
            }
            return [.serviceNotification(type: notification.type)]
        }
        let kind = notification.asksToDropTheSession ? "session_drop" : notification.isNewLogin ? "new_login" : notification.popup ? "popup" : "inbox"
        Counter(label: "tgsm_service_notifications_total", dimensions: [("account", account.rawValue), ("kind", kind)]).increment()
        guard !isRepeat else { return }
        let metadata: Logger.Metadata = ["account": "\(account)", "type": "\(notification.type)", "popup": "\(notification.popup)",
                                         "message": "\(notification.redactedMessage)"]
        if notification.asksToDropTheSession {
            logger.error("""
                Telegram asks this session to log out (a service notification of type AUTH_KEY_DROP_...): look at the account's \
                devices in an official app (Settings > Devices) and end any session nobody recognises; the session keeps running until \
                Telegram or a person ends it
                """, metadata: metadata)
        } else if notification.isNewLogin {
            logger.warning("Telegram reports a new login to this account: if nobody here made it, end it in an official app (Settings > Devices)",
                           metadata: metadata)
        } else {
            logger.warning("Telegram sent this account a service notification", metadata: metadata)
        }
    }

    /// The account's connections go another way from now (`TelegramClient.changeProxy`).
    public func recordRouteChange() {
        let now = clock.now()
        update(at: now) { snapshot in
            snapshot.routeChangedAt = now
            return []
        }
    }

    /// A keep-alive or validation round trip.
    public func recordPing(rtt: Double) {
        let now = clock.now()
        update(at: now) { snapshot in
            snapshot.pingRTT = rtt
            return [.ping(rtt: rtt)]
        }
        Recorder(label: "tgsm_ping_rtt_seconds", dimensions: [("account", account.rawValue)]).record(rtt)
    }

    /// A call that failed, as the session manager classifies it.
    public func recordFailure(_ error: SessionManagerError) {
        let now = clock.now()
        update(at: now) { snapshot in
            snapshot.lastFailure = now
            snapshot.lastFailureCode = error.code
            snapshot.lastFailureSummary = error.summary
            if error.isTerminal {
                snapshot.state = .terminal
            } else {
                switch error.category {
                case .rateLimit:
                    snapshot.state = .rateLimited
                    snapshot.rateLimitedUntil = error.until
                case .network:
                    snapshot.consecutiveFailures += 1
                    snapshot.state = snapshot.consecutiveFailures >= policy.failuresForDown ? .down : .degraded
                case .rpc:
                    // A server wait is a rate limit even when no ledger recorded it.
                    if case .serverWait = error.reason { snapshot.state = .rateLimited }
                    if case .requestRefused(_, _, let rpc) = error.reason, rpc.isAccountFrozen {
                        snapshot.state = .degraded
                        if snapshot.frozenSince == nil {
                            snapshot.frozenSince = now
                            return [.failure(code: error.code), .frozen]
                        }
                    }
                case .session, .auth:
                    break
                }
            }
            return [.failure(code: error.code)]
        }
    }

    /// Whether this call should read the freeze's details: true once, until `freezeLookupFailed`.
    func claimFreezeLookup() -> Bool {
        state.withLock { state in
            guard state.snapshot.frozenSince != nil, state.snapshot.freeze == nil, !state.freezeLookupClaimed else { return false }
            state.freezeLookupClaimed = true
            return true
        }
    }

    /// The lookup failed: a later frozen answer tries again.
    func freezeLookupFailed() {
        state.withLock { $0.freezeLookupClaimed = false }
    }

    /// What help.getAppConfig said of the freeze: after a FROZEN_* answer, or at start-up for an
    /// account the store keeps frozen (`since`: when it was first seen frozen, for a freeze whose
    /// answer has no freeze_since_date).
    public func recordFreeze(_ freeze: AccountFreeze, seenFrozenSince since: UnixTime? = nil) {
        let now = clock.now()
        update(at: now) { snapshot in
            snapshot.freeze = freeze
            if snapshot.frozenSince == nil {
                snapshot.frozenSince = freeze.since ?? since ?? now
                if snapshot.state == .healthy || snapshot.state == .unknown { snapshot.state = .degraded }
            }
            return [.frozen]
        }
        logger.warning("Telegram froze this account: it is deleted on the date given unless an appeal is accepted", metadata: [
            "account": "\(account)",
            "frozenSince": "\(freeze.since.map(Self.iso) ?? "unknown")",
            "deletedAfter": "\(freeze.deletedAfter.map(Self.iso) ?? "unknown")",
            "appeal": "\(freeze.appealURL ?? "unknown")",
        ])
    }

    private static func iso(_ time: UnixTime) -> String {
        Date(timeIntervalSince1970: time.seconds).formatted(.iso8601)
    }

    /// Applies `change` and publishes its events plus a state change, outside the lock's critical work.
    private func update(at now: UnixTime, _ change: (inout HealthSnapshot) -> [HealthEvent.Kind]) {
        let (events, subscribers, transition) = state.withLock { state -> ([HealthEvent.Kind], [AsyncStream<HealthEvent>.Continuation], (HealthState, HealthState)?) in
            let before = state.snapshot.state
            var kinds = change(&state.snapshot)
            let after = state.snapshot.state
            if before != after { kinds.insert(.stateChanged(from: before, to: after), at: 0) }
            // Success on a healthy account is the common case: no event, no continuation copies.
            guard !kinds.isEmpty else { return ([], [], nil) }
            return (kinds, Array(state.subscribers.values), before != after ? (before, after) : nil)
        }
        if let (before, after) = transition {
            let level: Logger.Level = after == .terminal || after == .down ? .warning : .info
            logger.log(level: level, "account health changed", metadata: ["account": "\(account)", "from": "\(before.rawValue)", "to": "\(after.rawValue)"])
            Gauge(label: "tgsm_account_health", dimensions: [("account", account.rawValue)]).record(Double(HealthState.allCases.firstIndex(of: after) ?? 0))
        }
        for kind in events {
            let event = HealthEvent(account: account, at: now, kind: kind)
            for subscriber in subscribers { subscriber.yield(event) }
        }
    }

    deinit {
        let subscribers = state.withLock { $0.subscribers.values }
        for subscriber in subscribers { subscriber.finish() }
    }
}

/// Feeds an `AccountHealth` from every call's outcome.
public struct HealthMiddleware: InvocationMiddleware {
    public let health: AccountHealth

    public init(_ health: AccountHealth) { self.health = health }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, health: health)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let health: AccountHealth

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            do {
                let result = try await next.invoke(request, options: options)
                health.recordSuccess()
                return result
            } catch {
                if case .cancelled = error { throw error }
                health.recordFailure(error.guidance(account: health.account, dc: options.dc, idempotent: options.isIdempotent))
                if health.claimFreezeLookup() { await lookUpFreeze() }
                throw error
            }
        }

        /// api/auth: after FROZEN_METHOD_INVALID, help.getAppConfig carries the freeze's dates and
        /// appeal URL. Asked once, through the layers below (so the ledger and the gate apply).
        private func lookUpFreeze() async {
            do {
                let config = try await next.invoke(Api.functions.help.GetAppConfig(hash: 0), options: InvokeOptions(isIdempotent: true))
                guard let freeze = AccountFreeze(appConfig: config) else {
                    health.freezeLookupFailed()
                    return
                }
                health.recordFreeze(freeze)
            } catch {
                health.freezeLookupFailed()
            }
        }
    }
}

