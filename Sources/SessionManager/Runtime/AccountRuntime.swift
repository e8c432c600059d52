import Foundation
import Logging
import MTProto
import Metrics
import MTProtoClient
import MTProtoCrypto
import MTProtoNIO
import Synchronization
import TL
import TLSchema

/// How an account runtime behaves.
public struct AccountRuntimeConfiguration: Sendable {
    /// Seconds a lease lasts without a heartbeat; another process takes a dead holder's lease over after it.
    public var leaseTTL: Double
    /// Seconds between heartbeats; nil: a third of `leaseTTL`.
    public var heartbeatInterval: Double?
    public var stack: SessionStack.Configuration
    /// The keep-alive; nil runs none (a short-lived command).
    public var keepAlive: KeepAlivePolicy?
    /// Seconds the start-up validation waits for its answer.
    public var validationTimeout: Double
    /// The app version of a device identity chosen here (an account that has one keeps it).
    public var appVersion: String
    /// Whether answers' users and chats are remembered in the store (fenced by the lease).
    public var remembersPeers: Bool
    /// Whether the runtime stops itself (client closed, lease released) when the account turns
    /// terminal. Off for a login, which goes on through the stack after an "unauthorized" check.
    public var stopsOnTerminal: Bool
    /// How a dropped link is brought back while the account has nothing to do (a long-running
    /// holder: `tgsm run`); nil: only by the next call (a login, a short-lived command).
    public var linkKeeper: LinkKeeperPolicy?

    public init(leaseTTL: Double = 30, heartbeatInterval: Double? = nil, stack: SessionStack.Configuration = .init(),
                keepAlive: KeepAlivePolicy? = KeepAlivePolicy(), validationTimeout: Double = 15, appVersion: String = "tgsm 0.1",
                remembersPeers: Bool = true, stopsOnTerminal: Bool = true, linkKeeper: LinkKeeperPolicy? = nil) {
        self.linkKeeper = linkKeeper
        precondition(leaseTTL > 0, "a lease needs a positive time to live")
        self.leaseTTL = leaseTTL
        self.heartbeatInterval = heartbeatInterval
        self.stack = stack
        self.keepAlive = keepAlive
        self.validationTimeout = validationTimeout
        self.appVersion = appVersion
        self.remembersPeers = remembersPeers
        self.stopsOnTerminal = stopsOnTerminal
    }

    var beat: Double { heartbeatInterval ?? leaseTTL / 3 }

    /// The longest ping interval that lets the DC drop this process's connections before its lease
    /// can be taken over. The client asks the server (ping_delay_disconnect) to close a connection
    /// whose pings stop for 1.25x the interval + 0.5 s. A holder that stops without closing its
    /// sockets (frozen, cut off) last renewed its lease at most `beat` before it stopped, so the lease
    /// runs out `leaseTTL - beat` after that at the earliest; were its connection still open at the
    /// DC when the next holder connects with the same key under another session id, Telegram would
    /// answer AUTH_KEY_DUPLICATED and void the key. One second of room is kept for clocks and the
    /// next holder's connect.
    var pingIntervalWithinLease: Double { max(0.5, (leaseTTL - beat - 1 - 0.5) / 1.25) }
}

/// Why a runtime stopped.
public enum AccountRuntimeStop: Sendable, Hashable, CustomStringConvertible {
    /// `stop()` was called (shutdown).
    case requested
    /// The lease was taken over by another process (`store.fenced`); this process must not touch
    /// the account any more.
    case leaseLost(current: String?)
    /// The store did not let the lease be renewed before it ran out (a locked file, a failing disk,
    /// a PostgreSQL server out of reach): no other process holds the account, but any may take it
    /// from now on, so this one stopped using it. `cause` is the last renewal's error.
    case leaseExpired(cause: String)
    /// The account turned terminal (revoked, unauthorized, duplicated, deactivated): its code.
    case terminal(code: String)

    public var description: String {
        switch self {
        case .requested: "stopped on request"
        case .leaseLost(let current):
            "the account's lease was lost" + (current.map { " (now held by \($0))" } ?? "")
                + "; another process owns the account, so this one stopped its connections"
        case .leaseExpired(let cause):
            "the store did not let the account's lease be renewed before it ran out (\(cause)); this process stopped "
                + "its connections, since another one may take the account from now on"
        case .terminal(let code): "the session became unusable (\(code)); a person must act (see `tgsm check`)"
        }
    }
}

/// Where a runtime's time, randomness and ownership come from. Tests inject all of them.
public struct AccountRuntimeEnvironment: Sendable {
    /// The middlewares', the lease's and the keep-alive's clock: the wall clock by default, since what it
    /// stamps (lease expiries, flood waits, rate buckets) is compared with other processes' clocks.
    public var clock: any TelegramClock
    /// The client's clock (msg_ids, timeouts, reconnect backoff).
    public var clientClock: any TelegramClock
    public var random: any RandomSource
    public var entropy: any EntropySource
    public var holder: LeaseHolder
    public var holderIsDead: @Sendable (LeaseHolder) -> Bool
    public var logger: Logger

    public init(clock: any TelegramClock = WallClock(), clientClock: any TelegramClock = SystemClock(),
                random: any RandomSource = SystemRandomSource(), entropy: any EntropySource = SystemEntropy(),
                holder: LeaseHolder = .current(), holderIsDead: @escaping @Sendable (LeaseHolder) -> Bool = LeaseHolder.isDeadOnThisHost,
                logger: Logger = Logger(label: "tgsm.runtime")) {
        self.clock = clock
        self.clientClock = clientClock
        self.random = random
        self.entropy = entropy
        self.holder = holder
        self.holderIsDead = holderIsDead
        self.logger = logger
    }
}

/// One account, running: the product-level assembly of the session manager's parts.
///
/// `start()` takes the account's lease before any connection (a live holder is
/// `TGSM-SESSION-002` naming it), renews it on a heartbeat, builds the `TelegramClient` on the
/// account's `AccountSessionStorage` with its stored device identity and proxy, wraps it in the
/// `SessionStack` (with the store-backed peer cache), validates the session without ever asking for
/// a code, and runs the keep-alive. `stop()` closes the client and releases the lease. A runtime
/// whose lease is taken over stops by itself and never writes again (every write is fenced).
///
/// Callers invoke through `invoker`, which stays valid across the runtime's life: before start and
/// after a stop it fails without touching the network.
public actor AccountRuntime {
    public enum State: Sendable, Hashable {
        case idle
        case running(Lease)
        case stopped(AccountRuntimeStop)
    }

    public nonisolated let account: AccountID
    /// The account's stack (through the runtime's gate): what workers and commands invoke.
    public nonisolated let invoker: any TelegramInvoking
    public nonisolated let configuration: AccountRuntimeConfiguration
    private nonisolated let gate: RuntimeGate
    /// Until when the lease is known held (its expiry at the last take or renewal), for the client's permit.
    private nonisolated let leaseExpiry = LeaseExpiry()
    private let store: any SessionStore
    private let base: TelegramClientConfiguration
    private let environment: AccountRuntimeEnvironment
    private var logger: Logger

    public private(set) var state: State = .idle
    public private(set) var client: TelegramClient?
    public private(set) var stack: SessionStack?
    /// The start-up check's verdict (nil before it, or when started without it).
    public private(set) var verdict: SessionVerdict?
    private var tasks: [Task<Void, Never>] = []
    private var stopWaiters: [CheckedContinuation<AccountRuntimeStop, Never>] = []
    /// Why the runtime stopped, once its stop has finished (the session closed, the lease released).
    private var finishedStop: AccountRuntimeStop?
    /// The lease this runtime stopped using without releasing it because the store did not let it be
    /// renewed in time (`.leaseExpired`). Its last renewal may still land once the store answers and
    /// extend it in this process's name: pass it to the next runtime's `start(reclaiming:)`.
    public private(set) var abandonedLease: Lease?
    private var starting = false
    /// The stored proxy link the client connects through (nil: directly), to notice a change.
    private var appliedProxyLink: String?
    /// The call that tells whether the account answers the way the last change made.
    private var proxyProbe: Task<Void, Never>?

    /// - Parameters:
    ///   - account: the account's name in the store.
    ///   - store: where its session, lease, ledger and marks live (SQLite or PostgreSQL).
    ///   - client: the connection profile's configuration with the application's
    ///     api_id/api_hash; the account's identity and proxy are applied at start.
    ///   - configuration: lease, keep-alive, middleware and start-up check settings.
    ///   - environment: clocks, randomness, the lease holder's identity and the logger.
    public init(account: AccountID, store: any SessionStore, client: TelegramClientConfiguration,
                configuration: AccountRuntimeConfiguration = .init(), environment: AccountRuntimeEnvironment = .init()) {
        self.account = account
        self.store = store
        self.base = client
        self.configuration = configuration
        self.environment = environment
        var logger = environment.logger
        logger[metadataKey: "account"] = "\(account)"
        self.logger = logger
        let gate = RuntimeGate(account: account)
        self.gate = gate
        self.invoker = RuntimeInvoker(gate: gate)
    }

    public var lease: Lease? {
        if case .running(let lease) = state { return lease }
        return nil
    }

    public var health: AccountHealth? { stack?.health }

    /// Takes the lease, builds client and stack, starts the heartbeat and keep-alive, and (with
    /// `validate`) checks the session. Returns the check's verdict (nil without `validate`); a
    /// verdict other than `.valid` is not an error here, the caller decides. When the check finds
    /// the account terminal and `stopsOnTerminal` is set, the runtime has already stopped.
    ///
    /// `reclaiming`: the `abandonedLease` of this process's previous runtime of the account. Found
    /// still held in this process's name with the same token, it is taken over at once: the renewal
    /// behind it was given up and nothing in this process uses it.
    @discardableResult
    public func start(validate: Bool = true, reclaiming abandoned: Lease? = nil) async throws(SessionManagerError) -> SessionVerdict? {
        guard case .idle = state, !starting else { preconditionFailure("an AccountRuntime starts once") }
        starting = true
        defer { starting = false }
        // The series exists at 0 from the start, so a rule on its increase sees the first outage.
        _ = Counter(label: Self.leaseExpiredMetric, dimensions: [("account", account.rawValue)])
        let now = environment.clock.now()
        let lease: Lease
        do {
            var holderIsDead = environment.holderIsDead
            if let own = try await ownAbandonedLease(abandoned) {
                holderIsDead = { [isDead = holderIsDead] holder in holder == own.holder || isDead(holder) }
            }
            lease = try await store.acquireLease(account: account, holder: environment.holder, now: now, ttl: configuration.leaseTTL,
                                                 holderIsDead: holderIsDead)
        } catch let error as SessionStoreError {
            if case .leaseHeld(let held) = error {
                throw SessionManagerError(.leaseHeld(account: account, holder: "\(held.holder), lease token \(held.token)", expires: held.expiresAt))
            }
            throw SessionManagerError(.storageFailed(account: account, reason: "taking the lease: \(error) [\(error.code)]", failure: error.databaseFailure))
        } catch {
            throw SessionManagerError(.storageFailed(account: account, reason: "taking the lease: \(error)"))
        }
        logger[metadataKey: "lease"] = "\(lease.token)"
        leaseExpiry.set(lease.expiresAt)
        let configuration: TelegramClientConfiguration
        do {
            configuration = try await clientConfiguration(now: now)
        } catch {
            try? await store.releaseLease(lease)
            throw error
        }
        let storage = AccountSessionStorage(store: store, account: account, lease: lease)
        let client = TelegramClient(configuration: configuration, storage: storage, clock: environment.clientClock,
                                    entropy: environment.entropy, logger: logger)
        let peers = self.configuration.remembersPeers
            ? PeerCache(account: account, store: store, fence: lease.token, clock: environment.clock, logger: logger) : nil
        let stack = SessionStack(account: account, client: client, ledgerStore: store, statuses: store, storage: storage, peerCache: peers,
                                 configuration: self.configuration.stack, clock: environment.clock, random: environment.random, logger: logger)
        // A session that cannot be saved (a full disk, a store re-keyed under this process) still
        // works until a restart, which would lose it: the health shows it meanwhile.
        storage.saves.report { [health = stack.health] failure in health.recordSessionSave(failure: failure) }
        // Telegram's notices go to the health (now) and the store (for `tgsm check` after this process).
        client.onServiceNotification { [health = stack.health, store, account, clock = environment.clock, logger] notification in
            health.recordServiceNotification(notification)
            let stored = StoredServiceNotification(notification, account: account, receivedAt: clock.now())
            Task {
                do {
                    try await store.recordServiceNotification(stored)
                } catch {
                    logger.warning("a service notification could not be kept in the store; it is in the log and /health only",
                                   metadata: ["account": "\(account)", "error": "\(error)"])
                }
            }
        }
        self.client = client
        self.stack = stack
        state = .running(lease)
        gate.open(stack.invoker)
        logger.info("account runtime started", metadata: ["holder": "\(environment.holder)"])

        tasks.append(Task { await self.heartbeat() })
        tasks.append(keepingFreezes(of: stack.health))
        if self.configuration.stopsOnTerminal {
            let events = stack.health.events()
            tasks.append(Task {
                for await event in events {
                    if case .stateChanged(_, .terminal) = event.kind {
                        await self.halt(.terminal(code: stack.health.snapshot.lastFailureCode ?? "terminal"))
                        return
                    }
                }
            })
        }
        // Subscribed before the start-up check: a check that fails for the network is the keeper's first trigger.
        let linkTriggers = self.configuration.linkKeeper.map { _ in LinkKeeper.triggers(client: client, health: stack.health, clock: environment.clock) }
        var verdict: SessionVerdict?
        if validate {
            let validator = SessionValidator(account: account, invoker: stack.invoker, storage: storage, health: stack.health,
                                             clock: environment.clock, timeout: self.configuration.validationTimeout)
            var result = await validator.validate()
            // A key found logged out is the consequence; the account's mark names the cause
            // (deactivated, revoked from another device), whose steps differ: a login is refused
            // for a deactivated account, and a revoked one needs its revoker found first.
            if case .unauthorized = result, let mark = await terminalMark(), mark.state != .unauthorized {
                result = SessionValidator.verdict(for: SessionManagerError(.accountUnusable(account: account, status: mark, method: "updates.getState")),
                                                  now: environment.clock.now())
            }
            verdict = result
            self.verdict = result
            logger.info("session checked", metadata: ["verdict": "\(result.label)"])
            if self.configuration.stopsOnTerminal, result.needsPerson {
                await halt(.terminal(code: health?.snapshot.lastFailureCode ?? result.label))
            }
        }
        if case .running = state, case .valid(userID: nil)? = verdict { await learnSelf(invoker: stack.invoker, client: client) }
        if case .running = state { await reviewKeptFreeze(invoker: stack.invoker, health: stack.health) }
        if case .running = state, let policy = self.configuration.linkKeeper, let linkTriggers {
            let keeper = LinkKeeper(account: account, invoker: stack.invoker, health: stack.health, policy: policy, clock: environment.clock, logger: logger)
            tasks.append(Task { await keeper.run(linkTriggers) })
        }
        if case .running = state, let policy = self.configuration.keepAlive {
            let keepAlive = KeepAlive(account: account, invoker: stack.invoker, health: stack.health, policy: policy,
                                      clock: environment.clock, random: environment.random, logger: logger)
            tasks.append(Task { await keepAlive.run() })
        }
        return verdict
    }

    /// A logged-in session that does not say whose it is (imported from a Telethon string session)
    /// learns it once: `tgsm session list` shows it, and a Pyrogram export, which needs it, works.
    private func learnSelf(invoker: any TelegramInvoking, client: TelegramClient) async {
        do {
            let answer = try await invoker.invoke(Api.functions.users.GetFullUser(id: .inputUserSelf(.init())), options: InvokeOptions(isIdempotent: true))
            guard case .userFull(let full) = answer else { return }
            for case .user(let user) in full.users where user.isSelf || full.users.count == 1 {
                await client.noteSelf(userID: user.id, isBot: user.bot)
                logger.info("learnt the session's user id (the imported session did not carry it)")
                return
            }
        } catch {
            logger.notice("whose session this is could not be asked; it is asked again at the next start", metadata: ["error": "\(error)"])
        }
    }

    /// Keeps each freeze the health learns of in the store, for `tgsm check` and the next process.
    private func keepingFreezes(of health: AccountHealth) -> Task<Void, Never> {
        let events = health.events()
        return Task { [store, account, clock = environment.clock, logger] in
            for await event in events {
                guard case .frozen = event.kind, let freeze = StoredAccountFreeze(health.snapshot, at: clock.now()) else { continue }
                do { try await store.recordFreeze(freeze) } catch {
                    logger.warning("the account's freeze could not be kept in the store; it is in the log and /health only",
                                   metadata: ["account": "\(account)", "error": "\(error)"])
                }
            }
        }
    }

    /// An account the store keeps frozen: help.getAppConfig says whether it still is (api/auth,
    /// "Frozen accounts"). Still frozen: the health shows it from the start (a restart must not read as
    /// "ready again"). No longer: the appeal was accepted, and the freeze is forgotten. No answer:
    /// the stored freeze stays, and operators' views show it.
    private func reviewKeptFreeze(invoker: any TelegramInvoking, health: AccountHealth) async {
        let kept: StoredAccountFreeze
        do {
            guard let found = try await store.freezes(account: account).first else { return }
            kept = found
        } catch {
            logger.warning("the account's kept freeze could not be read", metadata: ["error": "\(error)"])
            return
        }
        do {
            let config = try await invoker.invoke(Api.functions.help.GetAppConfig(hash: 0), options: InvokeOptions(isIdempotent: true))
            if let freeze = AccountFreeze(appConfig: config) {
                health.recordFreeze(freeze, seenFrozenSince: kept.since)
            } else {
                try await store.clearFreeze(account: account)
                logger.notice("Telegram no longer reports this account frozen (an appeal was accepted); its kept freeze is forgotten",
                              metadata: ["frozenSince": "\(Date(timeIntervalSince1970: kept.since.seconds).formatted(.iso8601))"])
            }
        } catch {
            logger.warning("whether the account is still frozen could not be asked; the kept freeze stands", metadata: ["error": "\(error)"])
        }
    }

    /// The account's mark in the store, when terminal: the cause a person recorded or a runtime met
    /// first (revoked from another device, duplicated), which says more than a start-up check that
    /// only finds the key logged out; `.unreadable` for a mark this version cannot read. nil when
    /// unmarked, or when the store cannot be read.
    public func terminalMark() async -> AccountStatus? {
        guard let mark = try? await store.guardedStatus(of: account, now: environment.clock.now()), mark.isTerminal else { return nil }
        return mark
    }

    /// Closes the client and releases the lease. Idempotent.
    public func stop() async {
        await halt(.requested)
    }

    /// Returns once the runtime stopped (by `stop()`, a lost lease or a terminal error), with why:
    /// its session closed and its lease released (or left to expire), not merely decided on.
    public func waitUntilStopped() async -> AccountRuntimeStop {
        // `state` says `.stopped` as soon as the stop is decided, while the session still closes.
        if let stopped = finishedStop { return stopped }
        return await withCheckedContinuation { stopWaiters.append($0) }
    }

    // MARK: - Internals

    /// `abandoned` when the store still shows it as the account's lease: held by this process (same
    /// holder) under the same token, so no runtime took the account since, here or elsewhere. The
    /// lease may change before the take (another process takes it over): the take then judges that
    /// holder as usual, since only this process's holder is counted dead.
    private func ownAbandonedLease(_ abandoned: Lease?) async throws -> Lease? {
        guard let abandoned, abandoned.account == account, abandoned.holder == environment.holder,
              let current = try await store.currentLease(account: account),
              current.holder == abandoned.holder, current.token == abandoned.token
        else { return nil }
        logger.info("the lease a previous runtime of this process gave up is still in its name: taking it over",
                    metadata: ["token": "\(abandoned.token)", "expires": "\(current.expiresAt)"])
        return abandoned
    }

    private func clientConfiguration(now: UnixTime) async throws(SessionManagerError) -> TelegramClientConfiguration {
        do {
            let identity = try await store.chooseIdentity(.thisHost(appVersion: configuration.appVersion, at: now), account: account)
            var configuration = base.with(identity: identity)
            if let ping = configuration.pingInterval {
                configuration.pingInterval = min(ping, self.configuration.pingIntervalWithinLease)
            }
            // No (re)connect once the lease may have run out: a process that wakes from a freeze
            // would otherwise reconnect for its calls in flight, with the key the new holder uses,
            // before its heartbeat learns that it lost the account.
            let expiry = leaseExpiry, clock = environment.clock
            configuration.connectionPermit = { expiry.holds(at: clock.now()) }
            if let proxy = try await store.proxy(account: account) {
                configuration.proxy = try proxy.clientProxy()
                appliedProxyLink = proxy.url
                logger.info("connecting through the account's proxy", metadata: ["proxy": "\(proxy)"])
            }
            return configuration
        } catch let error as SessionStoreError {
            throw SessionManagerError(.storageFailed(account: account, reason: "reading the identity and proxy: \(error) [\(error.code)]", failure: error.databaseFailure))
        } catch {
            throw SessionManagerError(.storageFailed(account: account, reason: "reading the identity and proxy: \(error)"))
        }
    }

    private func heartbeat() async {
        let clock = environment.clock
        let interval = configuration.beat
        // The last renewal's failure, for the stop when the lease runs out before a renewal is tried.
        var lastFailure: (any Error)?
        while case .running(var lease) = state {
            do { try await clock.sleep(for: interval) } catch { return }
            guard case .running = state else { return }
            do {
                // No longer than the lease has left: a store that blocks (a locked file waits out its
                // busy timeout, PostgreSQL its statement timeout) must not keep the connections up
                // past the moment another process may take the account.
                let current = lease, now = clock.now(), ttl = configuration.leaseTTL, store = store
                // Already run out when the beat comes (this process was frozen or suspended, or the
                // last renewals failed): no connection is made meanwhile (the permit says no), and
                // one short try tells a takeover (fenced: another process has the account) from
                // nobody having taken it (renewed under the same token: fencing makes that safe).
                let expired = current.isExpired(at: now)
                lease = try await withBound(seconds: expired ? Self.lateRenewalBound : max(current.expiresAt - now, 0.001), Self.renewalBound) {
                    try await store.renewLease(current, now: now, ttl: ttl)
                }
                if expired { logger.notice("the lease had run out before its renewal (a frozen or suspended process?); nobody took it: renewed") }
                leaseExpiry.set(lease.expiresAt)
                if case .running = state { state = .running(lease) }
                await followProxyChange(before: lease.expiresAt)
                await saveAgainIfNotSaved(before: lease.expiresAt)
            } catch is CancellationError {
                return
            } catch let bound as BoundExceeded {
                // An earlier renewal's failure says more than "no answer" (a locked file, say).
                await leaseRanOut(lastFailure ?? bound)
                return
            } catch let error as SessionStoreError {
                if case .fenced(_, _, let current) = error {
                    logger.error("lease taken over by another process: stopping this account's connections",
                                 metadata: ["current": "\(current.map { "\($0.holder) token \($0.token)" } ?? "none")"])
                    await halt(.leaseLost(current: current.map { "\($0.holder)" }))
                    return
                }
                lastFailure = error
                if await renewalFailed(error, lease: lease) { return }
            } catch {
                lastFailure = error
                if await renewalFailed(error, lease: lease) { return }
            }
        }
    }

    /// Tries again a session save the store refused (a full disk, a lock), at each renewal: before,
    /// only a later change of the session's state saved it, so freeing the disk left `/health` at
    /// `session_not_saved` (and the state unsaved) for as long as nothing changed. Bounded like the
    /// proxy read: the renewals must go on.
    private func saveAgainIfNotSaved(before expiry: UnixTime) async {
        guard case .running = state, let client, let health = stack?.health, health.snapshot.sessionNotSavedSince != nil else { return }
        do {
            try await withBound(seconds: max(0.001, min(Self.lateRenewalBound, expiry - environment.clock.now())), "saving the session again") {
                await client.saveAgain()
            }
        } catch {
            return
        }
        if health.snapshot.sessionNotSavedSince == nil { logger.notice("the session is saved again: the store takes its writes") }
    }

    /// Takes up a proxy a person set since the start (`tgsm session proxy`), without a restart: read
    /// at each renewal, which reaches the store anyway. A read that fails or stalls is left to the
    /// next beat (bounded: the renewals must go on).
    private func followProxyChange(before expiry: UnixTime) async {
        guard case .running = state, let client else { return }
        let store = store, account = account
        let stored: ProxySetting?
        do {
            stored = try await withBound(seconds: max(0.001, min(Self.lateRenewalBound, expiry - environment.clock.now())), "reading the proxy") {
                try await store.proxy(account: account)
            }
        } catch {
            return
        }
        guard stored?.url != appliedProxyLink, case .running = state else { return }
        appliedProxyLink = stored?.url
        let proxy: MTProtoProxy?
        do {
            proxy = try stored?.clientProxy()
        } catch {
            logger.error("the account's proxy was changed to a link that cannot be used; connections keep the previous way",
                         metadata: ["error": "\(error)"])
            return
        }
        await client.changeProxy(proxy)
        stack?.health.recordRouteChange()
        logger.notice(proxy == nil ? "the account's proxy was removed in the store: connections go directly from now on"
                          : "the account's proxy changed in the store: connections go through it from now on",
                      metadata: proxy.map { ["proxy": "\($0)"] } ?? [:])
        // One call through the new way now, so the health (and /health, and the alerts) says at once
        // whether it works, rather than at the next job or keep-alive. A change before it ended makes
        // its answer moot.
        guard let invoker = stack?.invoker, let health = stack?.health else { return }
        proxyProbe?.cancel()
        let timeout = configuration.validationTimeout, logger = logger, way = proxy == nil ? "directly" : "through its new proxy"
        let probe = Task {
            // Bounded like the start-up check: a call waits for a connection through the whole
            // reconnect budget (minutes through a proxy that never answers).
            do {
                try await withBound(seconds: timeout, "the check through the new way") {
                    _ = try await invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions(timeout: timeout, isIdempotent: true, mayRetry: false))
                }
                guard !Task.isCancelled else { return }
                logger.notice("the account answers \(way)")
            } catch is BoundExceeded {
                guard !Task.isCancelled else { return }
                // A failure the health must count: no call got through the new way in time.
                let reason = "no connection \(way) within \(Int(timeout)) s"
                health.recordFailure(SessionManagerError(.connectionFailed(account: account, dc: 0, attempts: 0, reason: reason)))
                logger.warning("the account does not answer \(way)", metadata: ["error": "\(reason)"])
            } catch {
                guard !Task.isCancelled else { return }
                logger.warning("the account does not answer \(way)", metadata: ["error": "\(error)"])
            }
        }
        // Not in `tasks`: one per change would pile up there over a long run; `halt` cancels it.
        proxyProbe = probe
    }

    /// A heartbeat that failed for another reason (a busy or failing disk): go on while the lease
    /// still holds, stop once it expired, because another process may take it over from then on.
    private func renewalFailed(_ error: any Error, lease: Lease) async -> Bool {
        if lease.isExpired(at: environment.clock.now()) {
            await leaseRanOut(error)
            return true
        }
        logger.warning("lease heartbeat failed; trying again", metadata: ["error": "\(error)"])
        return false
    }

    static let leaseExpiredMetric = "tgsm_lease_expired_total"

    private func leaseRanOut(_ error: any Error) async {
        logger.error("the lease could not be renewed before it expired: stopping", metadata: ["error": "\(error)"])
        // A store that stalls now and then shows as this rising, whatever the workers do next.
        Counter(label: Self.leaseExpiredMetric, dimensions: [("account", account.rawValue)]).increment()
        await halt(.leaseExpired(cause: Self.renewalCause(error)))
    }

    static let renewalBound = "renewing the lease"
    /// Seconds the one try at renewing a lease found run out may take.
    static let lateRenewalBound = 2.0

    /// The renewal's error in a line: a store error's own text, without the advice that follows it.
    static func renewalCause(_ error: any Error) -> String {
        if case .database(let operation, let reason, _)? = error as? SessionStoreError { return "\(operation): \(reason)" }
        if let bound = error as? BoundExceeded {
            return "the store did not answer within the \(String(format: "%.1f", bound.seconds)) s the lease had left"
        }
        return "\(error)"
    }

    private func halt(_ reason: AccountRuntimeStop) async {
        guard case .running(let lease) = state else {
            if case .idle = state {
                state = .stopped(reason)
                gate.close(Self.refusal(for: reason, account: account))
                resumeWaiters(reason)
            }
            return
        }
        state = .stopped(reason)
        if case .leaseExpired = reason { abandonedLease = lease }
        if case .terminal = reason {
            // The terminal guard refuses every call with the account's mark: keep it reachable.
        } else {
            gate.close(Self.refusal(for: reason, account: account))
        }
        let running = tasks
        tasks = []
        for task in running { task.cancel() }
        proxyProbe?.cancel()
        proxyProbe = nil
        let client = client, peers = stack?.peerCache, store = store, logger = logger
        // In a task of its own: halt may run on a task that is being cancelled (the heartbeat's),
        // and the release must still reach the store. Bounded: a store write that never ends (a
        // connection the server ended while this process was frozen) must not keep a shutdown
        // from ending; an unreleased lease expires by itself.
        do {
            try await withBound(seconds: Self.closeBound, "closing the account's session", cancellable: false) {
                await peers?.flush()
                await client?.close()
                // A lease lost or run out is not this process's to release.
                switch reason {
                case .leaseLost, .leaseExpired: return
                case .requested, .terminal: break
                }
                do {
                    try await store.releaseLease(lease)
                } catch {
                    logger.warning("the lease could not be released; it expires by itself", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            logger.warning("the session did not close in time; left to end on its own (the lease expires by itself)", metadata: ["error": "\(error)"])
        }
        logger.notice("account runtime stopped", metadata: ["reason": "\(reason)"])
        resumeWaiters(reason)
    }

    /// Seconds `stop()` waits for the peer cache's flush, the client's close and the lease's release.
    static let closeBound = 5.0

    private func resumeWaiters(_ reason: AccountRuntimeStop) {
        finishedStop = reason
        let waiters = stopWaiters
        stopWaiters = []
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    /// What the invoker of a runtime stopped for `reason` answers.
    public static func refusal(for reason: AccountRuntimeStop, account: AccountID) -> TelegramError {
        switch reason {
        case .leaseLost(let current):
            .middleware(SessionManagerError(.leaseHeld(account: account, holder: current ?? "another process", expires: nil)))
        case .leaseExpired(let cause):
            .middleware(SessionManagerError(.leaseExpired(account: account, cause: cause)))
        case .requested, .terminal:
            .closed
        }
    }
}

/// The lease's expiry as last taken or renewed, read by the client before each connection.
final class LeaseExpiry: Sendable {
    private let expiry = Mutex<UnixTime?>(nil)
    func set(_ time: UnixTime) { expiry.withLock { $0 = time } }
    func holds(at now: UnixTime) -> Bool { expiry.withLock { $0.map { now < $0 } ?? false } }
}

/// What the runtime's `invoker` forwards to.
final class RuntimeGate: Sendable {
    enum Slot: Sendable {
        case notStarted
        case open(any TelegramInvoking)
        case closed(TelegramError)
    }

    let account: AccountID
    private let slot = Mutex(Slot.notStarted)

    init(account: AccountID) { self.account = account }

    func open(_ invoker: any TelegramInvoking) { slot.withLock { $0 = .open(invoker) } }
    func close(_ error: TelegramError) { slot.withLock { $0 = .closed(error) } }
    var current: Slot { slot.withLock { $0 } }
}

struct RuntimeInvoker: TelegramInvoking {
    let gate: RuntimeGate

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        switch gate.current {
        case .open(let invoker): return try await invoker.invoke(request, options: options)
        case .closed(let error): throw error
        case .notStarted: throw .closed
        }
    }
}
