import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore
@testable import MTProtoClient

/// A `DCConnectionStateMachine` wired to the core's real server machines (`ServerHandshake`,
/// `ServerSession`) in memory, with an injected clock: what `DCConnection` does over a socket,
/// without one. `answer` decides what the server does with each RPC query.
struct InMemoryDC {
    enum Answer {
        case result([UInt8])
        case error(RPCError)
        /// Accept the query and leave it open (`answerOpen`, `refuseOpen`), or never answer it.
        case swallow
    }

    static let start = UnixTime(seconds: 1_800_000_000)
    static let salt: Int64 = 0x5A17_5A17_5A17_5A17
    /// Stands for invokeWithLayer + initConnection: an unknown constructor the server passes up.
    static let prefix: [UInt8] = [0x11, 0x22, 0x33, 0x44]

    var machine: DCConnectionStateMachine
    var server: ServerSession?
    var serverHandshake: ServerHandshake?
    var serverKey: AuthKey?
    var now = InMemoryDC.start
    var answer: (_ body: [UInt8]) -> Answer = { .result(Array($0.reversed())) }
    /// When false the server takes packets but its replies are lost (a dead link).
    var serverReplies = true
    /// Gathers the calls of several `invoke`s until the next `pump` (one turn of the loop).
    var defersFlushes = false
    private var flushDue = false
    /// Packets the client wrote, all told.
    private(set) var packetsSent = 0
    /// Times the machine asked for its writes to leave before the loop's turn ends.
    private(set) var flushesNow = 0

    private(set) var isConnected = false
    private(set) var connectRequests = 0
    private(set) var closeRequests = 0
    private(set) var wakeAt: UnixTime?
    private(set) var results: [CallToken: Result<[UInt8], TelegramError>] = [:]
    private(set) var persisted: [DCSessionUpdate] = []
    private(set) var updates: [[UInt8]] = []
    private(set) var events: [ServerEvent] = []
    /// Server messages the session ignored (`.ignored`), in order.
    private(set) var ignored: [SessionError] = []
    private var lastDelivered: [UInt8]?
    private(set) var serverEvents: [ServerSessionAction] = []
    /// RPC queries the server took, in order (prefix included on the first of a session).
    private(set) var queries: [[UInt8]] = []
    /// Queries the server took and has not answered (`Answer.swallow`), by body.
    private(set) var openQueries: [[UInt8]: Int64] = [:]
    private var toServer: [[UInt8]] = []
    private var connectPending = false

    /// One RSA key for every test: generating it is the slow part of a key exchange.
    static let rsaKey: RSAPrivateKey = {
        do { return try RSAPrivateKey.generate(bits: 2048) } catch { preconditionFailure("RSA key generation failed: \(error)") }
    }()

    init(key: AuthKey?, configure: (inout DCConnectionStateMachine.Configuration) -> Void = { _ in }) {
        var configuration = DCConnectionStateMachine.Configuration(
            dcID: 2, handshake: ClientHandshake.Configuration(serverKeys: [InMemoryDC.rsaKey.publicKey], dcID: 2),
            handshakeTimeout: 10, reconnect: ReconnectPolicy(initialDelay: 1, multiplier: 2, maximumDelay: 4, maximumAttempts: 3, stableAfter: 0),
            pingInterval: 60, firstCallPrefix: InMemoryDC.prefix)
        configure(&configuration)
        machine = DCConnectionStateMachine(
            configuration: configuration, state: DCSessionState(authKey: key, serverSalt: InMemoryDC.salt), entropy: SeededTestEntropy(seed: 3))
        serverKey = key
        serverHandshake = ServerHandshake(configuration: ServerHandshake.Configuration(keys: [InMemoryDC.rsaKey]), entropy: SeededTestEntropy(seed: 4))
    }

    static func key(seed: UInt64 = 1) -> AuthKey {
        var entropy = SeededTestEntropy(seed: seed)
        do { return try AuthKey(entropy.bytes(256)) } catch { preconditionFailure("256 bytes make a key: \(error)") }
    }

    /// A fresh server session for the key (what a server without per-session memory does on a new connection).
    mutating func freshServerSession() {
        guard let key = serverKey else { return }
        server = ServerSession(
            authKey: key, salts: ServerSaltSchedule(initialSalt: InMemoryDC.salt, validSince: InMemoryDC.start + -10, seed: Array(repeating: 5, count: 32)),
            entropy: SeededTestEntropy(seed: 6))
    }

    // MARK: - Driving the machine

    mutating func invoke(_ body: [UInt8], method: String = "help.getNearestDc", floodScope: String? = nil, timeout: Double? = 60) -> CallToken {
        let token = machine.makeToken()
        apply(machine.invoke(token, method: method, floodScope: floodScope, body: body, timeout: timeout, now: now))
        return token
    }

    mutating func cancel(_ token: CallToken) { apply(machine.cancel(token, now: now)) }

    /// Completes a pending connection attempt (the socket opened), or fails it.
    mutating func acceptConnection() {
        guard connectPending else { return }
        connectPending = false
        isConnected = true
        if server == nil { freshServerSession() }
        apply(machine.connected(now: now))
    }

    mutating func refuseConnection() {
        guard connectPending else { return }
        connectPending = false
        apply(machine.disconnected(reason: "connection refused", now: now))
    }

    /// The proxy refuses the connection attempt for what its link configures (a wrong password).
    mutating func refuseConnectionAsProxy() {
        guard connectPending else { return }
        connectPending = false
        apply(machine.disconnected(reason: "the SOCKS5 proxy rejected the username and password (status 1)", refusedByProxy: true, now: now))
    }

    /// The proxy changed (`DCConnection.Core.reroute`).
    mutating func changeRoute() {
        apply(machine.routeChanged(now: now))
    }

    /// The link drops (packets in flight are lost).
    mutating func dropLink(freshServerSession fresh: Bool = false) {
        guard isConnected else { return }
        isConnected = false
        toServer.removeAll()
        if fresh { server = nil }
        apply(machine.disconnected(reason: "connection reset", now: now))
    }

    var connectionRequested: Bool { connectPending }

    /// Moves the clock to `time`, firing the machine's timer whenever it falls due, and delivers
    /// packets after each step.
    mutating func advance(to time: UnixTime) {
        pump()
        while let wake = wakeAt, wake <= time {
            wakeAt = nil
            now = max(now, wake)
            apply(machine.timerFired(now: now))
            pump()
        }
        now = time
        pump()
    }

    mutating func advance(by seconds: Double) { advance(to: now + seconds) }

    /// Ends the loop's turn: calls gathered with `defersFlushes` are sent (not yet delivered).
    mutating func endTurn() {
        guard flushDue else { return }
        flushDue = false
        apply(machine.flushQueued(now: now))
    }

    /// Delivers packets both ways until nothing is in flight.
    mutating func pump() {
        endTurn()
        var rounds = 0
        while isConnected, !toServer.isEmpty {
            rounds += 1
            precondition(rounds < 1000, "the machines keep talking")
            let packets = toServer
            toServer.removeAll()
            for packet in packets { serve(packet) }
        }
    }

    /// Answers an open query (its body reversed), but the packet is lost on the way: the server
    /// holds the answer unacknowledged, the client never sees it.
    mutating func answerOpenAndLoseIt(_ body: [UInt8]) {
        guard let messageID = openQueries.removeValue(forKey: body), var session = server else { return }
        _ = session.answer(request: messageID, result: Array(body.reversed()), now: now)
        server = session
    }

    /// The server forgets an open query unanswered (as the test DC does when a fault drops it
    /// before it runs): asked about it, it says "not received".
    mutating func forgetOpen(_ body: [UInt8]) {
        guard let messageID = openQueries.removeValue(forKey: body), var session = server else { return }
        session.forget(request: messageID)
        server = session
    }

    /// Answers an open query with rpc_error.
    mutating func answerOpen(_ body: [UInt8], error: RPCError) {
        guard let messageID = openQueries.removeValue(forKey: body), var session = server else { return }
        let actions = session.answer(request: messageID, error: error, now: now)
        server = session
        reply(actions)
        pump()
    }

    /// Answers open queries in one packet, in this order (as Telegram answers the requests of one
    /// read together): a result for each nil error, else the error.
    mutating func answerOpenTogether(_ answers: [(body: [UInt8], error: RPCError?)]) {
        guard var session = server else { return }
        for (body, error) in answers {
            guard let messageID = openQueries.removeValue(forKey: body) else { continue }
            if let error { _ = session.queueAnswer(request: messageID, error: error) } else {
                _ = session.queueAnswer(request: messageID, result: Array(body.reversed()))
            }
        }
        let actions = session.flush(now: now)
        server = session
        reply(actions)
        pump()
    }

    /// Refuses an open query unprocessed with bad_server_salt (the server rotated its salt).
    mutating func refuseOpen(_ body: [UInt8]) {
        guard let messageID = openQueries.removeValue(forKey: body), var session = server else { return }
        let salts = ServerSaltSchedule(initialSalt: InMemoryDC.salt &+ 1, validSince: now + -10, seed: Array(repeating: 8, count: 32))
        let actions = session.rotateSalt(to: salts, refusing: messageID, now: now)
        server = session
        reply(actions)
        pump()
    }

    mutating func push(update body: [UInt8]) {
        push(together: [body])
    }

    /// The msg_ids under which the server took queries with these bodies, in the order taken.
    func messageIDsTaken(of bodies: [[UInt8]]) -> [Int64] {
        serverEvents.compactMap { action in
            guard case .request(let messageID, let body) = action, bodies.contains(body) else { return nil }
            return messageID
        }
    }

    /// Messages nobody asked for, in one packet (one container).
    mutating func push(together bodies: [[UInt8]]) {
        guard var session = server else { return }
        let actions = session.push(bodies, now: now)
        server = session
        reply(actions)
    }

    private mutating func serve(_ packet: [UInt8]) {
        let keyID = packet.prefix(8).reversed().reduce(Int64(0)) { ($0 << 8) | Int64($1) }
        if keyID == 0, var handshake = serverHandshake, serverReplies {
            do {
                switch try handshake.receive(packet, now: now) {
                case .send(let bytes):
                    serverHandshake = handshake
                    deliver(bytes)
                case .sendAndComplete(let bytes, let result):
                    serverHandshake = handshake
                    serverKey = result.authKey
                    server = ServerSession(
                        authKey: result.authKey,
                        salts: ServerSaltSchedule(initialSalt: result.serverSalt, validSince: now + -10, seed: Array(repeating: 5, count: 32)),
                        entropy: SeededTestEntropy(seed: 6))
                    deliver(bytes)
                }
            } catch {
                preconditionFailure("the in-memory key exchange failed: \(error)")
            }
            return
        }
        guard var session = server else { return }
        let actions: [ServerSessionAction]
        do { actions = try session.receive(packet, now: now) } catch { return }
        server = session
        reply(actions)
    }

    private mutating func reply(_ actions: [ServerSessionAction]) {
        for action in actions {
            switch action {
            case .send(let bytes):
                deliver(bytes)
            case .request(let messageID, let body):
                queries.append(body)
                serverEvents.append(action)
                switch answer(body) {
                case .result(let result):
                    guard var session = server else { continue }
                    let answered = session.answer(request: messageID, result: result, now: now)
                    server = session
                    reply(answered)
                case .error(let error):
                    guard var session = server else { continue }
                    let answered = session.answer(request: messageID, error: error, now: now)
                    server = session
                    reply(answered)
                case .swallow:
                    openQueries[body] = messageID
                }
            default:
                serverEvents.append(action)
            }
        }
    }

    private mutating func deliver(_ bytes: [UInt8]) {
        guard isConnected, serverReplies else { return }
        lastDelivered = bytes
        apply(machine.received(.packet(ByteBuffer(bytes: bytes)), now: now))
    }

    /// The last server packet again, byte for byte: a replay.
    mutating func replayLastServerPacket() {
        guard let lastDelivered else { return }
        deliver(lastDelivered)
    }

    private mutating func apply(_ actions: [DCConnectionStateMachine.Action]) {
        for action in actions {
            switch action {
            case .connect:
                connectRequests += 1
                connectPending = true
            case .write(let bytes):
                packetsSent += 1
                if isConnected { toServer.append(bytes) }
            case .closeChannel:
                closeRequests += 1
                if connectPending {
                    // A connect under way through a proxy has its channel already (the proxy's
                    // handshake runs on it): closing it ends the attempt.
                    connectPending = false
                    apply(machine.disconnected(reason: "closed by the client while connecting", now: now))
                } else if isConnected {
                    isConnected = false
                    toServer.removeAll()
                    apply(machine.disconnected(reason: "closed by the client", now: now))
                }
            case .wake(let at):
                wakeAt = at
            case .flushNow:
                // Written packets reach `toServer` at once here; counted for the batch limit's test.
                flushesNow += 1
            case .flushSoon:
                // The loop's turn ends with this input unless the test gathers several calls.
                if defersFlushes { flushDue = true } else { apply(machine.flushQueued(now: now)) }
            case .complete(let token, let result):
                precondition(results[token] == nil, "a call completed twice")
                results[token] = result
            case .persist(let update):
                persisted.append(update)
            case .deliver(let event):
                events.append(event)
                if case .update(let body) = event { updates.append(body) }
            case .ignored(let error):
                ignored.append(error)
            }
        }
    }

    /// The result of a call, once completed.
    func result(_ token: CallToken) -> Result<[UInt8], TelegramError>? { results[token] }

    func error(_ token: CallToken) -> TelegramError? {
        if case .failure(let error) = results[token] { return error }
        return nil
    }

    mutating func forgetResults() { results.removeAll(keepingCapacity: true) }
}

/// A fake API call: an unknown constructor and some payload.
func requestBody(_ tag: UInt32, payload: Int = 8) -> [UInt8] {
    withUnsafeBytes(of: tag.littleEndian, Array.init) + (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(tag)) }
}
