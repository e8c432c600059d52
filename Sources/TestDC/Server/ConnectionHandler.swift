import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore
import TL

/// One client connection of one DC: the key exchange while packets carry auth_key_id 0, then the
/// encrypted session, with RPC queries answered from the shared state under the fault rules.
final class TestDCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = TransportFrame
    typealias OutboundOut = TransportFrame

    private let core: TestDCCore
    private let dc: Int32
    private let handshakeConfiguration: ServerHandshake.Configuration
    private var logger: Logger
    private var connectionID = 0
    private var handshake: ServerHandshake?
    private var session: ServerSession?
    /// The salt the last handshake on this connection derived, for the session that follows.
    private var handshakeSalt: (keyID: Int64, salt: Int64)?
    private var entropy: any EntropySource = SystemEntropy()
    private var closed = false
    /// Bumped when a fault restarts the session: what the old session still had to send is dropped.
    private var sessionGeneration = 0
    /// The close ping_delay_disconnect asked for; each new one replaces it.
    private var pendingDisconnect: Scheduled<Void>?

    init(core: TestDCCore, dc: Int32, handshakeConfiguration: ServerHandshake.Configuration, logger: Logger) {
        self.core = core
        self.dc = dc
        self.handshakeConfiguration = handshakeConfiguration
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
        context.flush()
    }

    // MARK: - Key exchange

    private func receiveHandshake(_ context: ChannelHandlerContext, _ packet: [UInt8]) {
        var machine = handshake ?? ServerHandshake(configuration: handshakeConfiguration, entropy: SystemEntropy())
        let now = UnixTime(seconds: core.now(dc: dc))
        do {
            switch try machine.receive(packet, now: now) {
            case .send(let reply):
                handshake = machine
                write(context, reply)
            case .sendAndComplete(let reply, let result):
                handshake = nil
                core.withState { $0.registerAuthKey(result.authKey, dc: dc) }
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
        if session?.authKey.id != keyID {
            guard let key = core.withState({ $0.authKey(id: keyID, dc: dc) }) else {
                return fail(context, code: 404, reason: "unknown auth key id \(keyID)")
            }
            let schedule = core.withState { state in
                state.saltSchedule(dc: dc, keyID: keyID) {
                    var entropy = SystemEntropy()
                    let salt = handshakeSalt?.keyID == keyID ? handshakeSalt?.salt ?? 0 : Int64(bitPattern: UInt64.random(in: .min ... .max))
                    return ServerSaltSchedule(initialSalt: salt, validSince: now, entropy: &entropy)
                }
            }
            session = ServerSession(authKey: key, salts: schedule, entropy: SystemEntropy())
            core.updateConnection(connectionID) { $0.authKeyID = keyID; $0.sessionID = nil }
        }
        guard var machine = session else { return }
        let actions: [ServerSessionAction]
        do {
            actions = try machine.receive(packet, now: now)
        } catch {
            session = machine
            return fail(context, code: nil, reason: "undecryptable packet: \(error)")
        }
        session = machine
        perform(context, actions, now: now)
    }

    private func perform(_ context: ChannelHandlerContext, _ actions: [ServerSessionAction], now: UnixTime) {
        let generation = sessionGeneration
        for action in actions {
            switch action {
            case .send(let bytes):
                if generation == sessionGeneration { write(context, bytes) }
            case .sessionCreated(let sessionID, _):
                core.updateConnection(connectionID) { $0.sessionID = sessionID }
            case .request(let messageID, let body):
                handleRequest(context, messageID: messageID, body: body, now: now)
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
    }

    private func handleRequest(_ context: ChannelHandlerContext, messageID: Int64, body: [UInt8], now: UnixTime) {
        guard let keyID = session?.authKey.id else { return }
        if let sessionID = session?.clientSessionID, core.isDuplicated(connection: connectionID, dc: dc, keyID: keyID, sessionID: sessionID) {
            core.withState { $0.dropAuthKey(dc: dc, keyID: keyID) }
            logger.notice("auth key used by two live sessions at once: answering AUTH_KEY_DUPLICATED", metadata: ["key_id": "\(keyID)"])
            answer(context, messageID: messageID, with: .error(code: 406, message: "AUTH_KEY_DUPLICATED"), now: now)
            return
        }
        let callContext = CallContext(dc: dc, authKeyID: keyID, connectionID: connectionID)
        let call = core.withState { $0.handle(body, context: callContext, now: now.seconds) }
        logger.debug("rpc", metadata: ["method": "\(call.method)", "answer": "\(Self.summary(call))"])
        if call.decision.delayMilliseconds > 0 {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(call.decision.delayMilliseconds))) {
                let context = bound.value
                let later = UnixTime(seconds: self.core.now(dc: self.dc))
                self.finish(context, messageID: messageID, call: call, now: later)
                context.flush()
            }
        } else {
            finish(context, messageID: messageID, call: call, now: now)
        }
        core.deliverPushes()
    }

    /// An update for this connection's session (see UpdatePush.swift); dropped before the session exists.
    private func sendPush(_ context: ChannelHandlerContext, _ body: [UInt8]) {
        guard !closed, var machine = session, machine.clientSessionID != nil else { return }
        let now = UnixTime(seconds: core.now(dc: dc))
        let actions = machine.push(body, now: now)
        session = machine
        perform(context, actions, now: now)
        context.flush()
    }

    private func finish(_ context: ChannelHandlerContext, messageID: Int64, call: HandledCall, now: UnixTime) {
        guard !closed else { return }
        switch call.decision.outcome {
        case .transportError(let code):
            context.write(wrapOutboundOut(.transportError(TransportErrorCode(rawValue: -Int32(clamping: max(1, code))))), promise: nil)
            return
        case .dropBeforeAnswer:
            closed = true
            context.close(promise: nil)
            return
        case .badServerSalt:
            sendBadServerSalt(context, messageID: messageID, now: now)
            return
        case .proceed, .rpcError, .revokeAuthorization, .dropAuthKey, .dropAfterAnswer:
            break
        }
        if let answer = call.answer { self.answer(context, messageID: messageID, with: answer, now: now) }
        if call.decision.outcome == .dropAfterAnswer {
            closed = true
            context.flush()
            context.close(promise: nil)
        }
    }

    private func answer(_ context: ChannelHandlerContext, messageID: Int64, with answer: RPCAnswer, now: UnixTime) {
        guard var machine = session else { return }
        let actions: [ServerSessionAction]
        switch answer {
        case .result(let bytes):
            actions = machine.answer(request: messageID, result: bytes, now: now)
        case .error(let code, let message):
            actions = machine.answer(request: messageID, error: RPCError(code: code, message: message), now: now)
        }
        session = machine
        perform(context, actions, now: now)
    }

    /// Moves this connection to a fresh salt and tells the client with bad_server_salt for its request,
    /// which it then resends (the session machine has no "rotate now" input, so the session restarts).
    private func sendBadServerSalt(_ context: ChannelHandlerContext, messageID: Int64, now: UnixTime) {
        guard let current = session, let sessionID = current.clientSessionID else { return }
        let newSalt = Int64(bitPattern: UInt64.random(in: 1 ... .max))
        var body = TLWriter()
        body.writeConstructorID(0xedab447b)
        body.writeInt64(messageID)
        body.writeInt32(0)
        body.writeInt32(48)
        body.writeInt64(newSalt)
        var plain = TLWriter()
        plain.writeInt64(newSalt)
        plain.writeInt64(sessionID)
        let whole = DCState.date(now.seconds)
        let fraction = min(max(now.seconds - Double(whole), 0), 0.999_999)
        plain.writeInt64(Int64(whole) << 32 | (Int64(fraction * 4_294_967_296) & ~3) | 1)
        plain.writeInt32(0)
        plain.writeInt32(Int32(body.count))
        plain.writeRawBytes(body.bytes)
        let packet = MessageCrypto.encrypt(plain.bytes, authKey: current.authKey, direction: .serverToClient, entropy: &entropy)
        var saltEntropy = SystemEntropy()
        let schedule = ServerSaltSchedule(initialSalt: newSalt, validSince: now, entropy: &saltEntropy)
        core.withState { $0.replaceSaltSchedule(schedule, dc: dc, keyID: current.authKey.id) }
        session = ServerSession(authKey: current.authKey, salts: schedule, entropy: SystemEntropy())
        sessionGeneration += 1
        write(context, packet)
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
