import MTProtoCrypto

/// What the server session asks its owner (the test DC) to do, or tells it, after an input.
public enum ServerSessionAction: Sendable, Equatable {
    /// Write this encrypted packet to the client's transport.
    case send([UInt8])
    /// An RPC query for the API layer: answer it with `answer(request:result:now:)` or
    /// `answer(request:error:now:)`. The body is unwrapped from containers and gzip_packed.
    case request(messageID: Int64, body: [UInt8])
    /// The client started a session (a session id this machine had not seen); new_session_created was sent.
    case sessionCreated(sessionID: Int64, firstMessageID: Int64)
    /// The client acknowledged these server messages.
    case acknowledged([Int64])
    /// A client message was refused with bad_msg_notification (or bad_server_salt, code 48).
    case messageRejected(messageID: Int64, code: Int32)
    /// ping_delay_disconnect: close the connection this many seconds from now unless another arrives.
    case disconnectAfter(seconds: Int32)
    /// destroy_session for another session of this auth key: the owner may drop that session's state.
    case destroySessionRequested(sessionID: Int64)
    /// An authenticated message was dropped (malformed body, gzip bomb...). Informational.
    case messageDiscarded(messageID: Int64, SessionError)
}

/// The server end of an encrypted MTProto session, sans IO: the mirror of `ClientSession` that the
/// test DC keeps per (auth key, client session id), across the client's connections. It applies the receive checks from the server's side and answers
/// the service layer itself (salts, time, seq_no, new sessions, pings, state requests, future
/// salts), handing only RPC queries up.
public struct ServerSession: Sendable {
    public let authKey: AuthKey
    /// The client's current session id; nil until its first accepted message.
    public private(set) var clientSessionID: Int64?
    /// Replaced by `rotateSalt(to:refusing:now:)`.
    public private(set) var salts: ServerSaltSchedule
    public var configuration: SessionConfiguration

    private var messageIDs = MessageIDGenerator()
    private var seqNos = SequenceNumberCounter()
    private var received: ReceivedMessageWindow
    private var output: SessionOutput
    private var outbox: [Outbound] = []
    /// Sessions the client moved away from: their late packets are dropped, not switched back to.
    private var retiredSessionIDs: [Int64] = []
    /// Requests handed up and not answered yet.
    private var openRequests: Set<Int64> = []
    /// Content-related messages the client has not acknowledged, as sent: resent with their
    /// original msg_id inside a new container (msg_resend_req, a new connection, a repeated query).
    private var unacknowledged: [Int64: SessionMessage] = [:]
    /// The msg_id of the rpc_result that answered each recent query, for repeated queries.
    private var answers: [Int64: Int64] = [:]
    private var unacknowledgedOrder = InsertionOrder()
    private var answersOrder = InsertionOrder()
    private static let maxUnacknowledged = 1024

    public init(authKey: AuthKey, salts: ServerSaltSchedule, entropy: any EntropySource, configuration: SessionConfiguration = SessionConfiguration()) {
        self.authKey = authKey
        self.salts = salts
        self.output = SessionOutput(authKey: authKey, direction: .serverToClient, entropy: entropy)
        self.configuration = configuration
        self.received = ReceivedMessageWindow(capacity: configuration.receivedWindowCapacity)
    }

    // MARK: - Receiving

    /// Decrypts and checks one packet from the client, answers what the session layer answers, and
    /// hands RPC queries up. Throws only when the packet is not an authentic message of this key
    /// (always fatal: the owner closes the connection); everything else is answered in-protocol.
    public mutating func receive(_ packet: [UInt8], now: UnixTime) throws(SessionError) -> [ServerSessionAction] {
        receive(try Self.open(packet, authKey: authKey), now: now)
    }

    /// Decrypts and authenticates a client packet without a session: an owner that keeps one
    /// session per client session id reads the id here, then hands the message to that session's
    /// `receive(_:now:)`. Throws when the packet is not an authentic message of `authKey`.
    public static func open(_ packet: [UInt8], authKey: AuthKey) throws(SessionError) -> DecryptedMessage {
        try Envelope.open(packet, authKey: authKey, direction: .clientToServer)
    }

    /// `receive(_:now:)` for a packet `open(_:authKey:)` already decrypted with this session's key.
    public mutating func receive(_ decrypted: DecryptedMessage, now: UnixTime) -> [ServerSessionAction] {
        let outer = SessionMessage(messageID: decrypted.messageID, seqNo: decrypted.seqNo, body: decrypted.body)
        var actions: [ServerSessionAction] = []

        guard MessageIDGenerator.kind(of: outer.messageID) == .client else {
            return reject(outer, code: BadMessageCode.messageIDLowBits, sessionID: decrypted.sessionID, now: now)
        }
        let lead = MessageIDGenerator.seconds(of: outer.messageID) - now.seconds
        if lead < -configuration.maxMessageAge {
            return reject(outer, code: BadMessageCode.messageIDTooLow, sessionID: decrypted.sessionID, now: now)
        }
        if lead > configuration.maxMessageLead {
            return reject(outer, code: BadMessageCode.messageIDTooHigh, sessionID: decrypted.sessionID, now: now)
        }
        if !salts.accepts(decrypted.salt, at: now) {
            let salt = salts.current(at: now)
            let notice = ServiceMessage.badServerSalt(
                badMessageID: outer.messageID, badSeqNo: outer.seqNo, code: BadMessageCode.badServerSalt, newSalt: salt)
            return [.send(sealAlone(notice.serialized, sessionID: decrypted.sessionID, now: now)),
                    .messageRejected(messageID: outer.messageID, code: BadMessageCode.badServerSalt)]
        }

        if retiredSessionIDs.contains(decrypted.sessionID), let current = clientSessionID {
            // A late packet of a session the client has left (Telethon's old session can reach
            // the new socket): switching back would wipe the live session's state.
            return [.messageDiscarded(messageID: outer.messageID, .wrongSession(received: decrypted.sessionID, expected: current))]
        }
        var isNewSession = false
        if clientSessionID != decrypted.sessionID {
            // A new session id (Telethon makes one per connection): its seq_no starts over.
            if let previous = clientSessionID {
                retiredSessionIDs.append(previous)
                if retiredSessionIDs.count > 8 { retiredSessionIDs.removeFirst() }
            }
            clientSessionID = decrypted.sessionID
            received.removeAll()
            seqNos = SequenceNumberCounter()
            output.dropAcks()
            unacknowledged.removeAll()
            answers.removeAll()
            unacknowledgedOrder.removeAll()
            answersOrder.removeAll()
            openRequests.removeAll()
            isNewSession = true
        }

        switch received.verdict(for: outer.messageID) {
        case .fresh: break
        case .duplicate:
            // A repeated packet (a replay, or a client resending it whole) is ignored, except that
            // queries in it get their answers again while the client has not acknowledged them
            // (mtproto/service_messages_about_messages). Code 19 is for a container reusing the id
            // of a different, earlier message: answering a replayed container with 19 would make
            // the client resend, and the server run, queries it already ran.
            let isContainer = WireConstructor.of(outer.body) == WireConstructor.messageContainer
            if isContainer, received.entry(outer.messageID)?.isContainer == false {
                return reject(outer, code: BadMessageCode.containerIDReused, sessionID: decrypted.sessionID, now: now)
            }
            var repeated = [outer.messageID]
            if isContainer, let inner = try? MessageContainer.decode(outer.body, containerID: outer.messageID) {
                repeated = inner.map { $0.messageID }
            }
            let answered = repeated.compactMap { answers[$0] }.filter { unacknowledged[$0] != nil }
            return resend(answered, now: now)
        case .tooOld:
            return reject(outer, code: BadMessageCode.messageTooOld, sessionID: decrypted.sessionID, now: now)
        }

        var messages = [outer]
        let isContainer = WireConstructor.of(outer.body) == WireConstructor.messageContainer
        if isContainer {
            do {
                messages = try MessageContainer.decode(outer.body, containerID: outer.messageID)
            } catch {
                return reject(outer, code: BadMessageCode.invalidContainer, sessionID: decrypted.sessionID, now: now)
                    + [.messageDiscarded(messageID: outer.messageID, error)]
            }
        }

        if isNewSession, let first = messages.map(\.messageID).min() {
            let salt = salts.current(at: now)
            let uniqueID = output.randomInt64()
            let notice = ServiceMessage.newSessionCreated(firstMessageID: first, uniqueID: uniqueID, serverSalt: salt)
            outbox.append(Outbound(purpose: .notification, body: notice.serialized, contentRelated: true))
            actions.append(.sessionCreated(sessionID: decrypted.sessionID, firstMessageID: first))
        }

        var rejected: [ServerSessionAction] = []
        var repeatedQueries: [Int64] = []
        for message in messages {
            if isContainer {
                guard MessageIDGenerator.kind(of: message.messageID) == .client else {
                    rejected += reject(message, code: BadMessageCode.messageIDLowBits, sessionID: decrypted.sessionID, now: now)
                    continue
                }
                if received.verdict(for: message.messageID) != .fresh {
                    if message.isContentRelated { acknowledge(message.messageID, now: now) }
                    // A query sent again in a new container (a client unsure whether it arrived):
                    // its answer, when the client has not acknowledged it, goes again; it never runs twice.
                    if let answer = answers[message.messageID], unacknowledged[answer] != nil { repeatedQueries.append(answer) }
                    continue
                }
            }
            if let code = seqNoViolation(message) {
                rejected += reject(message, code: code, sessionID: decrypted.sessionID, now: now)
                continue
            }
            received.insert(message.messageID, seqNo: message.seqNo)
            handle(message, now: now, actions: &actions)
        }
        if isContainer { received.insert(outer.messageID, seqNo: outer.seqNo, isContainer: true) }

        actions += rejected
        actions += resend(repeatedQueries, now: now)
        if !outbox.isEmpty || output.pendingAcks.count >= configuration.ackFlushCount {
            actions += flush(now: now)
        }
        return actions
    }

    /// bad_msg_notification 32-35 (mtproto/service_messages_about_messages), judged against the
    /// nearest remembered neighbours: a content-related message must have a seq_no above every
    /// earlier message's, and below every later one's.
    private func seqNoViolation(_ message: SessionMessage) -> Int32? {
        let constructor = WireConstructor.of(message.body)
        let neverContent = constructor == WireConstructor.msgsAck || constructor == WireConstructor.messageContainer
        if message.isContentRelated && neverContent { return BadMessageCode.seqNoEvenExpected }
        let isQuery = (try? ServiceMessage.decode(message.body)) == .content
        if !message.isContentRelated && isQuery { return BadMessageCode.seqNoOddExpected }
        let (below, above) = received.neighbours(of: message.messageID)
        if let below, message.seqNo < below.seqNo || (message.seqNo == below.seqNo && below.seqNo & 1 == 1) {
            return BadMessageCode.seqNoTooLow
        }
        if let above, message.seqNo > above.seqNo || (message.seqNo == above.seqNo && message.isContentRelated) {
            return BadMessageCode.seqNoTooHigh
        }
        return nil
    }

    private mutating func handle(_ message: SessionMessage, now: UnixTime, actions: inout [ServerSessionAction]) {
        if message.isContentRelated { acknowledge(message.messageID, now: now) }
        let body: [UInt8]
        let service: ServiceMessage
        do {
            (body, service) = try message.unwrappedBody(inflateLimit: configuration.maxInflatedBytes)
        } catch {
            actions.append(.messageDiscarded(messageID: message.messageID, error))
            return
        }
        let id = message.messageID
        switch service {
        case .content:
            openRequests.insert(id)
            actions.append(.request(messageID: id, body: body))
        case .msgsAck(let ids):
            for acked in ids { unacknowledged.removeValue(forKey: acked) }
            actions.append(.acknowledged(ids))
        case .ping(let pingID):
            respond(ServiceMessage.pong(messageID: id, pingID: pingID), to: id)
        case .pingDelayDisconnect(let pingID, let delay):
            respond(ServiceMessage.pong(messageID: id, pingID: pingID), to: id)
            actions.append(.disconnectAfter(seconds: delay))
        case .msgsStateReq(let ids):
            respond(ServiceMessage.msgsStateInfo(requestMessageID: id, info: ids.map(state(of:))), to: id)
        case .msgResendReq(let ids):
            if ids.allSatisfy({ unacknowledged[$0] != nil }) {
                actions += resend(ids, now: now)
            } else {
                respond(ServiceMessage.msgsStateInfo(requestMessageID: id, info: ids.map(state(of:))), to: id)
            }
        case .msgResendAnsReq(let ids):
            // The answers still held (not acknowledged) go again under their msg_ids, and the state
            // of every id with them, as if this were msgs_state_req too: a query still running
            // (+32, no answer yet) tells the client to keep waiting, a forgotten one to send it again.
            actions += resend(ids.compactMap { answers[$0] }.filter { unacknowledged[$0] != nil }, now: now)
            respond(ServiceMessage.msgsStateInfo(requestMessageID: id, info: ids.map(state(of:))), to: id)
        case .getFutureSalts(let count):
            let upcoming = salts.upcoming(Int(count), at: now)
            respond(ServiceMessage.futureSalts(requestMessageID: id, now: Int32(clamping: Int64(now.seconds)), salts: upcoming), to: id)
        case .destroySession(let sessionID):
            // This machine knows one session; the owner decides about the others (see the action).
            respond(ServiceMessage.destroySessionResult(sessionID: sessionID, existed: false), to: id)
            actions.append(.destroySessionRequested(sessionID: sessionID))
        case .rpcDropAnswer(let requestID):
            var writer = WireWriter()
            if openRequests.remove(requestID) != nil {
                writer.write(WireConstructor.rpcAnswerDroppedRunning)
            } else {
                writer.write(WireConstructor.rpcAnswerUnknown)
            }
            outbox.append(Outbound(
                purpose: .response(toMessageID: id),
                body: ServiceMessage.rpcResult(requestMessageID: id, result: writer.bytes).serialized, contentRelated: true))
        case .messageCopy(let original):
            if received.verdict(for: original.messageID) == .fresh,
               WireConstructor.of(original.body) != WireConstructor.messageContainer {
                received.insert(original.messageID, seqNo: original.seqNo)
                handle(original, now: now, actions: &actions)
            } else {
                acknowledge(original.messageID, now: now)
            }
        case .httpWait, .msgsStateInfo, .msgsAllInfo, .msgDetailedInfo, .msgNewDetailedInfo:
            // Informational or HTTP-only: nothing to answer over TCP.
            break
        case .rpcResult, .badMsgNotification, .badServerSalt, .futureSalts, .pong, .destroySessionResult, .newSessionCreated:
            actions.append(.messageDiscarded(messageID: id, .malformedMessage(reason: "server-side constructor sent by the client")))
        }
    }

    /// msgs_state_info's byte for a client message: +32 for a query still running or answered,
    /// and +64 too once its answer exists (held here, so msg_resend_ans_req can send it again).
    /// The client reads +32 alone as "still running" and keeps waiting instead of giving up.
    /// Queries are looked up before the window of received ids: with many calls in flight that
    /// window lets an id go within milliseconds, and "nothing known" of a query still running
    /// would make the client give it up (or, before 2026-12-06, send it again).
    private func state(of messageID: Int64) -> UInt8 {
        if openRequests.contains(messageID) { return 4 | 32 }
        if answers[messageID] != nil { return 4 | 32 | 64 }
        return received.status(of: messageID)
    }

    // MARK: - Sending

    /// Answers an RPC query handed up by `.request` with its serialized result (rpc_result).
    /// Unknown or dropped (rpc_drop_answer) request ids produce nothing.
    public mutating func answer(request messageID: Int64, result: [UInt8], now: UnixTime) -> [ServerSessionAction] {
        guard queueAnswer(request: messageID, result: result) else { return [] }
        return flush(now: now)
    }

    /// Answers an RPC query with rpc_error.
    public mutating func answer(request messageID: Int64, error: RPCError, now: UnixTime) -> [ServerSessionAction] {
        answer(request: messageID, result: error.serialized, now: now)
    }

    /// Queues the answer without sending it: the next `flush` sends it with whatever else is
    /// queued, in one container (a server answering the requests of one read together, as
    /// Telegram's do). False when the request is not open (unknown, answered or dropped).
    public mutating func queueAnswer(request messageID: Int64, result: [UInt8]) -> Bool {
        guard openRequests.remove(messageID) != nil else { return false }
        var payload = result
        if result.count >= configuration.gzipThreshold, let packed = GzipPacked.pack(result) { payload = packed }
        let body = ServiceMessage.rpcResult(requestMessageID: messageID, result: payload).serialized
        outbox.append(Outbound(purpose: .response(toMessageID: messageID), body: body, contentRelated: true))
        return true
    }

    /// `queueAnswer` with rpc_error.
    public mutating func queueAnswer(request messageID: Int64, error: RPCError) -> Bool {
        queueAnswer(request: messageID, result: error.serialized)
    }

    /// Sends a message nobody asked for (an update): content-related, msg_id ≡ 3 (mod 4).
    public mutating func push(_ body: [UInt8], now: UnixTime) -> [ServerSessionAction] {
        push([body], now: now)
    }

    /// `push` for several messages at once: they leave together, in one container.
    public mutating func push(_ bodies: [[UInt8]], now: UnixTime) -> [ServerSessionAction] {
        for body in bodies { outbox.append(Outbound(purpose: .notification, body: body, contentRelated: true)) }
        return flush(now: now)
    }

    /// Sends every content-related message the client has not acknowledged again, under its
    /// original msg_id inside a fresh container: what the spec has a server do when the client
    /// reconnects ("the server will resend not-yet acknowledged content-related messages to a new
    /// connection"), and the client's replay window drops what it already had.
    public mutating func resendUnacknowledged(now: UnixTime) -> [ServerSessionAction] {
        resend(unacknowledged.keys.sorted(), now: now)
    }

    /// Original messages in containers: a message must never be re-sent alone with its old msg_id.
    private mutating func resend(_ ids: [Int64], now: UnixTime) -> [ServerSessionAction] {
        guard let sessionID = clientSessionID else { return [] }
        let originals = ids.compactMap { unacknowledged[$0] }
        guard !originals.isEmpty else { return [] }
        let salt = salts.current(at: now)
        var actions: [ServerSessionAction] = []
        for run in MessageContainer.plan(bodySizes: originals.map { $0.body.count }, maxCount: configuration.maxContainerMessages, maxBytes: configuration.maxContainerBytes) {
            let container = SessionMessage(
                messageID: messageIDs.next(now: now, kind: .serverResponse),
                seqNo: seqNos.next(contentRelated: false), body: MessageContainer.encode(Array(originals[run])))
            actions.append(.send(seal(container, salt: salt, sessionID: sessionID)))
        }
        return actions
    }

    /// A forced salt change (the server rotated its salt just before `request` arrived): from now on
    /// the session announces and accepts `salts`, and the open query `request` is refused with
    /// bad_server_salt carrying the new salt, so the client resends it under a new msg_id and that
    /// salt. The request is no longer open: an answer to it is ignored.
    public mutating func rotateSalt(to salts: ServerSaltSchedule, refusing request: Int64, now: UnixTime) -> [ServerSessionAction] {
        self.salts = salts
        guard let sessionID = clientSessionID, openRequests.remove(request) != nil else { return [] }
        let notice = ServiceMessage.badServerSalt(
            badMessageID: request, badSeqNo: received.entry(request)?.seqNo ?? 0, code: BadMessageCode.badServerSalt,
            newSalt: salts.current(at: now))
        return [.send(sealAlone(notice.serialized, sessionID: sessionID, now: now)),
                .messageRejected(messageID: request, code: BadMessageCode.badServerSalt)]
    }

    /// Drops an open query unprocessed, as if it had never arrived (the server refused it with a
    /// transport error, or lost the connection before running it): it is not acknowledged, and
    /// msgs_state_req reports it not received, so the client sends it again and it runs once.
    public mutating func forget(request: Int64) {
        guard openRequests.remove(request) != nil else { return }
        received.remove(request)
        output.withdrawAck(request)
    }

    /// Acknowledgements that waited long enough.
    public mutating func tick(now: UnixTime) -> [ServerSessionAction] {
        if output.acksDue(now: now, delay: configuration.ackFlushDelay) { return flush(now: now) }
        return outbox.isEmpty ? [] : flush(now: now)
    }

    /// Everything queued plus waiting acks, packed into containers within the limits.
    public mutating func flush(now: UnixTime) -> [ServerSessionAction] {
        guard let sessionID = clientSessionID else { return [] }
        var items = output.takeAcks()
        items += outbox
        outbox.removeAll()
        guard !items.isEmpty else { return [] }
        let salt = salts.current(at: now)
        var actions: [ServerSessionAction] = []
        for run in MessageContainer.plan(bodySizes: items.map { $0.body.count }, maxCount: configuration.maxContainerMessages, maxBytes: configuration.maxContainerBytes) {
            var messages: [SessionMessage] = []
            for index in run {
                let item = items[index]
                let kind: MessageIDKind = item.purpose == .notification ? .serverInitiated : .serverResponse
                let message = SessionMessage(
                    messageID: messageIDs.next(now: now, kind: kind), seqNo: seqNos.next(contentRelated: item.contentRelated), body: item.body)
                if item.contentRelated {
                    // msg_ids only grow, so the first added is the oldest.
                    if unacknowledged.count >= Self.maxUnacknowledged,
                       let oldest = unacknowledgedOrder.popOldest(in: unacknowledged) {
                        unacknowledged.removeValue(forKey: oldest)
                    }
                    unacknowledged[message.messageID] = message
                    unacknowledgedOrder.append(message.messageID, in: unacknowledged)
                    if case .response(let request) = item.purpose, WireConstructor.of(item.body) == WireConstructor.rpcResult {
                        if answers.count >= Self.maxUnacknowledged, let oldest = answersOrder.popOldest(in: answers) {
                            answers.removeValue(forKey: oldest)
                        }
                        if answers.updateValue(message.messageID, forKey: request) == nil {
                            answersOrder.append(request, in: answers)
                        }
                    }
                }
                messages.append(message)
            }
            let packet: SessionMessage
            if messages.count == 1 {
                packet = messages[0]
            } else {
                let kind: MessageIDKind = run.allSatisfy { items[$0].purpose == .notification } ? .serverInitiated : .serverResponse
                packet = SessionMessage(messageID: messageIDs.next(now: now, kind: kind), seqNo: seqNos.next(contentRelated: false), body: MessageContainer.encode(messages))
            }
            actions.append(.send(seal(packet, salt: salt, sessionID: sessionID)))
        }
        return actions
    }

    private mutating func respond(_ service: ServiceMessage, to messageID: Int64) {
        outbox.append(Outbound(purpose: .response(toMessageID: messageID), body: service.serialized, contentRelated: false))
    }

    private mutating func acknowledge(_ messageID: Int64, now: UnixTime) {
        output.acknowledge(messageID, now: now)
    }

    /// bad_msg_notification goes out alone: Telethon drops a container whose msg_id time looks off,
    /// and a client with a skewed clock judges every id that way.
    private mutating func reject(_ message: SessionMessage, code: Int32, sessionID: Int64, now: UnixTime) -> [ServerSessionAction] {
        let notice = ServiceMessage.badMsgNotification(badMessageID: message.messageID, badSeqNo: message.seqNo, code: code)
        return [.send(sealAlone(notice.serialized, sessionID: sessionID, now: now)),
                .messageRejected(messageID: message.messageID, code: code)]
    }

    private mutating func sealAlone(_ body: [UInt8], sessionID: Int64, now: UnixTime) -> [UInt8] {
        let salt = salts.current(at: now)
        let message = SessionMessage(messageID: messageIDs.next(now: now, kind: .serverResponse), seqNo: seqNos.next(contentRelated: false), body: body)
        return seal(message, salt: salt, sessionID: sessionID)
    }

    private mutating func seal(_ message: SessionMessage, salt: Int64, sessionID: Int64) -> [UInt8] {
        output.seal(message, salt: salt, sessionID: sessionID, maxExtraPaddingBlocks: configuration.maxExtraPaddingBlocks)
    }
}

extension ServerSession: CustomStringConvertible, CustomReflectable {
    /// `dump` and debuggers see the description, not the key's bytes or the salt seed.
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }

    /// Ids and counts only: never key material.
    public var description: String {
        let session = clientSessionID.map { String(UInt64(bitPattern: $0), radix: 16) } ?? "none yet"
        return "ServerSession(client session: \(session), \(authKey), open requests: \(openRequests.count))"
    }
}
