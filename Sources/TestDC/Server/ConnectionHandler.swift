import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore
import TL

/// One client connection of one DC: the key exchange while packets carry auth_key_id 0, then the
/// encrypted messages, each handed to its server session (kept by the core per auth key and client
/// session id, across connections), with RPC queries answered from the shared state under the
/// fault rules.
final class TestDCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = TransportFrame
    typealias OutboundOut = TransportFrame

    private let core: TestDCCore
    private let dc: Int32
    private let handshakeConfiguration: ServerHandshake.Configuration
    private var logger: Logger
    private var connectionID = 0
    private var handshake: ServerHandshake?
    /// The salt the last handshake on this connection derived, for the first session of that key.
    private var handshakeSalt: (keyID: Int64, salt: Int64)?
    /// The session of this connection's last packet, as the live connection table shows it.
    private var lastSession: ServerSessionTable.Key?
    /// The auth key of this connection's last packet.
    private var connectionKey: AuthKey?
    private var closed = false
    /// How long a request whose key another connection still holds waits before it counts as a duplicate.
    static let duplicateGrace: TimeAmount = .milliseconds(300)
    /// The close ping_delay_disconnect asked for; each new one replaces it.
    private var pendingDisconnect: Scheduled<Void>?
    /// Between a socket read's first packet and its end: answers made meanwhile wait in their
    /// session and leave together at the end of the read (one container for the requests a
    /// client sent together), as Telegram's servers answer.
    private var isInReadTurn = false
    private let answersTogether: Bool
    /// Sessions with answers queued in this read turn, in the order they were first answered.
    private var sessionsToFlush: [ServerSessionTable.Key] = []

    init(core: TestDCCore, dc: Int32, handshakeConfiguration: ServerHandshake.Configuration, answersTogether: Bool, logger: Logger) {
        self.core = core
        self.dc = dc
        self.handshakeConfiguration = handshakeConfiguration
        self.answersTogether = answersTogether
        self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        let remote = context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        connectionID = core.openConnection(dc: dc, remote: remote, channel: context.channel)
        logger[metadataKey: "conn"] = "\(connectionID)"
        logger.debug("connection opened", metadata: ["remote": "\(remote)"])
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        pendingDisconnect?.cancel()
        core.closeConnection(connectionID)
        logger.debug("connection closed")
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let push = event as? ServerPush {
            sendPush(context, push.body)
            return
        }
        if let detected = event as? MTProtoTransportDetected {
            core.updateConnection(connectionID) { $0.transport = "\(detected.kind)" }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        isInReadTurn = answersTogether
        let payload: ByteBuffer
        switch unwrapInboundIn(data) {
        case .packet(let buffer), .packetRequestingQuickAck(let buffer): payload = buffer
        case .quickAck, .transportError: return
        }
        let packet = Array(payload.readableBytesView)
        guard packet.count >= 8 else { return fail(context, code: 404, reason: "packet shorter than an auth_key_id") }
        let keyID = packet[0..<8].reversed().reduce(Int64(0)) { ($0 << 8) | Int64($1) }
        if keyID == 0 {
            receiveHandshake(context, packet)
        } else {
            receiveEncrypted(context, packet, keyID: keyID)
        }
    }

    /// Answers to every packet of one socket read go out in one write: a client with many calls in
    /// flight sends several per read.
    func channelReadComplete(context: ChannelHandlerContext) {
        isInReadTurn = false
        sendQueuedAnswers(context)
        context.flush()
        context.fireChannelReadComplete()
    }

    private func sendQueuedAnswers(_ context: ChannelHandlerContext) {
        let sessions = sessionsToFlush
        sessionsToFlush.removeAll(keepingCapacity: true)
        for session in sessions {
            let now = UnixTime(seconds: core.now(dc: dc))
            guard let flushed = core.answering(session, now: now.seconds, { $0.flush(now: now) }) else { continue }
            route(context, flushed.result, to: flushed.connectionID, session: session, now: now)
        }
    }

    // MARK: - Key exchange

    private func receiveHandshake(_ context: ChannelHandlerContext, _ packet: [UInt8]) {
        var machine = handshake ?? ServerHandshake(configuration: handshakeConfiguration, entropy: core.entropy)
        let now = UnixTime(seconds: core.now(dc: dc))
        do {
            switch try machine.receive(packet, now: now) {
            case .send(let reply):
                handshake = machine
                write(context, reply)
            case .sendAndComplete(let reply, let result):
                handshake = nil
                switch result.lifetime {
                case .permanent:
                    core.withState { $0.registerAuthKey(result.authKey, dc: dc) }
                case .temporary(let expiresAt):
                    core.withState { $0.registerTemporaryKey(result.authKey, dc: dc, expiresAt: expiresAt.seconds, now: now.seconds) }
                }
                handshakeSalt = (result.authKey.id, result.serverSalt)
                logger.info("auth key created", metadata: ["key_id": "\(result.authKey.id)", "retries": "\(result.retryCount)"])
                write(context, reply)
            }
        } catch {
            handshake = nil
            fail(context, code: 404, reason: "key exchange failed: \(error)")
        }
    }

    // MARK: - Encrypted session

    private func receiveEncrypted(_ context: ChannelHandlerContext, _ packet: [UInt8], keyID: Int64) {
        let now = UnixTime(seconds: core.now(dc: dc))
        // A key this connection already uses keeps decrypting after the DC forgot it
        // (AUTH_KEY_DUPLICATED): its calls get 406 from the dispatcher; a new connection gets -404.
        // A temporary key's time is up mid-connection too (spec api/pfs: the server forgets it).
        if core.withState({ $0.temporaryKeyExpired(id: keyID, dc: dc, now: now.seconds) }) {
            return fail(context, code: 404, reason: "temporary auth key \(keyID) expired")
        }
        guard let key = connectionKey?.id == keyID ? connectionKey : core.withState({ $0.authKey(id: keyID, dc: dc, now: now.seconds) }) else {
            return fail(context, code: 404, reason: "unknown auth key id \(keyID)")
        }
        connectionKey = key
        let decrypted: DecryptedMessage
        do {
            decrypted = try ServerSession.open(packet, authKey: key)
        } catch {
            return fail(context, code: nil, reason: "undecryptable packet: \(error)")
        }
        let sessionKey = ServerSessionTable.Key(dc: dc, keyID: keyID, sessionID: decrypted.sessionID)
        if sessionKey != lastSession {
            lastSession = sessionKey
            core.updateConnection(connectionID) { $0.authKeyID = keyID; $0.sessionID = decrypted.sessionID }
        }
        let actions = core.receiving(sessionKey, on: connectionID, now: now.seconds, make: { makeSession(key: key, now: now) }) { session, moved in
            // The spec has the server resend what the client has not acknowledged to a new
            // connection: answers that were ready while it was away arrive now.
            (moved ? session.resendUnacknowledged(now: now) : []) + session.receive(decrypted, now: now)
        }
        perform(context, actions, session: sessionKey, now: now)
    }

    /// A new server session of `key`; every session of a key shares its salt schedule.
    private func makeSession(key: AuthKey, now: UnixTime) -> ServerSession {
        let handshakeSalt = self.handshakeSalt
        let core = self.core
        let schedule = core.withState { state in
            state.saltSchedule(dc: dc, keyID: key.id) {
                var entropy = core.entropy
                let salt = handshakeSalt?.keyID == key.id ? handshakeSalt?.salt ?? 0 : entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
                return ServerSaltSchedule(initialSalt: salt, validSince: now, entropy: &entropy)
            }
        }
        return ServerSession(authKey: key, salts: schedule, entropy: core.entropy)
    }

    private func perform(_ context: ChannelHandlerContext, _ actions: [ServerSessionAction], session: ServerSessionTable.Key, now: UnixTime) {
        // What the session wrote for this packet (new_session_created, acks) goes out before
        // anything a request leads to: a bad_server_salt for a request must not be followed by the
        // older new_session_created that names the previous salt.
        var requests: [(messageID: Int64, body: [UInt8])] = []
        for action in actions {
            switch action {
            case .send(let bytes):
                write(context, bytes)
            case .sessionCreated:
                break
            case .request(let messageID, let body):
                requests.append((messageID, body))
            case .messageRejected(_, let code):
                logger.debug("message rejected", metadata: ["bad_msg_code": "\(code)"])
            case .disconnectAfter(let seconds):
                pendingDisconnect?.cancel()
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                pendingDisconnect = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(max(0, seconds)))) {
                    self.closed = true
                    bound.value.close(promise: nil)
                }
            case .acknowledged, .destroySessionRequested, .messageDiscarded:
                break
            }
        }
        for request in requests {
            handleRequest(context, messageID: request.messageID, body: request.body, session: session, now: now)
        }
    }

    private func handleRequest(
        _ context: ChannelHandlerContext, messageID: Int64, body: [UInt8], session: ServerSessionTable.Key, now: UnixTime, rechecked: Bool = false
    ) {
        if core.isDuplicated(connection: connectionID, dc: dc, keyID: session.keyID, sessionID: session.sessionID) {
            // A client that closed its connection and opened a new one right away (a restart, a
            // second client on the same stored key) can be seen here before this server has read
            // the old connection's close. Only a key still used by two connections after a grace
            // period is a duplicate; the request waits that long.
            if !rechecked {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.assumeIsolated().scheduleTask(in: Self.duplicateGrace) {
                    guard !self.closed else { return }
                    let context = bound.value
                    self.handleRequest(context, messageID: messageID, body: body, session: session,
                                       now: UnixTime(seconds: self.core.now(dc: self.dc)), rechecked: true)
                    if !self.closed { context.flush() }
                }
                return
            }
            core.withState { state in
                state.dropAuthKey(dc: dc, keyID: session.keyID)
                state.duplicatedKeyAnswers += 1
            }
            logger.notice("auth key used by two live sessions at once: answering AUTH_KEY_DUPLICATED", metadata: ["key_id": "\(session.keyID)"])
            answer(context, messageID: messageID, with: .error(code: 406, message: "AUTH_KEY_DUPLICATED"), session: session, now: now)
            core.removeSessions(dc: dc, keyID: session.keyID)
            return
        }
        let callContext = CallContext(dc: dc, authKeyID: session.keyID, connectionID: connectionID, sessionID: session.sessionID, messageID: messageID)
        let call = core.withState { $0.handle(body, context: callContext, now: now.seconds) }
        logger.debug("rpc", metadata: ["method": "\(call.method)", "answer": "\(Self.summary(call))"])
        if call.decision.delayMilliseconds > 0 {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(call.decision.delayMilliseconds))) {
                let context = bound.value
                let later = UnixTime(seconds: self.core.now(dc: self.dc))
                self.finish(context, messageID: messageID, call: call, session: session, now: later)
                if !self.closed { context.flush() }
            }
        } else {
            finish(context, messageID: messageID, call: call, session: session, now: now)
        }
        core.deliverPushes()
    }

    /// An update for this connection's session (see UpdatePush.swift); dropped before the session exists.
    private func sendPush(_ context: ChannelHandlerContext, _ body: [UInt8]) {
        guard !closed, let session = lastSession else { return }
        let now = UnixTime(seconds: core.now(dc: dc))
        guard let pushed = core.answering(session, now: now.seconds, { $0.push(body, now: now) }) else { return }
        route(context, pushed.result, to: pushed.connectionID, session: session, now: now)
        context.flush()
    }

    private func finish(_ context: ChannelHandlerContext, messageID: Int64, call: HandledCall, session: ServerSessionTable.Key, now: UnixTime) {
        switch call.decision.outcome {
        case .transportError, .dropBeforeAnswer:
            // The method did not run: the session forgets the request, so a client that asks
            // about it (msgs_state_req) hears "not received" and sends it again.
            _ = core.answering(session, now: now.seconds) { $0.forget(request: messageID) }
        default:
            break
        }
        switch call.decision.outcome {
        case .transportError(let code):
            guard !closed else { return }
            context.write(wrapOutboundOut(.transportError(TransportErrorCode(rawValue: -Int32(clamping: max(1, code))))), promise: nil)
            return
        case .dropBeforeAnswer:
            guard !closed else { return }
            closed = true
            context.close(promise: nil)
            return
        case .badServerSalt:
            rotateSalt(context, refusing: messageID, session: session, now: now)
            return
        case .swallowAnswer:
            return
        case .proceed, .rpcError, .revokeAuthorization, .dropAuthKey, .dropAfterAnswer:
            break
        }
        // The answer goes into the session even when this connection has closed meanwhile (a
        // delayed answer): the client finds it there when it comes back with the same session.
        if let answer = call.answer { self.answer(context, messageID: messageID, with: answer, session: session, now: now) }
        if call.decision.outcome == .dropAfterAnswer, !closed {
            sendQueuedAnswers(context)
            closed = true
            context.flush()
            context.close(promise: nil)
        }
    }

    private func answer(_ context: ChannelHandlerContext, messageID: Int64, with answer: RPCAnswer, session: ServerSessionTable.Key, now: UnixTime) {
        // Within a read the answer waits in the session for the read's end (`sendQueuedAnswers`).
        let waitsForTheRead = isInReadTurn && !closed
        let answered = core.answering(session, now: now.seconds) { machine -> (queued: Bool, output: [ServerSessionAction]) in
            let queued = switch answer {
            case .result(let bytes): machine.queueAnswer(request: messageID, result: bytes)
            case .error(let code, let message): machine.queueAnswer(request: messageID, error: RPCError(code: code, message: message))
            }
            return (queued, queued && !waitsForTheRead ? machine.flush(now: now) : [])
        }
        guard let answered, answered.result.queued else { return }
        if waitsForTheRead {
            if !sessionsToFlush.contains(session) { sessionsToFlush.append(session) }
        } else {
            route(context, answered.result.output, to: answered.connectionID, session: session, now: now)
        }
    }

    /// The badServerSalt fault: the key moves to a fresh salt schedule, and the session refuses
    /// the request with bad_server_salt (the client resends it under the new salt).
    private func rotateSalt(_ context: ChannelHandlerContext, refusing messageID: Int64, session: ServerSessionTable.Key, now: UnixTime) {
        var entropy = core.entropy
        var salt: Int64 = 0
        while salt == 0 { salt = entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } }
        let schedule = ServerSaltSchedule(initialSalt: salt, validSince: now, entropy: &entropy)
        core.withState { $0.replaceSaltSchedule(schedule, dc: dc, keyID: session.keyID) }
        guard let rotated = core.answering(session, now: now.seconds, { $0.rotateSalt(to: schedule, refusing: messageID, now: now) }) else { return }
        route(context, rotated.result, to: rotated.connectionID, session: session, now: now)
    }

    /// Output of a session outside a packet of this connection (an answer, a salt change): it goes
    /// to the connection the session's client uses now, which may be another one, or nowhere (the
    /// client is away; the session keeps what it must resend).
    private func route(_ context: ChannelHandlerContext, _ actions: [ServerSessionAction], to connection: Int, session: ServerSessionTable.Key, now: UnixTime) {
        if connection == connectionID {
            guard !closed else { return }
            perform(context, actions, session: session, now: now)
            return
        }
        guard let channel = core.channel(of: connection) else { return }
        for case .send(let bytes) in actions {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            channel.writeAndFlush(TransportFrame.packet(buffer), promise: nil)
        }
    }

    // MARK: - Output

    private func write(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(.packet(buffer)), promise: nil)
    }

    /// Answers a protocol failure with a transport error (when given) and closes.
    private func fail(_ context: ChannelHandlerContext, code: Int32?, reason: String) {
        logger.notice("closing connection", metadata: ["reason": "\(reason)"])
        if let code {
            context.write(wrapOutboundOut(.transportError(TransportErrorCode(rawValue: -code))), promise: nil)
        }
        closed = true
        context.flush()
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.notice("transport error", metadata: ["error": "\(error)"])
        context.fireErrorCaught(error)
    }

    private static func summary(_ call: HandledCall) -> String {
        switch call.answer {
        case .result(let bytes): "ok (\(bytes.count) bytes)"
        case .error(let code, let message): "error \(code) \(message)"
        case nil: "\(call.decision.outcome)"
        }
    }
}
