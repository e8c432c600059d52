import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOPosix
import Synchronization
import TL
import TLSchema

/// A Telegram client: connects to the account's home DC (creating or reusing its auth key),
/// invokes any API method there or on another DC, and follows `*_MIGRATE_X` by moving the home DC
/// (before login) or by re-invoking with an exported authorization (after).
///
/// It is the innermost `TelegramInvoking`: wrap it to add rate limits, flood-wait bookkeeping or
/// retries. Time and randomness are injected; the session is loaded from and saved to a
/// `SessionStorage`. Logs never contain keys, phone numbers, login codes or passwords.
public actor TelegramClient: TelegramInvoking {
    /// The configuration the client was made with; its `proxy` is the first one (`proxy` says the current).
    public nonisolated let configuration: TelegramClientConfiguration
    /// The proxy connections go through now (`changeProxy`).
    public private(set) var proxy: MTProtoProxy?
    /// Runs a task on the event loop of this client's connections. Optional: a latency-critical
    /// caller that runs under `withTaskExecutorPreference(client.taskExecutor)` is resumed on the
    /// thread that read its answer, saving two thread switches per call (about half of a loopback
    /// round trip, see docs/CLIENT.md); its own work then shares that loop, so keep it short.
    public nonisolated var taskExecutor: any TaskExecutor { loopExecutor }
    private nonisolated let loopExecutor: EventLoopTaskExecutor
    private let storage: any SessionStorage
    let clock: any TelegramClock
    private var entropy: any EntropySource
    private let logger: Logger

    // `route` follows these three and `connections` by their observers, so no change can miss it.
    private var state: SessionState { didSet { syncRoute() } }
    private var isLoaded = false { didSet { syncRoute() } }
    private var isClosed = false { didSet { syncRoute() } }
    private var dcTable: DCTable
    private var connections: [Int: DCConnection] = [:] { didSet { syncRoute() } }
    /// What `invoke`'s common case reads without entering the actor: whether the client is loaded
    /// and open, the home DC, the open connections. Set from the actor's own state whenever that
    /// changes (`syncRoute`, from the properties' observers). Entering the actor and leaving it again cost every call two hops
    /// between executors, each a possible thread wake-up.
    private nonisolated let route: Mutex<Route>

    private struct Route {
        var isOpen = false
        var homeDC: Int
        var connections: [Int: DCConnection] = [:]
    }
    /// A save is writing (`save()`): the others wait for their turn.
    private var isSaving = false
    private var saveWaiters: [CheckedContinuation<Void, Never>] = []
    private var authorizationImports: [Int: Task<Void, Never>] = [:]
    private var importFailures: [Int: TelegramError] = [:]
    /// Tracks the update sequences and hands updates out (Updates/).
    let updatesEngine: UpdatesEngine
    /// Told when the home DC's open link drops (`onHomeLinkLost`).
    nonisolated let homeLinkLoss = LinkLossSink()
    var isUpdatesStarted = false

    public init(
        configuration: TelegramClientConfiguration,
        storage: any SessionStorage = InMemorySessionStorage(),
        clock: any TelegramClock = SystemClock(),
        entropy: any EntropySource = SystemEntropy(),
        logger: Logger = Logger(label: "tgsm.client")
    ) {
        self.configuration = configuration
        self.storage = storage
        self.clock = clock
        self.entropy = entropy
        self.logger = logger
        self.state = SessionState(homeDC: configuration.initialDC)
        self.route = Mutex(Route(homeDC: configuration.initialDC))
        self.dcTable = configuration.dcTable
        self.proxy = configuration.proxy
        self.updatesEngine = UpdatesEngine(logger: logger)
        self.loopExecutor = EventLoopTaskExecutor(eventLoop: MultiThreadedEventLoopGroup.singleton.next())
    }

    /// The DC the account lives on (or the one login started from).
    public var homeDC: Int { state.homeDC }
    /// Whether the home DC's key is logged in, as far as this client knows.
    public var isAuthorized: Bool { state.isAuthorized }
    /// The logged-in user's id, once a login or a stored session told it.
    public var userID: Int64? { state.userID }
    /// Set when the answer to this client's last login asked the account to set a 2FA password
    /// (auth.authorization.setup_password_required): should this session be lost, a new login by
    /// SMS is possible only this many days later unless a password is set. nil otherwise.
    public private(set) var reloginDaysWithoutPassword: Int32?
    /// The DC addresses in use (the static table, updated by help.getConfig).
    public var knownDCs: DCTable { dcTable }

    /// Loads the stored session, connects to the home DC (running the key exchange if it has no
    /// key yet), sends invokeWithLayer + initConnection, and reads help.getConfig's DC addresses.
    public func connect() async throws(TelegramError) {
        try await loadIfNeeded()
        if configuration.fetchesConfigOnConnect {
            let config = try await invoke(Api.functions.help.GetConfig())
            dcTable.update(with: config)
            logger.debug("DC table updated from help.getConfig", metadata: ["dcs": "\(dcTable.dcIDs)"])
        } else {
            _ = try await invoke(Api.functions.help.GetNearestDc())
        }
    }

    public nonisolated func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        // The common case, without the actor: loaded, open, the target's connection made. What
        // needs the actor (loading, a new connection, an error to act on, a login) goes there.
        let open = route.withLock { route -> (DCConnection, Int)? in
            guard route.isOpen else { return nil }
            let target = options.dc ?? route.homeDC
            return route.connections[target].map { ($0, target) }
        }
        guard let (connection, target) = open else { return try await invokeOnActor(request, options: options, failure: nil) }
        let result: Request.Result
        do {
            result = try await connection.invoke(request, timeout: options.timeout ?? configuration.defaultTimeout, floodScope: options.floodScope)
        } catch {
            return try await invokeOnActor(request, options: options, failure: (target, error))
        }
        updatesEngine.noteResult(result)
        if LoginAnswer.mayCarryAuthorization(Request.Result.self) { await noteAuthorization(in: result, dc: target) }
        return result
    }

    /// `invoke` on the actor: loads the session, opens connections, follows migrations and notes
    /// authorizations. `failure`: the error the call already met on that DC, to act on first.
    private func invokeOnActor<Request: TLFunction>(
        _ request: Request, options: InvokeOptions, failure: (dc: Int, error: TelegramError)?
    ) async throws(TelegramError) -> Request.Result {
        try await loadIfNeeded()
        var target = failure?.dc ?? options.dc ?? state.homeDC
        var visited = [target]
        if let failure { target = try await next(after: failure.error, at: target, for: Request.self, options: options, visited: &visited) }
        while true {
            do throws(TelegramError) {
                let connection = try connection(for: target)
                let result = try await connection.invoke(request, timeout: options.timeout ?? configuration.defaultTimeout, floodScope: options.floodScope)
                updatesEngine.noteResult(result)
                await noteAuthorization(in: result, dc: target)
                return result
            } catch {
                target = try await next(after: error, at: target, for: Request.self, options: options, visited: &visited)
            }
        }
    }

    /// What a call that failed on `target` does next: notes a lost authorization, then rethrows,
    /// or returns the DC to try again on (a migration, the home DC moved).
    private func next<Request: TLFunction>(
        after error: TelegramError, at target: Int, for _: Request.Type, options: InvokeOptions, visited: inout [Int]
    ) async throws(TelegramError) -> Int {
        guard case .rpc(let rpc, _) = error else { throw error }
        if let loss = rpc.authorizationLoss, target == state.homeDC, state.isAuthorized {
            logger.warning("authorization lost; log in again", metadata: ["reason": "\(loss.rawValue)"])
            state.dcs[target]?.isAuthorized = false
            await save()
        }
        if rpc.message == "AUTH_KEY_PERM_EMPTY", configuration.pfs != nil, visited.count(where: { $0 == target }) < 2 {
            // The temporary key lost its binding; the connection binds a new one, and the call,
            // which did not run, goes again once.
            logger.notice("temporary key no longer bound; binding a new one", metadata: ["dc": "\(target)", "method": "\(Request.tlName)"])
            visited.append(target)
            return target
        }
        guard options.followsMigrations else { throw error }
        let next: Int
        switch MigrationPolicy.decide(rpc, isAuthorized: state.isAuthorized, currentDC: target, homeDC: state.homeDC) {
        case .surface:
            throw error
        case .switchHome(let dc):
            guard visited.count <= configuration.maximumMigrations else { throw .migrationLoop(method: Request.tlName, dcs: visited + [dc]) }
            logger.info("home DC moved", metadata: ["from": "\(state.homeDC)", "to": "\(dc)", "reason": "\(rpc.name)"])
            state.homeDC = dc
            await save()
            next = dc
        case .reinvoke(let dc, let importAuthorization):
            guard visited.count <= configuration.maximumMigrations else { throw .migrationLoop(method: Request.tlName, dcs: visited + [dc]) }
            logger.debug("re-invoking on another DC", metadata: ["method": "\(Request.tlName)", "dc": "\(dc)", "reason": "\(rpc.name)"])
            if importAuthorization { try await ensureAuthorization(on: dc) }
            next = dc
        }
        visited.append(next)
        return next
    }

    /// Returns once every change to the session made so far (a new key, salt or time offset) is
    /// written to the storage. Saves run off the connections' loop, one at a time and in order, so
    /// a call can return before the save its key exchange asked for: read the storage after this,
    /// not right after the call (a tool copying the session, a test).
    public func sessionSaved() async {
        for connection in connections.values { await connection.savesWritten() }
    }

    /// Closes every connection; pending calls fail with `.closed`, later calls too.
    public func close() async {
        guard !isClosed else { return }
        // The update state of what was already handed out is saved before the client stops saving.
        await updatesEngine.close()
        guard !isClosed else { return }
        isClosed = true
        let all = connections.values
        connections.removeAll()
        for connection in all { await connection.close() }
    }

    /// Connections go through `proxy` from now on (nil: directly), without a restart: each open link
    /// closes and its next one goes the new way at once, and calls in flight continue on it as after
    /// a lost connection (resent in the same session). A connection waiting to retry after a failure
    /// (the old proxy refused or was down) tries the new way at once.
    public func changeProxy(_ proxy: MTProtoProxy?) {
        guard proxy != self.proxy else { return }
        self.proxy = proxy
        for (dc, connection) in connections { connection.reroute(currentConfiguration.route(toDC: dc)) }
    }

    /// `configuration` with the current proxy: what each new connection is made with.
    private var currentConfiguration: TelegramClientConfiguration {
        var current = configuration
        current.proxy = proxy
        return current
    }

    /// What each DC connection did so far (connections, key exchanges, requests in doubt...).
    public func statistics() async -> [Int: ConnectionStatistics] {
        var result: [Int: ConnectionStatistics] = [:]
        for (dc, connection) in connections { result[dc] = await connection.statistics }
        return result
    }

    // MARK: - Authorization across DCs

    /// Makes `dc` accept this account: auth.exportAuthorization on the home DC, auth.importAuthorization on `dc`.
    public func ensureAuthorization(on dc: Int) async throws(TelegramError) {
        if dc == state.homeDC || state.dcs[dc]?.isAuthorized == true { return }
        if let running = authorizationImports[dc] {
            await running.value
        } else {
            let task = Task { await self.importAuthorization(on: dc) }
            authorizationImports[dc] = task
            await task.value
            authorizationImports[dc] = nil
        }
        if let failure = importFailures.removeValue(forKey: dc) { throw failure }
    }

    private func importAuthorization(on dc: Int) async {
        do throws(TelegramError) {
            let exported = try await invoke(Api.functions.auth.ExportAuthorization(dcId: Int32(dc)), options: InvokeOptions(dc: state.homeDC))
            guard case .exportedAuthorization(let value) = exported else { return }
            let imported = try await connection(for: dc).invoke(
                Api.functions.auth.ImportAuthorization(id: value.id, bytes: value.bytes), timeout: configuration.defaultTimeout)
            if case .authorization = imported {
                state.dcs[dc, default: DCSessionState()].isAuthorized = true
                await save()
                logger.debug("authorization imported", metadata: ["dc": "\(dc)"])
            } else {
                importFailures[dc] = .rpc(RPCError(code: 401, message: "AUTH_KEY_UNREGISTERED"), method: "auth.importAuthorization")
            }
        } catch {
            importFailures[dc] = error
        }
    }

    private func noteAuthorization<Result>(in result: Result, dc: Int) async {
        guard LoginAnswer.mayCarryAuthorization(Result.self) else { return }
        let authorization = LoginAnswer.authorization(in: result)
        guard case .authorization(let value) = authorization else { return }
        reloginDaysWithoutPassword = value.setupPasswordRequired ? value.otherwiseReloginDays ?? 0 : nil
        if let days = reloginDaysWithoutPassword {
            logger.info("Telegram asks this account to set a 2FA password: without one, a new login by SMS is possible only \(days) days after this session is lost")
        }
        state.dcs[dc, default: DCSessionState()].isAuthorized = true
        if dc != state.homeDC {
            // A login completed on another DC (e.g. QR login's loginTokenMigrateTo): that is home now.
            state.homeDC = dc
        }
        switch value.user {
        case .user(let user):
            state.userID = user.id
            state.isBot = user.bot
        case .userEmpty(let empty):
            state.userID = empty.id
        }
        logger.info("logged in", metadata: ["dc": "\(dc)"])
        await save()
    }

    /// Records who the logged-in key belongs to, where the session did not say (one imported
    /// from a Telethon string session carries no user id): status pages, exports to formats that
    /// need it (Pyrogram's) and the next start read it. Never changes a known user id.
    public func noteSelf(userID: Int64, isBot: Bool) async {
        guard state.userID == nil else { return }
        state.userID = userID
        state.isBot = isBot
        await save()
    }

    // MARK: - Connections and storage

    private func connection(for dc: Int) throws(TelegramError) -> DCConnection {
        guard !isClosed else { throw .closed }
        if let existing = connections[dc] { return existing }
        guard let address = dcTable.address(for: dc) else { throw .unknownDC(dc) }
        // Updates come from the home DC's connection; other DCs' session events say nothing about them.
        let engine = updatesEngine
        let isHome = dc == state.homeDC
        var connectionEntropy = entropy
        // Each connection gets its own stream, so deterministic test sources do not repeat ids across DCs.
        let seed = entropy.bytes(8)
        connectionEntropy = SeededEntropy(base: connectionEntropy, salt: seed)
        let connection = DCConnection(
            dcID: dc, address: address, state: state.dcs[dc] ?? DCSessionState(), configuration: currentConfiguration,
            clock: clock, entropy: connectionEntropy, logger: logger, eventLoop: loopExecutor.eventLoop,
            persist: { [weak self] update in await self?.sessionUpdated(update, dc: dc) },
            events: { [homeLinkLoss] event in
                guard isHome else { return }
                engine.submit(.server(event))
                if case .linkLost = event { homeLinkLoss.deliver() }
            })
        connections[dc] = connection
        return connection
    }

    /// A connection's `.persist`: a new key (not bound to the account yet), or a salt or time
    /// offset that changed under the known key.
    private func sessionUpdated(_ update: DCSessionUpdate, dc: Int) async {
        if update.isNewKey {
            state.dcs[dc] = DCSessionState(authKey: update.authKey, serverSalt: update.serverSalt, timeOffset: update.timeOffset)
        } else if let change = update.temporaryKey {
            guard state.dcs[dc]?.authKey != nil else { return }
            switch change {
            case .bound(let key):
                // From now on the salt and offset kept are those of the temporary key's session.
                state.dcs[dc]?.temporaryKey = key
                state.dcs[dc]?.serverSalt = update.serverSalt
                state.dcs[dc]?.timeOffset = update.timeOffset
            case .dropped:
                state.dcs[dc]?.temporaryKey = nil
            }
            // Future salts belong to the key that carried the traffic: a new one asks again.
            state.dcs[dc]?.futureSalts = []
        } else {
            guard let known = state.dcs[dc], known.authKey?.id == update.authKey.id || known.temporaryKey?.key.id == update.authKey.id else { return }
            state.dcs[dc]?.serverSalt = update.serverSalt
            state.dcs[dc]?.timeOffset = update.timeOffset
            if let salts = update.futureSalts { state.dcs[dc]?.futureSalts = salts }
        }
        await save()
    }

    func loadIfNeeded() async throws(TelegramError) {
        guard !isLoaded else { return }
        guard !isClosed else { throw .closed }
        do {
            if let stored = try await storage.load() { state = stored }
        } catch {
            throw .storage(reason: "\(error)", cause: error)
        }
        isLoaded = true
    }

    private func syncRoute() {
        let isOpen = isLoaded && !isClosed
        let homeDC = state.homeDC
        let connections = self.connections
        route.withLock { route in
            route.isOpen = isOpen
            route.homeDC = homeDC
            route.connections = connections
        }
    }

    /// The stored update state (nil until updates were started once).
    var storedUpdatesState: UpdatesState? { state.updates }

    func saveUpdatesState(_ updates: UpdatesState) async {
        guard !isClosed, state.updates != updates else { return }
        state.updates = updates
        await save()
    }

    /// Writes the session state again, as it is now: after a save the storage refused (a full disk
    /// since freed), nothing else may change the state for hours, and until a save gets through a
    /// restart would lose what changed.
    public func saveAgain() async {
        guard isLoaded, !isClosed else { return }
        await save()
    }

    /// Saves run one after another, each writing the state as it is when its turn comes. Called
    /// from different tasks (a connection's new key, an imported authorization), two writes of
    /// states captured at their calls could reach the storage newest first, and the older state
    /// would stay stored (seen: a DC's imported authorization lost under load).
    /// Uncontended, a save writes at once (no task between: the common case keeps its latency).
    private func save() async {
        while isSaving {
            await withCheckedContinuation { saveWaiters.append($0) }
        }
        isSaving = true
        await writeState()
        isSaving = false
        // Each waiter looks again; one gets the turn and writes the state as it is by then.
        let waiting = saveWaiters
        saveWaiters = []
        for waiter in waiting { waiter.resume() }
    }

    private func writeState() async {
        do {
            try await storage.save(state)
        } catch {
            logger.error("session storage failed to save", metadata: ["error": "\(error)"])
        }
    }
}

/// Mixes a per-connection salt into another entropy source's output, so copies of one
/// deterministic source give different streams; the system CSPRNG is unaffected in quality.
struct SeededEntropy: EntropySource {
    var base: any EntropySource
    let salt: [UInt8]
    var counter: UInt64 = 0

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        base.fill(buffer)
        guard !salt.isEmpty else { return }
        for index in 0..<buffer.count {
            buffer[index] ^= salt[Int((counter &+ UInt64(index)) % UInt64(salt.count))]
        }
        counter &+= UInt64(buffer.count)
    }
}
