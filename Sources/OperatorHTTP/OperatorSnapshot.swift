import MTProto
import SessionManager
import Workers

/// Everything an operator view shows at one instant, read from the store and the queue (so it is
/// the same in every process on them) plus, when given, the live health of the accounts this
/// process runs. `tgsm status` and the HTTP server both read through `gather`.
public struct OperatorSnapshot: Sendable {
    public struct Account: Sendable {
        public var id: AccountID
        /// Whether the operator asked this process to serve it (health is judged only for those).
        public var enabled: Bool
        /// Nil when the store has no session for it.
        public var summary: AccountSummary?
        public var lease: Lease?
        /// Nil or `.active`: may be used.
        public var mark: AccountStatus?
        /// The live health monitor's view, when this process runs the account.
        public var live: HealthSnapshot?
        public var floodWaits: [FloodWait]
        /// The freeze the store keeps (seen by this process or an earlier one); nil: none known.
        public var storedFreeze: StoredAccountFreeze? = nil
        /// What the process holding the account's lease reports of it (`LiveReport`), while that
        /// lease is live; nil when none does (nobody runs it, or its process has not looked yet).
        public var report: LiveReport? = nil
        /// Why this process's workers cannot claim jobs now, for an account this process runs; nil
        /// when they can, or none run here.
        public var claimFailure: ClaimFailure? = nil

        /// Since when the account is frozen: as this process sees it, else as the store keeps it.
        public var frozenSince: UnixTime? { live?.frozenSince.map { live?.freeze?.since ?? $0 } ?? storedFreeze?.since }
        /// What is known of the freeze: from this process's help.getAppConfig, else from the store.
        public var freezeDetails: AccountFreeze? {
            if let details = live?.freeze { return details }
            return storedFreeze?.details
        }

        public var sessionState: AccountStatus.State { mark?.state ?? .active }
        public var isLoggedIn: Bool { !(summary?.authorizedDCs.isEmpty ?? true) }
    }

    public var now: UnixTime
    public var accounts: [Account]
    /// Every active flood wait, soonest end first.
    public var floodWaits: [FloodWait]
    public var sendCodeDeadlines: [(account: AccountID, deadline: UnixTime)]
    /// Jobs by state; nil without a queue.
    public var jobs: JobCounts?
    /// The queue's history since `now - historyWindow`, oldest first; empty without one.
    public var history: [JobHistoryEntry]
    public var historyWindow: Double
    /// Whether live health was supplied (a running process) or only the store was read.
    public var hasLiveHealth: Bool
    /// Whether the queue keeps a history of outcomes (`JobHistoryReading`: both of tgsm's queues
    /// do), so an empty `history` means "nothing happened", not "not kept".
    public var keepsHistory = true
    /// The jobs dead-lettered within the window `gather` was asked for (`deadLettersWithin`), oldest
    /// first, whichever process did it; nil when not asked for or the queue keeps no history.
    public var deadLetters: [JobHistoryEntry]? = nil
    /// Why this process's workers cannot claim jobs now (`WorkerPool.claimFailure`); nil when they
    /// can, or none run here.
    public var claimFailure: ClaimFailure? = nil

    /// Dead letters read per look at most: past it (a mass failure), the newest ones are said.
    static let deadLetterLimit = 1000

    /// Open jobs: queued or running.
    public var openJobs: Int { (jobs?[.queued] ?? 0) + (jobs?[.running] ?? 0) }

    /// Reads the store (accounts, summaries, leases, marks, active flood waits, send-code
    /// deadlines, running processes' reports), the queue (counts, history) and the live health.
    /// - Parameters:
    ///   - enabled: the accounts this process serves; nil means every account in the store.
    ///     An enabled account the store does not know is listed too (health says why it is not ready).
    ///   - historyLimit: entries of the queue's history to read; 0 reads none (`tgsm status`).
    ///   - deadLettersWithin: seconds back to read the dead letters for (the alerts); nil reads none.
    ///   - onlyEnabled: read the enabled accounts alone, not every account in the store (a look
    ///     repeated every few seconds in each process of a cluster).
    ///   - claimFailure: why this process's workers cannot claim jobs now; given to the accounts it
    ///     runs (those in `live`).
    public static func gather(
        store: any OperatorReadableStore, queue: (any JobQueue)?, enabled: [AccountID]? = nil,
        live: [AccountID: HealthSnapshot]? = nil, now: UnixTime, historyWindow: Double = 3600, historyLimit: Int = 5000,
        deadLettersWithin: Double? = nil, onlyEnabled: Bool = false, claimFailure: ClaimFailure? = nil
    ) async throws -> OperatorSnapshot {
        var ids = onlyEnabled ? [] : try await store.accounts()
        for id in enabled ?? [] where !ids.contains(id) { ids.append(id) }
        let waits = try await store.activeFloodWaits(account: nil, at: now)
        let freezes = try await store.freezes(account: nil)
        let reports = try await store.liveReports()
        var accounts: [Account] = []
        for id in ids {
            let lease = try await store.currentLease(account: id)
            accounts.append(Account(
                id: id, enabled: enabled.map { $0.contains(id) } ?? true,
                summary: try await store.accountSummary(id), lease: lease,
                mark: try await store.guardedStatus(of: id, now: now), live: live?[id], floodWaits: waits.filter { $0.account == id },
                storedFreeze: freezes.first { $0.account == id },
                report: reports.first { $0.account == id && $0.isCurrent(lease: lease, at: now) },
                claimFailure: live?[id] == nil ? nil : claimFailure))
        }
        let deadlines = try await store.activeSendCodeDeadlines(at: now)
        var counts: JobCounts?
        var history: [JobHistoryEntry] = []
        var deadLetters: [JobHistoryEntry]?
        if let queue {
            counts = try await queue.counts(account: nil)
            if let reader = queue as? any JobHistoryReading {
                if historyLimit > 0 { history = try await reader.history(since: now + -historyWindow, limit: historyLimit) }
                if let within = deadLettersWithin {
                    deadLetters = try await reader.history(since: now + -within, limit: deadLetterLimit, events: [.dead])
                }
            }
        }
        return OperatorSnapshot(
            now: now, accounts: accounts, floodWaits: waits, sendCodeDeadlines: deadlines, jobs: counts, history: history,
            historyWindow: historyWindow, hasLiveHealth: live != nil, keepsHistory: queue.map { $0 is any JobHistoryReading } ?? true,
            deadLetters: deadLetters, claimFailure: claimFailure)
    }
}
