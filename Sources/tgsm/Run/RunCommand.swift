import ArgumentParser
import Foundation
import Logging
import MTProto
import MTProtoClient
import OperatorHTTP
import PostgresStore
import ServiceLifecycle
import SessionManager
import Synchronization
import UnixSignals
import Workers

/// `tgsm run`: the accounts' sessions and their workers, until SIGTERM/SIGINT.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the accounts' sessions and workers until SIGTERM, SIGINT or SIGHUP.",
        discussion: """
            Starts each account (its lease, client, middleware stack, start-up check and keep-alive) and its workers over the job \
            queue. An account that cannot run (lease held elsewhere, session needs a login) is reported and left out; a terminal \
            error mid-run stops that account only. On SIGTERM, SIGINT or SIGHUP no new jobs are claimed, running ones get --grace-period \
            seconds (a second signal releases them at once), then sessions close and leases are released. Exit codes: 0 after a \
            graceful shutdown, 4 no account, \
            6 every account's lease is held elsewhere, 8 every account needs a person, 1 otherwise (docs/CLI.md).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup(title: "Alerts") var alerts: AlertOptions

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

    @Flag(name: .customLong("standby"), help: ArgumentHelp(
        "Keep accounts whose lease another process holds, and take each over when that process ends (several processes on one PostgreSQL store).",
        discussion: "Without it such an account is reported and left out (exit 6 when that is every account)."))
    var standby = false

    @Option(name: .customLong("standby-interval"), help: "With --standby: seconds between tries at taking a held lease.")
    var standbyInterval: Double = 2

    @Option(name: .customLong("lease-ttl"), help: ArgumentHelp(
        "Seconds an account's lease lasts without a heartbeat (renewed every third of it).",
        discussion: "A holder that stops renewing (frozen, cut off) loses its accounts to a standby after this; every process of a cluster should use the same value."))
    var leaseTTL: Double = 30

    @Option(name: .customLong("backup-interval"), help: ArgumentHelp(
        "Seconds between the SQLite store's scheduled verified backups (default 6 h; 0 turns the schedule off).",
        discussion: "A backup is also taken after every auth-key change, whatever this says. On a PostgreSQL store none is scheduled: take snapshots with `tgsm session backup` (a cron job) and pg_dump."))
    var backupInterval: Double = 6 * 3600

    @Option(name: .customLong("job-retention"), help: ArgumentHelp(
        "Seconds completed and cancelled jobs are kept after they finished (default 7 days; 0 keeps them forever).",
        discussion: "Checked at start and hourly. Dead letters are kept until a person retries, cancels or purges them (`tgsm jobs purge`)."))
    var jobRetention: Double = JobRetention.defaultFinishedFor

    func validate() throws {
        guard jobRetention == 0 || (jobRetention >= 60 && jobRetention.isFinite) else {
            throw ValidationError("--job-retention must be at least 60 seconds, or 0 to keep finished jobs forever")
        }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard gracePeriod >= 0, gracePeriod.isFinite else { throw ValidationError("--grace-period must be a number of seconds ≥ 0") }
        guard keepAlive > 0, keepAlive.isFinite else { throw ValidationError("--keep-alive must be a positive number of seconds") }
        guard standbyInterval >= 0.1, standbyInterval.isFinite else { throw ValidationError("--standby-interval must be at least 0.1 seconds") }
        guard leaseTTL >= 1, leaseTTL <= 3600 else { throw ValidationError("--lease-ttl must be 1 to 3600 seconds") }
        guard backupInterval == 0 || (backupInterval >= 1 && backupInterval.isFinite) else {
            throw ValidationError("--backup-interval must be at least 1 second, or 0 to turn scheduled backups off")
        }
    }

    func run() async throws {
        // Trapped first: a SIGTERM in the process's first moments (a supervisor stopping what it
        // just started) would otherwise end it by the signal's default action (status 15) while
        // the store opens; trapped, it is remembered and stops the start-up as any later one does.
        // SIGHUP too: a closed terminal or SSH session must stop it as gracefully as SIGTERM does
        // (its default action killed it with jobs still claimed and leases held).
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        // Its output is a journal kept for weeks: no phone number in it, the lines' own or quoted.
        Terminal.masksPhoneNumbers.store(true, ordering: .relaxed)
        Runtimes.bootstrapLogging(level: connection.level)
        // Before any session exists: a counter or gauge made before the bootstrap stays a no-op for
        // good, so the start-up's calls and the first health states would never reach /metrics.
        if !noHTTP { OperatorMetrics.bootstrap() }
        let logger = Runtimes.logger("tgsm.run", level: connection.level)
        let resolved = try connection.resolve(global)
        let alertSettings = try alerts.settings(global)
        let backend = try await RunBackend.open(global)
        do {
            try await serve(backend: backend, resolved: resolved, alerts: alertSettings, signals: signals, logger: logger)
            await backend.close()
        } catch {
            await backend.close()
            throw error
        }
    }

    private func serve(backend: RunBackend, resolved: ConnectionOptions.Resolved, alerts: AlertOptions.Settings?, signals: UnixSignalsSequence,
                       logger: Logger) async throws {
        let store = backend.store
        // What alerts were said, in the store; beside a SQLite store also in a file while the store
        // does not take it (a stall), so that a process ending meanwhile does not lose it.
        let alertMemory: (any AlertMemory)? = (store as? any AlertMemory).map { base in
            backend.backups.map { SpilledAlertMemory(base: base, path: $0.directory + "/alerts-unrecorded.json") } ?? base
        }
        let queue = backend.queue
        let known: [AccountID]
        do { known = try await store.accounts() } catch { throw CLIFailure(.failure, "the store's accounts could not be read: \(error)") }
        let wanted = accounts.isEmpty ? known : accounts.map { AccountID($0) }
        if wanted.isEmpty {
            throw CLIFailure(.notFound, "the store holds no account. Log one in (`tgsm auth --account NAME`) or import a session (`tgsm session import`).")
        }
        for account in wanted where !known.contains(account) {
            throw CLIFailure(.notFound, "the store has no account \(account)" + (known.isEmpty ? "; it holds no account yet" : "; it holds: \(known.map(\.rawValue).joined(separator: ", "))"))
        }

        // The HTTP settings are checked before any account connects: a refusal (no token off
        // loopback, a weak one) must not come after every session made its start-up calls.
        // An empty TGSM_HTTP_TOKEN is no token (a variable cleared, not a token of no characters).
        let httpAccessToken = httpToken ?? ProcessInfo.processInfo.environment["TGSM_HTTP_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        if !noHTTP {
            let http = OperatorHTTPConfiguration(host: httpHost, port: httpPort, accessToken: httpAccessToken)
            do { try http.validate() } catch { throw CLIFailure(.usage, "\(error)") }
            do { try await http.checkAddressIsFree() } catch { throw CLIFailure(.failure, "\(error)") }
        }

        let clock = global.movingClock()
        let runtimeConfiguration = AccountRuntimeConfiguration(leaseTTL: leaseTTL, stack: SessionStack.Configuration(rateGate: resolved.rateGate),
                                                               keepAlive: KeepAlivePolicy(interval: keepAlive), linkKeeper: LinkKeeperPolicy())
        let runtimes = AccountRuntimes(clock: clock, logger: logger, factory: Runtimes.factory(
            store: store, connection: resolved, configuration: runtimeConfiguration, clock: clock, logger: logger))

        // One watcher of SIGTERM/SIGINT for the whole run (trapped since `run` began), from before
        // start-up (connecting, start-up checks, temporary keys: seconds): a signal then abandons
        // start-up and closes what opened, where the signal's default action ended the process with
        // its leases still held; later it shuts the service group down gracefully.
        let stop = StopSignal()
        let grace = gracePeriod
        let signalWatcher = Task {
            var received = 0
            for await signal in signals {
                received += 1
                if received == 1 {
                    Terminal.standard.errorLine("tgsm run: \(signal) received: stopping. No new jobs; those in flight get up to \(Int(grace)) s "
                        + "(a second signal stops them now; they are released, not lost)")
                    runtimes.stopStarting()
                    await stop.received()
                } else {
                    Terminal.standard.errorLine("tgsm run: \(signal) again: the jobs in flight are stopped now and released")
                    stop.interrupt()
                }
            }
        }
        defer { signalWatcher.cancel() }
        Terminal.standard.errorLine("tgsm run: connecting \(wanted.count) account\(wanted.count == 1 ? "" : "s") to \(resolved.profile.summary)")
        let starting = Task { await runtimes.start(wanted) }
        stop.onStartUp { starting.cancel() }
        let outcomes = await starting.value
        if stop.isRequested {
            await runtimes.stopAll()
            Terminal.standard.errorLine("tgsm run: stopped during start-up")
            return
        }
        var running: [AccountID] = []
        var waiting: [AccountID] = []
        // Marked (they need a login): served once `tgsm auth` clears the mark, without a restart.
        var marked: [AccountID] = []
        // Running, but their start-up check found no connection: they keep trying.
        var unreachable: [AccountID] = []
        // Running, but their proxy refuses them: a person corrects the link, which is taken up without a restart.
        var proxyRefused: [AccountID] = []
        var failures: [CLIFailure] = []
        for account in wanted {
            switch outcomes[account] {
            case .running(let verdict)?:
                running.append(account)
                if case .networkDown(let code, let reason)? = verdict, code == SessionManagerError.proxyRefusedCode {
                    proxyRefused.append(account)
                    Terminal.standard.errorLine("  \(account.rawValue): running, but its proxy refuses it [\(code)] (\(reason)): correct the link with "
                        + "`tgsm session proxy --account \(account.rawValue) --set -`; this process takes it up at its next lease renewal")
                } else {
                    if case .networkDown? = verdict { unreachable.append(account) }
                    Terminal.standard.errorLine("  \(account.rawValue): running (start-up check: \(verdict?.label ?? "skipped"))")
                }
            case .failed(let error)? where standby && WorkerPool.isLeaseHeld(TelegramError.middleware(error)):
                waiting.append(account)
                Terminal.standard.errorLine("  \(account.rawValue): standing by (\(error.summary))")
            case .failed(let error)?:
                let failure = Runtimes.failure(error, account: account)
                failures.append(failure)
                Terminal.standard.error(failure.message)
                if failure.exit == .accountMarked { marked.append(account) }
            case nil:
                break
            }
        }
        let served = running + waiting
        guard !served.isEmpty else {
            let exit = failures.allSatisfy { $0.exit == .leaseHeld } ? CLIExit.leaseHeld
                : failures.allSatisfy { $0.exit == .accountMarked } ? .accountMarked : .failure
            // The process ends here, before its services: the webhook still hears why (a unit
            // that stops restarting on exit 8 would otherwise leave nobody told).
            await alerts?.alertOnce(store: store, memory: alertMemory, queue: queue, accounts: wanted, clock: clock, logger: logger)
            throw CLIFailure(exit, "no account can run; see above")
        }

        let archive = backend.archive
        let pool = WorkerPool(
            queue: queue, handlers: [MeJob(), ResolveJob(archive: archive), HistoryJob(archive: archive, peers: store), SendJob(archive: archive, peers: store)],
            invokers: runtimes, accountStatus: store, floodLedger: store,
            configuration: WorkerConfiguration(accounts: served + marked, concurrencyPerAccount: concurrency, gracePeriod: gracePeriod,
                                               standbyInterval: standby ? standbyInterval : nil, resumeInterval: 10),
            clock: clock, logger: logger)
        stop.onInterrupt { pool.endGracePeriodNow() }
        var extra: [RunServices.Entry] = []
        if let backups = backend.backups, backupInterval > 0 {
            extra.append(.init(name: "backups", service: BackupScheduleService(store: backups, interval: backupInterval, logger: logger)))
        }
        extra.append(.init(name: "ledger-housekeeping", service: LedgerHousekeepingService(
            ledger: store, rateBuckets: store as? PostgresSessionStore, clock: clock, interval: 3600, logger: logger)))
        if jobRetention > 0 {
            extra.append(.init(name: "job-retention", service: JobRetentionService(
                retention: JobRetention(finishedFor: jobRetention), queue: queue, clock: clock, logger: logger)))
        }
        // What this process sees of its accounts, for `tgsm status` and `tgsm check` elsewhere; as
        // often as the lease is renewed (at most every 10 s), since a report counts only under it.
        extra.append(.init(name: "live-reports", service: LiveReportService(
            store: store, liveHealth: RunServices.liveHealth(of: runtimes), claimFailure: { pool.claimFailure }, clock: clock,
            interval: min(10, leaseTTL / 3), logger: logger)))
        if let alerts {
            extra.append(.init(name: "alerts", service: AlertService(
                tracker: alerts.tracker(), delivery: alerts.delivery(clock: clock, logger: logger, memory: alertMemory), store: store,
                memory: alertMemory, queue: queue, claimFailure: { pool.claimFailure },
                // Every account asked for: one left out at start-up (it needs a login, say) is what an
                // alert is for; without --account, every account in the store as it is at each look.
                accounts: accounts.isEmpty ? nil : wanted, liveHealth: RunServices.liveHealth(of: runtimes), clock: clock, interval: alerts.interval, logger: logger)))
            Terminal.standard.errorLine("tgsm run: alerts go to \(alerts.url.redacted)")
        }
        var httpServer: OperatorHTTPServer?
        if !noHTTP {
            let token = httpAccessToken
            let server: OperatorHTTPServer
            do {
                server = try OperatorHTTPServer(
                    configuration: OperatorHTTPConfiguration(host: httpHost, port: httpPort, accessToken: token,
                                                             accounts: accounts.isEmpty ? nil : served + marked),
                    store: store, queue: queue, liveHealth: RunServices.liveHealth(of: runtimes), claimFailure: { pool.claimFailure },
                    clock: clock, logger: logger)
            } catch {
                throw CLIFailure(.usage, "\(error)")
            }
            extra.append(.init(name: "http", service: server))
            httpServer = server
        }

        // Shutdown runs in reverse order: the workers first (finishing or releasing their jobs on
        // live sessions), then the extra services, then the sessions (clients closed, leases released).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: runtimes, serviceName: "sessions")]
        services += extra.map { .init(service: $0.service, serviceName: $0.name) }
        services.append(.init(service: pool, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "workers"))
        let storeReplaced = Finding()
        if let file = backend.backups {
            services.append(.init(service: StoreFileWatchService(store: file, runtimes: runtimes, clock: clock, interval: 2, logger: logger,
                                                                 replaced: storeReplaced),
                                  successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "store-file-watch"))
        }
        // Signals reach the group through `stop` (it traps them from before start-up).
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [], cancellationSignals: [], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(gracePeriod + 15)

        let stopped = StopRecord()
        let events = pool.events()
        let startupAccounts = Set(running)
        let watcher = Task {
            // Start-up is over once every account served has been idle (nothing in flight) once.
            var notYetIdle = startupAccounts
            for await event in events {
                switch event {
                case .idle(let account) where !notYetIdle.isEmpty, .stopped(let account) where !notYetIdle.isEmpty:
                    // An account that stopped before it was ever idle no longer holds start-up open.
                    notYetIdle.remove(account)
                    if notYetIdle.isEmpty {
                        let bytes = StartupPages.release()
                        logger.debug("released start-up pages", metadata: ["address-space-bytes": "\(bytes)"])
                    }
                case .accountStopped(let account, let stop):
                    stopped.add(account, stop)
                    Terminal.standard.error("\(account.rawValue): \(stop)")
                case .standingBy(let account):
                    Terminal.standard.errorLine("tgsm run: \(account.rawValue): standing by (another process holds its lease)")
                case .serving(let account):
                    // Taken over from a standby, or logged in again after a stop: no longer stopped.
                    stopped.remove(account)
                    Terminal.standard.errorLine("tgsm run: \(account.rawValue): serving")
                case .removed(let account):
                    // Removed by a person (`tgsm session remove`): not a stop to report at the exit.
                    stopped.remove(account)
                    Terminal.standard.errorLine("tgsm run: \(account.rawValue): removed from the store; no longer served")
                default:
                    break
                }
            }
        }
        // Without --account the run serves every account of the store, also those added while it
        // runs (`tgsm auth`, `tgsm session import`): looked for every 10 s.
        let discovery = accounts.isEmpty ? Task {
            var known = Set(wanted)
            while !Task.isCancelled {
                do { try await clock.sleep(for: 10) } catch { return }
                guard let stored = try? await store.accounts() else { continue }
                for account in stored where !known.contains(account) {
                    known.insert(account)
                    if pool.serve(account) {
                        Terminal.standard.errorLine("tgsm run: \(account.rawValue): added to the store while running; taken up (served here, or stood by for while another process holds it)")
                    }
                }
            }
        } : nil
        defer { discovery?.cancel() }
        let standingBy = (unreachable.isEmpty ? "" : "; not connected yet (trying again): \(unreachable.map(\.rawValue).joined(separator: ", "))")
            + (proxyRefused.isEmpty ? "" : "; refused by their proxy (correct the link): \(proxyRefused.map(\.rawValue).joined(separator: ", "))")
            + (waiting.isEmpty ? "" : "; standing by: \(waiting.map(\.rawValue).joined(separator: ", "))")
            + (marked.isEmpty ? "" : "; waiting for a login: \(marked.map(\.rawValue).joined(separator: ", "))")
        let connected = running.filter { !unreachable.contains($0) && !proxyRefused.contains($0) }
        let readyLine = "tgsm run: ready: \(connected.isEmpty ? (running.isEmpty ? "no account yet" : "no account connected yet") : connected.map(\.rawValue).joined(separator: ", "))"
            + "\(standingBy) (SIGTERM or Ctrl-C stops)"
        // Ready once /health answers: a supervisor that probes it at "ready" must not meet a port
        // still unbound, and a bind that fails (the port taken since the pre-check) ends the run
        // without a "ready" said first.
        let host = httpHost
        let announcement = Task {
            if let httpServer {
                guard let port = try? await httpServer.listeningPort() else { return }
                Terminal.standard.line("tgsm run: dashboard http://\(host.contains(":") ? "[\(host)]" : host):\(port)/ (/health, /metrics)")
            }
            Terminal.standard.line(readyLine)
        }
        defer { announcement.cancel() }
        let group = ServiceGroup(configuration: configuration)
        await stop.serve(group)
        do {
            try await group.run()
        } catch {
            watcher.cancel()
            throw CLIFailure(.failure, "a service failed: \(error)")
        }
        watcher.cancel()
        if storeReplaced.isFound {
            throw CLIFailure(.failure, "the store file was replaced while this process ran (see above); start `tgsm run` again to run the restored store")
        }
        let stops = stopped.all
        // Each account's own reason: a cluster whose accounts were all marked exited 1 saying another
        // process had taken their leases.
        let why = stops.sorted { $0.key.rawValue < $1.key.rawValue }.map { account, stop in
            "\(account.rawValue): " + (stop.marksAccount ? "marked \(stop.status.state.rawValue) (\(stop.status.cause), \(stop.status.code))"
                : stop.storeOutage ? "the store let its lease run out" : "another process took its lease")
        }.joined(separator: "; ")
        // `tgsm check` reads a SQLite store only.
        let steps = global.postgresURL == nil ? "see `tgsm check` for each account's recovery steps"
            : "log each in again (`tgsm auth --account NAME --store …`; a deactivated one only once Telegram restored it, with --restored); "
                + "a `tgsm run --standby` on the store takes it up without a restart"
        if !stops.isEmpty, stops.values.allSatisfy(\.marksAccount), !stop.isRequested || (waiting.isEmpty && stops.count == running.count) {
            throw CLIFailure(.accountMarked, "every account stopped with a session error (\(why)); \(steps)")
        }
        // The workers ended by themselves (no signal): every account stopped, some because another
        // process took their lease (a store outage does not end them: they are taken back). Exit 0
        // would read as a requested stop, and a service manager would leave it down.
        if !stop.isRequested, !stops.isEmpty {
            throw CLIFailure(.failure, "no account is served any more (\(why)); start `tgsm run` again, with `--standby` to wait for accounts "
                + "another process holds" + (stops.values.contains(where: \.marksAccount) ? "; for a marked one, \(steps)" : ""))
        }
        if !stop.isRequested {
            // The workers ended by themselves with nothing stopped: every account they served was
            // removed from the store, as at a start with no account.
            throw CLIFailure(.notFound, "no account is left to serve: each was removed from the store (`tgsm session remove`); "
                + "start `tgsm run` again once one is logged in (`tgsm auth`) or imported (`tgsm session import`)")
        }
        Terminal.standard.errorLine("tgsm run: stopped")
    }
}

/// Where `tgsm run` keeps its state: the SQLite store directory (store, queue and archive files
/// side by side), or one PostgreSQL database shared by every process and host of the cluster
/// (store, queue, archive and the rate buckets all in it, one connection pool).
struct RunBackend {
    var store: any OperatorReadableStore
    var queue: any JobQueue
    var archive: any MessageArchive
    /// The SQLite store, whose backups `tgsm run` schedules; nil on PostgreSQL (pg_dump's job).
    var backups: SQLiteSessionStore?
    var close: @Sendable () async -> Void

    static func open(_ global: GlobalOptions) async throws(CLIFailure) -> RunBackend {
        if let url = global.postgresURL {
            let queue: PostgresJobQueue
            do { queue = try await PostgresJobQueue.connect(url: url, logger: global.storeLogger()) } catch { throw CLIFailure(error) }
            do {
                let store = try await PostgresSessionStore.open(database: queue.database, encryption: global.storeEncryption(), clock: global.clock(), logger: global.storeLogger())
                let archive = try await PostgresMessageArchive.open(database: queue.database, logger: global.storeLogger())
                return RunBackend(store: store, queue: queue, archive: archive, close: {
                    await store.close()  // its flood-wait listener first: the connections go with the queue
                    await queue.close()
                })
            } catch {
                await queue.close()
                throw CLIFailure(.failure, "the PostgreSQL store at \(queue.database.location) could not be opened: \(error)")
            }
        }
        let store = try StoreAccess.open(global, creating: false)
        guard let queue = try StoreAccess.sqliteQueue(global, creating: true) else {
            try? store.close()
            throw CLIFailure(.failure, "the job queue could not be opened")
        }
        let archive: SQLiteMessageArchive
        do { archive = try SQLiteMessageArchive(writer: queue.writer) } catch {
            try? store.close()
            try? queue.writer.close()
            throw CLIFailure(.failure, "the message archive could not be opened: \(error)")
        }
        return RunBackend(store: store, queue: queue, archive: archive, backups: store, close: {
            try? queue.writer.close()
            try? store.close()
        })
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
    func remove(_ account: AccountID) { _ = stops.withLock { $0.removeValue(forKey: account) } }
    var all: [AccountID: AccountStop] { stops.withLock { $0 } }
}

/// SIGTERM/SIGINT for `tgsm run`: during start-up it cancels the start-up (and is remembered);
/// once the service group exists it asks the group to shut down gracefully (a request made before
/// the group runs is delivered when it starts).
final class StopSignal: Sendable {
    private struct State {
        var requested = false
        var cancelStartUp: (@Sendable () -> Void)?
        var group: ServiceGroup?
        var interrupt: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    var isRequested: Bool { state.withLock { $0.requested } }

    func onStartUp(cancel: @escaping @Sendable () -> Void) {
        let requested = state.withLock { state in
            state.cancelStartUp = cancel
            return state.requested
        }
        if requested { cancel() }
    }

    func serve(_ group: ServiceGroup) async {
        let requested = state.withLock { state in
            state.cancelStartUp = nil
            state.group = group
            return state.requested
        }
        if requested { await group.triggerGracefulShutdown() }
    }

    /// What a second signal does once the workers exist (ends their grace period).
    func onInterrupt(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.interrupt = action }
    }

    func interrupt() {
        state.withLock { $0.interrupt }?()
    }

    func received() async {
        let (cancel, group) = state.withLock { state in
            state.requested = true
            return (state.cancelStartUp, state.group)
        }
        cancel?()
        await group?.triggerGracefulShutdown()
    }
}
