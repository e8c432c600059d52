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

/// Sets the scrape-time gauges of one registry from snapshots, zeroing series that disappeared
/// (a flood wait that ended stays at 0 rather than holding its last value).
final class SnapshotGauges: Sendable {
    static let sessionState = "tgsm_session_state"
    static let accountReady = "tgsm_account_ready"
    static let floodWaitsActive = "tgsm_flood_waits_active"
    static let floodWaitRemaining = "tgsm_flood_wait_remaining_seconds"
    static let jobs = "tgsm_jobs"
    static let queueDepth = "tgsm_queue_depth"

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
    ]
}
