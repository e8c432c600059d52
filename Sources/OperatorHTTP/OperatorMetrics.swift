import CoreMetrics
import MTProto
import Prometheus
import SessionManager
import Synchronization
import Workers

/// The process's metrics: swift-metrics bootstrapped once onto a Prometheus registry (so the
/// session manager's and the workers' counters land in `/metrics`), plus the gauges the server
/// sets from a snapshot at each scrape (session states, active flood waits, jobs by state, queue
/// depth). Every label value passes `Redaction.masked`: no phone number reaches a label.
public enum OperatorMetrics {
    private static let bootstrapped = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Bootstraps `MetricsSystem` with a Prometheus factory over a registry of this process, once;
    /// later calls answer the same registry. Call it at the start of the process (before any
    /// metric is created: swift-metrics binds each metric to the factory in place when it is made).
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry {
        bootstrapped.withLock { registry in
            if let registry { return registry }
            let created = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: created)
            factory.nameAndLabelSanitizer = { name, labels in (name, labels.map { ($0.0, Redaction.masked($0.1)) }) }
            // Calls wait for flood waits and retries: buckets up to minutes, not the 10 s default.
            factory.durationHistogramBuckets[RPCMetricsMiddleware.durationLabel] = [
                .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300),
            ]
            // Recorders become histograms: buckets in their own unit (seconds), not the 5...10000 default.
            factory.valueHistogramBuckets["tgsm_ping_rtt_seconds"] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
            factory.valueHistogramBuckets["tgsm_flood_wait_seconds"] = [1, 5, 15, 30, 60, 300, 900, 3600, 14400, 86400]
            MetricsSystem.bootstrap(factory)
            registry = created
            return created
        }
    }
}

extension OperatorMetrics {
    /// What each family the session manager and the workers count through swift-metrics means:
    /// its factory registers them without help text, and the registry refuses a second help text
    /// for a family (a fatal error), so `# HELP` lines are added to the text at each scrape.
    static let help: [String: String] = [
        "tgsm_rpc_total": "Calls by account, method and outcome (ok, cancelled, or the session manager's error code)",
        "tgsm_rpc_duration_seconds": "How long callers waited for a call, retries and ledger waits included",
        "tgsm_account_health": "The account's live health: 0 unknown, 1 healthy, 2 degraded, 3 down, 4 rate limited, 5 terminal",
        "tgsm_lease_expired_total": "Leases the store let run out (a store that stalled); the process takes the account back when it answers",
        "tgsm_flood_waits_total": "Flood waits Telegram imposed, by account, method and kind",
        "tgsm_flood_wait_seconds": "Length of the flood waits Telegram imposed",
        "tgsm_flood_inline_waits_total": "Short flood waits waited out inside the call",
        "tgsm_flood_refusals_total": "Calls refused before sending because the ledger holds a wait for them",
        "tgsm_ping_rtt_seconds": "Round trip of the keep-alive and check calls",
        "tgsm_rate_gate_waits_total": "Calls the proactive rate gate held back briefly",
        "tgsm_rate_gate_refusals_total": "Calls refused by the proactive rate gate (beyond its inline wait)",
        "tgsm_breaker_opened_total": "Circuit breakers opened after repeated flood waits",
        "tgsm_breaker_closed_total": "Circuit breakers closed by a successful probe",
        "tgsm_retries_total": "Calls repeated after a retryable failure",
        "tgsm_account_terminal_total": "Accounts marked terminal (logged out, revoked, duplicated, deactivated), by state",
        "tgsm_auth_keys_dropped_total": "Auth keys dropped because Telegram destroyed them",
        "tgsm_send_code_refusals_total": "Login code requests refused before the phone's send-code deadline",
        "tgsm_service_notifications_total": "Telegram's service notifications to the accounts, by kind",
        "tgsm_peer_cache_write_failures_total": "Peer cache writes that failed",
        "tgsm_alerts_total": "Alerts by event and outcome (sent, failed, dropped)",
    ]

    /// The exposition text with a `# HELP` line before each `# TYPE` line of a family in `help`
    /// that has none.
    static func withHelp(_ bytes: [UInt8]) -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        var lines: [Substring] = []
        var previous: Substring = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first,
               !previous.hasPrefix("# HELP \(name) "), let description = help[String(name)] {
                lines.append(Substring("# HELP \(name) \(description)"))
            }
            lines.append(line)
            previous = line
        }
        return Array(lines.joined(separator: "\n").utf8)
    }
}

/// Sets the scrape-time gauges of one registry from snapshots, zeroing series that disappeared
/// (a flood wait that ended stays at 0 rather than holding its last value).
final class SnapshotGauges: Sendable {
    static let sessionState = "tgsm_session_state"
    static let accountReady = "tgsm_account_ready"
    static let floodWaitsActive = "tgsm_flood_waits_active"
    static let floodWaitRemaining = "tgsm_flood_wait_remaining_seconds"
    static let jobs = "tgsm_jobs"
    static let queueDepth = "tgsm_queue_depth"
    static let claimsFailing = "tgsm_queue_claims_failing"

    private let registry: PrometheusCollectorRegistry
    private let previous = Mutex<Set<SeriesKey>>([])

    private struct SeriesKey: Hashable {
        var name: String
        var labels: [String]
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    func publish(_ snapshot: OperatorSnapshot) {
        var values: [SeriesKey: Double] = [:]
        func set(_ name: String, _ labels: [(String, String)], _ value: Double) {
            values[SeriesKey(name: name, labels: labels.flatMap { [$0.0, Redaction.masked($0.1)] }), default: 0] += value
        }
        // Two accounts named by phone numbers ending alike share a masked label: their series are
        // one, which shows the worse of the two (not ready, any marked state), never a sum.
        func worst(_ name: String, _ labels: [(String, String)], _ value: Double, _ pick: (Double, Double) -> Double) {
            let key = SeriesKey(name: name, labels: labels.flatMap { [$0.0, Redaction.masked($0.1)] })
            values[key] = values[key].map { pick($0, value) } ?? value
        }
        for account in snapshot.accounts {
            let id = account.id.rawValue
            for state in AccountStatus.State.allCases {
                worst(Self.sessionState, [("account", id), ("state", state.rawValue)], account.sessionState == state ? 1 : 0, max)
            }
            if account.enabled {
                // Judged per account, not looked up by the masked name two accounts may share.
                let ready = HealthReport.reasons(account, liveExpected: snapshot.hasLiveHealth, now: snapshot.now).isEmpty
                worst(Self.accountReady, [("account", id)], ready ? 1 : 0, min)
            }
            set(Self.floodWaitsActive, [("account", id)], Double(account.floodWaits.count))
            for wait in account.floodWaits {
                let remaining = max(0, wait.until - snapshot.now)
                let key = SeriesKey(name: Self.floodWaitRemaining, labels: ["account", Redaction.masked(id), "method", wait.method])
                values[key] = max(values[key] ?? 0, remaining)
            }
        }
        if let jobs = snapshot.jobs {
            for state in JobState.allCases { set(Self.jobs, [("state", state.rawValue)], Double(jobs[state])) }
            set(Self.queueDepth, [], Double(jobs[.queued]))
            // The counts read while claims fail (a damaged page off their index): only this says no job runs.
            set(Self.claimsFailing, [], snapshot.claimFailure == nil ? 0 : 1)
        }
        let gone = previous.withLock { previous -> Set<SeriesKey> in
            let gone = previous.subtracting(values.keys)
            previous = Set(values.keys)
            return gone
        }
        for key in gone { gauge(key).set(to: 0) }
        for (key, value) in values { gauge(key).set(to: value) }
    }

    private func gauge(_ key: SeriesKey) -> Prometheus.Gauge {
        var labels: [(String, String)] = []
        var index = 0
        while index + 1 < key.labels.count {
            labels.append((key.labels[index], key.labels[index + 1]))
            index += 2
        }
        let descriptor = MetricNameDescriptor(metricName: key.name, unitName: "", helpText: Self.help[key.name] ?? "")
        return labels.isEmpty ? registry.makeGauge(descriptor: descriptor) : registry.makeGauge(descriptor: descriptor, labels: labels)
    }

    static let help: [String: String] = [
        sessionState: "1 for the account's session state (the store's mark), 0 for the others",
        accountReady: "1 when the enabled account is ready (see /health), else 0",
        floodWaitsActive: "Flood waits in the ledger that have not ended",
        floodWaitRemaining: "Seconds until the longest active flood wait of the method ends",
        jobs: "Jobs in the queue by state",
        queueDepth: "Jobs waiting to run (state queued)",
        claimsFailing: "1 while this process's workers cannot claim jobs from the queue (see /health), else 0",
    ]
}
