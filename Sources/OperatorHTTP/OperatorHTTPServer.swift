import Foundation
import Hummingbird
import Logging
import MTProto
import MTProtoClient
import NIOCore
import Prometheus
import ServiceLifecycle
import SessionManager
import Synchronization
import Workers

/// The operator's HTTP side of `tgsm run`, a swift-service-lifecycle `Service`:
/// - `GET /health`: per-account readiness as JSON; 200 when every enabled account is ready, else 503;
/// - `GET /metrics`: Prometheus text (the registry's metrics plus gauges set from the store and
///   queue at each scrape);
/// - `GET /`: the dashboard (server-rendered HTML, meta refresh).
/// Loopback by default; any other address needs `configuration.accessToken` (refused at init).
public final class OperatorHTTPServer: Service, Sendable {
    public typealias LiveHealth = @Sendable () async -> [AccountID: HealthSnapshot]

    public let configuration: OperatorHTTPConfiguration
    private let store: any OperatorReadableStore
    private let queue: (any JobQueue)?
    private let liveHealth: LiveHealth?
    private let claimFailure: (@Sendable () -> ClaimFailure?)?
    private let registry: PrometheusCollectorRegistry
    private let gauges: SnapshotGauges
    private let clock: any TelegramClock
    private let logger: Logger
    private let listening = Mutex<ListeningState>(ListeningState())

    private struct ListeningState {
        var port: Int?
        var failure: OperatorHTTPError?
        var waiters: [CheckedContinuation<Int, any Error>] = []
    }

    /// - Parameters:
    ///   - queue: the job queue, for jobs by state, depth and history; nil when there is none.
    ///   - liveHealth: the health monitors of the accounts this process runs (`SessionStack.health`
    ///     snapshots); nil in a process that runs none (readiness then comes from the store alone).
    ///   - claimFailure: why this process's workers cannot claim jobs now (`WorkerPool.claimFailure`);
    ///     nil in a process without workers.
    ///   - registry: what `/metrics` exports; by default the process's (`OperatorMetrics.bootstrap()`).
    /// - Throws: `OperatorHTTPError` when the configuration would expose the server without a token.
    public init(
        configuration: OperatorHTTPConfiguration, store: any OperatorReadableStore, queue: (any JobQueue)?, liveHealth: LiveHealth? = nil,
        claimFailure: (@Sendable () -> ClaimFailure?)? = nil, registry: PrometheusCollectorRegistry = OperatorMetrics.bootstrap(), clock: any TelegramClock = WallClock(),
        logger: Logger = Logger(label: "tgsm.http")
    ) throws(OperatorHTTPError) {
        try configuration.validate()
        self.configuration = configuration
        self.store = store
        self.queue = queue
        self.liveHealth = liveHealth
        self.claimFailure = claimFailure
        self.registry = registry
        self.gauges = SnapshotGauges(registry: registry)
        self.storeReachable = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "tgsm_store_reachable", unitName: "", helpText: "1 when the store answered the last look (/health, /metrics, the dashboard) in time"))
        self.clock = clock
        self.logger = logger
    }

    /// The live health of the accounts whose stacks this process runs (for `liveHealth`).
    public static func liveHealth(of stacks: [SessionStack]) -> LiveHealth {
        let monitors = stacks.map(\.health)
        return { Dictionary(monitors.map { ($0.account, $0.snapshot) }, uniquingKeysWith: { first, _ in first }) }
    }

    /// Serves until graceful shutdown or cancellation.
    public func run() async throws {
        let router = Router()
        if let token = configuration.accessToken { router.add(middleware: AccessTokenMiddleware(token: token)) }
        router.get("/health") { _, _ in try await self.healthResponse() }
        router.get("/metrics") { _, _ in try await self.metricsResponse() }
        router.get("/") { request, _ in
            // Only a token the middleware accepted is carried into the page's links.
            let token = self.configuration.accessToken == nil ? nil : request.uri.queryParameters["token"].map(String.init)
            return try await self.dashboardResponse(tokenQuery: token)
        }
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in self.listeningStarted(port: channel.localAddress?.port ?? self.configuration.port) },
            logger: logger)
        logger.info("operator HTTP starting", metadata: ["host": "\(configuration.host)", "port": "\(configuration.port)",
                                                         "token": "\(configuration.accessToken == nil ? "none" : "required")"])
        do {
            try await app.run()
        } catch {
            // Before listening, any failure is the bind's (port taken, address not ours).
            let started = listening.withLock { $0.port != nil }
            guard !started else { throw error }
            let failure = OperatorHTTPError.bindFailed(host: configuration.host, port: configuration.port, reason: OperatorHTTPError.bindReason(error))
            listeningFailed(failure)
            throw failure
        }
        listeningFailed(.bindFailed(host: configuration.host, port: configuration.port, reason: "the server stopped before it listened"))
    }

    /// The port the server listens on, once it does (waits until then); throws when it could not start.
    public func listeningPort() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<Int, OperatorHTTPError>? = listening.withLock { state in
                if let port = state.port { return .success(port) }
                if let failure = state.failure { return .failure(failure) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func listeningStarted(port: Int) {
        let waiters = listening.withLock { state in
            state.port = port
            defer { state.waiters = [] }
            return state.waiters
        }
        logger.info("operator HTTP listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
        for waiter in waiters { waiter.resume(returning: port) }
    }

    private func listeningFailed(_ failure: OperatorHTTPError) {
        let waiters = listening.withLock { state in
            if state.port == nil { state.failure = failure }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: failure) }
    }

    // MARK: - Routes

    /// The snapshot every route renders; public so `tgsm run` can log the same view.
    public func snapshot() async throws -> OperatorSnapshot {
        let live = await liveHealth?()
        return try await OperatorSnapshot.gather(
            store: store, queue: queue, enabled: configuration.accounts, live: live, now: clock.now(),
            historyWindow: configuration.historyWindow, claimFailure: claimFailure?())
    }

    /// Whether the last look at the store failed (for saying a spell of failures once).
    private let storeFailing = Mutex(false)

    /// 1 when the last operator view read the store in time, 0 when it could not.
    private let storeReachable: Prometheus.Gauge

    /// The snapshot, or why the store could not give it in time.
    private func boundedSnapshot() async -> Result<OperatorSnapshot, StoreUnreachable> {
        do {
            let snapshot = try await withBound(seconds: configuration.storeTimeout, "reading the store") { try await self.snapshot() }
            storeReachable.set(to: 1)
            let wasFailing = storeFailing.withLock { failing in
                defer { failing = false }
                return failing
            }
            if wasFailing { logger.notice("the store answers the operator views again") }
            return .success(snapshot)
        } catch {
            storeReachable.set(to: 0)
            // Said once per spell: probes come every few seconds.
            let alreadyFailing = storeFailing.withLock { failing in
                defer { failing = true }
                return failing
            }
            if !alreadyFailing {
                logger.warning("the store could not be read for an operator view (said once until it answers again)", metadata: ["error": "\(error)"])
            }
            return .failure(StoreUnreachable(reason: (error as? BoundExceeded).map { "no answer within \($0.seconds) s" } ?? "\(error)"))
        }
    }

    struct StoreUnreachable: Error {
        var reason: String
    }

    private func healthResponse() async throws -> Response {
        let report: HealthReport
        switch await boundedSnapshot() {
        case .success(let snapshot): report = HealthReport(snapshot)
        case .failure(let unreachable): report = HealthReport(storeUnreachable: unreachable.reason, at: clock.now())
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let body = try encoder.encode(report)
        return Response(
            status: report.ready ? .ok : .serviceUnavailable, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }

    private func metricsResponse() async throws -> Response {
        // Without the store, the process's own metrics still go out (tgsm_lease_expired_total is
        // how an outage shows), with tgsm_store_reachable 0; the store's gauges keep their last values.
        if case .success(let snapshot) = await boundedSnapshot() { gauges.publish(snapshot) }
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        bytes = OperatorMetrics.withHelp(bytes)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func dashboardResponse(tokenQuery: String?) async throws -> Response {
        let snapshot: OperatorSnapshot
        switch await boundedSnapshot() {
        case .success(let taken): snapshot = taken
        case .failure(let unreachable):
            let refresh = configuration.refreshSeconds
            let page = "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"\(refresh)\"><title>tgsm: store unreachable</title></head>"
                + "<body><h1>The store could not be read</h1><p>\(HTML.escape(unreachable.reason))</p><p>This page tries again every \(refresh) s; "
                + "the run takes its accounts back by itself once the store answers.</p></body></html>"
            return Response(status: .serviceUnavailable, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
        }
        let page = Dashboard(snapshot: snapshot, health: HealthReport(snapshot), refreshSeconds: configuration.refreshSeconds,
                             tokenQuery: tokenQuery).render()
        return Response(
            status: .ok,
            headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                      .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src data:", .xContentTypeOptions: "nosniff"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
    }
}

/// Refuses every request without the token (header or query), in constant time over its bytes.
struct AccessTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var offered: [String] = []
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { offered.append(String(parts[1])) }
        }
        if let query = request.uri.queryParameters["token"] { offered.append(String(query)) }
        guard offered.contains(where: { Self.equal($0, token) }) else {
            return Response(
                status: .unauthorized,
                headers: [.wwwAuthenticate: "Bearer realm=\"tgsm\"", .contentType: "text/plain; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string:
                    "401: this tgsm server needs its access token: send `Authorization: Bearer TOKEN` or add `?token=TOKEN`\n")))
        }
        return try await next(request, context)
    }

    static func equal(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8), right = Array(rhs.utf8)
        var difference = UInt8(left.count == right.count ? 0 : 1)
        for index in 0..<max(left.count, right.count) {
            difference |= (index < left.count ? left[index] : 0) ^ (index < right.count ? right[index] : 0)
        }
        return difference == 0
    }
}
