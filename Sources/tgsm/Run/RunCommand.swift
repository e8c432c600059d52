import ArgumentParser
import Foundation
import Logging
import MTProto
import MTProtoClient
import OperatorHTTP
import ServiceLifecycle
import SessionManager
import Synchronization
import Workers

/// `tgsm run`: the accounts' sessions and their workers, until SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the accounts' sessions and workers until SIGTERM or SIGINT.",
        discussion: """
            Starts each account (its lease, client, middleware stack, start-up check and keep-alive) and its workers over the job \
            queue. An account that cannot run (lease held elsewhere, session needs a login) is reported and left out; a terminal \
            error mid-run stops that account only. On SIGTERM/SIGINT no new jobs are claimed, running ones get --grace-period \
            seconds, then sessions close and leases are released. Exit codes: 0 after a graceful shutdown, 4 no account, \
            6 every account's lease is held elsewhere, 8 every account needs a person, 1 otherwise (docs/CLI.md).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("account"), help: ArgumentHelp("An account to run (repeatable); default: every account in the store.", valueName: "name"))
    var accounts: [String] = []

    @Option(name: .customLong("concurrency"), help: "Jobs of one account running at once.")
    var concurrency = 2

    @Option(name: .customLong("grace-period"), help: "Seconds running jobs may take to finish after SIGTERM/SIGINT before they are released.")
    var gracePeriod: Double = 10

    @Option(name: .customLong("keep-alive"), help: "Seconds without a successful call after which an idle account makes a cheap one.")
    var keepAlive: Double = 12 * 3600

    @Option(name: .customLong("http-host"), help: "Address of /health, /metrics and the dashboard; anything but loopback needs --http-token.")
    var httpHost = "127.0.0.1"

    @Option(name: .customLong("http-port"), help: "Port of the HTTP server (0 picks a free one and prints it).")
    var httpPort = OperatorHTTPConfiguration.defaultPort

    @Option(name: .customLong("http-token"), help: "Access token the HTTP server requires (default: $TGSM_HTTP_TOKEN); required off loopback.")
    var httpToken: String?

    @Flag(name: .customLong("no-http"), help: "Serve no HTTP (no /health, /metrics or dashboard).")
    var noHTTP = false

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard gracePeriod >= 0, gracePeriod.isFinite else { throw ValidationError("--grace-period must be a number of seconds ≥ 0") }
        guard keepAlive > 0, keepAlive.isFinite else { throw ValidationError("--keep-alive must be a positive number of seconds") }
    }

    func run() async throws {
        Runtimes.bootstrapLogging(level: connection.level)
        let logger = Runtimes.logger("tgsm.run", level: connection.level)
        let resolved = try connection.resolve(global)
        if global.postgresURL != nil {
            throw CLIFailure(.usage, "tgsm run works on a SQLite store directory for now; point --store at a directory (PostgreSQL serves the store and queue commands)")
        }
        let store = try StoreAccess.open(global, creating: false)
        guard let queue = try StoreAccess.sqliteQueue(global, creating: true) else {
            throw CLIFailure(.failure, "the job queue could not be opened")
        }
        let known: [AccountID]
        do { known = try await store.accounts() } catch { throw CLIFailure(error) }
        let wanted = accounts.isEmpty ? known : accounts.map { AccountID($0) }
        if wanted.isEmpty {
            throw CLIFailure(.notFound, "the store holds no account. Log one in (`tgsm auth --account NAME`) or import a session (`tgsm session import`).")
        }
        for account in wanted where !known.contains(account) {
            throw CLIFailure(.notFound, "the store has no account \(account); known: \(known.map(\.rawValue).joined(separator: ", "))")
        }

        let clock = global.movingClock()
        let runtimeConfiguration = AccountRuntimeConfiguration(keepAlive: KeepAlivePolicy(interval: keepAlive))
        let runtimes = AccountRuntimes(clock: clock, logger: logger, factory: Runtimes.factory(
            store: store, connection: resolved, configuration: runtimeConfiguration, clock: clock, logger: logger))

        Terminal.standard.errorLine("tgsm run: connecting \(wanted.count) account\(wanted.count == 1 ? "" : "s") to \(resolved.profile.summary)")
        let outcomes = await runtimes.start(wanted)
        var running: [AccountID] = []
        var failures: [CLIFailure] = []
        for account in wanted {
            switch outcomes[account] {
            case .running(let verdict)?:
                running.append(account)
                Terminal.standard.errorLine("  \(account): running (start-up check: \(verdict?.label ?? "skipped"))")
            case .failed(let error)?:
                let failure = Runtimes.failure(error, account: account)
                failures.append(failure)
                Terminal.standard.error(failure.message)
            case nil:
                break
            }
        }
        guard !running.isEmpty else {
            let exit = failures.allSatisfy { $0.exit == .leaseHeld } ? CLIExit.leaseHeld
                : failures.allSatisfy { $0.exit == .accountMarked } ? .accountMarked : .failure
            throw CLIFailure(exit, "no account can run; see above")
        }

        let archive: SQLiteMessageArchive
        do { archive = try SQLiteMessageArchive(writer: queue.writer) } catch { throw CLIFailure(.failure, "the message archive could not be opened: \(error)") }
        let pool = WorkerPool(
            queue: queue, handlers: [MeJob(), ResolveJob(archive: archive), HistoryJob(archive: archive), SendJob(archive: archive)],
            invokers: runtimes, accountStatus: store, floodLedger: store,
            configuration: WorkerConfiguration(accounts: running, concurrencyPerAccount: concurrency, gracePeriod: gracePeriod),
            clock: clock, logger: logger)
        var extra: [RunServices.Entry] = []
        if !noHTTP {
            let token = httpToken ?? ProcessInfo.processInfo.environment["TGSM_HTTP_TOKEN"]
            let server: OperatorHTTPServer
            do {
                server = try OperatorHTTPServer(
                    configuration: OperatorHTTPConfiguration(host: httpHost, port: httpPort, accessToken: token, accounts: running),
                    store: store, queue: queue, liveHealth: RunServices.liveHealth(of: runtimes), clock: clock, logger: logger)
            } catch {
                throw CLIFailure(.usage, "\(error)")
            }
            extra.append(.init(name: "http", service: server))
            let host = httpHost
            Task {
                if let port = try? await server.listeningPort() {
                    Terminal.standard.line("tgsm run: dashboard http://\(host.contains(":") ? "[\(host)]" : host):\(port)/ (/health, /metrics)")
                }
            }
        }

        // Shutdown runs in reverse order: the workers first (finishing or releasing their jobs on
        // live sessions), then the extra services, then the sessions (clients closed, leases released).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: runtimes, serviceName: "sessions")]
        services += extra.map { .init(service: $0.service, serviceName: $0.name) }
        services.append(.init(service: pool, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "workers"))
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(gracePeriod + 15)

        let stopped = StopRecord()
        let events = pool.events()
        let watcher = Task {
            for await event in events {
                if case .accountStopped(let account, let stop) = event {
                    stopped.add(account, stop)
                    Terminal.standard.error("\(account): \(stop)")
                }
            }
        }
        Terminal.standard.line("tgsm run: ready: \(running.map(\.rawValue).joined(separator: ", ")) (SIGTERM or Ctrl-C stops)")
        do {
            try await ServiceGroup(configuration: configuration).run()
        } catch {
            watcher.cancel()
            throw CLIFailure(.failure, "a service failed: \(error)")
        }
        watcher.cancel()
        let stops = stopped.all
        if stops.count == running.count, stops.values.allSatisfy(\.marksAccount) {
            throw CLIFailure(.accountMarked, "every account stopped with a session error; see `tgsm check` for each account's recovery steps")
        }
        Terminal.standard.errorLine("tgsm run: stopped")
    }
}

/// The seam where other services plug into `tgsm run`: each runs in the same `ServiceGroup`,
/// after the sessions start and before the workers, and is shut down gracefully between them.
enum RunServices {
    struct Entry {
        var name: String
        var service: any Service
    }

    /// Each running account's health as its stack's monitor sees it, for /health and the dashboard.
    static func liveHealth(of runtimes: AccountRuntimes) -> OperatorHTTPServer.LiveHealth {
        { @Sendable in
            var snapshots: [AccountID: HealthSnapshot] = [:]
            for runtime in runtimes.runtimes {
                if let health = await runtime.health { snapshots[health.account] = health.snapshot }
            }
            return snapshots
        }
    }
}

/// The accounts the workers stopped, as their events report them.
final class StopRecord: Sendable {
    private let stops = Mutex<[AccountID: AccountStop]>([:])
    func add(_ account: AccountID, _ stop: AccountStop) { stops.withLock { $0[account] = stop } }
    var all: [AccountID: AccountStop] { stops.withLock { $0 } }
}
