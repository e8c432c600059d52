import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore
import TL
import TLSchema

/// One DC's connection: executes what `DCConnectionStateMachine` decides over a SwiftNIO channel.
/// It holds what a value cannot: the callers' continuations, the channel and its writer, the one
/// timer, and the queue that hands persistence and updates to the client in order. No protocol
/// policy lives here.
actor DCConnection {
    typealias Completion = CheckedContinuation<Result<[UInt8], TelegramError>, Never>

    let dcID: Int
    let address: DCAddress
    private let route: MTProtoClientRoute
    private let clock: any TelegramClock
    private let entropy: any EntropySource
    private let logger: Logger
    private let persist: @Sendable (DCSessionUpdate) async -> Void
    private let events: @Sendable (ServerEvent) -> Void

    private var machine: DCConnectionStateMachine
    private var completions: [CallToken: Completion] = [:]
    private var writer: AsyncStream<[UInt8]>.Continuation?
    private var channel: (any Channel)?
    private var link: Task<Void, Never>?
    private var timer: Task<Void, Never>?
    private var saves: AsyncStream<DCSessionUpdate>.Continuation
    private var saver: Task<Void, Never>?

    init(
        dcID: Int, address: DCAddress, state: DCSessionState, configuration: TelegramClientConfiguration,
        clock: any TelegramClock, entropy: any EntropySource, logger: Logger,
        persist: @escaping @Sendable (DCSessionUpdate) async -> Void,
        events: @escaping @Sendable (ServerEvent) -> Void
    ) {
        self.dcID = dcID
        self.address = address
        self.route = configuration.route(toDC: dcID)
        self.clock = clock
        self.entropy = entropy
        var logger = logger
        logger[metadataKey: "dc"] = "\(dcID)"
        self.logger = logger
        self.persist = persist
        self.events = events
        let dcField = Int32(configuration.isTestServer ? dcID + 10000 : dcID)
        machine = DCConnectionStateMachine(
            configuration: DCConnectionStateMachine.Configuration(
                dcID: dcID,
                handshake: ClientHandshake.Configuration(serverKeys: configuration.serverKeys, dcID: dcField),
                handshakeTimeout: configuration.handshakeTimeout, reconnect: configuration.reconnect,
                pingInterval: configuration.pingInterval, inDoubt: configuration.inDoubt, resendPolicy: configuration.resendPolicy,
                firstCallPrefix: configuration.firstCallPrefix),
            state: state, entropy: entropy)
        let (stream, continuation) = AsyncStream.makeStream(of: DCSessionUpdate.self)
        saves = continuation
        // One consumer, so saves land in the order the machine asked for them.
        saver = Task { for await update in stream { await persist(update) } }
    }

    var statistics: ConnectionStatistics {
        var statistics = machine.statistics
        statistics.pendingCalls = machine.pendingCalls
        let books = machine.sessionBookkeeping
        statistics.trackedMessages = books?.sentMessages ?? 0
        statistics.trackedRequests = (books?.requests ?? 0) + (books?.queued ?? 0)
        return statistics
    }

    // MARK: - Calls

    func invoke<Request: TLFunction>(_ request: Request, timeout: Double?) async throws(TelegramError) -> Request.Result {
        let method = Request.tlName
        let bytes = try await call(method: method, body: request.serialized(), timeout: timeout)
        do {
            var reader = TLReader(bytes, inflater: ZlibGzip())
            return try Request.Result(from: &reader)
        } catch {
            throw .undecodableResult(method: method, reason: "\(error)")
        }
    }

    private func call(method: String, body: [UInt8], timeout: Double?) async throws(TelegramError) -> [UInt8] {
        let token = machine.makeToken()
        let result: Result<[UInt8], TelegramError> = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: Completion) in
                if Task.isCancelled {
                    continuation.resume(returning: .failure(.cancelled(method: method, delivery: .notSent)))
                    return
                }
                completions[token] = continuation
                execute(machine.invoke(token, method: method, body: body, timeout: timeout, now: clock.now()))
            }
        } onCancel: {
            Task { await self.cancel(token) }
        }
        return try result.get()
    }

    private func cancel(_ token: CallToken) {
        execute(machine.cancel(token, now: clock.now()))
    }

    func close() async {
        execute(machine.close(now: clock.now()))
        timer?.cancel()
        timer = nil
        saves.finish()
        if let channel { try? await channel.close() }
        await link?.value
        await saver?.value
    }

    // MARK: - Executing actions

    private func execute(_ actions: [DCConnectionStateMachine.Action]) {
        for action in actions {
            switch action {
            case .connect:
                let previous = link
                link = Task { await previous?.value; await self.runLink() }
            case .write(let bytes):
                writer?.yield(bytes)
            case .closeChannel:
                channel?.close(promise: nil)
            case .wake(let at):
                timer?.cancel()
                let clock = self.clock
                timer = Task {
                    do { try await clock.sleep(for: max(0, at - clock.now())) } catch { return }
                    self.timerFired()
                }
            case .complete(let token, let result):
                if case .failure(let error) = result { logger.debug("call failed", metadata: ["error": "\(error)"]) }
                completions.removeValue(forKey: token)?.resume(returning: result)
            case .persist(let update):
                saves.yield(update)
            case .deliver(let event):
                events(event)
            }
        }
    }

    private func timerFired() {
        timer = nil
        execute(machine.timerFired(now: clock.now()))
    }

    // MARK: - The link

    /// One connection's life: connect, report it, feed every frame to the machine, report its end.
    private func runLink() async {
        let asyncChannel: NIOAsyncChannel<TransportFrame, TransportFrame>
        do {
            asyncChannel = try await MTProtoTransportClient.connect(
                host: address.host, port: address.port, route: route,
                configuration: MTProtoTransportConfiguration(entropy: entropy))
        } catch {
            logger.debug("connect failed", metadata: ["address": "\(address)", "error": "\(error)"])
            execute(machine.disconnected(reason: "\(error)", now: clock.now()))
            return
        }
        channel = asyncChannel.channel
        logger.debug("connected", metadata: ["address": "\(address)"])
        var reason = "closed by the server"
        do {
            try await asyncChannel.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                let (packets, packetWriter) = AsyncStream.makeStream(of: [UInt8].self)
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        for await packet in packets {
                            try await outbound.write(.packet(ByteBuffer(bytes: packet)))
                        }
                    }
                    defer { packetWriter.finish() }
                    writer = packetWriter
                    execute(machine.connected(now: clock.now()))
                    while let frame = try await frames.next(isolation: self) {
                        execute(machine.received(frame, now: clock.now()))
                    }
                }
            }
        } catch {
            reason = "\(error)"
        }
        writer = nil
        channel = nil
        logger.debug("connection ended", metadata: ["reason": "\(reason)"])
        execute(machine.disconnected(reason: reason, now: clock.now()))
    }
}

extension TelegramClientConfiguration {
    /// invokeWithLayer(layer, initConnection(...)) up to their `query` field, which is last in both
    /// constructors: any request appended makes the wrapped first call of a session.
    var firstCallPrefix: [UInt8] {
        let probe = Api.functions.help.GetNearestDc()
        let wrapped = Api.functions.InvokeWithLayer(layer: layer, query: Api.functions.InitConnection(
            apiId: apiID, deviceModel: deviceModel, systemVersion: systemVersion, appVersion: appVersion,
            systemLangCode: systemLangCode, langPack: langPack, langCode: langCode, query: probe)).serialized()
        return Array(wrapped.dropLast(probe.serialized().count))
    }
}
