import MTProtoCrypto

/// The client end of an encrypted MTProto session, sans IO: inputs are method calls carrying `now`,
/// outputs are `ClientSessionAction`s (packets to write, results, events). It owns msg_id/seq_no
/// generation, the receive checks of security_guidelines, containers, gzip, acknowledgements,
/// request tracking and the service messages that repair salts, clocks and sessions.
///
/// One value per session (auth key + session id); the connection owner feeds it every packet of
/// the transport and writes every `.send`. A fatal `SessionError` from `receive` means: close the
/// connection, reconnect, and call `requestState(of:now:)` or `resend(_:now:)` for what is pending.
public struct ClientSession: Sendable {
    public let authKey: AuthKey
    public private(set) var sessionID: Int64
    /// The salt the next packet carries.
    public private(set) var serverSalt: Int64
    /// Salts from future_salts, used when their validity starts.
    public private(set) var futureSalts: [FutureSalt] = []
    public var configuration: SessionConfiguration
    /// Whether server msg_ids are checked against the clock: once the offset is known good (a server
    /// message inside the window, or a 16/17 correction). Before, a skewed local clock would make
    /// every server message look stale and the skew could never be repaired.
    public private(set) var isTimeSynchronized = false

    private var messageIDs: MessageIDGenerator
    private var seqNos = SequenceNumberCounter()
    private var received: ReceivedMessageWindow
    private var output: SessionOutput
    private var outbox: [Outbound] = []
    private var sent = MessageIDTable<SentMessage>()
    private var requestMessageIDs: [RequestID: Int64] = [:]
    /// Earlier msg_ids of requests that were resent, so a late answer to the old id still lands.
    private var supersededMessageIDs = MessageIDTable<RequestID>()
    /// Sent requests the owner does not want under a new msg_id (see `withholdResends(of:)`), and
    /// those of them dropped since the last report.
    private var withheld: Set<RequestID> = []
    private var droppedInsteadOfResent: [RequestID] = []
    /// Requests sent again under a new msg_id since the last report (`.resent`).
    private var resentRequests: [RequestID] = []
    private var nextRequestNumber: UInt64 = 1
    /// The highest msg_id of ours the server has answered or acknowledged: over one ordered
    /// connection it has processed every packet sent before, so nothing older can still be named
    /// by a bad_msg_notification and records that expect no answer can go.
    private var highestConfirmedMessageID: Int64 = 0
    /// first_msg_id of the server's latest new_session_created. A state report about an id below
    /// it speaks for a session that never saw that message ("not received"), while the session
    /// before may have run it: such reports are ignored, and `.newSessionCreated` leaves those
    /// requests to the owner. (Resending on them sent a write the owner had just failed in doubt,
    /// and a read the owner resent, a second time.)
    private var serverSessionFirstMessageID: Int64 = 0

    /// `timeOffset`: server clock minus local clock, in seconds, if already known (e.g. from the
    /// handshake's server_time); 16/17 notifications correct it later anyway. `futureSalts`: salts
    /// kept from an earlier run (salts belong to the auth key, not the session). A restarted client
    /// should pass a fresh `sessionID`: seq_no and the replay window are not persisted.
    public init(
        authKey: AuthKey, sessionID: Int64, serverSalt: Int64, timeOffset: Double = 0, futureSalts: [FutureSalt] = [],
        entropy: any EntropySource, configuration: SessionConfiguration = SessionConfiguration()
    ) {
        self.authKey = authKey
        self.sessionID = sessionID
        self.serverSalt = serverSalt
        self.futureSalts = futureSalts.sorted { $0.validSince < $1.validSince }
        self.messageIDs = MessageIDGenerator(timeOffset: timeOffset)
        self.received = ReceivedMessageWindow(capacity: configuration.receivedWindowCapacity)
        self.output = SessionOutput(authKey: authKey, direction: .clientToServer, entropy: entropy)
        self.configuration = configuration
    }

    /// Server clock minus local clock, in seconds.
    public var timeOffset: Double { messageIDs.timeOffset }

    public mutating func setTimeOffset(_ offset: Double) { messageIDs.setTimeOffset(offset) }

    /// Requests sent or queued and not yet answered.
    public var pendingRequests: [RequestID] { requestMessageIDs.keys.sorted() + outbox.compactMap(\.purpose.requestID) }

    /// The msg_id a request was last sent under, for the API layer (e.g. invokeAfterMsg).
    public func messageID(of request: RequestID) -> Int64? { requestMessageIDs[request] }

    /// Whether the request waits in the outbox for the next flush (never sent, or queued to be sent
    /// again), as opposed to in flight or already answered.
    public func isQueued(_ request: RequestID) -> Bool {
        outbox.contains { $0.purpose == .request(request) }
    }

    /// Whether an earlier copy of the request went out (it waits in the outbox to be sent again):
    /// the server may have run it.
    public func wasSentBefore(_ request: RequestID) -> Bool {
        supersededMessageIDs.contains { $0.value == request }
    }

    /// The sizes of the session's books, for leak tests and operators: all zero once every
    /// request was answered or cancelled and `tick` ran past the retention of service messages.
    public struct Bookkeeping: Sendable, Hashable {
        public var sentMessages: Int
        public var requests: Int
        public var supersededMessageIDs: Int
        public var queued: Int
        public var pendingAcks: Int

        public var isEmpty: Bool { sentMessages == 0 && requests == 0 && supersededMessageIDs == 0 && queued == 0 && pendingAcks == 0 }
    }

    public var bookkeeping: Bookkeeping {
        Bookkeeping(
            sentMessages: sent.count, requests: requestMessageIDs.count, supersededMessageIDs: supersededMessageIDs.count,
            queued: outbox.count, pendingAcks: output.pendingAcks.count)
    }

    /// When waiting acknowledgements fall due for a flush of their own, for the owner's timer.
    public var acknowledgementsDueAt: UnixTime? { output.acksDueAt(delay: configuration.ackFlushDelay) }

    // MARK: - Sending

    /// Messages waiting for the next `flush`.
    public var queuedCount: Int { outbox.count }

    /// Queues an RPC query (a serialized API function call) for the next `flush`.
    public mutating func enqueue(request body: [UInt8]) -> RequestID {
        let id = RequestID(rawValue: nextRequestNumber)
        nextRequestNumber += 1
        var payload = body
        if body.count >= configuration.gzipThreshold, let packed = GzipPacked.pack(body) { payload = packed }
        outbox.append(Outbound(purpose: .request(id), body: payload, contentRelated: true))
        return id
    }

    /// Queues auth.bindTempAuthKey for the next `flush`. Its encrypted_message names the request's
    /// own msg_id and this session's id, so the body is made when the msg_id is assigned, and made
    /// anew if the request is ever resent under another one.
    public mutating func enqueue(binding: TemporaryKeyBinding) -> RequestID {
        let id = RequestID(rawValue: nextRequestNumber)
        nextRequestNumber += 1
        // A stand-in of the right size, for container planning; `record` builds the real body.
        let placeholder = binding.request(messageID: 0, sessionID: sessionID)
        outbox.append(Outbound(purpose: .request(id), body: placeholder, contentRelated: true, binding: binding))
        return id
    }

    /// Queues a request and sends everything pending (acks included) right away.
    public mutating func send(request body: [UInt8], now: UnixTime) -> (RequestID, [ClientSessionAction]) {
        let id = enqueue(request: body)
        return (id, flush(now: now))
    }

    public mutating func ping(id pingID: Int64, now: UnixTime) -> [ClientSessionAction] {
        outbox.append(Outbound(purpose: .ping(pingID), body: ServiceMessage.ping(pingID: pingID).serialized, contentRelated: true))
        return flush(now: now)
    }

    /// ping_delay_disconnect: the server closes the connection `disconnectDelay` seconds after the
    /// last such ping, so a client that pings every 60 s with 75 s notices a dead link server-side too.
    public mutating func pingDelayDisconnect(id pingID: Int64, disconnectDelay: Int32, now: UnixTime) -> [ClientSessionAction] {
        let body = ServiceMessage.pingDelayDisconnect(pingID: pingID, disconnectDelay: disconnectDelay).serialized
        outbox.append(Outbound(purpose: .ping(pingID), body: body, contentRelated: true))
        return flush(now: now)
    }

    /// get_future_salts: between 1 and 64 salts ahead, stored when they arrive.
    public mutating func requestFutureSalts(count: Int32, now: UnixTime) -> [ClientSessionAction] {
        let clamped = min(max(count, 1), 64)
        outbox.append(Outbound(purpose: .futureSalts, body: ServiceMessage.getFutureSalts(count: clamped).serialized, contentRelated: true))
        return flush(now: now)
    }

    /// destroy_session for another session of the same auth key (e.g. the one before a restart).
    public mutating func destroySession(_ otherSessionID: Int64, now: UnixTime) -> [ClientSessionAction] {
        let body = ServiceMessage.destroySession(sessionID: otherSessionID).serialized
        outbox.append(Outbound(purpose: .destroySession(otherSessionID), body: body, contentRelated: true))
        return flush(now: now)
    }

    /// msgs_state_req for requests whose fate is unknown (typically after a reconnect): those the
    /// server reports as not received are resent with new msg_ids when the answer arrives.
    public mutating func requestState(of requests: [RequestID], now: UnixTime) -> [ClientSessionAction] {
        let ids = requests.compactMap { requestMessageIDs[$0] }
        guard !ids.isEmpty else { return flush(now: now) }
        for chunk in ids.chunked(ServiceMessage.maxIDs) {
            outbox.append(Outbound(purpose: .stateRequest(chunk), body: ServiceMessage.msgsStateReq(chunk).serialized, contentRelated: false))
        }
        return flush(now: now)
    }

    /// Sends pending requests again under new msg_ids (after new_session_created or a reset, when
    /// the caller decides they are safe to repeat). Unknown or already answered ids are skipped.
    public mutating func resend(_ requests: [RequestID], now: UnixTime) -> [ClientSessionAction] {
        for request in requests {
            if let messageID = requestMessageIDs[request] { resendMessage(messageID) }
        }
        return reportResends() + flush(now: now)
    }

    /// Sent requests that must not go out again under a new msg_id, for a reason of the owner's (the
    /// server asked to wait before calling their method again). Should the server report one as not
    /// processed (bad_server_salt, msg_id out of range, msgs_state_info "not received", a seq_no
    /// reset), it is dropped instead of resent and reported with `.resendWithheld`: it did not run.
    /// An answer that still arrives for one is delivered as usual.
    public mutating func withholdResends(of requests: [RequestID]) {
        for request in requests where requestMessageIDs[request] != nil { withheld.insert(request) }
    }

    /// Ends `withholdResends(of:)` for these requests (their reason is over).
    public mutating func allowResends(of requests: [RequestID]) {
        for request in requests { withheld.remove(request) }
    }

    /// Gives up on a request (a timeout, a caller that went away): no action names it again. If it
    /// was already sent, rpc_drop_answer asks the server to drop its answer instead of sending (and
    /// re-sending) it; a result that still arrives is acknowledged and ignored.
    public mutating func cancel(_ request: RequestID, now: UnixTime) -> [ClientSessionAction] {
        cancel(request) ? flush(now: now) : []
    }

    /// `cancel(_:now:)` without sending: the rpc_drop_answer waits for the next flush (e.g. while
    /// the connection is down). Returns whether something was queued.
    @discardableResult
    public mutating func cancel(_ request: RequestID) -> Bool {
        if let index = outbox.firstIndex(where: { $0.purpose == .request(request) }) {
            outbox.remove(at: index)
            return false
        }
        guard let messageID = requestMessageIDs[request] else {
            complete(request)
            return false
        }
        complete(request)
        let body = ServiceMessage.rpcDropAnswer(requestMessageID: messageID).serialized
        outbox.append(Outbound(purpose: .dropAnswer, body: body, contentRelated: true))
        return true
    }

    /// msg_resend_ans_req for requests the server reported as received but whose answer never came:
    /// the server sends the answer again if it has one, and msgs_state_info for them all. That
    /// report resends a request the server says it never received, and names with `.stillRunning`
    /// those it is still working on. Queued for the next flush.
    public mutating func requestAnswers(of requests: [RequestID]) {
        let ids = requests.compactMap { requestMessageIDs[$0] }
        for chunk in ids.chunked(ServiceMessage.maxIDs) {
            outbox.append(Outbound(purpose: .answerRequest(chunk), body: ServiceMessage.msgResendAnsReq(chunk).serialized, contentRelated: false))
        }
    }

    /// Switches to a new session id (e.g. after the transport was replaced and the owner wants a
    /// fresh session). seq_no and the replay window restart; pending requests stay pending, to be
    /// resent or abandoned by the caller. Returns the new id.
    @discardableResult
    public mutating func startNewSession() -> Int64 {
        var newID: Int64 = 0
        repeat {
            newID = output.randomInt64()
        } while newID == 0 || newID == sessionID
        sessionID = newID
        seqNos = SequenceNumberCounter()
        received.removeAll()
        output.dropAcks()
        return newID
    }

    /// Encrypts everything queued, with waiting acknowledgements, into as few packets as the
    /// container limits allow.
    public mutating func flush(now: UnixTime) -> [ClientSessionAction] {
        var items = output.takeAcks()
        if items.isEmpty {
            swap(&items, &outbox)
        } else {
            items.append(contentsOf: outbox)
            outbox.removeAll()
        }
        guard !items.isEmpty else { return [] }
        selectSalt(now: now)

        var actions: [ClientSessionAction] = []
        let runs = MessageContainer.plan(
            bodySizes: items.map { $0.body.count }, maxCount: configuration.maxContainerMessages, maxBytes: configuration.maxContainerBytes)
        // Each message moves from the queue into the sent table (taken from the end, so nothing is
        // copied): a copy retains its body, which the caller's thread made, and with callers off
        // the loop that refcount's cache line comes from another CPU (perf, 2026-12-06, 64 calls
        // in flight: the copies here were 2.6% of the client loop, nearly all of it swift_retain).
        items.reverse()
        for run in runs {
            if run.count == 1 {
                guard let item = items.popLast() else { break }
                let message = record(item, now: now)
                actions.append(.send(seal(message)))
                continue
            }
            var inner: [SessionMessage] = []
            for _ in run {
                guard let item = items.popLast() else { break }
                inner.append(record(item, now: now))
            }
            let containerID = messageIDs.next(now: now, kind: .client)
            let containerSeqNo = seqNos.next(contentRelated: false)
            sent[containerID] = SentMessage(
                outbound: Outbound(purpose: .container(inner.map { $0.messageID }), body: [], contentRelated: false),
                messageID: containerID, seqNo: containerSeqNo, sentAt: now)
            let container = SessionMessage(messageID: containerID, seqNo: containerSeqNo, body: MessageContainer.encode(inner))
            actions.append(.send(seal(container)))
        }
        return actions
    }

    /// Time-driven work: acknowledgements that waited long enough, and forgetting old sent records.
    public mutating func tick(now: UnixTime) -> [ClientSessionAction] {
        prune(now: now)
        if output.acksDue(now: now, delay: configuration.ackFlushDelay) { return flush(now: now) }
        if !outbox.isEmpty { return flush(now: now) }
        return []
    }

    /// Forgets sent records nothing can refer to any more. Requests stay until answered or
    /// cancelled. Other messages that expect an answer (pings, state requests, rpc_drop_answer...)
    /// stay until answered or `sentMessageRetention` old: an answer lost with a connection must not
    /// pin them forever. Messages that expect none go once the server confirmed them or anything
    /// sent after them, or when too old to be named by a notification; a container goes with the
    /// last of its contents.
    private mutating func prune(now: UnixTime) {
        let horizon = now.seconds - configuration.sentMessageRetention
        var kept = MessageIDTable<SentMessage>()
        kept.reserveCapacity(sent.count)
        var containers: [(Int64, SentMessage)] = []
        for (messageID, entry) in sent {
            switch entry.outbound.purpose {
            case .request:
                kept[messageID] = entry
            case .container:
                if entry.sentAt.seconds >= horizon { containers.append((messageID, entry)) }
            default:
                guard entry.sentAt.seconds >= horizon else { continue }
                if entry.outbound.purpose.awaitsAnswer || (!entry.acknowledged && messageID > highestConfirmedMessageID) {
                    kept[messageID] = entry
                }
            }
        }
        for (messageID, entry) in containers {
            if case .container(let inner) = entry.outbound.purpose, inner.contains(where: { kept[$0] != nil }) {
                kept[messageID] = entry
            }
        }
        sent = kept
        supersededMessageIDs.removeAll { requestMessageIDs[$1] == nil }
    }

    private mutating func record(_ item: consuming Outbound, now: UnixTime) -> SessionMessage {
        let messageID = messageIDs.next(now: now, kind: .client)
        let seqNo = seqNos.next(contentRelated: item.contentRelated)
        if case .request(let request) = item.purpose { requestMessageIDs[request] = messageID }
        let body = item.binding.map { $0.request(messageID: messageID, sessionID: sessionID) } ?? item.body
        sent[messageID] = SentMessage(outbound: item, messageID: messageID, seqNo: seqNo, sentAt: now)
        return SessionMessage(messageID: messageID, seqNo: seqNo, body: body)
    }

    private mutating func seal(_ message: SessionMessage) -> [UInt8] {
        output.seal(message, salt: serverSalt, sessionID: sessionID, maxExtraPaddingBlocks: configuration.maxExtraPaddingBlocks)
    }

    /// Moves to a future salt once its validity has begun (server time), dropping expired ones.
    private mutating func selectSalt(now: UnixTime) {
        guard !futureSalts.isEmpty else { return }
        let serverTime = now.seconds + messageIDs.timeOffset
        futureSalts.removeAll { Double($0.validUntil) <= serverTime }
        if let valid = futureSalts.filter({ $0.isValid(at: serverTime) }).max(by: { $0.validSince < $1.validSince }) {
            serverSalt = valid.salt
        }
    }

    /// Takes a sent message out of the books and queues its content again (new msg_id at flush).
    /// Containers resend their contents; acks go back to the pending list.
    @discardableResult
    private mutating func resendMessage(_ messageID: Int64) -> Bool {
        guard let entry = sent.removeValue(forKey: messageID) else { return false }
        switch entry.outbound.purpose {
        case .container(let inner):
            for id in inner { resendMessage(id) }
        case .acks(let ids):
            output.requeueAcks(ids, since: entry.sentAt)
        case .request(let request) where withheld.contains(request):
            complete(request)
            droppedInsteadOfResent.append(request)
        case .request(let request):
            supersededMessageIDs[messageID] = request
            requestMessageIDs.removeValue(forKey: request)
            resentRequests.append(request)
            outbox.append(entry.outbound)
        default:
            outbox.append(entry.outbound)
        }
        return true
    }

    /// Forgets a request that got its final answer, under every msg_id it had.
    private mutating func complete(_ request: RequestID) {
        if let messageID = requestMessageIDs.removeValue(forKey: request) { sent.removeValue(forKey: messageID) }
        supersededMessageIDs.removeAll { $1 == request }
        withheld.remove(request)
    }

    /// The requests resent and the withheld ones dropped since the last report, as actions.
    private mutating func reportResends() -> [ClientSessionAction] {
        guard !droppedInsteadOfResent.isEmpty || !resentRequests.isEmpty else { return [] }
        var report: [ClientSessionAction] = []
        if !resentRequests.isEmpty { report.append(.resent(resentRequests)) }
        if !droppedInsteadOfResent.isEmpty { report.append(.resendWithheld(droppedInsteadOfResent)) }
        resentRequests.removeAll()
        droppedInsteadOfResent.removeAll()
        return report
    }

    private func requestsInside(_ messageID: Int64) -> [RequestID] {
        guard let entry = sent[messageID] else { return [] }
        switch entry.outbound.purpose {
        case .request(let request): return [request]
        case .container(let inner): return inner.flatMap { requestsInside($0) }
        default: return []
        }
    }

    // MARK: - Receiving

    /// Decrypts and checks one packet from the server and handles what it carries.
    /// Throws when the packet (or its container) must be dropped as a whole; see `SessionError.isFatal`.
    public mutating func receive(_ packet: [UInt8], now: UnixTime) throws(SessionError) -> [ClientSessionAction] {
        let decrypted = try Envelope.open(packet, authKey: authKey, direction: .serverToClient)
        guard decrypted.sessionID == sessionID else {
            throw .wrongSession(received: decrypted.sessionID, expected: sessionID)
        }
        let outer = SessionMessage(messageID: decrypted.messageID, seqNo: decrypted.seqNo, body: decrypted.body)
        try checkIdentity(outer.messageID)

        var messages = [outer]
        let isContainer = WireConstructor.of(outer.body) == WireConstructor.messageContainer
        if isContainer {
            messages = try MessageContainer.decode(outer.body, containerID: outer.messageID)
            for inner in messages where MessageIDGenerator.kind(of: inner.messageID) != .serverResponse
                && MessageIDGenerator.kind(of: inner.messageID) != .serverInitiated {
                throw .wrongMessageIDParity(messageID: inner.messageID)
            }
        }
        try checkTime(outer.messageID, carrying: messages, now: now)

        received.insert(outer.messageID, seqNo: outer.seqNo, isContainer: isContainer)
        var actions: [ClientSessionAction] = []
        for message in messages {
            if isContainer {
                // The server resends unacknowledged messages in new containers: ack again, handle once.
                if received.verdict(for: message.messageID) != .fresh {
                    if message.isContentRelated { acknowledge(message.messageID, now: now) }
                    continue
                }
                received.insert(message.messageID, seqNo: message.seqNo)
            }
            handle(message, now: now, actions: &actions)
        }
        actions += reportResends()
        if output.pendingAcks.count >= configuration.ackFlushCount || !outbox.isEmpty {
            actions.append(contentsOf: flush(now: now))
        }
        return actions
    }

    private func checkIdentity(_ messageID: Int64) throws(SessionError) {
        switch MessageIDGenerator.kind(of: messageID) {
        case .serverResponse, .serverInitiated: break
        default: throw .wrongMessageIDParity(messageID: messageID)
        }
        switch received.verdict(for: messageID) {
        case .fresh: break
        case .duplicate: throw .duplicateMessage(messageID: messageID)
        case .tooOld: throw .messageIDTooOld(messageID: messageID)
        }
    }

    /// security_guidelines: the client checks the time window only once it trusts its clock, and
    /// still processes salt and time notifications whose msg_id looks off (they exist to fix that).
    private mutating func checkTime(_ messageID: Int64, carrying messages: [SessionMessage], now: UnixTime) throws(SessionError) {
        let offset = MessageIDGenerator.seconds(of: messageID) - (now.seconds + messageIDs.timeOffset)
        let inWindow = offset >= -configuration.maxMessageAge && offset <= configuration.maxMessageLead
        if inWindow {
            isTimeSynchronized = true
            return
        }
        guard isTimeSynchronized else { return }
        let exempt = messages.contains { message in
            let constructor = WireConstructor.of(message.body)
            return constructor == WireConstructor.badMsgNotification || constructor == WireConstructor.badServerSalt
        }
        guard !exempt else { return }
        if offset > configuration.maxMessageLead {
            // A server clock 30-300 s ahead of ours accepts our msg_ids (they are merely old to
            // it), so it never sends 16/17 and this packet is the only sign: without following
            // it every answer would be dropped for as long as the skew lasts. The packet is still
            // dropped (the in-doubt checks fetch what it carried again); an old packet moves
            // nothing, since a delayed one looks the same.
            messageIDs.synchronize(serverMessageID: messageID, now: now)
        }
        throw .messageTimeOutOfWindow(messageID: messageID, secondsFromNow: offset)
    }

    private mutating func acknowledge(_ messageID: Int64, now: UnixTime) {
        output.acknowledge(messageID, now: now)
    }

    private mutating func handle(_ message: SessionMessage, now: UnixTime, actions: inout [ClientSessionAction]) {
        if message.isContentRelated { acknowledge(message.messageID, now: now) }
        let body: [UInt8]
        let service: ServiceMessage
        do {
            (body, service) = try message.unwrappedBody(inflateLimit: configuration.maxInflatedBytes)
        } catch {
            actions.append(.messageDiscarded(messageID: message.messageID, error))
            return
        }
        handle(service, body: body, messageID: message.messageID, now: now, actions: &actions)
    }

    private mutating func handle(
        _ service: ServiceMessage, body: [UInt8], messageID: Int64, now: UnixTime, actions: inout [ClientSessionAction]
    ) {
        switch service {
        case .content:
            actions.append(.update(body))

        case .rpcResult(let requestMessageID, let result):
            handleResult(of: requestMessageID, result: result, messageID: messageID, now: now, actions: &actions)

        case .msgsAck(let ids):
            var confirmed: [RequestID] = []
            for id in ids {
                guard let request = sent.update(id, { entry -> RequestID? in
                    entry.acknowledged = true
                    return entry.outbound.purpose.requestID
                }) else { continue }
                highestConfirmedMessageID = max(highestConfirmedMessageID, id)
                if let request { confirmed.append(request) }
            }
            if !confirmed.isEmpty { actions.append(.received(confirmed, byStateReport: false)) }

        case .badServerSalt(let badID, _, _, let newSalt):
            guard sent[badID] != nil else { return }
            serverSalt = newSalt
            // The server just told us which salt it wants: stored future salts are evidently stale.
            futureSalts.removeAll()
            resendMessage(badID)

        case .badMsgNotification(let badID, _, let code):
            handleBadMessage(badID, code: code, notificationID: messageID, now: now, actions: &actions)

        case .newSessionCreated(let firstMessageID, _, let salt):
            serverSalt = salt
            // Set, not raised: after a reset that restarts the ids (16/17), the new session's ids
            // run below the old one's, and a floor kept from it would silence every report.
            serverSessionFirstMessageID = firstMessageID
            let inDoubt = requestMessageIDs.filter { $0.value < firstMessageID }.map(\.key).sorted()
            actions.append(.newSessionCreated(firstMessageID: firstMessageID, inDoubt: inDoubt))

        case .futureSalts(let requestMessageID, _, let salts):
            guard let entry = sent[requestMessageID], case .futureSalts = entry.outbound.purpose else { return }
            sent.removeValue(forKey: requestMessageID)
            futureSalts = salts.sorted { $0.validSince < $1.validSince }
            actions.append(.futureSalts(futureSalts))

        case .pong(let pingMessageID, let pingID):
            guard let entry = sent[pingMessageID], case .ping(let expected) = entry.outbound.purpose, expected == pingID else { return }
            sent.removeValue(forKey: pingMessageID)
            actions.append(.pong(pingID: pingID))

        case .destroySessionResult(let destroyed, let existed):
            guard let key = sent.first(where: { $0.value.outbound.purpose == .destroySession(destroyed) })?.key else { return }
            sent.removeValue(forKey: key)
            actions.append(.sessionDestroyed(sessionID: destroyed, existed: existed))

        case .msgsStateReq(let ids):
            let info = ids.map { received.status(of: $0) }
            outbox.append(Outbound(purpose: .stateInfo, body: ServiceMessage.msgsStateInfo(requestMessageID: messageID, info: info).serialized, contentRelated: false))

        case .msgsStateInfo(let requestMessageID, let info):
            switch sent[requestMessageID]?.outbound.purpose {
            case .stateRequest(let ids)?:
                sent.removeValue(forKey: requestMessageID)
                applyStates(ids: ids, info: info, actions: &actions)
            case .answerRequest(let ids)?:
                sent.removeValue(forKey: requestMessageID)
                applyAnswerRequestStates(ids: ids, info: info, actions: &actions)
            default:
                return
            }

        case .msgsAllInfo(let ids, let info):
            applyStates(ids: ids, info: info, actions: &actions)

        case .msgDetailedInfo(let original, let answerID, _, _):
            sent[original]?.acknowledged = true
            askForAnswer(answerID, now: now)

        case .msgNewDetailedInfo(let answerID, _, _):
            askForAnswer(answerID, now: now)

        case .msgResendReq(let ids):
            for id in ids { resendMessage(id) }

        case .messageCopy(let original):
            guard received.verdict(for: original.messageID) == .fresh,
                  WireConstructor.of(original.body) != WireConstructor.messageContainer else { return }
            received.insert(original.messageID, seqNo: original.seqNo)
            handle(original, now: now, actions: &actions)

        case .msgResendAnsReq, .ping, .pingDelayDisconnect, .destroySession, .getFutureSalts, .httpWait, .rpcDropAnswer:
            // Client-to-server constructors: a server has no business sending them; ignored.
            actions.append(.messageDiscarded(messageID: messageID, .malformedMessage(reason: "client-side constructor sent by the server")))
        }
    }

    private mutating func handleResult(
        of requestMessageID: Int64, result: [UInt8], messageID: Int64, now: UnixTime, actions: inout [ClientSessionAction]
    ) {
        // The purpose alone, read in place (a copy of the entry would retain its body).
        let purpose = sent.update(requestMessageID) { $0.outbound.purpose }
        if let purpose {
            switch purpose {
            case .dropAnswer:
                // rpc_answer_unknown / _dropped_running / _dropped: the request is already forgotten.
                sent.removeValue(forKey: requestMessageID)
                return
            case .futureSalts, .destroySession, .ping:
                // Service queries whose answer a server may also wrap in rpc_result.
                var inner = result
                if WireConstructor.of(inner) == WireConstructor.gzipPacked,
                   let unpacked = try? GzipPacked.unpack(inner, limit: configuration.maxInflatedBytes) {
                    inner = unpacked
                }
                if let service = try? ServiceMessage.decode(inner), service != .content {
                    handle(service, body: inner, messageID: messageID, now: now, actions: &actions)
                }
                return
            default:
                break
            }
        }
        let request: RequestID
        if case .request(let pending)? = purpose {
            request = pending
        } else if let pending = supersededMessageIDs[requestMessageID], requestMessageIDs[pending] != nil {
            request = pending
        } else {
            return
        }
        complete(request)
        highestConfirmedMessageID = max(highestConfirmedMessageID, requestMessageID)
        var payload = result
        if WireConstructor.of(payload) == WireConstructor.gzipPacked {
            do {
                payload = try GzipPacked.unpack(payload, limit: configuration.maxInflatedBytes)
            } catch {
                actions.append(.requestFailed(request, .undecodableResult(error)))
                return
            }
        }
        if WireConstructor.of(payload) == WireConstructor.rpcError {
            do {
                actions.append(.rpcError(request, try RPCError.decode(payload)))
            } catch {
                actions.append(.requestFailed(request, .undecodableResult(error)))
            }
            return
        }
        actions.append(.rpcResult(request, payload))
    }

    private mutating func handleBadMessage(
        _ badID: Int64, code: Int32, notificationID: Int64, now: UnixTime, actions: inout [ClientSessionAction]
    ) {
        // Only notifications about something we really sent may move the clock or the session.
        guard sent[badID] != nil else { return }
        switch code {
        case BadMessageCode.messageIDTooLow, BadMessageCode.messageIDTooHigh:
            let floorLead = messageIDs.synchronize(serverMessageID: notificationID, now: now)
            isTimeSynchronized = true
            // Ids a little ahead of the corrected clock are still accepted (the server allows 30 s).
            guard floorLead > configuration.maxMessageLead - 5 else {
                resendMessage(badID)
                return
            }
            // The clock went back well below ids this session issued (and the server may have
            // answered some): reusing one would be answered with that old answer, and staying
            // above them would be "too high" again. A new session may start its ids anew.
            resendInNewSession(badID, restartingIDs: true, actions: &actions)
        case BadMessageCode.messageIDLowBits, BadMessageCode.containerIDReused, BadMessageCode.messageTooOld,
             BadMessageCode.badServerSalt:
            resendMessage(badID)
        case BadMessageCode.seqNoTooLow, BadMessageCode.seqNoTooHigh:
            // The spec offers no way to learn the server's expectation; a new session restarts
            // seq_no from zero on both sides.
            resendInNewSession(badID, restartingIDs: false, actions: &actions)
        default:
            for request in requestsInside(badID) {
                complete(request)
                actions.append(.requestFailed(request, .rejected(code: code)))
            }
            sent.removeValue(forKey: badID)
        }
    }

    /// Resends the refused message in a new session. Only it is known to be unprocessed: the other
    /// requests the server may have had are in doubt (their answers die with the old session).
    /// `restartingIDs`: the new session's ids follow the clock again, below the old session's,
    /// whose confirmations then say nothing about them.
    private mutating func resendInNewSession(_ badID: Int64, restartingIDs: Bool, actions: inout [ClientSessionAction]) {
        let refused = Set(requestsInside(badID))
        startNewSession()
        if restartingIDs {
            messageIDs.restartFloor()
            highestConfirmedMessageID = 0
        }
        resendMessage(badID)
        let inDoubt = requestMessageIDs.keys.filter { !refused.contains($0) }.sorted()
        actions.append(.sessionReset(newSessionID: sessionID, inDoubt: inDoubt))
    }

    /// msgs_state_info statuses: 2 and 3 mean the server does not have the message: send it again
    /// (under a new msg_id, as the spec requires); 1 means it no longer knows (the owner decides,
    /// `.forgottenByServer`); 4 means received (+32 without +64: still running).
    private mutating func applyStates(ids: [Int64], info: [UInt8], actions: inout [ClientSessionAction]) {
        var confirmed: [RequestID] = []
        var running: [RequestID] = []
        var forgotten: [RequestID] = []
        for (id, status) in zip(ids, info) where id >= serverSessionFirstMessageID {
            switch status & 7 {
            case 1:
                // A container's requests too: resending it would repeat writes behind the policy.
                let requests = requestsInside(id)
                if requests.isEmpty { resendMessage(id) } else { forgotten += requests }
            case 2, 3:
                resendMessage(id)
            case 4:
                guard let request = confirmReceived(id) else { continue }
                confirmed.append(request)
                if Self.isStillRunning(status) { running.append(request) }
            default:
                break
            }
        }
        if !confirmed.isEmpty { actions.append(.received(confirmed, byStateReport: true)) }
        if !running.isEmpty { actions.append(.stillRunning(running)) }
        if !forgotten.isEmpty { actions.append(.forgottenByServer(forgotten)) }
    }

    /// The report that answers msg_resend_ans_req, for requests the server had already confirmed.
    /// "Not received" (2, 3: the ids are in its range, or ahead of it) means it cannot have run,
    /// so it goes again. "Nothing known" (1) is not that: the server may have run it and then
    /// forgotten it, so the owner decides. A request still running is named; one whose answer
    /// exists (+64) gets it again with this report.
    private mutating func applyAnswerRequestStates(ids: [Int64], info: [UInt8], actions: inout [ClientSessionAction]) {
        var running: [RequestID] = []
        var forgotten: [RequestID] = []
        for (id, status) in zip(ids, info) where id >= serverSessionFirstMessageID {
            switch status & 7 {
            case 1:
                forgotten += requestsInside(id)
            case 2, 3:
                resendMessage(id)
            case 4 where Self.isStillRunning(status):
                if let request = confirmReceived(id) { running.append(request) }
            default:
                break
            }
        }
        if !running.isEmpty { actions.append(.stillRunning(running)) }
        if !forgotten.isEmpty { actions.append(.forgottenByServer(forgotten)) }
    }

    /// msgs_state_info's +32 ("the query is being processed or its processing is complete")
    /// without +64 ("a response was already generated").
    private static func isStillRunning(_ status: UInt8) -> Bool {
        status & 32 != 0 && status & 64 == 0
    }

    /// Marks a sent message acknowledged; its request, if it is one.
    private mutating func confirmReceived(_ messageID: Int64) -> RequestID? {
        let request = sent.update(messageID) { entry -> RequestID? in
            entry.acknowledged = true
            return entry.outbound.purpose.requestID
        }
        return request ?? nil
    }

    /// msg_detailed_info / msg_new_detailed_info: ack an answer we have, ask again for one we lack.
    private mutating func askForAnswer(_ answerID: Int64, now: UnixTime) {
        if received.contains(answerID) {
            acknowledge(answerID, now: now)
        } else {
            outbox.append(Outbound(purpose: .resendRequest, body: ServiceMessage.msgResendReq([answerID]).serialized, contentRelated: false))
        }
    }
}

extension ClientSession: CustomStringConvertible, CustomReflectable {
    /// `dump` and debuggers see the description, not the key's bytes.
    public var customMirror: Mirror { Mirror(self, children: ["description": description]) }

    /// Ids and counts only: never key material.
    public var description: String {
        "ClientSession(session: \(String(UInt64(bitPattern: sessionID), radix: 16)), \(authKey), pending requests: \(pendingRequests.count), time offset: \(timeOffset) s)"
    }
}
