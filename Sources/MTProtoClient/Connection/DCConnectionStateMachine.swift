import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore

/// What a DC connection does, as a value: every input (`invoke`, `cancel`, `connected`,
/// `received`, `disconnected`, `timerFired`, `close`) takes `now` and returns the `Action`s an
/// executor performs (connect, write, close the channel, wake me at, complete a call, persist,
/// deliver an update). It owns the key exchange and the encrypted session machines, the calls in
/// flight, their timeouts and in-doubt follow-ups, reconnect backoff, pings and the session's
/// housekeeping, so all of that is tested without sockets or sleeps (`DCConnection` only
/// executes). In the style of postgres-nio's `ConnectionStateMachine`.
struct DCConnectionStateMachine {
    struct Configuration: Sendable {
        var dcID: Int
        var handshake: ClientHandshake.Configuration
        var handshakeTimeout: Double
        /// Seconds a connect (TCP and a proxy's handshake) may take before the attempt is given up.
        var connectTimeout: Double = 10
        var reconnect: ReconnectPolicy
        var session = SessionConfiguration()
        var pingInterval: Double?
        var inDoubt = InDoubtPolicy()
        var resendPolicy = ResendPolicy.readsOnly
        /// Bytes put before the first request of a session: invokeWithLayer + initConnection up to
        /// their `query` field, which is last in both (so prefix + request is the wrapped call).
        var firstCallPrefix: [UInt8]
        /// Traffic on temporary keys bound to the permanent one (nil: on the permanent key).
        var pfs: PFSConfiguration? = nil
        /// How often the session's books are pruned while connected.
        var housekeepingInterval: Double = 10
        /// When future salts are asked for (at housekeeping); nil never.
        var futureSalts: FutureSaltsPolicy? = FutureSaltsPolicy()
        /// Calls made in one turn of the loop leave together, but once this many wait they leave
        /// at once: the DC starts on them while the client still makes the rest. One container
        /// per turn kept client and DC in lockstep (each idle while the other worked on 64 calls);
        /// two halves overlap them: up to 1.7x the round trips per second at 64 in flight on 2 cores
        /// (docs/BENCHMARKS.md).
        var sendBatchLimit = 32
    }

    enum State {
        var isExchangingKey: Bool {
            if case .exchangingKey = self { true } else { false }
        }

        /// When a wake-up is due for the state itself (the end of a back-off or of a key exchange).
        var ownDeadline: UnixTime? {
            switch self {
            case .backingOff(let until, _, _): until
            case .exchangingKey(_, _, let deadline): deadline
            default: nil
            }
        }

        /// Moves the session out of a value about to be dropped.
        consuming func intoReadySession() -> ClientSession? {
            switch consume self {
            case .ready(let session): session
            default: nil
            }
        }

        /// No link and no calls waiting; the session (when the DC's key is known) is kept.
        case idle(ClientSession?)
        /// A transport connection is being opened; `attempt` counts from 1 since the last good link.
        case connecting(ClientSession?, attempt: Int)
        /// Connected without a key: the key exchange runs until `deadline`.
        case exchangingKey(ClientHandshake, attempt: Int, deadline: UnixTime)
        /// Connected with an encrypted session.
        case ready(ClientSession)
        /// Waiting before the next connection attempt.
        case backingOff(until: UnixTime, session: ClientSession?, attempt: Int)
        /// The last attempt failed with this error (every waiting call got it); the next call retries.
        case failed(TelegramError, session: ClientSession?)
        case closed
        /// Transient, while a state's session is mutated in place (avoids copying it).
        case modifying
    }

    enum Action {
        /// Open a transport connection to the DC, then report `connected` or `disconnected`.
        case connect
        /// Write this packet to the open connection.
        case write([UInt8])
        /// Close the connection; `disconnected` follows.
        case closeChannel
        /// Call `timerFired` at this time (replaces an earlier request).
        case wake(at: UnixTime)
        /// Call `flushQueued` once the work already queued on the loop is done (before it waits
        /// for the socket again): the calls made in one turn leave together, in one container.
        case flushSoon
        /// Hand what was written so far to the socket now, not at the end of the loop's turn.
        case flushNow
        /// Resume the call with its serialized result or its error.
        case complete(CallToken, Result<[UInt8], TelegramError>)
        /// Save the DC's session state (a new key, a salt or time-offset change).
        case persist(DCSessionUpdate)
        /// Something the server did on its own, for the updates machinery.
        case deliver(ServerEvent)
        /// A server message was ignored (no secret in the error: ids and times): for the debug log.
        case ignored(SessionError)
    }

    let configuration: Configuration
    private(set) var state: State
    private(set) var statistics = ConnectionStatistics()
    private var calls = RequestTracker<[UInt8]>()
    private var entropy: any EntropySource
    private var needsInitConnection = true
    private var lastTransportError: TransportErrorCode?
    /// Why the current link must end in failure instead of a reconnect (a key exchange that failed).
    private var handshakeFailure: String?
    private var lastReason = "no attempt"
    /// When the open link came up and on which attempt: a link that dies before
    /// `ReconnectPolicy.stableAfter` counts as a failed attempt, so a DC that accepts and then
    /// kills every connection is not reconnected to forever.
    private var linkUp: (since: UnixTime, attempt: Int)?
    private var persistedSalt: Int64 = 0
    private var persistedOffset: Double = 0
    private var nextPingAt: UnixTime?
    private var nextPingID: Int64 = 1
    private var nextHousekeepingAt: UnixTime?
    private var scheduledWake: UnixTime?
    /// PFS: the permanent key (never on the wire; it signs the binding), the bound temporary key
    /// the session runs on, the binding in flight, and whether a renewal is waiting for the calls
    /// in flight to end.
    private var permanentKey: AuthKey?
    private var temporaryKey: BoundTemporaryKey?
    private var binding: (request: RequestID, key: BoundTemporaryKey)?
    private var renewing = false
    private var renewalClosing = false
    /// A binding was refused: the link is closing and its session goes with it.
    private var discardingSession = false
    /// Temporary keys the DC forgot (-404) since the last successful binding: a second one in a row
    /// means something else is wrong, and the calls fail instead of looping.
    private var temporaryKeyLosses = 0
    /// Flood scopes (`RequestTracker.Entry.floodScope`) the DC answered FLOOD_WAIT for, and when
    /// each wait ends: until then no call of the scope goes out, neither new nor sent again.
    private var floodHolds: [String: UnixTime] = [:]
    /// Calls are queued in the session and a `.flushSoon` is out.
    private var flushRequested = false
    /// When get_future_salts last went out (an unanswered one is repeated after `retryAfter`).
    private var futureSaltsRequestedAt: UnixTime?
    /// The link is closing because the route (the proxy) changed: its end is no failed attempt.
    private var rerouting = false
    /// When the connect under way (`.connecting`) is given up: a proxy that takes the connection and
    /// never answers its handshake held calls forever.
    private var connectDeadline: UnixTime?
    /// The connect under way was given up at its deadline: its end says so.
    private var connectTimedOut = false

    init(configuration: Configuration, state: DCSessionState, entropy: any EntropySource) {
        self.configuration = configuration
        self.entropy = entropy
        self.state = .idle(nil)
        permanentKey = state.authKey
        if configuration.pfs != nil {
            // Only a temporary key bound to this permanent key is reused; `connected` checks its age.
            if state.authKey != nil, let temporary = state.temporaryKey {
                temporaryKey = temporary
                self.state = .idle(makeSession(key: temporary.key, salt: state.serverSalt, timeOffset: state.timeOffset, futureSalts: state.futureSalts))
                persistedSalt = state.serverSalt
                persistedOffset = state.timeOffset
            }
        } else if let key = state.authKey {
            self.state = .idle(makeSession(key: key, salt: state.serverSalt, timeOffset: state.timeOffset, futureSalts: state.futureSalts))
            persistedSalt = state.serverSalt
            persistedOffset = state.timeOffset
        }
    }

    /// The exchange to run on a link without a usable session: the permanent key first, then (PFS)
    /// a temporary one.
    private func handshakeConfiguration() -> ClientHandshake.Configuration {
        var handshake = configuration.handshake
        if let pfs = configuration.pfs, permanentKey != nil { handshake.keyType = .temporary(expiresIn: pfs.expiresIn) }
        return handshake
    }

    /// PFS: whether the session's temporary key may still carry calls (it is renewed
    /// `renewBefore` ahead of its expiry).
    private func temporaryKeyUsable(now: UnixTime) -> Bool {
        guard let pfs = configuration.pfs, let temporaryKey else { return false }
        return now.seconds < temporaryKey.expiresAt.seconds - pfs.renewBefore
    }

    /// A new session on `key`; `futureSalts` only for the key they were fetched for (a new key
    /// starts without: its salts are asked for at the next housekeeping).
    private mutating func makeSession(key: AuthKey, salt: Int64, timeOffset: Double, futureSalts: [FutureSalt] = []) -> ClientSession {
        var sessionID: Int64 = 0
        while sessionID == 0 { sessionID = entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } }
        return ClientSession(
            authKey: key, sessionID: sessionID, serverSalt: salt, timeOffset: timeOffset, futureSalts: futureSalts, entropy: entropy,
            configuration: configuration.session)
    }

    mutating func makeToken() -> CallToken { calls.makeToken() }

    /// The calls still waiting, for tests and statistics.
    var pendingCalls: Int { calls.count }

    /// The session's books, for leak tests.
    var sessionBookkeeping: ClientSession.Bookkeeping? { session?.bookkeeping }

    var session: ClientSession? {
        switch state {
        case .idle(let session), .connecting(let session, _), .backingOff(_, let session, _), .failed(_, let session): session
        case .ready(let session): session
        case .exchangingKey, .closed, .modifying: nil
        }
    }

    // MARK: - Inputs

    mutating func invoke(_ token: CallToken, method: String, floodScope: String? = nil, body: [UInt8], timeout: Double?, now: UnixTime) -> [Action] {
        if isClosed() { return [.complete(token, .failure(.closed))] }
        if !floodHolds.isEmpty, let until = floodHolds[floodScope ?? method], until > now {
            // The DC would refuse it, and calls during a wait may lengthen it.
            statistics.floodWaitsHeld += 1
            return [.complete(token, .failure(.floodWaitHeld(method: method, seconds: Self.secondsLeft(until, now: now), mayHaveRun: false)))]
        }
        calls.register(token, method: method, floodScope: floodScope, timeout: timeout, payload: body)
        var actions: [Action] = []
        // A clock that moved past the renewal point while nothing woke the connection.
        checkRenewal(now: now, into: &actions)
        // Outside the switch below: a switch on `state` keeps its own copy of it while a case
        // runs, so the session moved out inside a case would be shared and copied on each write.
        if binding == nil, !renewing, !discardingSession, var session = takeReadySession() {
            // Queued, not sent: the other calls of this turn of the loop join it (64 callers
            // resumed by one read of answers make one packet, not 64 encryptions and frames).
            submit(token, body: body, into: &session, now: now)
            if session.queuedCount >= configuration.sendBatchLimit {
                // Enough for the DC to start on (see `Configuration.sendBatchLimit`).
                let sessionActions = session.flush(now: now)
                state = .ready(consume session)
                handle(sessionActions, now: now, into: &actions)
                actions.append(.flushNow)
            } else {
                state = .ready(consume session)
                if !flushRequested {
                    flushRequested = true
                    actions.append(.flushSoon)
                }
            }
            scheduleWake(now: now, into: &actions)
            return actions
        }
        switch state {
        case .ready:
            break  // parked until the new temporary key is bound
        case .idle(let session), .failed(_, let session):
            startConnecting(session, attempt: 1, now: now, into: &actions)
        case .connecting, .exchangingKey, .backingOff, .closed, .modifying:
            break  // parked until the session is ready
        }
        scheduleWake(now: now, into: &actions)
        return actions
    }

    /// Sends what `invoke` queued (see `Action.flushSoon`); nothing when a packet sent meanwhile took it.
    mutating func flushQueued(now: UnixTime) -> [Action] {
        flushRequested = false
        guard var session = takeReadySession() else { return [] }
        let sessionActions = session.flush(now: now)
        state = .ready(consume session)
        var actions: [Action] = []
        handle(sessionActions, now: now, into: &actions)
        scheduleWake(now: now, into: &actions)
        return actions
    }

    mutating func cancel(_ token: CallToken, now: UnixTime) -> [Action] {
        guard let entry = calls.remove(token) else { return [] }
        statistics.cancellations += 1
        var actions: [Action] = [.complete(token, .failure(.cancelled(method: entry.method, delivery: entry.delivery)))]
        if let request = entry.requestID { forget(request, now: now, into: &actions) }
        return actions
    }

    mutating func connected(now: UnixTime) -> [Action] {
        guard case .connecting(let stored, let attempt) = state else { return [.closeChannel] }
        connectDeadline = nil
        statistics.connections += 1
        linkUp = (now, attempt)
        lastTransportError = nil
        handshakeFailure = nil
        var actions: [Action] = []
        var session = stored
        if configuration.pfs != nil, session != nil, !temporaryKeyUsable(now: now) {
            // A stored or current temporary key too close to its expiry: a new one is made now.
            session = nil
            temporaryKey = nil
            abandonRequestsInFlight(into: &actions)
        }
        if let session {
            state = .ready(consume session)
            becameReady(now: now, into: &actions)
        } else {
            var handshake = ClientHandshake(configuration: handshakeConfiguration(), entropy: entropy)
            let first = handshake.start(now: now)
            state = .exchangingKey(handshake, attempt: attempt, deadline: now + configuration.handshakeTimeout)
            actions.append(.write(first))
        }
        scheduleWake(now: now, into: &actions)
        return actions
    }

    mutating func received(_ frame: TransportFrame, now: UnixTime) -> [Action] {
        let packet: [UInt8]
        switch frame {
        case .packet(let buffer), .packetRequestingQuickAck(let buffer):
            packet = Array(buffer.readableBytesView)
        case .transportError(let code):
            lastTransportError = code
            statistics.transportErrors += 1
            if case .exchangingKey = state { handshakeFailure = "the server answered with transport error \(code.rawValue)" }
            return [.closeChannel]
        case .quickAck:
            return []
        }
        // Before the switch: mutating `self` inside it would keep the switched-on copy of the
        // session alive, and every write to the session's tables would copy them (COW).
        if !floodHolds.isEmpty, case .ready = state { releaseExpiredHolds(now: now) }
        var actions: [Action] = []
        // Outside the switch below (see `invoke`).
        if var session = takeReadySession() {
            let sessionActions: [ClientSessionAction]
            do {
                sessionActions = try session.receive(packet, now: now)
            } catch {
                state = .ready(consume session)
                // A packet that is not an authentic message of this key: the link is not to be trusted.
                if error.isFatal { return [.closeChannel] }
                statistics.messagesIgnored += 1
                return [.ignored(error)]
            }
            state = .ready(consume session)
            handle(sessionActions, now: now, into: &actions)
            persistIfChanged(into: &actions)
            checkRenewal(now: now, into: &actions)
            scheduleWake(now: now, into: &actions)
            return actions
        }
        switch state {
        case .exchangingKey(var handshake, let attempt, let deadline):
            state = .modifying
            do {
                switch try handshake.receive(packet, now: now) {
                case .send(let bytes):
                    state = .exchangingKey(handshake, attempt: attempt, deadline: deadline)
                    actions.append(.write(bytes))
                case .completed(let result):
                    statistics.keyExchanges += 1
                    if case .temporary(let expiresAt) = result.lifetime, let permanentKey {
                        startBinding(result, expiresAt: expiresAt, permanentKey: permanentKey, now: now, into: &actions)
                        break
                    }
                    permanentKey = result.authKey
                    temporaryKey = nil
                    persistedSalt = result.serverSalt
                    persistedOffset = result.serverTimeOffset
                    actions.append(.persist(DCSessionUpdate(
                        authKey: result.authKey, serverSalt: result.serverSalt, timeOffset: result.serverTimeOffset, isNewKey: true)))
                    if configuration.pfs != nil {
                        // The permanent key never carries calls: a temporary one is made on the same link.
                        var next = ClientHandshake(configuration: handshakeConfiguration(), entropy: entropy)
                        let first = next.start(now: now)
                        state = .exchangingKey(next, attempt: attempt, deadline: now + configuration.handshakeTimeout)
                        actions.append(.write(first))
                        break
                    }
                    let session = makeSession(key: result.authKey, salt: result.serverSalt, timeOffset: result.serverTimeOffset)
                    needsInitConnection = true
                    state = .ready(consume session)
                    becameReady(now: now, into: &actions)
                }
            } catch {
                state = .exchangingKey(handshake, attempt: attempt, deadline: deadline)
                handshakeFailure = "\(error)"
                actions.append(.closeChannel)
            }
        default:
            return []
        }
        scheduleWake(now: now, into: &actions)
        return actions
    }

    /// The connection attempt failed, or the open connection ended (`reason` says why).
    /// `refusedByProxy`: the proxy refused this client for what its link configures (credentials,
    /// secret); the calls fail at once instead of knocking again through the reconnect budget.
    mutating func disconnected(reason: String, refusedByProxy: Bool = false, now: UnixTime) -> [Action] {
        let rerouted = rerouting
        rerouting = false
        let timedOut = connectTimedOut
        connectTimedOut = false
        connectDeadline = nil
        var actions: [Action] = []
        var session = self.session
        let wasRenewing = renewing
        if binding != nil || renewing || discardingSession {
            // An unbound temporary key is not worth keeping, nor one being replaced: the next
            // link makes and binds a new one.
            binding = nil
            renewing = false
            renewalClosing = false
            discardingSession = false
            temporaryKey = nil
            session = nil
            abandonRequestsInFlight(into: &actions)
        }
        let nextAttempt: Int
        switch state {
        case .connecting(_, let attempt):
            if refusedByProxy, !rerouted {
                failAll(.proxyRefused(dc: configuration.dcID, reason: reason), session: session, now: now, into: &actions)
                return actions
            }
            // The link's own end then is this client closing it, whatever the link says.
            lastReason = timedOut ? "not connected within \(Self.seconds(configuration.connectTimeout)) s: the TCP connect or the proxy's "
                + "handshake got no answer" : reason
            nextAttempt = rerouted ? 1 : attempt + 1
        case .exchangingKey where rerouted:
            lastReason = reason
            nextAttempt = 1
        case .exchangingKey(_, let attempt, _):
            if !calls.isEmpty { statistics.connectionsLost += 1 }
            if let failure = handshakeFailure, lastTransportError?.rawValue != -404 {
                handshakeFailure = nil
                failAll(.handshakeFailed(dc: configuration.dcID, reason: failure), session: nil, now: now, into: &actions)
                return actions
            }
            lastReason = reason
            nextAttempt = attempt + 1
        case .ready:
            if !calls.isEmpty, !wasRenewing, !rerouted { statistics.connectionsLost += 1 }
            actions.append(.deliver(.linkLost))
            if wasRenewing || rerouted {
                lastReason = reason
                nextAttempt = 1
            } else if let up = linkUp, !configuration.reconnect.resetsBudget(afterLinkLasting: now - up.since) {
                lastReason = "the connection died \(Int((now - up.since).rounded())) s after it was established (\(reason))"
                nextAttempt = up.attempt + 1
            } else {
                lastReason = reason
                nextAttempt = 1
            }
        case .idle, .backingOff, .failed, .closed, .modifying:
            return []
        }
        nextPingAt = nil
        nextHousekeepingAt = nil
        linkUp = nil
        if let code = lastTransportError, code.rawValue == -404 {
            if configuration.pfs != nil, let permanentKey, session != nil, temporaryKeyLosses == 0 {
                // The DC forgot the temporary key (it expired, or the DC restarted): a new
                // temporary key replaces it; the permanent key is untouched.
                temporaryKeyLosses += 1
                lastTransportError = nil
                session = nil
                temporaryKey = nil
                abandonRequestsInFlight(into: &actions)
                actions.append(.persist(DCSessionUpdate(
                    authKey: permanentKey, serverSalt: 0, timeOffset: persistedOffset,
                    isNewKey: false, temporaryKey: .dropped)))
            } else {
                // The DC does not know this key: reconnecting with it cannot help.
                failAll(.transport(code, dc: configuration.dcID), session: session, now: now, into: &actions)
                return actions
            }
        }
        if calls.isEmpty {
            state = .idle(session)
            return actions
        }
        reconnect(attempt: nextAttempt, session: session, now: now, into: &actions)
        scheduleWake(now: now, into: &actions)
        return actions
    }

    mutating func timerFired(now: UnixTime) -> [Action] {
        scheduledWake = nil
        var actions: [Action] = []
        switch state {
        case .backingOff(let until, let session, let attempt) where until <= now:
            startConnecting(session, attempt: attempt, now: now, into: &actions)
        case .connecting where connectDeadline.map { $0 <= now } ?? false:
            // Given up: the link closes (a proxy's handshake under way), or the TCP connect ends
            // at its own timeout; either way `disconnected` follows and counts a failed attempt.
            connectDeadline = nil
            connectTimedOut = true
            actions.append(.closeChannel)
        case .exchangingKey(_, _, let deadline) where deadline <= now && handshakeFailure == nil:
            handshakeFailure = "no answer within \(configuration.handshakeTimeout) s"
            actions.append(.closeChannel)
        default:
            break
        }
        for (token, entry) in calls.expire(now: now) {
            statistics.timeouts += 1
            if let request = entry.requestID { forget(request, now: now, into: &actions) }
            actions.append(.complete(token, .failure(.timeout(method: entry.method, seconds: entry.timeout ?? 0, delivery: entry.delivery))))
        }
        if var session = takeReadySession() {
            followUp(now: now, session: &session, into: &actions)
            var sessionActions: [ClientSessionAction] = []
            if let pingAt = nextPingAt, pingAt <= now, let interval = configuration.pingInterval {
                sessionActions += session.pingDelayDisconnect(id: nextPingID, disconnectDelay: Int32(interval * 1.25 + 0.5), now: now)
                nextPingID += 1
                nextPingAt = now + interval
            }
            if let housekeeping = nextHousekeepingAt, housekeeping <= now {
                nextHousekeepingAt = now + configuration.housekeepingInterval
                if let policy = configuration.futureSalts, needsFutureSalts(session, policy: policy, now: now) {
                    futureSaltsRequestedAt = now
                    statistics.futureSaltRequests += 1
                    sessionActions += session.requestFutureSalts(count: policy.count, now: now)
                }
            }
            sessionActions += session.tick(now: now)
            state = .ready(consume session)
            handle(sessionActions, now: now, into: &actions)
            // The session may have moved to the next future salt by the clock.
            persistIfChanged(into: &actions)
            checkRenewal(now: now, into: &actions)
        }
        // The tracker's bounds may still name calls that ended: exact here, or the wake-up asked
        // for next could be one already past.
        calls.refreshBounds()
        scheduleWake(now: now, into: &actions)
        return actions
    }

    /// The proxy changed (a person corrected or replaced it): a link made through the old one ends,
    /// and the next goes through the new one at once with a fresh reconnect budget; a backoff (the
    /// old proxy failing) is cut short. Without a link, the next call connects the new way.
    mutating func routeChanged(now: UnixTime) -> [Action] {
        switch state {
        case .backingOff(_, let session, _):
            var actions: [Action] = []
            startConnecting(session, attempt: 1, now: now, into: &actions)
            scheduleWake(now: now, into: &actions)
            return actions
        case .connecting, .exchangingKey, .ready:
            rerouting = true
            return [.closeChannel]
        case .idle, .failed, .closed, .modifying:
            return []
        }
    }

    mutating func close(now: UnixTime) -> [Action] {
        var actions: [Action] = []
        switch state {
        case .closed: return []
        case .connecting, .exchangingKey, .ready: actions.append(.closeChannel)
        default: break
        }
        for (token, _) in calls.removeAll() { actions.append(.complete(token, .failure(.closed))) }
        state = .closed
        return actions
    }

    // MARK: - Internals

    /// Hands a call to the session (queued; the caller flushes): the first of a session carries
    /// invokeWithLayer + initConnection.
    private mutating func submit(_ token: CallToken, body: [UInt8], into session: inout ClientSession, now: UnixTime) {
        let bytes = needsInitConnection ? configuration.firstCallPrefix + body : body
        needsInitConnection = false
        let request = session.enqueue(request: bytes)
        calls.handOver(token, to: request, now: now, checkAt: now + configuration.inDoubt.stateCheckDelay)
    }

    private mutating func becameReady(now: UnixTime, into actions: inout [Action]) {
        guard case .ready(var session) = state else { return }
        state = .modifying
        // Only requests that went out under a msg_id can be in doubt; queued ones go out now.
        let inDoubt = calls.requestsInFlight.filter { session.messageID(of: $0) != nil }
        for request in inDoubt {
            if let token = calls.token(of: request) { calls.markSent(token, checkAt: now + configuration.inDoubt.stateCheckDelay) }
        }
        if binding == nil {
            for (token, body) in calls.parked { submit(token, body: body, into: &session, now: now) }
        }
        if !inDoubt.isEmpty { statistics.requestsInDoubt += inDoubt.count }
        let sessionActions = session.requestState(of: inDoubt, now: now)
        state = .ready(consume session)
        // The first ping_delay_disconnect goes out at once: until the server has one it never
        // closes the connection, and a process frozen or cut off before its first ping would
        // leave it open, so the next owner of the key would meet AUTH_KEY_DUPLICATED.
        if configuration.pingInterval != nil { nextPingAt = now }
        nextHousekeepingAt = now + configuration.housekeepingInterval
        handle(sessionActions, now: now, into: &actions)
        persistIfChanged(into: &actions)
    }

    /// State checks, answer requests and in-doubt failures that fell due (ready only).
    private mutating func followUp(now: UnixTime, session: inout ClientSession, into actions: inout [Action]) {
        var check: [RequestID] = []
        var ask: [RequestID] = []
        let wait = configuration.inDoubt.answerWait
        for (token, step) in calls.dueFollowUps(now: now) {
            guard let request = calls.entries[token]?.requestID else { continue }
            switch step {
            case .checkState:
                check.append(request)
                calls.setFollowUp(token, .checkState(at: now + configuration.inDoubt.stateCheckDelay))
            case .askForAnswer:
                ask.append(request)
                calls.setFollowUp(token, .giveUp(at: now + wait))
            case .giveUp:
                guard let entry = calls.remove(token) else { continue }
                statistics.inDoubtFailures += 1
                session.cancel(request)
                let waited = entry.confirmedAt.map { now.seconds - $0.seconds } ?? 2 * wait
                actions.append(.complete(token, .failure(.inDoubt(method: entry.method, reason: .noAnswerAfterReceipt(waited: waited)))))
            }
        }
        if !ask.isEmpty {
            statistics.answerResendRequests += ask.count
            session.requestAnswers(of: ask)
        }
        if !check.isEmpty { statistics.stateChecks += check.count }
        let sessionActions = session.requestState(of: check, now: now)
        handle(sessionActions, now: now, into: &actions)
    }

    private mutating func handle(_ sessionActions: [ClientSessionAction], now: UnixTime, into actions: inout [Action]) {
        // Read once, not per action: `binding?.request` copies the whole binding (its key's bytes
        // retained and released) for every answer. Only `bindingAnswered` changes it here (to nil).
        var bindingRequest = binding?.request
        // One packet can report the same requests lost twice (a msgs_all_info and a msgs_state_info
        // both saying "nothing known" of them): each is settled once, or a request safe to repeat
        // would go out twice. (A state report in the packet of a new_session_created is already
        // silenced by the session's floor.)
        var settledAsLost: Set<RequestID> = []
        for action in sessionActions {
            switch action {
            case .send(let bytes):
                actions.append(.write(bytes))
            case .rpcResult(let request, let bytes) where bindingRequest == request:
                bindingAnswered(bytes == Self.boolTrue ? nil : "the DC answered \(bytes.prefix(8)) instead of boolTrue", now: now, into: &actions)
                bindingRequest = nil
            case .rpcError(let request, let error) where bindingRequest == request:
                bindingAnswered("\(error.code) \(error.message)", now: now, into: &actions)
                bindingRequest = nil
            case .requestFailed(let request, let failure) where bindingRequest == request:
                bindingAnswered("\(failure)", now: now, into: &actions)
                bindingRequest = nil
            case .rpcResult(let request, let bytes):
                if let (token, _) = calls.complete(request) { actions.append(.complete(token, .success(bytes))) }
            case .rpcError(let request, let error):
                guard let (token, entry) = calls.complete(request) else { break }
                actions.append(.complete(token, .failure(.rpc(error, method: entry.method))))
                if case .wait(let seconds, .flood) = error.advice, seconds > 0 {
                    holdBack(entry.floodScope, until: now + Double(seconds), now: now, into: &actions)
                }
                if error.message == "AUTH_KEY_PERM_EMPTY" { temporaryKeyUnbound() }
            case .resendWithheld(let requests):
                for request in requests {
                    guard let (token, entry) = calls.complete(request) else { continue }
                    statistics.floodWaitsHeld += 1
                    let seconds = Self.secondsLeft(floodHolds[entry.floodScope] ?? now, now: now)
                    actions.append(.complete(token, .failure(.floodWaitHeld(method: entry.method, seconds: seconds, mayHaveRun: false))))
                }
            case .requestFailed(let request, let failure):
                if let (token, entry) = calls.complete(request) {
                    let error: TelegramError =
                        switch failure {
                        case .rejected: .rejected(method: entry.method, reason: "\(failure)")
                        case .undecodableResult: .undecodableResult(method: entry.method, reason: "\(failure)")
                        }
                    actions.append(.complete(token, .failure(error)))
                }
            case .received(let requests, let byStateReport):
                let followUp: RequestTracker<[UInt8]>.FollowUp? = byStateReport ? .askForAnswer(at: now + configuration.inDoubt.answerWait) : nil
                for request in requests { calls.markReceived(request, followUp: followUp, now: now) }
            case .resent(let requests):
                // A new copy: its wait starts over (a give-up armed for the old one would fail it
                // as in doubt, and drop its answer, before the new copy could be asked about).
                for request in requests {
                    if let token = calls.token(of: request) { calls.markResent(token, checkAt: now + configuration.inDoubt.stateCheckDelay) }
                }
            case .stillRunning(let requests):
                statistics.stillRunningReports += requests.count
                for request in requests {
                    calls.markRunning(request, askAt: now + configuration.inDoubt.answerWait, now: now, limit: configuration.inDoubt.runningWait)
                }
            case .update(let body):
                statistics.updates += 1
                actions.append(.deliver(.update(body)))
            case .newSessionCreated(_, let inDoubt), .sessionReset(_, let inDoubt):
                if case .sessionReset = action { needsInitConnection = true } else { actions.append(.deliver(.sessionCreated)) }
                answersLost(for: inDoubt.filter { settledAsLost.insert($0).inserted }, reason: .sessionChanged, now: now, into: &actions)
            case .forgottenByServer(let requests):
                answersLost(for: requests.filter { settledAsLost.insert($0).inserted }, reason: .forgottenByServer, now: now, into: &actions)
            case .futureSalts(let salts):
                futureSaltsRequestedAt = nil
                // Not during a binding: the salts belong to the key the session runs on, saved with it.
                guard let session, binding == nil else { break }
                actions.append(.persist(DCSessionUpdate(
                    authKey: session.authKey, serverSalt: session.serverSalt, timeOffset: session.timeOffset, isNewKey: false,
                    futureSalts: salts)))
            case .messageDiscarded(_, let error):
                statistics.messagesIgnored += 1
                actions.append(.ignored(error))
            case .pong, .sessionDestroyed:
                break
            }
        }
    }

    // MARK: - PFS

    /// boolTrue, the answer of a successful auth.bindTempAuthKey.
    static let boolTrue: [UInt8] = [0xb5, 0x75, 0x72, 0x99]

    /// A temporary key was made: its session starts with auth.bindTempAuthKey alone (spec:
    /// "sent ... using temp_auth_key and temp_session_id"); calls wait until it is bound.
    private mutating func startBinding(
        _ result: HandshakeResult, expiresAt: UnixTime, permanentKey: AuthKey, now: UnixTime, into actions: inout [Action]
    ) {
        var session = makeSession(key: result.authKey, salt: result.serverSalt, timeOffset: result.serverTimeOffset)
        // expires_at is on the DC's clock; the handshake measured the offset.
        let serverExpiry = (expiresAt.seconds + result.serverTimeOffset).rounded(.down)
        let expiresAtField = Int32(clamping: Int64(max(0, min(serverExpiry, Double(Int32.max)))))
        let value = TemporaryKeyBinding(permanentKey: permanentKey, temporaryKeyID: result.authKey.id, expiresAt: expiresAtField, entropy: &entropy)
        let request = session.enqueue(binding: value)
        binding = (request, BoundTemporaryKey(key: result.authKey, expiresAt: expiresAt))
        needsInitConnection = true
        persistedSalt = result.serverSalt
        persistedOffset = result.serverTimeOffset
        state = .ready(consume session)
        becameReady(now: now, into: &actions)
    }

    /// The binding's answer: nil when bound. Then the key is saved and the waiting calls go out
    /// (the first with initConnection again: spec "rewrite client info"); a refusal fails them.
    private mutating func bindingAnswered(_ failure: String?, now: UnixTime, into actions: inout [Action]) {
        guard let pending = binding else { return }
        binding = nil
        if let failure {
            // The waiting calls fail; the unbound key's link closes and the next call starts over
            // with a new temporary key (calls arriving meanwhile wait for it).
            temporaryKey = nil
            discardingSession = true
            let error = TelegramError.handshakeFailed(
                dc: configuration.dcID,
                reason: "the DC refused to bind the temporary key to the permanent key (\(failure)); it no longer knows the permanent key or the binding was damaged. Calls fail until the permanent key is replaced")
            for (token, _) in calls.removeAll() { actions.append(.complete(token, .failure(error))) }
            actions.append(.closeChannel)
            return
        }
        temporaryKey = pending.key
        temporaryKeyLosses = 0
        statistics.temporaryKeyBinds += 1
        guard case .ready(var session) = state else { return }
        persistedSalt = session.serverSalt
        persistedOffset = session.timeOffset
        actions.append(.persist(DCSessionUpdate(
            authKey: pending.key.key, serverSalt: session.serverSalt, timeOffset: session.timeOffset, isNewKey: false,
            temporaryKey: .bound(pending.key))))
        state = .modifying
        for (token, body) in calls.parked { submit(token, body: body, into: &session, now: now) }
        let sessionActions = session.flush(now: now)
        state = .ready(consume session)
        handle(sessionActions, now: now, into: &actions)
    }

    /// PFS renewal: from `renewBefore` ahead of expiry new calls wait; once no call is in flight
    /// on the old key (or at its expiry) the link closes and the next one makes and binds a new
    /// key. Calls still in flight at the expiry cannot be answered under the old key any more:
    /// they fail in doubt.
    private mutating func checkRenewal(now: UnixTime, into actions: inout [Action]) {
        guard let pfs = configuration.pfs, binding == nil, !discardingSession, let temporaryKey, case .ready = state else { return }
        guard renewing || now.seconds >= temporaryKey.expiresAt.seconds - pfs.renewBefore else { return }
        if !renewing {
            renewing = true
            statistics.temporaryKeyRenewals += 1
        }
        guard !renewalClosing else { return }
        if !calls.requestsInFlight.isEmpty {
            guard now >= temporaryKey.expiresAt else { return }
            abandonRequestsInFlight(into: &actions)
        }
        renewalClosing = true
        actions.append(.closeChannel)
    }

    /// AUTH_KEY_PERM_EMPTY: the DC still knows the temporary key but no longer its binding (spec
    /// api/pfs: "binding a new temporary key overwrites the previous one", so another binding of
    /// the same permanent key unbinds this one). Not a lost login: the key is renewed as before
    /// expiry (new calls wait; the requests in flight, which meet the same answer, drain first),
    /// and the client repeats the refused call, which did not run.
    private mutating func temporaryKeyUnbound() {
        guard configuration.pfs != nil, binding == nil, !discardingSession, temporaryKey != nil, case .ready = state else { return }
        statistics.temporaryKeyBindingsLost += 1
        if !renewing {
            renewing = true
            statistics.temporaryKeyRenewals += 1
        }
    }

    /// PFS: the session of a temporary key is given up (expired, forgotten by the DC, or never
    /// bound); requests it carried cannot be asked about under a new key, so their calls fail in
    /// doubt (they may have run).
    private mutating func abandonRequestsInFlight(into actions: inout [Action]) {
        for request in calls.requestsInFlight {
            guard let token = calls.token(of: request), let entry = calls.remove(token) else { continue }
            statistics.inDoubtFailures += 1
            actions.append(.complete(token, .failure(.inDoubt(method: entry.method, reason: .sessionChanged))))
        }
    }

    /// Requests whose answer is lost (caught by a new server session, or forgotten by the server):
    /// repeated when the policy says they are safe, failed in doubt otherwise.
    private mutating func answersLost(for inDoubt: [RequestID], reason: InDoubtReason, now: UnixTime, into actions: inout [Action]) {
        var resend: [RequestID] = []
        for request in inDoubt {
            guard let token = calls.token(of: request), let method = calls.entries[token]?.method else { continue }
            if let scope = calls.entries[token]?.floodScope, let until = floodHolds[scope], until > now {
                // Repeating it now would be a call during the wait: the caller repeats it after.
                guard let entry = calls.remove(token) else { continue }
                statistics.floodWaitsHeld += 1
                forget(request, now: now, into: &actions)
                actions.append(.complete(token, .failure(.floodWaitHeld(method: entry.method, seconds: Self.secondsLeft(until, now: now), mayHaveRun: true))))
            } else if configuration.resendPolicy.isSafeToRepeat(method) {
                resend.append(request)
            } else if let entry = calls.remove(token) {
                statistics.inDoubtFailures += 1
                forget(request, now: now, into: &actions)
                actions.append(.complete(token, .failure(.inDoubt(method: entry.method, reason: reason))))
            }
        }
        guard !resend.isEmpty, var session = takeReadySession() else { return }
        statistics.requestsResent += resend.count
        let sessionActions = session.resend(resend, now: now)
        state = .ready(consume session)
        handle(sessionActions, now: now, into: &actions)
    }

    /// A FLOOD_WAIT answer: until it ends no call of its scope goes out. Calls not yet sent fail at
    /// once; sent ones keep waiting for their answer (the DC may have run them before the wait),
    /// but are not sent again under a new msg_id should the DC report them unprocessed.
    private mutating func holdBack(_ scope: String, until: UnixTime, now: UnixTime, into actions: inout [Action]) {
        if floodHolds[scope].map({ $0 < until }) ?? true { floodHolds[scope] = until }
        var sent: [RequestID] = []
        for token in calls.tokens(inFloodScope: scope) {
            guard let entry = calls.entries[token] else { continue }
            var mayHaveRun = false
            if let request = entry.requestID, let session {
                if session.messageID(of: request) != nil {
                    sent.append(request)
                    continue
                }
                // Neither in flight nor queued: answered in the same packet as this FLOOD_WAIT, its
                // result among the actions still to come. Before, it was taken for unsent and failed
                // "not sent", and the answer of a call the DC had run was thrown away.
                guard session.isQueued(request) else { continue }
                // Queued to go out again: its first copy may have run.
                mayHaveRun = session.wasSentBefore(request)
            }
            guard let removed = calls.remove(token) else { continue }
            if let request = removed.requestID { forget(request, now: now, into: &actions) }
            statistics.floodWaitsHeld += 1
            actions.append(.complete(token, .failure(.floodWaitHeld(method: removed.method, seconds: Self.secondsLeft(until, now: now),
                                                                    mayHaveRun: mayHaveRun))))
        }
        if !sent.isEmpty { modifySession { $0.withholdResends(of: sent) } }
    }

    /// Ends the waits that are over: their sent requests may be sent again.
    private mutating func releaseExpiredHolds(now: UnixTime) {
        let expired = floodHolds.filter { $0.value <= now }.map(\.key)
        guard !expired.isEmpty else { return }
        var requests: [RequestID] = []
        for scope in expired {
            floodHolds[scope] = nil
            requests += calls.tokens(inFloodScope: scope).compactMap { calls.entries[$0]?.requestID }
        }
        if !requests.isEmpty { modifySession { $0.allowResends(of: requests) } }
    }

    /// Whole seconds left of a wait, at least one (a wait that ends within the second still holds).
    private static func secondsLeft(_ until: UnixTime, now: UnixTime) -> Int {
        Int(max(1, (until - now).rounded(.up)))
    }

    /// Changes the session in place, in whichever state holds it.
    private mutating func modifySession(_ change: (inout ClientSession) -> Void) {
        // Outside the switch below (see `invoke`).
        if var session = takeReadySession() {
            change(&session)
            state = .ready(consume session)
            return
        }
        switch state {
        case .idle(var session?):
            state = .modifying
            change(&session)
            state = .idle(session)
        case .connecting(var session?, let attempt):
            state = .modifying
            change(&session)
            state = .connecting(session, attempt: attempt)
        case .backingOff(let until, var session?, let attempt):
            state = .modifying
            change(&session)
            state = .backingOff(until: until, session: session, attempt: attempt)
        case .failed(let error, var session?):
            state = .modifying
            change(&session)
            state = .failed(error, session: session)
        default:
            break
        }
    }

    /// Takes a request out of the session's books (rpc_drop_answer when it was sent): sent now
    /// when connected, else with the next flush.
    private mutating func forget(_ request: RequestID, now: UnixTime, into actions: inout [Action]) {
        guard case .ready = state else {
            modifySession { $0.cancel(request) }
            return
        }
        var sessionActions: [ClientSessionAction] = []
        modifySession { sessionActions = $0.cancel(request, now: now) }
        for case .send(let bytes) in sessionActions { actions.append(.write(bytes)) }
    }

    private mutating func reconnect(attempt: Int, session: ClientSession?, now: UnixTime, into actions: inout [Action]) {
        guard let delay = configuration.reconnect.delay(beforeAttempt: attempt) else {
            let error: TelegramError =
                if let code = lastTransportError { .transport(code, dc: configuration.dcID) } else {
                    .connectionFailed(dc: configuration.dcID, attempts: attempt - 1, reason: lastReason)
                }
            failAll(error, session: session, now: now, into: &actions)
            return
        }
        if delay > 0 {
            state = .backingOff(until: now + delay, session: session, attempt: attempt)
        } else {
            startConnecting(session, attempt: attempt, now: now, into: &actions)
        }
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    private mutating func startConnecting(_ session: consuming ClientSession?, attempt: Int, now: UnixTime, into actions: inout [Action]) {
        state = .connecting(session, attempt: attempt)
        connectDeadline = now + configuration.connectTimeout
        connectTimedOut = false
        actions.append(.connect)
    }

    /// Every waiting call fails with `error`; their requests leave the session's books.
    private mutating func failAll(_ error: TelegramError, session: ClientSession?, now: UnixTime, into actions: inout [Action]) {
        var session = session
        state = .modifying
        for (token, entry) in calls.removeAll() {
            if let request = entry.requestID { session?.cancel(request) }
            // Each call says how far it got: one never written did not run, and a job may repeat it.
            var failure = error
            if entry.delivery == .notSent {
                if case .connectionFailed(let dc, let attempts, let reason, nil) = error {
                    failure = .connectionFailed(dc: dc, attempts: attempts, reason: reason, delivery: .notSent)
                } else if case .proxyRefused(let dc, let reason, nil) = error {
                    failure = .proxyRefused(dc: dc, reason: reason, delivery: .notSent)
                }
            }
            actions.append(.complete(token, .failure(failure)))
        }
        state = .failed(error, session: session)
    }

    private mutating func persistIfChanged(into actions: inout [Action]) {
        guard let (salt, offset, authKey) = readReadySession({ ($0.serverSalt, $0.timeOffset, $0.authKey) }),
              salt != persistedSalt || offset != persistedOffset else { return }
        persistedSalt = salt
        persistedOffset = offset
        actions.append(.persist(DCSessionUpdate(authKey: authKey, serverSalt: salt, timeOffset: offset, isNewKey: false)))
    }

    /// What `read` finds in the ready session (nil when not ready), moved out and back rather than
    /// read through a getter on `state`: those copied the whole state (the session's every table
    /// retained and released), and this runs on every input.
    private mutating func readReadySession<Value>(_ read: (ClientSession) -> Value) -> Value? {
        guard let session = takeReadySession() else { return nil }
        let value = read(session)
        state = .ready(consume session)
        return value
    }

    /// Not `if case .closed = state`: matching on the stored enum copies the whole state (every
    /// table of the session retained and released), and `invoke` asks on every call.
    private mutating func isClosed() -> Bool {
        var taken = State.modifying
        swap(&taken, &state)
        switch consume taken {
        case .closed:
            state = .closed
            return true
        case let other:
            state = other
            return false
        }
    }

    /// The ready session moved out of `state` (left `.modifying` until the caller puts it back),
    /// not copied: a copy retains every table the session holds, and each write to a table while
    /// the copy lives copies that table. This runs for every call and every packet. Put it back
    /// with `state = .ready(consume session)`: without `consume` the optimizer copied it there too,
    /// even at its last use (with both fixes, 64 calls in flight on the loop: 8.2-9.4 -> 6.6-7.0 µs
    /// of client CPU per call).
    private mutating func takeReadySession() -> ClientSession? {
        // Swapped out before it is looked at: `state.isReady` on the stored value copied the whole
        // state (the session's every table retained and released) on each call and packet.
        var taken = State.modifying
        swap(&taken, &state)
        switch consume taken {
        case .ready(let session):
            return session
        case let other:
            state = other
            return nil
        }
    }

    /// Whether the salts the session knows end within `refetchAhead` (by the DC's clock) and no
    /// request for more is waiting.
    private func needsFutureSalts(_ session: ClientSession, policy: FutureSaltsPolicy, now: UnixTime) -> Bool {
        guard binding == nil else { return false }
        if let asked = futureSaltsRequestedAt, now.seconds - asked.seconds < policy.retryAfter { return false }
        let serverNow = now.seconds + session.timeOffset
        let coveredUntil = session.futureSalts.map { Double($0.validUntil) }.max() ?? serverNow
        return coveredUntil - serverNow < policy.refetchAhead
    }

    /// Asks for a wake-up at the earliest time something is due, when that is earlier than the
    /// one already asked for (a wake-up that finds nothing due just asks for the next one).
    private mutating func scheduleWake(now: UnixTime, into actions: inout [Action]) {
        // A running minimum, not an array of candidates: this runs on every input.
        var earliest: UnixTime?
        func consider(_ time: UnixTime?) {
            if let time, earliest.map({ time < $0 }) ?? true { earliest = time }
        }
        consider(calls.nextDeadline)
        if let acknowledgementsDueAt = readReadySession({ $0.acknowledgementsDueAt }) {
            consider(calls.nextFollowUp)
            consider(nextPingAt)
            consider(nextHousekeepingAt)
            consider(acknowledgementsDueAt)
            if let pfs = configuration.pfs, binding == nil, !renewalClosing, let temporaryKey {
                consider(renewing ? temporaryKey.expiresAt : temporaryKey.expiresAt + -pfs.renewBefore)
            }
        } else if let deadline = state.ownDeadline, handshakeFailure == nil || !state.isExchangingKey {
            consider(deadline)
        } else if case .connecting = state {
            consider(connectDeadline)
        }
        guard let target = earliest else { return }
        if let scheduled = scheduledWake, scheduled <= target { return }
        scheduledWake = target
        actions.append(.wake(at: target))
    }
}

/// What the server did on its own, as the updates machinery needs to know it.
enum ServerEvent: Sendable, Equatable {
    /// A message that is neither an rpc_result nor a service message: in practice `Updates`.
    case update([UInt8])
    /// new_session_created: the server has no memory of this session; pushes may have been lost.
    case sessionCreated
    /// The open link dropped (not by `close`): pushes may have been lost.
    case linkLost
}

/// What a connection asks its owner to save about the DC's session.
struct DCSessionUpdate: Sendable, Equatable {
    let authKey: AuthKey
    let serverSalt: Int64
    let timeOffset: Double
    /// A new key from a key exchange: not bound to the account yet.
    let isNewKey: Bool
    /// PFS: a temporary key was bound (salt and offset are its session's), or the DC forgot it.
    var temporaryKey: TemporaryKeyChange? = nil
    /// The salts the DC announced ahead for `authKey` (nil: unchanged).
    var futureSalts: [FutureSalt]? = nil

    enum TemporaryKeyChange: Sendable, Equatable {
        case bound(BoundTemporaryKey)
        case dropped
    }
}
