import Logging
import MTProto
import MTProtoClient
import ServiceLifecycle
import SessionManager
import Workers

/// Keeps in the store what this process sees of the accounts it serves (`LiveReport`): every
/// `interval` seconds it judges each account as `/health` does and writes the reports that changed,
/// so `tgsm status` and `tgsm check` elsewhere say "its proxy refuses it" or "down for 40 min"
/// rather than only what the store knows. Writes only for the accounts whose lease it holds; a
/// report lasts as long as that lease, so nothing is cleared on the way out.
public struct LiveReportService: Service {
    private let store: any OperatorReadableStore
    private let liveHealth: OperatorHTTPServer.LiveHealth
    private let claimFailure: (@Sendable () -> ClaimFailure?)?
    private let holder: LeaseHolder
    private let clock: any TelegramClock
    private let interval: Double
    private let logger: Logger

    /// A report whose reasons' texts alone changed (a failure count, the last error) is written again
    /// at most this often: an outage of many accounts costs a write per account per minute, not per look.
    public static let textRefreshInterval: Double = 60

    /// - Parameter claimFailure: why this process's workers cannot claim jobs now (`WorkerPool.claimFailure`),
    ///   said in the report of each account they serve; nil in a process without workers.
    public init(store: any OperatorReadableStore, liveHealth: @escaping OperatorHTTPServer.LiveHealth,
                claimFailure: (@Sendable () -> ClaimFailure?)? = nil, holder: LeaseHolder = .current(),
                clock: any TelegramClock, interval: Double = 10, logger: Logger) {
        self.store = store
        self.liveHealth = liveHealth
        self.claimFailure = claimFailure
        self.holder = holder
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var reporter = LiveReporter(holder: holder)
            var failing = false
            while !Task.isCancelled {
                do {
                    try await look(with: &reporter)
                    failing = false
                } catch {
                    // Said once per spell of failures: the next look tries again.
                    if !failing {
                        logger.warning("what this process sees of its accounts could not be kept in the store for `tgsm status`; trying again",
                                       metadata: ["error": "\(error)"])
                    }
                    failing = true
                }
                do { try await clock.sleep(for: interval) } catch { break }
            }
        }
    }

    private func look(with reporter: inout LiveReporter) async throws {
        let live = await liveHealth()
        guard !live.isEmpty else { return }
        let now = clock.now()
        let snapshot = try await OperatorSnapshot.gather(store: store, queue: nil, enabled: Array(live.keys), live: live, now: now, historyLimit: 0,
                                                         onlyEnabled: true, claimFailure: claimFailure?())
        for (report, token) in reporter.changed(snapshot.accounts.filter { live[$0.id] != nil }, now: now) {
            if try await store.recordLiveReport(report) { reporter.written(report, token: token) }
        }
    }
}

/// The judging and change-tracking half of `LiveReportService`, as a value for tests.
struct LiveReporter {
    let holder: LeaseHolder
    /// What was written for each account, under which lease: a lease taken again (after another
    /// process held it, and maybe wrote its own report) is written again.
    private var last: [AccountID: (report: LiveReport, token: LeaseToken)] = [:]

    init(holder: LeaseHolder) { self.holder = holder }

    /// The reports to write now: of the accounts whose lease this process holds, those that say
    /// something new, or only new texts after `LiveReportService.textRefreshInterval`.
    mutating func changed(_ accounts: [OperatorSnapshot.Account], now: UnixTime) -> [(report: LiveReport, token: LeaseToken)] {
        accounts.compactMap { account -> (report: LiveReport, token: LeaseToken)? in
            guard let live = account.live, let lease = account.lease, lease.holder == holder, !lease.isExpired(at: now) else { return nil }
            let reasons = HealthReport.reasons(account, liveExpected: true, now: now)
            var report = LiveReport(
                account: account.id, holder: holder, ready: reasons.isEmpty, health: live.state.rawValue,
                reasons: reasons.map { LiveReport.Reason(code: $0.code, text: Redaction.masked($0.text), needsAPerson: $0.needsAPerson) },
                since: now, reportedAt: now)
            guard let (previous, token) = last[account.id], token == lease.token else { return (report, lease.token) }
            let sameCodes = previous.ready == report.ready && previous.reasons.map(\.code) == report.reasons.map(\.code)
            if sameCodes { report.since = previous.since }
            if sameCodes && previous.health == report.health
                && (previous.reasons == report.reasons || now.seconds - previous.reportedAt.seconds < LiveReportService.textRefreshInterval) {
                return nil
            }
            return (report, lease.token)
        }
    }

    /// `report` is in the store: later looks compare with it.
    mutating func written(_ report: LiveReport, token: LeaseToken) { last[report.account] = (report, token) }
}
