import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import MTProtoSchema
import NIOCore
import TL
import TLSchema

/// One DC's connection: the edge that executes the sans-IO machines (key exchange, encrypted
/// session) over a SwiftNIO channel. It owns the calls in flight, their timeouts and cancellation,
/// reconnects with bounded backoff, and recovers requests in doubt after a reconnect with
/// msgs_state_req (the session machine resends those the server never received), so a request
/// the server already ran is not run twice.
actor DCConnection {
    typealias Completion = CheckedContinuation<Result<[UInt8], TelegramError>, Never>

    /// What the connection reports to its owner so it can persist it.
    struct Persistence: Sendable {
        let keyEstablished: @Sendable (DCSessionState) async -> Void
        let saltChanged: @Sendable (Int64, Double) async -> Void
    }

    let dcID: Int
    let address: DCAddress
    private let configuration: TelegramClientConfiguration
    private let clock: any TelegramClock
    private var entropy: any EntropySource
    private let logger: Logger
    private let persistence: Persistence

    private var session: ClientSession?
    private var needsInitConnection = true
    private var tracker = RequestTracker<Completion>()
    /// Calls waiting for the auth key before the session machine exists; their bodies are built
    /// then, because the first one carries invokeWithLayer + initConnection.
    private var parked: [(CallToken, @Sendable (Bool) -> [UInt8])] = []
    private var writer: AsyncStream<[UInt8]>.Continuation?
    private var channel: (any Channel)?
    private var supervisor: Task<Void, Never>?
    private var timer: Task<Void, Never>?
    private var timerTarget: UnixTime?
    private var lastTransportError: TransportErrorCode?
    private var lastSavedSalt: Int64 = 0
    private var isClosed = false
    private(set) var statistics = ConnectionStatistics()

    init(
        dcID: Int, address: DCAddress, state: DCSessionState, configuration: TelegramClientConfiguration,
        clock: any TelegramClock, entropy: any EntropySource, logger: Logger, persistence: Persistence
    ) {
        self.dcID = dcID
        self.address = address
        self.configuration = configuration
        self.clock = clock
        self.entropy = entropy
        var logger = logger
        logger[metadataKey: "dc"] = "\(dcID)"
        self.logger = logger
        self.persistence = persistence
        if let key = state.authKey {
            session = Self.makeSession(key: key, salt: state.serverSalt, timeOffset: state.timeOffset, entropy: &self.entropy)
            lastSavedSalt = state.serverSalt
        }
    }

    private static func makeSession(key: AuthKey, salt: Int64, timeOffset: Double, entropy: inout any EntropySource) -> ClientSession {
        var sessionID: Int64 = 0
        while sessionID == 0 { sessionID = entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } }
        return ClientSession(authKey: key, sessionID: sessionID, serverSalt: salt, timeOffset: timeOffset, entropy: entropy)
    }


    // MARK: - Calls

    func invoke<Request: TLFunction>(_ request: Request, timeout: Double?) async throws(TelegramError) -> Request.Result {
        let method = Request.tlName
        let bytes = try await call(method: method, timeout: timeout) { [configuration] wrap in
            guard wrap else { return request.serialized() }
            let initConnection = Api.functions.InitConnection(
                apiId: configuration.apiID, deviceModel: configuration.deviceModel,
                systemVersion: configuration.systemVersion, appVersion: configuration.appVersion,
                systemLangCode: configuration.systemLangCode, langPack: configuration.langPack,
                langCode: configuration.langCode, query: request)
            return Api.functions.InvokeWithLayer(layer: configuration.layer, query: initConnection).serialized()
        }
        do {
            var reader = TLReader(bytes, inflater: ZlibGzip())
            return try Request.Result(from: &reader)
        } catch {
            throw .undecodableResult(method: method, reason: "\(error)")
        }
    }

    private func call(method: String, timeout: Double?, body: @escaping @Sendable (Bool) -> [UInt8]) async throws(TelegramError) -> [UInt8] {
        guard !isClosed else { throw .closed }
        let token = tracker.makeToken()
        let result: Result<[UInt8], TelegramError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: Completion) in
                start(token, method: method, timeout: timeout, body: body, completion: continuation)
            }
        } onCancel: {
            Task { await self.cancel(token) }
        }
        return try result.get()
    }

    private func start(_ token: CallToken, method: String, timeout: Double?, body: @escaping @Sendable (Bool) -> [UInt8], completion: Completion) {
        if Task.isCancelled {
            completion.resume(returning: .failure(.cancelled(method: method)))
            return
        }
        let now = clock.now()
        tracker.register(token, method: method, timeout: timeout, completion: completion)
        if session == nil {
            parked.append((token, body))
        } else {
            submit(token, body: body, now: now)
        }
        ensureLink()
        scheduleTimer(now: now)
    }

    /// Hands a call's body to the session machine: sent now when connected, else queued for the next flush.
    private func submit(_ token: CallToken, body: @Sendable (Bool) -> [UInt8], now: UnixTime) {
        guard session != nil else { return }
        let wrap = needsInitConnection
        needsInitConnection = false
        tracker.arm(token, now: now)
        let bytes = body(wrap)
        if writer != nil {
            guard let (request, actions) = session?.send(request: bytes, now: now) else { return }
            tracker.attach(token, to: request)
            perform(actions)
        } else if let request = session?.enqueue(request: bytes) {
            tracker.attach(token, to: request)
        }
    }

    private func cancel(_ token: CallToken) {
        guard let entry = tracker.remove(token) else {
            if let index = parked.firstIndex(where: { $0.0 == token }) { parked.remove(at: index) }
            return
        }
        parked.removeAll { $0.0 == token }
        statistics.cancellations += 1
        logger.debug("call cancelled", metadata: ["method": "\(entry.method)"])
        dropAnswer(of: entry.requestID)
        entry.completion.resume(returning: .failure(.cancelled(method: entry.method)))
    }

    /// rpc_drop_answer for a request that was sent: the server may skip the answer (and its work).
    private func dropAnswer(of request: RequestID?) {
        guard let request, writer != nil, let messageID = session?.messageID(of: request) else { return }
        let body = MT.functions.RpcDropAnswer(reqMsgId: messageID).serialized()
        if let (_, actions) = session?.send(request: body, now: clock.now()) { perform(actions) }
    }

    // MARK: - Timer

    private func scheduleTimer(now: UnixTime) {
        guard let deadline = tracker.nextDeadline else { return }
        if let target = timerTarget, target <= deadline, timer != nil { return }
        timer?.cancel()
        timerTarget = deadline
        let clock = self.clock
        timer = Task {
            do { try await clock.sleep(for: max(0, deadline - clock.now())) } catch { return }
            self.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        timerTarget = nil
        let now = clock.now()
        for entry in tracker.expire(now: now) {
            logger.debug("call timed out", metadata: ["method": "\(entry.method)"])
            statistics.timeouts += 1
            dropAnswer(of: entry.requestID)
            entry.completion.resume(returning: .failure(.timeout(method: entry.method, seconds: entry.timeout ?? 0)))
        }
        parked.removeAll { token, _ in tracker.entries[token] == nil }
        if let actions = session?.tick(now: now), writer != nil { perform(actions) }
        scheduleTimer(now: now)
    }

    // MARK: - Link supervision

    private func ensureLink() {
        guard !isClosed, supervisor == nil else { return }
        supervisor = Task { await self.supervise() }
    }

    private func supervise() async {
        var attempt = 0
        var lastReason = "no attempt"
        while !isClosed, !(tracker.isEmpty && parked.isEmpty) {
            attempt += 1
            guard let delay = configuration.reconnect.delay(beforeAttempt: attempt) else {
                let error: TelegramError =
                    if let code = lastTransportError { .transport(code, dc: dcID) } else {
                        .connectionFailed(dc: dcID, attempts: attempt - 1, reason: lastReason)
                    }
                failAll(error)
                break
            }
            if delay > 0 {
                logger.debug("reconnecting after backoff", metadata: ["attempt": "\(attempt)", "delay": "\(delay)"])
                do { try await clock.sleep(for: delay) } catch { break }
            }
            if isClosed { break }
            let started = clock.now()
            let outcome = await runLink()
            lastReason = outcome.reason
            if outcome.established {
                let lifetime = clock.now() - started
                if configuration.reconnect.resetsBudget(afterLinkLasting: lifetime) {
                    attempt = 1
                } else {
                    lastReason = "the connection died \(Int(lifetime.rounded())) s after it was established (\(outcome.reason))"
                    logger.debug("short-lived connection counts as a failed attempt", metadata: ["attempt": "\(attempt)", "lifetime": "\(lifetime)"])
                }
            }
            if let code = lastTransportError, code.rawValue == -404 {
                // The DC does not know this key: reconnecting with it cannot help.
                failAll(.transport(code, dc: dcID))
                break
            }
            if case .handshake(let reason) = outcome.failure {
                failAll(.handshakeFailed(dc: dcID, reason: reason))
                break
            }
        }
        supervisor = nil
        if !isClosed, !(tracker.isEmpty && parked.isEmpty) { ensureLink() }
    }

    private struct LinkOutcome {
        enum Failure { case connect, handshake(String), ended }
        var established: Bool
        var failure: Failure
        var reason: String
    }

    private enum LinkEnd: Error { case handshake(String), transport(TransportErrorCode), closedByPeer }

    private func runLink() async -> LinkOutcome {
        lastTransportError = nil
        let transportConfiguration = MTProtoTransportConfiguration(entropy: entropy)
        let asyncChannel: NIOAsyncChannel<TransportFrame, TransportFrame>
        do {
            asyncChannel = try await MTProtoTransportClient.connect(
                host: address.host, port: address.port, transport: configuration.transport, configuration: transportConfiguration)
        } catch {
            logger.debug("connect failed", metadata: ["address": "\(address)", "error": "\(error)"])
            return LinkOutcome(established: false, failure: .connect, reason: "\(error)")
        }
        if isClosed {
            asyncChannel.channel.close(promise: nil)
            return LinkOutcome(established: false, failure: .ended, reason: "closed")
        }
        channel = asyncChannel.channel
        statistics.connections += 1
        logger.debug("connected", metadata: ["address": "\(address)"])
        var established = false
        do {
            try await asyncChannel.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                if session == nil {
                    try await exchangeKey(frames: &frames, outbound: outbound)
                }
                let (packets, packetWriter) = AsyncStream.makeStream(of: [UInt8].self)
                established = true
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        for await packet in packets {
                            try await outbound.write(.packet(ByteBuffer(bytes: packet)))
                        }
                    }
                    linkEstablished(writer: packetWriter)
                    defer { packetWriter.finish() }
                    while let frame = try await frames.next(isolation: self) {
                        handle(frame)
                    }
                }
            }
        } catch LinkEnd.handshake(let reason) {
            linkEnded()
            return LinkOutcome(established: false, failure: .handshake(reason), reason: reason)
        } catch {
            linkEnded()
            return LinkOutcome(established: established, failure: .ended, reason: "\(error)")
        }
        linkEnded()
        return LinkOutcome(established: established, failure: .ended, reason: lastTransportError.map { "transport error \($0.rawValue)" } ?? "closed by the server")
    }

    private func exchangeKey(
        frames: inout NIOAsyncChannelInboundStream<TransportFrame>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<TransportFrame>
    ) async throws {
        let dcField = Int32(configuration.isTestServer ? dcID + 10000 : dcID)
        var handshake = ClientHandshake(
            configuration: ClientHandshake.Configuration(serverKeys: configuration.serverKeys, dcID: dcField), entropy: entropy)
        let startedAt = clock.now()
        let watchdogChannel = channel
        let clock = self.clock
        let limit = configuration.handshakeTimeout
        let watchdog = Task {
            do { try await clock.sleep(for: limit) } catch { return }
            watchdogChannel?.close(promise: nil)
        }
        defer { watchdog.cancel() }
        try await outbound.write(.packet(ByteBuffer(bytes: handshake.start(now: startedAt))))
        while let frame = try await frames.next(isolation: self) {
            switch frame {
            case .packet(let buffer):
                let action: ClientHandshake.Action
                do {
                    action = try handshake.receive(Array(buffer.readableBytesView), now: clock.now())
                } catch {
                    throw LinkEnd.handshake("\(error)")
                }
                switch action {
                case .send(let bytes):
                    try await outbound.write(.packet(ByteBuffer(bytes: bytes)))
                case .completed(let result):
                    installKey(result)
                    return
                }
            case .transportError(let code):
                lastTransportError = code
                throw LinkEnd.handshake("the server answered with transport error \(code.rawValue)")
            case .quickAck, .packetRequestingQuickAck:
                continue
            }
        }
        throw LinkEnd.handshake(clock.now() - startedAt >= limit ? "no answer within \(limit) s" : "the server closed the connection")
    }

    private func installKey(_ result: HandshakeResult) {
        logger.info("auth key created", metadata: ["retries": "\(result.retryCount)"])
        statistics.keyExchanges += 1
        session = Self.makeSession(key: result.authKey, salt: result.serverSalt, timeOffset: result.serverTimeOffset, entropy: &entropy)
        needsInitConnection = true
        lastSavedSalt = result.serverSalt
        let state = DCSessionState(authKey: result.authKey, serverSalt: result.serverSalt, timeOffset: result.serverTimeOffset)
        let persistence = self.persistence
        Task { await persistence.keyEstablished(state) }
    }

    private func linkEstablished(writer: AsyncStream<[UInt8]>.Continuation) {
        self.writer = writer
        guard session != nil else { return }
        let now = clock.now()
        // Only requests that went out under a msg_id can be in doubt; queued ones go out at the flush.
        let inDoubt = tracker.requestsInFlight.filter { session?.messageID(of: $0) != nil }
        var actions: [ClientSessionAction] = []
        if !inDoubt.isEmpty {
            logger.debug("asking the server about requests in doubt", metadata: ["count": "\(inDoubt.count)"])
            statistics.requestsInDoubt += inDoubt.count
            actions += session?.requestState(of: inDoubt, now: now) ?? []
        }
        let waiting = parked
        parked.removeAll()
        for (token, body) in waiting where tracker.entries[token] != nil {
            submit(token, body: body, now: now)
        }
        actions += session?.flush(now: now) ?? []
        perform(actions)
        scheduleTimer(now: now)
    }

    private func linkEnded() {
        if !tracker.isEmpty { statistics.connectionsLost += 1 }
        writer?.finish()
        writer = nil
        channel = nil
    }

    // MARK: - Inbound

    private func handle(_ frame: TransportFrame) {
        switch frame {
        case .packet(let buffer):
            receive(Array(buffer.readableBytesView))
        case .transportError(let code):
            logger.notice("transport error from the server", metadata: ["code": "\(code.rawValue)"])
            lastTransportError = code
            statistics.transportErrors += 1
            channel?.close(promise: nil)
        case .quickAck, .packetRequestingQuickAck:
            break
        }
    }

    private func receive(_ packet: [UInt8]) {
        let now = clock.now()
        let actions: [ClientSessionAction]
        do {
            guard let received = try session?.receive(packet, now: now) else { return }
            actions = received
        } catch {
            if error.isFatal {
                logger.notice("session error, reconnecting", metadata: ["error": "\(error)"])
                channel?.close(promise: nil)
            } else {
                logger.debug("packet dropped", metadata: ["error": "\(error)"])
            }
            return
        }
        perform(actions)
        if let session, session.serverSalt != lastSavedSalt {
            lastSavedSalt = session.serverSalt
            let persistence = self.persistence
            let salt = session.serverSalt
            let offset = session.timeOffset
            Task { await persistence.saltChanged(salt, offset) }
        }
    }

    private func perform(_ actions: [ClientSessionAction]) {
        for action in actions {
            switch action {
            case .send(let bytes):
                writer?.yield(bytes)
            case .rpcResult(let request, let bytes):
                tracker.complete(request)?.completion.resume(returning: .success(bytes))
            case .rpcError(let request, let error):
                if let entry = tracker.complete(request) {
                    logger.debug("rpc error", metadata: ["method": "\(entry.method)", "code": "\(error.code)", "error": "\(error.name)"])
                    entry.completion.resume(returning: .failure(.rpc(error, method: entry.method)))
                }
            case .requestFailed(let request, let failure):
                if let entry = tracker.complete(request) {
                    let error: TelegramError =
                        switch failure {
                        case .rejected: .rejected(method: entry.method, reason: "\(failure)")
                        case .undecodableResult: .undecodableResult(method: entry.method, reason: "\(failure)")
                        }
                    entry.completion.resume(returning: .failure(error))
                }
            case .newSessionCreated(_, let inDoubt), .sessionReset(_, let inDoubt):
                let tracked = Set(tracker.requestsInFlight)
                let resend = inDoubt.filter { tracked.contains($0) }
                if case .sessionReset = action { needsInitConnection = true }
                if !resend.isEmpty, let actions = session?.resend(resend, now: clock.now()) {
                    logger.debug("resending requests the new session never saw", metadata: ["count": "\(resend.count)"])
                    statistics.requestsResent += resend.count
                    perform(actions)
                }
            case .update, .pong, .futureSalts, .sessionDestroyed:
                break
            case .messageDiscarded(_, let error):
                logger.debug("message discarded", metadata: ["error": "\(error)"])
            }
        }
    }

    private func failAll(_ error: TelegramError) {
        parked.removeAll()
        for entry in tracker.removeAll() {
            entry.completion.resume(returning: .failure(error))
        }
    }

    // MARK: - Close

    func close() async {
        guard !isClosed else { return }
        isClosed = true
        timer?.cancel()
        timer = nil
        supervisor?.cancel()
        failAll(.closed)
        if let channel {
            try? await channel.close()
        }
        writer?.finish()
    }
}
