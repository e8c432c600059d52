import Logging
import MTProto
import MTProtoClient
import ServiceLifecycle
import SessionManager
import Synchronization
import Workers

/// Looks at the accounts every `interval` seconds, as `/health` does, and sends what the
/// `AlertTracker` makes of it to the webhook. A look that fails (the store busy) is logged and the
/// next one goes on; on shutdown the alerts already queued get a few seconds to go out.
public struct AlertService: Service {
    private let tracker: AlertTracker
    private let delivery: AlertDelivery
    private let store: any OperatorReadableStore
    /// What earlier processes said, read at the start (the delivery records what this one says:
    /// `remembering(in:logger:)`); nil: this process's memory only.
    private let memory: (any AlertMemory)?
    private let queue: (any JobQueue)?
    /// Why this process's workers cannot claim jobs now (`WorkerPool.claimFailure`); nil: no workers.
    private let claimFailure: (@Sendable () -> ClaimFailure?)?
    /// nil: every account in the store, as it is at each look.
    private let accounts: [AccountID]?
    private let liveHealth: OperatorHTTPServer.LiveHealth?
    private let clock: any TelegramClock
    private let interval: Double
    private let logger: Logger

    public init(tracker: AlertTracker, delivery: AlertDelivery, store: any OperatorReadableStore, memory: (any AlertMemory)? = nil,
                queue: (any JobQueue)?, claimFailure: (@Sendable () -> ClaimFailure?)? = nil, accounts: [AccountID]?,
                liveHealth: OperatorHTTPServer.LiveHealth?, clock: any TelegramClock, interval: Double = 10, logger: Logger) {
        self.tracker = tracker
        self.delivery = delivery
        self.store = store
        self.memory = memory
        self.queue = queue
        self.claimFailure = claimFailure
        self.accounts = accounts
        self.liveHealth = liveHealth
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let initial = self.tracker
        var tracker = await cancelWhenGracefulShutdown {
            var tracker = initial
            await recall(into: &tracker)
            var failing = false
            var outage = StoreOutageAlarm.make(holdOff: tracker.policy.holdOff, host: tracker.host)
            var claims = QueueFailureAlarm.make(holdOff: tracker.policy.holdOff, host: tracker.host)
            // A look at a store that hangs ends within this bound and counts as a failure: waiting
            // for the store's own timeout (30 s on PostgreSQL) made a 50 s outage pass unsaid.
            let lookBound = max(tracker.policy.holdOff, 10)
            while !Task.isCancelled {
                // The outage is timed from the start of the first look that failed, not its end.
                let started = clock.now()
                do {
                    let snapshot = try await withBound(seconds: lookBound, "reading the store for alerts") { try await self.look() }
                    if !tracker.newlyWatched(in: snapshot).isEmpty { await recallAgain(into: &tracker) }
                    if let back = outage.observe(failure: nil, at: clock.now()) { await delivery.send([back]) }
                    await delivery.send(await saidElsewhereLeftOut(tracker.observe(snapshot)))
                    await delivery.rememberPending()
                    failing = false
                } catch {
                    if let alarm = outage.observe(failure: "\(error)", since: started, at: clock.now()) { await delivery.send([alarm]) }
                    // Said once per spell of failures, not every interval.
                    if !failing {
                        logger.warning("the accounts could not be read for alerts; trying again", metadata: ["error": "\(error)"])
                    }
                    failing = true
                }
                // The workers' claims, apart from the store's reads: a damaged queue file fails the one, not the other.
                if let claimFailure {
                    let failure = claimFailure()
                    if let alarm = claims.observe(failure: failure?.error, since: failure?.since, at: clock.now()) { await delivery.send([alarm]) }
                }
                do { try await clock.sleep(for: interval) } catch { break }
            }
            return tracker
        }
        // A last look on the way out: `tgsm run` ends by itself when every account stopped with a
        // session error, which is just what a person must hear.
        if let snapshot = try? await look() { await delivery.send(await saidElsewhereLeftOut(tracker.observe(snapshot))) }
        await delivery.flush(within: 3)
        await delivery.rememberPending()
    }

    /// The alerts another process of the store said moments ago left out. When an account changes
    /// hands (its holder marked it and let it go, a standby took it and checked it again), each
    /// process's tracker sees the same incident and said it: two "needs a person", two "ready
    /// again". What this process said itself is not in question (its tracker says each thing once);
    /// only a key the shared memory got within `duplicateWindow` is taken as said.
    private func saidElsewhereLeftOut(_ alerts: [Alert]) async -> [Alert] {
        guard let memory, alerts.contains(where: { !$0.memoryKeys.isEmpty }) else { return alerts }
        let now = clock.now()
        guard let sent = try? await memory.alertsSent(since: UnixTime(seconds: now.seconds - duplicateWindow)) else { return alerts }
        let kept = Self.leavingOut(alerts, saidAlready: Set(sent.keys))
        if kept.count < alerts.count {
            logger.info("alerts another process of the store has just sent are not sent again", metadata: ["left-out": "\(alerts.count - kept.count)"])
        }
        return kept
    }

    /// `alerts` without those whose every memory key is in `said` (alerts without keys stay).
    static func leavingOut(_ alerts: [Alert], saidAlready said: Set<String>) -> [Alert] {
        alerts.filter { alert in alert.memoryKeys.isEmpty || !alert.memoryKeys.allSatisfy(said.contains) }
    }

    /// How far back a key in the shared memory counts as the same incident said by another process.
    private var duplicateWindow: Double { max(60, 3 * interval) }

    /// What earlier processes said (`AlertMemory.days`).
    private func recall(into tracker: inout AlertTracker) async {
        guard let memory else { return }
        do {
            let remembered = try await memory.recentlySent(now: clock.now())
            tracker = AlertTracker(policy: tracker.policy, host: tracker.host, holder: tracker.holder, remembered: remembered)
        } catch {
            logger.warning("the alerts sent before could not be read; what this process says may repeat them", metadata: ["error": "\(error)"])
        }
    }

    /// What other processes said since this one's start, for accounts it took over from them.
    private func recallAgain(into tracker: inout AlertTracker) async {
        guard let memory else { return }
        do {
            tracker.recall(try await memory.recentlySent(now: clock.now()))
        } catch {
            logger.warning("the alerts other processes sent could not be read; an account taken over may be said again", metadata: ["error": "\(error)"])
        }
    }

    /// What the delivery calls with each delivered alert's keys: they go into `memory`. Keys the
    /// store did not take (stalled, locked) are kept and tried again with the next ones, and at each
    /// look (`AlertDelivery.rememberPending`): an incident a process said but could not record was
    /// lost to the next process, which then never said it was over ("ready again").
    public static func remembering(in memory: (any AlertMemory)?, logger: Logger) -> (@Sendable ([String], UnixTime) async -> Void)? {
        guard let memory else { return nil }
        let pending = PendingAlertKeys()
        return { keys, at in
            let batch = pending.take() + (keys.isEmpty ? [] : [(keys: keys, at: at)])
            for (index, item) in batch.enumerated() {
                do {
                    try await memory.remember(item.keys, at: item.at)
                } catch {
                    let kept = pending.putBack(Array(batch[index...]))
                    // Once per spell: the same failure at every look is no news.
                    if !keys.isEmpty {
                        logger.warning("a delivered alert could not be remembered in the store; kept and tried again at each look (beside a SQLite store also in alerts-unrecorded.json, for a process started before the store answers; on PostgreSQL, a process ending first loses it: a later one may say it again, or not say when that incident is over)", metadata: ["error": "\(error)", "keptAlerts": "\(kept)"])
                    }
                    return
                }
            }
            if batch.count > (keys.isEmpty ? 0 : 1) { logger.notice("alerts the store could not take earlier are remembered now") }
        }
    }


    /// Seconds back each look reads the dead letters: many looks' worth, so a few failed looks or
    /// another process's clock running behind lose none (the tracker says each one once).
    public static let deadLetterWindow: Double = 600

    private func look() async throws -> OperatorSnapshot {
        try await OperatorSnapshot.gather(store: store, queue: queue, enabled: accounts, live: await liveHealth?(), now: clock.now(), historyLimit: 0,
                                          deadLettersWithin: Self.deadLetterWindow)
    }
}

/// Delivered alerts' memory keys the store has not taken yet, oldest first; bounded, so a store
/// that never comes back does not grow the process (the oldest are dropped: said again at worst).
final class PendingAlertKeys: Sendable {
    private let items = Mutex<[(keys: [String], at: UnixTime)]>([])
    static let limit = 1000

    func take() -> [(keys: [String], at: UnixTime)] {
        items.withLock { items in
            defer { items = [] }
            return items
        }
    }

    /// Puts `batch` back before what came meanwhile; returns how many alerts are kept.
    @discardableResult
    func putBack(_ batch: [(keys: [String], at: UnixTime)]) -> Int {
        items.withLock { items in
            items = Array((batch + items).suffix(Self.limit))
            return items.count
        }
    }
}
