import Foundation
import Logging
import MTProto
import MTProtoClient
import ServiceLifecycle
import SessionManager
import Synchronization

/// Something the workers did.
public enum WorkerEvent: Sendable, Hashable {
    case claimed(JobID, account: AccountID)
    case finished(JobID, account: AccountID, WorkerPool.JobOutcome)
    /// The account's loop has nothing in flight and waits for work.
    case idle(AccountID)
    /// A terminal session error stopped the account's workers.
    case accountStopped(AccountID, AccountStop)
    /// Another process holds the account's lease: this process waits to take it over (`standbyInterval`).
    case standingBy(AccountID)
    /// This process took the account's lease (at start, or over from a holder that ended) and serves it.
    case serving(AccountID)
    /// The account was removed from the store (`tgsm session remove`) while its loop waited (for
    /// a login, or to take it over): the loop ends, and the account is not served again.
    case removed(AccountID)
    /// The account's loop ended (shutdown or stop).
    case stopped(AccountID)
}

/// How the workers behave.
public struct WorkerConfiguration: Sendable {
    /// The accounts served by this process (each account's jobs run only on its session).
    public var accounts: [AccountID]
    /// Jobs of one account running at once (over every process sharing the queue).
    public var concurrencyPerAccount: Int
    /// Overrides of `concurrencyPerAccount` for some accounts.
    public var concurrencyOverrides: [AccountID: Int]
    /// How long a claim holds without a heartbeat; a crashed worker's job is rescued after it.
    public var leaseSeconds: Double
    /// How often a running job's lease is renewed (well under `leaseSeconds`).
    public var heartbeatInterval: Double
    /// How often an idle account looks at the queue when no wake-up signal arrives.
    public var pollInterval: Double
    /// On graceful shutdown, how long in-flight jobs may run on before they are cancelled and released.
    public var gracePeriod: Double
    public var backoff: BackoffPolicy
    /// This process's name in `leaseOwner` (diagnostics only: claims are fenced by token).
    public var owner: String
    /// Set: an account whose lease another process holds (at start, or taken over mid-run) is
    /// not stopped; its loop stands by and tries to take the lease every this many seconds, so a
    /// process that dies is replaced within about this plus the lease's TTL (immediately on its
    /// own host, where a dead pid is seen). nil: that account's workers stop, as for one process.
    public var standbyInterval: Double?
    /// Set: an account stopped by a session error waits for a person, looking at its mark every
    /// this many seconds; once the mark is gone (the account was logged in again: `tgsm auth`
    /// clears it) its workers serve it again, on a new session. While no other account is served
    /// the pool ends instead (nothing left to do until a person acts). nil: a stopped account's
    /// workers stay stopped for the pool's life.
    public var resumeInterval: Double?

    public init(
        accounts: [AccountID], concurrencyPerAccount: Int = 2, concurrencyOverrides: [AccountID: Int] = [:],
        leaseSeconds: Double = 60, heartbeatInterval: Double = 15, pollInterval: Double = 5, gracePeriod: Double = 10,
        backoff: BackoffPolicy = BackoffPolicy(), owner: String = WorkerConfiguration.defaultOwner, standbyInterval: Double? = nil,
        resumeInterval: Double? = nil
    ) {
        self.resumeInterval = resumeInterval.map { max(0.05, $0) }
        self.accounts = accounts
        self.concurrencyPerAccount = max(1, concurrencyPerAccount)
        self.concurrencyOverrides = concurrencyOverrides
        self.leaseSeconds = leaseSeconds
        self.heartbeatInterval = heartbeatInterval
        self.pollInterval = pollInterval
        self.gracePeriod = gracePeriod
        self.backoff = backoff
        self.owner = owner
        self.standbyInterval = standbyInterval.map { max(0.05, $0) }
    }

    public func concurrency(for account: AccountID) -> Int {
        max(1, concurrencyOverrides[account] ?? concurrencyPerAccount)
    }

    /// "host:pid", the host as `LeaseHolder` names it, so `ownerIsDead` can tell a dead one.
    public static var defaultOwner: String {
        let holder = LeaseHolder.current()
        return "\(holder.host):\(holder.pid)"
    }

    /// Whether a claim owner named like `defaultOwner` is a process of this host that no longer
    /// exists. Another host's owner, or a name of another form, is never known dead: its claims
    /// end with their lease.
    public static func ownerIsDead(_ owner: String) -> Bool {
        guard let colon = owner.lastIndex(of: ":"), let pid = Int32(owner[owner.index(after: colon)...]) else { return false }
        return LeaseHolder.isDeadOnThisHost(LeaseHolder(host: String(owner[..<colon]), pid: pid))
    }
}

/// The workers: for each account, a loop that claims due jobs up to its concurrency limit, runs
/// them with their handler on the account's invoker, renews their leases, and records each
/// outcome. A swift-service-lifecycle `Service`: on graceful shutdown (SIGTERM/SIGINT in a
/// `ServiceGroup`) it stops claiming, lets in-flight jobs finish within the grace period, then
/// cancels and releases the rest. A terminal session error stops only that account's loop. No
/// error from a handler, the API or the queue ends `run`.
public final class WorkerPool: Service {
    public let queue: any JobQueue
    public let configuration: WorkerConfiguration
    private let handlers: [JobKind: any JobHandler]
    private let invokers: any AccountInvokers
    private let accountStatus: any AccountStatusStore
    private let floodLedger: (any FloodLedgerStore)?
    private let clock: any TelegramClock
    private let random: any RandomSource
    private let logger: Logger
    private let control = Mutex(Control())

    /// Why claiming jobs fails now, or nil while the last round of every loop worked: for the
    /// operator views and an alert when it lasts (a damaged queue file).
    public var claimFailure: ClaimFailure? { control.withLock { $0.claimFailure } }
    private let observers = Broadcaster<WorkerEvent>()

    private struct Control {
        var shuttingDown = false
        var loops: [AccountID: AsyncStream<LoopEvent>.Continuation] = [:]
        /// Accounts whose session failed: set by the job that saw it, before its job is
        /// released, so the account's loop cannot claim the job again in between.
        var halted: Set<AccountID> = []
        /// Accounts whose loops run and are not waiting for a person (`resumeInterval`): when it
        /// empties, the loops waiting for one end. Every configured account counts from the start,
        /// so a loop that begins by waiting (its account was marked) does not find it empty only
        /// because the others' loops have not begun yet.
        var serving: Set<AccountID> = []
        /// Where `serve(_:)` hands accounts added while the pool runs; nil before the pool runs and
        /// once it takes no more (shutting down, or no account served).
        var additions: AsyncStream<AccountID>.Continuation?
        /// Every account given a loop: the configured ones and those added.
        var accounts: Set<AccountID> = []
        /// The grace period was ended early (`endGracePeriodNow`: a second Ctrl-C), not run out.
        var graceCutShort = false
        /// Why the last claim round of any account's loop failed; nil once a round works. The next
        /// failures are not said again (a damaged queue file fails every poll of every account until
        /// a person salvages it), and the alerts read it (`claimFailure`).
        var claimFailure: ClaimFailure?
    }

    enum LoopEvent: Sendable {
        case finished(JobOutcome)
        case wake
        case timer
        case shutdown
        case graceOver
        /// Every other account is stopped too: a loop waiting for a person ends.
        case nothingServed
    }

    /// How one job ended, as the account loop sees it.
    public enum JobOutcome: Sendable, Hashable {
        case completed
        case retried
        case dead
        case deferred(until: UnixTime)
        case released
        /// Its claim was lost (lease expired, job rescued elsewhere): nothing was written.
        case claimLost
        /// Its outcome could not be written (database error): the lease expires and it is rescued.
        case unrecorded
        case accountStopped(AccountStop)
    }

    public init(
        queue: any JobQueue, handlers: [any JobHandler], invokers: any AccountInvokers, accountStatus: any AccountStatusStore,
        floodLedger: (any FloodLedgerStore)? = nil, configuration: WorkerConfiguration, clock: any TelegramClock = WallClock(),
        random: any RandomSource = SystemRandomSource(), logger: Logger = Logger(label: "tgsm.workers")
    ) {
        self.queue = queue
        var byKind: [JobKind: any JobHandler] = [:]
        for handler in handlers { byKind[handler.kind] = handler }
        self.handlers = byKind
        self.invokers = invokers
        self.accountStatus = accountStatus
        self.floodLedger = floodLedger
        self.configuration = configuration
        self.clock = clock
        self.random = random
        self.logger = logger
    }

    /// What the workers do, as it happens: for metrics, the dashboard and tests.
    public func events() -> AsyncStream<WorkerEvent> { observers.subscribe() }

    /// The kinds this pool claims.
    public var kinds: Set<JobKind> { Set(handlers.keys) }

    /// Runs until graceful shutdown (or cancellation) and every account's loop has ended.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await self.runAccounts()
        } onGracefulShutdown: {
            self.shutdownGracefully()
        }
    }

    /// Stops claiming everywhere; in-flight jobs get the grace period. `run` returns once they are done.
    public func shutdownGracefully() {
        let (loops, additions) = control.withLock { control -> ([AsyncStream<LoopEvent>.Continuation], AsyncStream<AccountID>.Continuation?) in
            control.shuttingDown = true
            defer { control.additions = nil }
            return (Array(control.loops.values), control.additions)
        }
        additions?.finish()
        for loop in loops { loop.yield(.shutdown) }
    }

    /// Ends the grace period of a shutdown under way at once: in-flight jobs are cancelled and
    /// released (a second Ctrl-C). Before a shutdown it does nothing.
    public func endGracePeriodNow() {
        let loops = control.withLock { control in
            if control.shuttingDown { control.graceCutShort = true }
            return control.shuttingDown ? Array(control.loops.values) : []
        }
        for loop in loops { loop.yield(.graceOver) }
    }

    /// Serves `account` too, from now on (an account added to the store after the pool started:
    /// `tgsm run` looks for them): its loop starts as a configured account's did, waiting for a
    /// person if it is marked. False when the pool takes no more accounts (not running yet,
    /// shutting down, or ended with no account served) or has a loop for it already.
    @discardableResult
    public func serve(_ account: AccountID) -> Bool {
        control.withLock { control in
            guard let additions = control.additions, !control.shuttingDown, control.accounts.insert(account).inserted else { return false }
            control.serving.insert(account)
            additions.yield(account)
            return true
        }
    }

    private func runAccounts() async {
        let (additions, continuation) = AsyncStream<AccountID>.makeStream()
        control.withLock { control in
            control.serving.formUnion(configuration.accounts)
            control.accounts.formUnion(configuration.accounts)
            // With no account to begin with, nothing is served: the pool ends at once, as before.
            if control.shuttingDown || configuration.accounts.isEmpty { continuation.finish() } else { control.additions = continuation }
        }
        await withDiscardingTaskGroup { group in
            for account in configuration.accounts {
                group.addTask { await self.runAccount(account) }
            }
            for await account in additions {
                group.addTask { await self.runAccount(account) }
            }
        }
    }

    // MARK: - One account

    private func runAccount(_ account: AccountID) async {
        let logger = {
            var logger = self.logger
            logger[metadataKey: "account"] = "\(account)"
            return logger
        }()
        defer {
            logger.info("account workers stopped")
            observers.yield(.stopped(account))
        }
        // Marked before the pool started (it needs a login): with `resumeInterval` its loop starts
        // waiting for a person, and serves it once a login clears the mark, as for a stop met here.
        var markedAtStart: AccountStop?
        do {
            if let status = try await accountStatus.guardedStatus(of: account, now: clock.now()), status.isTerminal {
                guard configuration.resumeInterval != nil else {
                    logger.warning("account is marked stopped; its workers do not start",
                                   metadata: ["state": "\(status.state.rawValue)", "cause": "\(status.cause)", "code": "\(status.code)"])
                    leaveServing(account, removingLoop: true)
                    return
                }
                markedAtStart = AccountStop(error: status.cause, guidance: "the account needs a person (see `tgsm check`)", status: status)
            }
        } catch {
            logger.error("could not read the account's status; starting its workers anyway", metadata: ["error": "\(error)"])
        }

        let (events, continuation) = AsyncStream<LoopEvent>.makeStream()
        let alreadyStopping = control.withLock { control -> Bool in
            control.loops[account] = continuation
            control.serving.insert(account)
            return control.shuttingDown
        }
        defer { leaveServing(account, removingLoop: true) }
        if alreadyStopping { return }

        let signals = queue.enqueueSignals()
        let forwarder = Task {
            for await signalled in signals where signalled == account { continuation.yield(.wake) }
        }
        defer { forwarder.cancel() }

        let limit = configuration.concurrency(for: account)
        let kinds = self.kinds
        await withTaskGroup(of: Void.self) { group in
            var iterator = events.makeAsyncIterator()
            var inFlight = 0
            var stopping = false
            var stopped: AccountStop? = markedAtStart
            var timer: Task<Void, Never>?
            var graceTimer: Task<Void, Never>?
            var invoker: (any TelegramInvoking)?
            // Standing by: another process holds the lease; the next try at taking it is not before this.
            var standingBy = false
            var nextLeaseTry = clock.now()
            // Announced as served (and dead owners' claims ended) since the last standby.
            var serving = false
            // Stopped by a session error, looking at the mark every `resumeInterval`.
            var waitingForAPerson = false
            // Stopped because the store let the lease run out (`AccountStop.storeOutage`): nobody took
            // the account, so this loop takes it back once the store answers, trying every
            // `resumeInterval`, and says so at the outage's start and end, not at every try.
            var outage: (stop: AccountStop, tries: Int)?
            var nextOutageTry = clock.now()
            // Trying to take back a lease another process took (without standby): said at the first
            // try and when it succeeds, not at every try that finds the other holder still there.
            var retakingLease = false
            // A standby (or an account not yet started) that cannot look at its lease because the store
            // does not answer: said once per spell, not at every try (an audit counted 56 lines of
            // ~1 KB per standby in a 130 s outage, each saying "no session for the account yet").
            var leaseLookFailing = false
            func beginOutage(_ stop: AccountStop, interval: Double) {
                outage = (stop, 0)
                nextOutageTry = clock.now() + interval
                announceOutage(account, stop, interval: interval, logger: logger)
            }

            while true {
                if !stopping, stopped == nil, inFlight < limit, !control.withLock({ $0.halted.contains(account) }) {
                    var wakeAfter = configuration.pollInterval
                    // Asked for before every claim round (a lock and a look at the runtime's state): a
                    // runtime that stopped since (its lease ran out while this process was frozen or
                    // cut off) answers with why, even when no job of this process meets it because
                    // the new holder has them all.
                    invoker = nil
                    if standingBy, let interval = configuration.standbyInterval, clock.now() < nextLeaseTry {
                        // Woken early (an enqueue): a lease try per wake-up would hammer the store.
                        wakeAfter = min(interval, max(0, nextLeaseTry - clock.now()))
                    } else {
                        if standingBy, inFlight == 0, await Self.isRemoved(account, statuses: accountStatus) {
                            logger.notice("the account was removed from the store while standing by for it: its workers end")
                            observers.yield(.removed(account))
                            break
                        }
                        if standingBy, let marked = await Self.markedForAPerson(account, statuses: accountStatus, now: clock.now()) {
                            // Its holder met a dead session, marked it and let it go: taking the lease
                            // would only check the dead key again. Served once a login clears the mark.
                            logger.notice("the account's holder marked it and let it go: not taken over; it waits for a person",
                                          metadata: ["code": "\(marked.code)"])
                            standingBy = false
                            let stop = AccountStop(error: marked.cause, guidance: marked.recoverySteps(account: account).joined(separator: " "), status: marked)
                            stopped = stop
                            // Stopped for the same cause as in its holder: `tgsm run` exits as that one did.
                            observers.yield(.accountStopped(account, stop))
                            continue
                        }
                        do {
                            invoker = try await invokers.invoker(for: account)
                            if leaseLookFailing {
                                leaseLookFailing = false
                                logger.notice("the store answers again")
                            }
                            if retakingLease {
                                retakingLease = false
                                logger.notice("took the account's lease back: serving its jobs")
                                observers.yield(.serving(account))
                            }
                            if let ended = outage {
                                outage = nil
                                logger.notice("the store answers again: the account's lease is taken back and its jobs served", metadata: [
                                    "outage-seconds": "\(Int((clock.now() - ended.stop.at).rounded()))", "tries": "\(ended.tries + 1)",
                                ])
                                observers.yield(.serving(account))
                            }
                            if !serving {
                                // This process serves the account now: jobs a dead process of this host
                                // (or, with exclusive invokers, a process that lost the account: frozen,
                                // cut off) still holds need not wait for their claims to expire.
                                await self.endClaimsOfDeadOwners(account: account, logger: logger)
                                if standingBy || configuration.standbyInterval != nil {
                                    logger.notice(standingBy ? "took the account's lease over: serving its jobs" : "serving the account's jobs")
                                    standingBy = false
                                    observers.yield(.serving(account))
                                }
                                serving = true
                            }
                        } catch {
                            if var current = outage, Self.isStoreTrouble(error) {
                                // The store still does not answer (the new runtime could not take the
                                // lease): the next try later, without a word at this level. Anything
                                // else (a session that needs a person now) is handled as it comes.
                                current.tries += 1
                                outage = current
                                stopped = current.stop
                                logger.debug("the store still does not let the account's lease be taken; trying again",
                                             metadata: ["error": "\(error)", "tries": "\(current.tries)"])
                                continue
                            }
                            // Taken by another process during the outage (a lost lease), or the
                            // account needs a person now: the outage is over either way.
                            outage = nil
                            if retakingLease, configuration.standbyInterval == nil, Self.isLeaseHeld(error),
                               let stop = self.accountStop(for: error, account: account) {
                                // The other holder is still there: the next look later, without a word
                                // at this level (the loss was said when it happened).
                                logger.debug("the account's lease is still held elsewhere", metadata: ["error": "\(error)"])
                                stopped = stop
                                continue
                            }
                            if let interval = configuration.standbyInterval, Self.isLeaseHeld(error) {
                                if leaseLookFailing {
                                    leaseLookFailing = false
                                    logger.notice("the store answers again: the account's lease is still held elsewhere")
                                }
                                if !standingBy {
                                    // Who holds it, not the lease-held error's steps ("stop the other process"):
                                    // standing by is what this process was asked to do.
                                    logger.notice("another process holds the account's lease: standing by to take it over",
                                                  metadata: ["held-by": "\(Self.leaseHolder(in: error) ?? "another process")", "retry-every": "\(interval)"])
                                    standingBy = true
                                    serving = false
                                    observers.yield(.standingBy(account))
                                }
                                nextLeaseTry = clock.now() + interval
                                wakeAfter = interval
                            } else if let stop = self.accountStop(for: error, account: account) {
                                stopped = stop
                                if stop.storeOutage, let interval = configuration.resumeInterval {
                                    beginOutage(stop, interval: interval)
                                } else {
                                    await self.mark(account, stop, logger: logger)
                                }
                                continue
                            } else if Self.isStoreTrouble(error) {
                                if !leaseLookFailing {
                                    leaseLookFailing = true
                                    logger.warning("the store does not answer, so the account's lease cannot be looked at; trying again (said once until it answers)",
                                                   metadata: ["error": "\(error)"])
                                } else {
                                    logger.debug("the store still does not answer; trying again", metadata: ["error": "\(error)"])
                                }
                            } else {
                                logger.warning("the account could not be started; trying again", metadata: ["error": "\(error)"])
                            }
                        }
                    }
                    if let invoker {
                        let free = limit - inFlight
                        let request = ClaimRequest(
                            accounts: [account], kinds: kinds, limit: free, perAccountLimit: limit, owner: configuration.owner,
                            leaseSeconds: configuration.leaseSeconds)
                        do {
                            let claimed = try await queue.claim(request, now: clock.now())
                            for job in claimed {
                                inFlight += 1
                                observers.yield(.claimed(job.job.id, account: account))
                                group.addTask {
                                    // A slot that stays busy claims its next job with the completion
                                    // (one write) and runs it here, without a round through this loop.
                                    var current = job
                                    while true {
                                        let (outcome, following) = await self.execute(
                                            current, invoker: invoker, logger: logger,
                                            next: { self.nextClaim(account: account, kinds: kinds, perAccountLimit: limit) })
                                        self.observers.yield(.finished(current.job.id, account: account, outcome))
                                        guard let following else {
                                            continuation.yield(.finished(outcome))
                                            return
                                        }
                                        self.observers.yield(.claimed(following.job.id, account: account))
                                        current = following
                                    }
                                }
                            }
                            if claimed.count < free {
                                let now = clock.now()
                                if let next = try await queue.nextWakeup(accounts: [account], kinds: kinds) {
                                    // Nothing claimed although a job is due: the account's slots are held by
                                    // other processes (the limit counts every process on the queue). Looking
                                    // again at once would spin; a slot frees when their job ends (no signal
                                    // crosses processes for that) or their lease expires, so poll.
                                    let held = claimed.isEmpty && next <= now
                                    wakeAfter = min(wakeAfter, held ? configuration.pollInterval : max(0, next - now))
                                }
                            } else {
                                wakeAfter = .infinity
                            }
                            // Only a whole round (the claim and the look for the next due job) is the queue working again.
                            if control.withLock({ state in defer { state.claimFailure = nil }; return state.claimFailure != nil }) {
                                logger.notice("claiming jobs works again")
                            }
                        } catch {
                            // The latest error, from the spell's start.
                            var failure = ClaimFailure(error, at: clock.now())
                            let first = control.withLock { state in
                                if let since = state.claimFailure?.since { failure.since = since }
                                defer { state.claimFailure = failure }
                                return state.claimFailure == nil
                            }
                            logger.log(level: first ? .error : .debug,
                                       "claiming jobs failed; every account tries again after the poll interval (said once until a claim works)",
                                       metadata: ["error": "\(error)"])
                        }
                    }
                    if wakeAfter.isFinite {
                        timer?.cancel()
                        timer = timerEvent(after: wakeAfter, to: continuation)
                    }
                } else if stopping && inFlight == 0 {
                    break
                } else if outage != nil, stopped != nil, inFlight == 0, let interval = configuration.resumeInterval {
                    if clock.now() >= nextOutageTry {
                        nextOutageTry = clock.now() + interval
                        stopped = nil
                        _ = control.withLock { $0.halted.remove(account) }
                        continue
                    }
                    timer?.cancel()
                    timer = timerEvent(after: nextOutageTry - clock.now(), to: continuation)
                } else if let stop = stopped, inFlight == 0 {
                    guard let interval = configuration.resumeInterval else { break }
                    if !waitingForAPerson {
                        waitingForAPerson = true
                        if stop.marksAccount {
                            logger.notice("the account waits for a person; its workers serve it again once it is logged in (its mark cleared)",
                                          metadata: ["code": "\(stop.status.code)", "look-every": "\(interval)"])
                        } else if !retakingLease {
                            // Another process took the account. Taken again when it is free.
                            logger.notice("the account's lease was lost; its workers take it again once it is free",
                                          metadata: ["try-every": "\(interval)"])
                        }
                        if leaveServing(account, removingLoop: false) { break }
                    } else if stop.marksAccount, await Self.isRemoved(account, statuses: accountStatus) {
                        // Its mark went with it: not "logged in again". Serving it would write it back
                        // (its lease, identity and a new mark), undoing the removal.
                        logger.notice("the account was removed from the store while waiting for a login: its workers end")
                        observers.yield(.removed(account))
                        break
                    } else if await Self.mayServeAgain(account, statuses: accountStatus, now: clock.now()) {
                        if stop.marksAccount {
                            logger.notice("the account was logged in again: its workers serve it on a new session")
                        } else if !retakingLease {
                            logger.notice("trying to take the account's lease again")
                        }
                        retakingLease = !stop.marksAccount
                        waitingForAPerson = false
                        stopped = nil
                        control.withLock { control in
                            control.halted.remove(account)
                            control.serving.insert(account)
                        }
                        if stop.marksAccount { observers.yield(.serving(account)) }
                        continue
                    }
                    timer?.cancel()
                    timer = timerEvent(after: interval, to: continuation)
                }
                if inFlight == 0 { observers.yield(.idle(account)) }

                logger.trace("waiting", metadata: ["in-flight": "\(inFlight)", "stopping": "\(stopping)"])
                guard let event = await iterator.next() else { break }
                logger.trace("event", metadata: ["event": "\(event)"])
                switch event {
                case .finished(let outcome):
                    inFlight -= 1
                    if case .accountStopped(let stop) = outcome, stop.storeOutage, let interval = configuration.resumeInterval {
                        if outage == nil, stopped == nil { beginOutage(stop, interval: interval) }
                        if stopped == nil { stopped = stop }
                    } else if case .accountStopped(let stop) = outcome, !stop.marksAccount, let interval = configuration.standbyInterval {
                        // Another process took the lease over (this one was presumed dead): its
                        // session is gone here; stand by to take the account back when that one ends.
                        _ = control.withLock { $0.halted.remove(account) }
                        if !standingBy {
                            logger.notice("another process took the account's lease over: standing by", metadata: ["error": "\(stop.error)"])
                            standingBy = true
                            serving = false
                            observers.yield(.standingBy(account))
                        }
                        nextLeaseTry = clock.now() + interval
                    } else if case .accountStopped(let stop) = outcome, stopped == nil {
                        stopped = stop
                        await self.mark(account, stop, logger: logger)
                        // The session is gone: the account's other jobs cannot succeed either. Not
                        // when it may be served again: a cancelled group's later tasks would start
                        // cancelled; those jobs end by themselves, refused by the stopped session.
                        if configuration.resumeInterval == nil { group.cancelAll() }
                    }
                case .wake, .timer:
                    timer?.cancel()
                    timer = nil
                case .nothingServed:
                    if waitingForAPerson { stopping = true }
                case .shutdown:
                    guard !stopping else { continue }
                    stopping = true
                    timer?.cancel()
                    timer = nil
                    logger.info("graceful shutdown: no new claims", metadata: ["in-flight": "\(inFlight)"])
                    if inFlight > 0 {
                        let clock = self.clock
                        let grace = configuration.gracePeriod
                        graceTimer = Task {
                            do {
                                try await clock.sleep(for: grace)
                                continuation.yield(.graceOver)
                            } catch {}
                        }
                    }
                case .graceOver:
                    let cutShort = control.withLock { $0.graceCutShort }
                    logger.notice(cutShort ? "grace period cut short (a second signal): cancelling in-flight jobs, they are released"
                                      : "grace period over: cancelling in-flight jobs, they are released", metadata: ["in-flight": "\(inFlight)"])
                    group.cancelAll()
                }
            }
            timer?.cancel()
            graceTimer?.cancel()
        }
    }

    /// A `.timer` for an account's loop after `seconds` on the injected clock (cancel it to drop it).
    private func timerEvent(after seconds: Double, to loop: AsyncStream<LoopEvent>.Continuation) -> Task<Void, Never> {
        let clock = self.clock
        return Task {
            do {
                try await clock.sleep(for: seconds)
                loop.yield(.timer)
            } catch {}
        }
    }

    /// Whether a stopped account's loop should try to serve it again: no terminal mark in the store
    /// (a login cleared it, or the stop marked nothing: a lost lease). A store that cannot be read
    /// says no: the next look tries again.
    private static func mayServeAgain(_ account: AccountID, statuses: any AccountStatusStore, now: UnixTime) async -> Bool {
        do {
            guard let status = try await statuses.guardedStatus(of: account, now: now) else { return true }
            return !status.isTerminal
        } catch {
            return false
        }
    }

    /// Whether the store no longer has the account. A store that cannot be read says no: the next
    /// look asks again.
    private static func isRemoved(_ account: AccountID, statuses: any AccountStatusStore) async -> Bool {
        (try? await statuses.isKnownAccount(account)) == false
    }

    /// The account's terminal mark, if it has one. A store that cannot be read says none: taking
    /// the lease then meets the mark (or the store's trouble) the usual way.
    private static func markedForAPerson(_ account: AccountID, statuses: any AccountStatusStore, now: UnixTime) async -> AccountStatus? {
        guard let status = try? await statuses.guardedStatus(of: account, now: now), status.isTerminal else { return nil }
        return status
    }

    /// The account is no longer served (its loop ended, or waits for a person). Answers whether no
    /// account is served any more; then the loops waiting for a person are told to end.
    @discardableResult
    private func leaveServing(_ account: AccountID, removingLoop: Bool) -> Bool {
        let (nobody, loops, additions) = control.withLock { control -> (Bool, [AsyncStream<LoopEvent>.Continuation], AsyncStream<AccountID>.Continuation?) in
            control.serving.remove(account)
            if removingLoop { control.loops.removeValue(forKey: account) }
            // No account served: the pool takes no new ones either, so it can end.
            let nobody = control.serving.isEmpty
            let additions = nobody ? control.additions : nil
            if nobody { control.additions = nil }
            return (nobody, Array(control.loops.values), additions)
        }
        additions?.finish()
        if nobody { for loop in loops { loop.yield(.nothingServed) } }
        return nobody
    }

    /// An outage of the store long enough for the account's lease to run out: said once, with what
    /// happens next (the loop takes the account back by itself).
    private func announceOutage(_ account: AccountID, _ stop: AccountStop, interval: Double, logger: Logger) {
        logger.error("the store did not let the account's lease be renewed before it ran out: its connections are stopped, since another process could take the account from now on; it is taken back once the store answers",
                     metadata: ["error": "\(stop.error)", "try-every": "\(interval)", "guidance": "\(stop.guidance)"])
        observers.yield(.accountStopped(account, stop))
    }

    private func mark(_ account: AccountID, _ stop: AccountStop, logger: Logger) async {
        defer { observers.yield(.accountStopped(account, stop)) }
        guard stop.marksAccount else {
            logger.error(stop.storeOutage ? "the store let the account's lease run out: this process's workers for it stop"
                                          : "another process owns the account now: this process's workers for it stop",
                         metadata: ["error": "\(stop.error)", "guidance": "\(stop.guidance)"])
            return
        }
        logger.error("terminal session error: the account's workers stop", metadata: ["error": "\(stop.error)", "guidance": "\(stop.guidance)"])
        do {
            // `.unreadable` is what a row this version could not read is taken for: never written.
            guard stop.status.state != .unreadable else { return }
            // The guard may have marked it already with the first cause: kept by the same rule (an
            // unreadable row yields to nothing, so it is never written over either).
            if let current = try await accountStatus.guardedStatus(of: account, now: clock.now()), !current.yields(to: stop.status.state) { return }
            try await accountStatus.setStatus(stop.status, for: account)
        } catch {
            logger.error("could not record the account's stop", metadata: ["error": "\(error)"])
        }
    }

    /// Ends the claims on `account`'s running jobs held by owners known dead (`ownerIsDead`), or by
    /// any other owner when invokers are exclusive (`AccountInvokers.invokersAreExclusive`), so
    /// the next claim rescues them now rather than after their lease. Failures only log: the lease
    /// expiry rescues them anyway.
    private func endClaimsOfDeadOwners(account: AccountID, logger: Logger) async {
        do {
            let owners = Set(try await queue.jobs(state: .running, account: account, limit: 10_000).compactMap(\.leaseOwner))
            for owner in owners where owner != configuration.owner {
                let dead = WorkerConfiguration.ownerIsDead(owner)
                // An owner alive but without the account (its lease ran out and is ours now) can
                // no longer call for it: its jobs would wait out their claims (leaseSeconds) and
                // hold the account's slots, which count every process. Should it wake up, its
                // writes on them are refused once they are claimed again (fencing tokens).
                guard dead || invokers.invokersAreExclusive else { continue }
                let ended = try await queue.abandonClaims(ownedBy: owner, account: account, now: clock.now())
                if ended > 0 {
                    logger.notice(dead ? "ended the claims of a dead worker process: its jobs run again now"
                                       : "ended the claims of a process that lost the account's lease: its jobs run again now", metadata: [
                        "owner": "\(owner)", "jobs": "\(ended)",
                    ])
                }
            }
        } catch {
            logger.warning("could not look for claims of dead workers; their leases will expire", metadata: ["error": "\(error)"])
        }
    }

    /// Whether `error` says the store does not answer: a runtime that could not start on it, or whose
    /// lease ran out on it.
    static func isStoreTrouble(_ error: any Error) -> Bool {
        let managed = (error as? TelegramError)?.sessionManagerError ?? (error as? SessionManagerError)
        switch managed?.reason {
        case .storageFailed?, .leaseExpired?: return true
        default: return false
        }
    }

    /// Who holds the account's lease, when `error` says another process does.
    static func leaseHolder(in error: any Error) -> String? {
        let managed = (error as? TelegramError)?.sessionManagerError ?? (error as? SessionManagerError)
        if case .leaseHeld(_, let holder, _)? = managed?.reason { return holder }
        return nil
    }

    /// Whether `error` says another process holds the account's lease.
    public static func isLeaseHeld(_ error: any Error) -> Bool { leaseHolder(in: error) != nil }

    private func accountStop(for error: any Error, account: AccountID) -> AccountStop? {
        if case .stopAccount(let name, let guidance) = JobErrorClassifier.classify(error) {
            return Self.accountStop(name, guidance, error: error, account: account, now: clock.now())
        }
        return nil
    }

    /// The stop and the mark it writes: the session manager's own reading of the error when it
    /// names one (so the guard and the workers write the same state and code), else a login is
    /// needed (AUTH_KEY_PERM_EMPTY and other key refusals the session manager has no code for).
    static func accountStop(_ name: String, _ guidance: String, error: (any Error)?, account: AccountID, now: UnixTime) -> AccountStop {
        if let managed = (error as? TelegramError)?.sessionManagerError {
            // The account lost its lease (taken over, or run out on a store that did not answer): the
            // session is fine, nothing is marked.
            let outage: Bool? = switch managed.reason {
            case .leaseHeld: false
            case .leaseExpired: true
            default: nil
            }
            if let outage {
                return AccountStop(error: name, guidance: guidance, status: AccountStatus(state: .active, since: now, cause: name, code: managed.code),
                                   marksAccount: false, storeOutage: outage)
            }
        }
        guard let status = (error as? TelegramError).flatMap({ AccountStatus.terminal(after: $0, account: account, at: now) }) else {
            return AccountStop(error: name, guidance: guidance, status: AccountStatus(state: .unauthorized, since: now, cause: name, code: ""))
        }
        // The mark's own steps, naming the account's command: the same text `tgsm check`, `/health`
        // and a standby's refusal give, not the client's generic "run the login again".
        return AccountStop(error: name, guidance: status.recoverySteps(account: account).joined(separator: " "), status: status)
    }

    // MARK: - One job

    private enum Step: Sendable {
        case finished(Result<Data?, any Error>)
        case leaseLost
        case heartbeatStopped
    }

    /// The claim for a slot's next job, made with its completion; nil once the account or the
    /// pool is stopping (the loop then sees the slot free and decides).
    private func nextClaim(account: AccountID, kinds: Set<JobKind>, perAccountLimit: Int) -> ClaimRequest? {
        guard !Task.isCancelled, !control.withLock({ $0.shuttingDown || $0.halted.contains(account) }) else { return nil }
        return ClaimRequest(
            accounts: [account], kinds: kinds, limit: 1, perAccountLimit: perAccountLimit, owner: configuration.owner,
            leaseSeconds: configuration.leaseSeconds)
    }

    /// Runs one job and records its outcome; with `next` answering a request, a completed job's
    /// slot claims its next job in the same write and returns it.
    private func execute(
        _ claimed: ClaimedJob, invoker: any TelegramInvoking, logger: Logger, next: @escaping @Sendable () -> ClaimRequest?
    ) async -> (JobOutcome, ClaimedJob?) {
        let claim = claimed.claim
        guard let handler = handlers[claimed.job.kind] else {
            return (await settle(claimed, disposition: .release(reason: "no handler for \(claimed.job.kind) in this worker"), logger: logger), nil)
        }
        let context = JobContext(job: claimed.job, claim: claim, invoker: invoker, queue: queue, clock: clock, random: random, logger: logger)
        let queue = self.queue
        let clock = self.clock
        let lease = configuration.leaseSeconds
        let interval = configuration.heartbeatInterval
        let step = await withTaskGroup(of: Step.self) { group -> Step in
            group.addTask {
                do {
                    return .finished(.success(try await handler.run(context)))
                } catch {
                    return .finished(.failure(error))
                }
            }
            group.addTask {
                while true {
                    do {
                        try await clock.sleep(for: interval)
                    } catch {
                        return .heartbeatStopped
                    }
                    do {
                        _ = try await queue.heartbeat(claim, leaseSeconds: lease, now: clock.now())
                    } catch JobQueueError.claimLost {
                        return .leaseLost
                    } catch {
                        // The lease may still hold; the next beat tries again.
                        logger.warning("heartbeat failed", metadata: ["job": "\(claim.job.rawValue)", "error": "\(error)"])
                    }
                }
            }
            var first = Step.heartbeatStopped
            while let next = await group.next() {
                if case .heartbeatStopped = next { continue }
                first = next
                break
            }
            group.cancelAll()
            return first
        }
        let cancelled = Task.isCancelled
        // `chaining`: whether a completion may claim the slot's next job (never for a job whose
        // task was cancelled: its slot is being given back).
        let record: @Sendable (_ chaining: Bool) async -> (JobOutcome, ClaimedJob?) = { chaining in
            switch step {
            case .leaseLost:
                logger.warning("lost the lease mid-job: another worker rescued it; dropping it", metadata: ["job": "\(claim.job.rawValue)"])
                return (.claimLost, nil)
            case .heartbeatStopped:
                return (await self.settle(claimed, disposition: .release(reason: "the worker was cancelled"), logger: logger), nil)
            case .finished(.success(let result)):
                do {
                    let now = self.clock.now()
                    if chaining, let request = next() {
                        return (.completed, try await self.queue.complete(claim, result: result, now: now, thenClaim: request).first)
                    }
                    try await self.queue.complete(claim, result: result, now: now)
                    return (.completed, nil)
                } catch JobQueueError.claimLost {
                    return (.claimLost, nil)
                } catch {
                    logger.error("the job's completion could not be recorded; it will be rescued and run again", metadata: ["job": "\(claim.job.rawValue)", "error": "\(error)"])
                    return (.unrecorded, nil)
                }
            case .finished(.failure(let error)):
                var disposition = JobErrorClassifier.classify(error)
                if cancelled {
                    switch disposition {
                    case .stopAccount, .deferFloodWait: break
                    // The error is the cancellation's echo (a write refused, a call cut short), not a cause.
                    default: disposition = .release(reason: "released: the worker stopped (a shutdown, or the account stopped) before the job "
                        + "finished; it runs again, no attempt spent")
                    }
                }
                return (await self.settle(claimed, disposition: disposition, failure: error, logger: logger), nil)
            }
        }
        // A cancelled task's database writes are refused, so its bookkeeping runs in a task of its
        // own; an uncancelled one records inline (a task less per job), unless cancellation came
        // in between and refused the write (nothing was written then: recorded again, outside).
        if !cancelled {
            let recorded = await record(true)
            guard case .unrecorded = recorded.0, Task.isCancelled else { return recorded }
        }
        // Bounded: a write that never ends (a connection the server ended while this process was
        // frozen) must not hold the account's loop, and a graceful shutdown, for good. Unrecorded,
        // the job's claim expires and it is rescued (its late writes are fenced).
        do {
            return try await withBound(seconds: Self.bookkeepingBound, "recording job \(claim.job.rawValue)", cancellable: false) { await record(false) }
        } catch {
            logger.error("the job's outcome was not recorded in time; its lease will expire and it will be rescued",
                         metadata: ["job": "\(claim.job.rawValue)", "error": "\(error)"])
            return (.unrecorded, nil)
        }
    }

    /// Seconds a cancelled job's outcome may take to be recorded (its own task, not cancelled).
    static let bookkeepingBound = 5.0

    private func settle(_ claimed: ClaimedJob, disposition: JobDisposition, failure: (any Error)? = nil, logger: Logger) async -> JobOutcome {
        let claim = claimed.claim
        let now = clock.now()
        var metadata: Logger.Metadata = ["job": "\(claim.job.rawValue)", "kind": "\(claimed.job.kind)", "attempt": "\(claimed.job.attempts)"]
        do {
            switch disposition {
            case .retry(let reason):
                let delay = configuration.backoff.delay(afterAttempt: claimed.job.attempts, unit: random.nextUnit())
                let state = try await queue.retry(claim, error: reason, retryAt: now + delay, now: now)
                metadata["error"] = "\(reason)"
                if state == .dead {
                    logger.error("job failed on its last attempt: dead letter", metadata: metadata)
                    return .dead
                }
                metadata["retry-in"] = "\(delay)"
                logger.notice("job failed; retrying after backoff", metadata: metadata)
                return .retried
            case .dead(let reason):
                try await queue.retry(claim, error: reason, retryAt: nil, now: now)
                metadata["error"] = "\(reason)"
                logger.error("job failed permanently: dead letter", metadata: metadata)
                return .dead
            case .deferFloodWait(let method, let seconds, let until, let reason):
                var target = until ?? now + (seconds ?? 0)
                if let method, let ledger = floodLedger {
                    do {
                        let waits = try await ledger.activeFloodWaits(account: claimed.job.account, at: now)
                        for wait in waits where wait.method == method { target = max(target, wait.until) }
                    } catch {
                        logger.warning("the flood ledger could not be read; deferring by the error's own wait", metadata: ["error": "\(error)"])
                    }
                }
                try await queue.deferJob(claim, until: target, reason: reason, now: now)
                metadata["until"] = "\(target)"
                logger.notice("job met a rate limit: deferred without spending an attempt", metadata: metadata)
                return .deferred(until: target)
            case .stopAccount(let name, let guidance):
                _ = control.withLock { $0.halted.insert(claimed.job.account) }
                try await queue.release(claim, reason: "released: the account's session failed (\(name))", now: now)
                return .accountStopped(Self.accountStop(name, guidance, error: failure, account: claimed.job.account, now: now))
            case .release(let reason):
                try await queue.release(claim, reason: reason, now: now)
                logger.info("job released", metadata: metadata)
                return .released
            case .deferUnsent(let seconds, let reason), .deferOutage(let seconds, let reason):
                let target = now + seconds
                try await queue.deferJob(claim, until: target, reason: reason, now: now)
                metadata["until"] = "\(target)"
                if case .deferOutage = disposition {
                    logger.notice("job's connection failed after its call was sent (the network, the DC or the proxy): deferred without spending an attempt; the next one finds out whether it ran",
                                  metadata: metadata)
                } else {
                    logger.notice("job's call was not sent (no connection, or the account's proxy refused it): deferred without spending an attempt",
                                  metadata: metadata)
                }
                return .deferred(until: target)
            }
        } catch JobQueueError.claimLost {
            if case .stopAccount(let name, let guidance) = disposition {
                return .accountStopped(Self.accountStop(name, guidance, error: failure, account: claimed.job.account, now: now))
            }
            return .claimLost
        } catch {
            logger.error("the job's outcome could not be recorded; its lease will expire and it will be rescued", metadata: ["job": "\(claim.job.rawValue)", "error": "\(error)"])
            if case .stopAccount(let name, let guidance) = disposition {
                return .accountStopped(Self.accountStop(name, guidance, error: failure, account: claimed.job.account, now: now))
            }
            return .unrecorded
        }
    }
}
