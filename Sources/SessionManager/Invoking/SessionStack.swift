import Logging
import MTProtoClient

/// The standard middleware stack of one account around its client, and the parts a worker, the
/// CLI or the dashboard need to reach (ledger, gate, breakers, health, the terminal guard).
///
/// Order, outermost first, and why:
/// 0. **RPC metrics**: counts and times each call as its caller sees it (retries and waits
///    included), by method and outcome (`RPCMetricsMiddleware`);
/// 1. **health**: sees every outcome the caller sees (refusals, terminal errors, the final result
///    after retries), so its state is what the caller experiences;
/// 2. **terminal guard**: a dead account is refused before anything else runs, and a terminal
///    error is turned into its error and marked once, after the layers below gave up;
/// 3. **retry**: outside everything that decides per attempt, so each repeat is again checked by
///    the breaker, waits out the ledger and takes a gate token;
/// 4. **circuit breaker**: an open breaker stops calls even when the ledger would let them go;
/// 5. **flood ledger**: refuses or waits out recorded waits before a token is spent, and records
///    the waits Telegram answers;
/// 6. **future auth tokens**: keeps the token each login's answer carries and adds the phone's
///    kept tokens to a code request (a match logs in without a code), before the guard sees it;
/// 7. **send-code guard**: refuses a login code request before its deadline (unless it offers the
///    phone's tokens, spent on it) and writes the next deadline before the request goes out;
/// 8. **rate gate**: so its tokens count only calls that really go to the network;
/// 9. **peer cache** (when given): innermost, it stores the users and chats of each answer that
///    came from the network, once each.
public struct SessionStack: Sendable {
    public struct Configuration: Sendable {
        public var ledger: FloodLedger.Policy
        public var sendCode: SendCodeGuard.Policy
        public var rateGate: RateGatePolicy
        public var breaker: CircuitBreaker.Policy
        public var retry: RetryPolicy
        public var health: AccountHealth.Policy

        public init(ledger: FloodLedger.Policy = .init(), sendCode: SendCodeGuard.Policy = .init(), rateGate: RateGatePolicy = .init(),
                    breaker: CircuitBreaker.Policy = .init(), retry: RetryPolicy = .init(), health: AccountHealth.Policy = .init()) {
            self.ledger = ledger
            self.sendCode = sendCode
            self.rateGate = rateGate
            self.breaker = breaker
            self.retry = retry
            self.health = health
        }
    }

    public let account: AccountID
    /// Invoke through this: the client wrapped in every middleware.
    public let invoker: any TelegramInvoking
    public let ledger: FloodLedger
    public let sendCodeGuard: SendCodeGuard
    public let rateGate: RateGate
    public let breakers: CircuitBreakerBoard
    public let health: AccountHealth
    public let terminalGuard: TerminalGuard
    /// The account's peer cache, when the stack was given one.
    public let peerCache: PeerCache?

    /// - Parameters:
    ///   - account: the account the stack serves.
    ///   - client: the invoker it wraps (the account's `TelegramClient`).
    ///   - ledgerStore: where flood waits are recorded and read (shared rate buckets too when it is
    ///     also a `RateBucketStore`).
    ///   - statuses: where terminal marks are written and read.
    ///   - storage: the client's session storage; given, the terminal guard drops keys the DC
    ///     rejected where that loses no login, and the validator reads it.
    ///   - peerCache: given, every answer's users and chats are remembered in its store.
    ///   - configuration: the middlewares' policies.
    ///   - clock: the middlewares' time (waits, buckets, breakers).
    ///   - random: the retry policy's jitter.
    ///   - logger: where the middlewares log (never a secret).
    public init(
        account: AccountID, client: any TelegramInvoking, ledgerStore: any FloodLedgerStore, statuses: any AccountStatusStore,
        storage: (any SessionStorage)? = nil, peerCache: PeerCache? = nil, configuration: Configuration = Configuration(),
        clock: any TelegramClock, random: any RandomSource, logger: Logger
    ) {
        self.account = account
        ledger = FloodLedger(account: account, store: ledgerStore, policy: configuration.ledger, clock: clock, logger: logger)
        sendCodeGuard = SendCodeGuard(account: account, store: ledgerStore, policy: configuration.sendCode, clock: clock, logger: logger)
        // A ledger store that also keeps rate buckets (PostgreSQL) makes the proactive limits cluster-wide.
        rateGate = RateGate(account: account, policy: configuration.rateGate, clock: clock, logger: logger,
                            shared: ledgerStore as? any RateBucketStore)
        breakers = CircuitBreakerBoard(account: account, policy: configuration.breaker, clock: clock, logger: logger)
        health = AccountHealth(account: account, policy: configuration.health, clock: clock, logger: logger)
        terminalGuard = TerminalGuard(account: account, statuses: statuses, keyReset: storage.map(AuthKeyReset.init(storage:)), clock: clock, logger: logger)
        self.peerCache = peerCache
        let guarded = [RPCMetricsMiddleware(account: account, clock: clock), HealthMiddleware(health), FloodVerdictMiddleware(ledger)]
            as [any InvocationMiddleware]
        let rest = [
            RetryMiddleware(account: account, policy: configuration.retry, clock: clock, random: random, logger: logger),
            CircuitBreakerMiddleware(breakers),
            FloodLedgerMiddleware(ledger),
            FutureAuthTokenMiddleware(account: account, store: ledgerStore, clock: clock, logger: logger),
            SendCodeGuardMiddleware(sendCodeGuard),
            RateGateMiddleware(rateGate),
        ] as [any InvocationMiddleware] + (peerCache.map { [PeerCacheMiddleware($0)] } ?? [])
        invoker = client.wrapped(in: guarded + [TerminalGuardMiddleware(terminalGuard)] + rest)
        pastTheMark = client.wrapped(in: guarded + rest)
    }

    /// The stack without its terminal guard: for a person asking whether a mark is stale (`tgsm auth`
    /// probing a key marked dead), which the guard would refuse. Flood waits, the rate gate and the
    /// breaker still apply, so the question never goes out under a known wait and a wait it earns
    /// is kept. A terminal answer here marks nothing: the caller decides what it proves.
    public let pastTheMark: any TelegramInvoking
}
