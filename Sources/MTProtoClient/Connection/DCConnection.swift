import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore
import NIOPosix
import Synchronization
import TL
import TLSchema

/// One DC's connection: executes what `DCConnectionStateMachine` decides over a SwiftNIO channel.
/// It holds what a value cannot: the callers' continuations, the channel, the one timer, and the
/// queue that hands persistence to the client in order. No protocol policy lives here.
///
/// Everything it does runs on one event loop, the one its channels live on: a call's request is
/// written and its answer resumes the caller from the loop that read it, without a hop through
/// an actor or a task per packet (a loopback round trip is a few tens of microseconds, and each
/// hop between threads costs about as much). The machine and the continuations are confined to
/// that loop (`NIOLoopBound`), so they need no lock.
final class DCConnection: Sendable {
    /// Unchecked: a call's continuation is resumed either at once (cancelled before it reached the
    /// loop) or when it leaves `completions`, so never twice; the checked kind costs an allocation
    /// and two atomics on every call. Checked or not, a call handed to a loop that has shut down
    /// is never resumed (the checked kind only logged that).
    typealias Completion = UnsafeContinuation<Result<[UInt8], TelegramError>, Never>

    let dcID: Int
    let address: DCAddress
    private let eventLoop: any EventLoop
    private let core: NIOLoopBoundBox<Core>
    /// Tokens are taken before the call reaches the loop, so a cancellation can name its call.
    private let nextToken = Atomic<UInt64>(1)
    /// Calls made off the loop wait here for it; the first into an empty inbox asks the loop to
    /// take them all. One lock per call instead of an `execute` each (two locks and a closure),
    /// and the calls of many callers reach the loop in one task.
    private let inbox = Mutex<[Submission]>([])
    /// One consumer, so saves land in the order the machine asked for them; no task while idle.
    private let saves: OnDemandSerialQueue<DCSessionUpdate, Void>

    init(
        dcID: Int, address: DCAddress, state: DCSessionState, configuration: TelegramClientConfiguration,
        clock: any TelegramClock, entropy: any EntropySource, logger: Logger, eventLoop: any EventLoop,
        persist: @escaping @Sendable (DCSessionUpdate) async -> Void,
        events: @escaping @Sendable (ServerEvent) -> Void
    ) {
        self.dcID = dcID
        self.address = address
        var logger = logger
        logger[metadataKey: "dc"] = "\(dcID)"
        let dcField = Int32(configuration.isTestServer ? dcID + 10000 : dcID)
        let machine = DCConnectionStateMachine(
            configuration: DCConnectionStateMachine.Configuration(
                dcID: dcID,
                handshake: ClientHandshake.Configuration(serverKeys: configuration.serverKeys, dcID: dcField),
                handshakeTimeout: configuration.handshakeTimeout, connectTimeout: configuration.connectTimeout, reconnect: configuration.reconnect,
                pingInterval: configuration.pingInterval, inDoubt: configuration.inDoubt, resendPolicy: configuration.resendPolicy,
                firstCallPrefix: configuration.firstCallPrefix, pfs: configuration.pfs,
                futureSalts: configuration.futureSalts),
            state: state, entropy: entropy)
        let saves = OnDemandSerialQueue<DCSessionUpdate, Void>(handle: persist)
        self.saves = saves
        self.eventLoop = eventLoop
        let core = Core(
            machine: machine, eventLoop: eventLoop, address: address, route: configuration.route(toDC: dcID),
            clock: clock, entropy: entropy, logger: logger, saves: saves, events: events, permit: configuration.connectionPermit)
        // Sent into the box before anything else can reach it; from now on only the loop touches it.
        self.core = NIOLoopBoundBox.makeBoxSendingValue(core, eventLoop: eventLoop)
    }

    var statistics: ConnectionStatistics {
        get async {
            let core = self.core
            return (try? await eventLoop.submit { core.value.statistics }.get()) ?? ConnectionStatistics()
        }
    }

    // MARK: - Calls

    func invoke<Request: TLFunction>(_ request: Request, timeout: Double?, floodScope: String? = nil) async throws(TelegramError) -> Request.Result {
        let method = Request.tlName
        let bytes = try await call(method: method, floodScope: floodScope, body: request.serialized(), timeout: timeout)
        do {
            var reader = TLReader(bytes, inflater: ZlibGzip())
            return try Request.Result(from: &reader)
        } catch {
            throw .undecodableResult(method: method, reason: "\(error)")
        }
    }

    private func call(method: String, floodScope: String?, body: [UInt8], timeout: Double?) async throws(TelegramError) -> [UInt8] {
        let call = PendingCall(token: CallToken(rawValue: nextToken.add(1, ordering: .relaxed).oldValue))
        let core = self.core
        let eventLoop = self.eventLoop
        let result: Result<[UInt8], TelegramError> = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: Completion) in
                let submission = Submission(call: call, method: method, floodScope: floodScope, body: body, timeout: timeout, continuation: continuation)
                // A caller already on the loop (see `EventLoopTaskExecutor`) writes at once.
                if eventLoop.inEventLoop {
                    core.value.invoke(submission)
                } else {
                    submit(submission)
                }
            }
        } onCancel: {
            // The mark is set before the cancellation is queued: whichever of the two reaches the
            // loop first, the call ends cancelled (`Core.invoke` checks the mark).
            call.isCancelled.store(true, ordering: .releasing)
            eventLoop.execute { core.value.cancel(call.token) }
        }
        return try result.get()
    }

    private func submit(_ submission: Submission) {
        let first = inbox.withLock { waiting in
            waiting.append(submission)
            return waiting.count == 1
        }
        guard first else { return }
        let core = self.core
        eventLoop.execute { [self] in core.value.takeSubmissions(from: inbox) }
    }

    /// Connections from now on go `route`'s way (a changed proxy); see `DCConnectionStateMachine.routeChanged`.
    func reroute(_ route: MTProtoClientRoute) {
        let core = self.core
        eventLoop.execute { core.value.reroute(route) }
    }

    /// Returns once the saves asked for so far are written.
    func savesWritten() async {
        await saves.drained()
    }

    func close() async {
        let core = self.core
        let closed = eventLoop.flatSubmit { core.value.close() }
        try? await closed.get()
        await saves.drained()
    }
}

extension DCConnection {
    /// One call on its way to the loop; `isCancelled` tells the loop its caller gave up before it arrived.
    private final class PendingCall: Sendable {
        let token: CallToken
        let isCancelled = Atomic<Bool>(false)
        init(token: CallToken) { self.token = token }
    }

    /// A call on its way to the loop (made off it, it waits in the inbox first).
    private struct Submission {
        var call: PendingCall
        var method: String
        var floodScope: String?
        var body: [UInt8]
        var timeout: Double?
        var continuation: Completion
    }

    /// The connection's state, confined to its event loop.
    private final class Core {
        private var machine: DCConnectionStateMachine
        private let eventLoop: any EventLoop
        private let address: DCAddress
        private var route: MTProtoClientRoute
        private let clock: any TelegramClock
        private let entropy: any EntropySource
        private let logger: Logger
        private let saves: OnDemandSerialQueue<DCSessionUpdate, Void>
        private let events: @Sendable (ServerEvent) -> Void
        private let permit: (@Sendable () -> Bool)?

        private var completions: [CallToken: Completion] = [:]
        /// Counts links; events of a link that is no longer the current one are ignored.
        private var generation = 0
        private var channel: (any Channel)?
        private var isLinkDown = true
        private var timer: Scheduled<Void>?
        private var timerTask: Task<Void, Never>?
        private var timerGeneration = 0
        private var isClosed = false
        /// Work asked for during this turn of the loop, run once at its end (see `onceThisTurn`).
        private var scheduledThisTurn: TurnWork = []
        /// True while a frame read from the link is being handled: the calls it answers are resumed
        /// together at the end of the turn (see `complete`).
        private var isHandlingFrame = false
        private var answeredThisTurn: [(Completion, Result<[UInt8], TelegramError>)] = []

        init(
            machine: DCConnectionStateMachine, eventLoop: any EventLoop, address: DCAddress, route: MTProtoClientRoute,
            clock: any TelegramClock, entropy: any EntropySource, logger: Logger,
            saves: OnDemandSerialQueue<DCSessionUpdate, Void>, events: @escaping @Sendable (ServerEvent) -> Void,
            permit: (@Sendable () -> Bool)?
        ) {
            self.permit = permit
            self.machine = machine
            self.eventLoop = eventLoop
            self.address = address
            self.route = route
            self.clock = clock
            self.entropy = entropy
            self.logger = logger
            self.saves = saves
            self.events = events
        }

        var statistics: ConnectionStatistics {
            var statistics = machine.statistics
            statistics.pendingCalls = machine.pendingCalls
            let books = machine.sessionBookkeeping
            statistics.trackedMessages = books?.sentMessages ?? 0
            statistics.trackedRequests = (books?.requests ?? 0) + (books?.queued ?? 0)
            return statistics
        }

        func invoke(_ submission: consuming Submission) {
            if submission.call.isCancelled.load(ordering: .acquiring) {
                submission.continuation.resume(returning: .failure(.cancelled(method: submission.method, delivery: .notSent)))
                return
            }
            completions[submission.call.token] = submission.continuation
            execute(machine.invoke(submission.call.token, method: submission.method, floodScope: submission.floodScope, body: submission.body,
                                   timeout: submission.timeout, now: clock.now()))
        }

        /// The inbox's array and this one trade places, so neither is allocated again for batches
        /// up to `spareCapacity` calls; a larger one's array is let go, so a burst of calls does not
        /// leave two big arrays behind in every idle connection.
        private var spareSubmissions: [Submission] = []
        private static let spareCapacity = 16

        /// Runs the calls waiting in `inbox`, in the order they were made.
        func takeSubmissions(from inbox: borrowing Mutex<[Submission]>) {
            var taken: [Submission] = []
            swap(&taken, &spareSubmissions)
            inbox.withLock { swap(&$0, &taken) }
            // Reversed, then popped, to keep the order without copying each element.
            taken.reverse()
            while let next = taken.popLast() { invoke(next) }
            if taken.capacity <= Self.spareCapacity { swap(&taken, &spareSubmissions) }
        }

        /// A call not waiting here any more (answered already, or not arrived: see `invoke`) has nothing to cancel.
        func cancel(_ token: CallToken) {
            guard completions[token] != nil else { return }
            execute(machine.cancel(token, now: clock.now()))
        }

        func reroute(_ route: MTProtoClientRoute) {
            guard !isClosed else { return }
            // A connect still under way has no channel to close: its link is ended here, and the
            // connect, when it completes, finds itself stale and closes. Judged before the machine
            // acts: a closed channel may end its link at once, and the next link is then under way.
            let connectingWithoutChannel = channel == nil && !isLinkDown
            self.route = route
            execute(machine.routeChanged(now: clock.now()))
            if connectingWithoutChannel { linkEnded(generation, reason: "the proxy changed while connecting") }
        }

        func close() -> EventLoopFuture<Void> {
            isClosed = true
            execute(machine.close(now: clock.now()))
            timer?.cancel()
            timer = nil
            timerTask?.cancel()
            timerTask = nil
            saves.finish()
            guard let channel else { return eventLoop.makeSucceededVoidFuture() }
            return channel.closeFuture
        }

        // MARK: - Executing actions

        private func execute(_ actions: consuming [DCConnectionStateMachine.Action]) {
            var wrote = false
            // Moved out one by one (reversed, then popped, to keep the order): iterating copied each
            // action, retaining the bytes and answers it carries once more on every call.
            var pending = actions
            pending.reverse()
            while let action = pending.popLast() {
                switch consume action {
                case .connect:
                    openLink()
                case .write(let bytes):
                    guard let channel else { continue }
                    var buffer = channel.allocator.buffer(capacity: bytes.count)
                    buffer.writeBytes(bytes)
                    channel.write(TransportFrame.packet(buffer), promise: nil)
                    wrote = true
                case .closeChannel:
                    channel?.close(promise: nil)
                case .flushNow:
                    channel?.flush()
                    wrote = false
                case .wake(let at):
                    wake(at: at)
                case .flushSoon:
                    // Calls made in one turn are queued in the session and leave in one container.
                    onceThisTurn(.sessionFlush) { $0.execute($0.machine.flushQueued(now: $0.clock.now())) }
                case .complete(let token, let result):
                    if case .failure(let error) = result { logger.debug("call failed", metadata: ["error": "\(error)"]) }
                    if let continuation = completions.removeValue(forKey: token) { complete(continuation, with: result) }
                case .persist(let update):
                    saves.submit(update)
                case .deliver(let event):
                    events(event)
                case .ignored(let error):
                    logger.debug("server message ignored", metadata: ["reason": "\(error)"])
                }
            }
            // Packets written in one turn (many callers resumed, several answers read) leave in one system call.
            if wrote { onceThisTurn(.channelFlush) { $0.channel?.flush() } }
        }

        /// A caller resumed from the loop is a job for the global executor, whose first job after an
        /// idle spell wakes a sleeping thread (a futex call, about 5% of the loop's time with 64
        /// calls in flight). Answers read in one turn are handed over together, so one wake-up
        /// serves them all; completions outside a frame (timeouts, cancels, `close()`) resume at once,
        /// and a link closed while a frame is handled (its `channelInactive` comes synchronously)
        /// resumes its failed calls with that turn's answers.
        private func complete(_ continuation: Completion, with result: consuming Result<[UInt8], TelegramError>) {
            guard isHandlingFrame else { return continuation.resume(returning: result) }
            answeredThisTurn.append((continuation, result))
            if answeredThisTurn.count == 1 { onceThisTurn(.resumeCallers) { $0.resumeAnswered() } }
        }

        private func resumeAnswered() {
            // Taken out and moved from (reversed, then popped, to keep the order): copying each
            // answer out retained it, and its bytes go to the caller's thread anyway.
            var answered: [(Completion, Result<[UInt8], TelegramError>)] = []
            swap(&answered, &answeredThisTurn)
            answered.reverse()
            while let (continuation, result) = answered.popLast() { continuation.resume(returning: result) }
            // The emptied buffer serves the next turn (a resume only queues the caller's task, so
            // nothing was answered meanwhile; if something was, that list is kept instead).
            if answeredThisTurn.isEmpty { swap(&answered, &answeredThisTurn) }
        }

        /// Runs `work` once after the tasks already queued on the loop, however often it is asked
        /// for meanwhile (`pending` remembers that it is scheduled), which is still before the loop
        /// waits for the socket again: what one turn produced goes together.
        private func onceThisTurn(_ pending: TurnWork, _ work: @escaping (Core) -> Void) {
            guard !scheduledThisTurn.contains(pending) else { return }
            scheduledThisTurn.insert(pending)
            eventLoop.assumeIsolated().execute { [self] in
                scheduledThisTurn.remove(pending)
                work(self)
            }
        }

        /// A flag set rather than key paths to Bools: key-path access is a runtime call, and
        /// this runs for every call and every packet.
        struct TurnWork: OptionSet {
            let rawValue: UInt8
            /// Calls queued in the session leave in one container.
            static let sessionFlush = TurnWork(rawValue: 1)
            /// Packets written in this turn leave in one system call.
            static let channelFlush = TurnWork(rawValue: 2)
            /// Callers answered in this turn are resumed together.
            static let resumeCallers = TurnWork(rawValue: 4)
        }

        /// The system clock's wake-ups are the loop's own timers (no task per wake-up); an injected
        /// clock is slept on, so tests drive time.
        private func wake(at: UnixTime) {
            timer?.cancel()
            timer = nil
            timerTask?.cancel()
            timerTask = nil
            timerGeneration += 1
            let delay = max(0, at - clock.now())
            if clock is SystemClock {
                timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { [self] in
                    timer = nil
                    execute(machine.timerFired(now: clock.now()))
                }
            } else {
                let clock = self.clock
                let expected = timerGeneration
                let bound = NIOLoopBound(self, eventLoop: eventLoop)
                let eventLoop = self.eventLoop
                timerTask = Task {
                    do { try await clock.sleep(for: delay) } catch { return }
                    eventLoop.execute { bound.value.timerDue(generation: expected) }
                }
            }
        }

        private func timerDue(generation expected: Int) {
            guard expected == timerGeneration, timerTask != nil else { return }
            timerTask = nil
            execute(machine.timerFired(now: clock.now()))
        }

        // MARK: - The link

        /// Opens one connection; reports `connected` once it (and a proxy's handshake) is up, and
        /// exactly one `disconnected` when it fails or ends.
        private func openLink() {
            generation += 1
            let generation = self.generation
            isLinkDown = false
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            if let permit, !permit() {
                // Refused like a failed connect, after this turn (the machine is mid-action now).
                eventLoop.execute { bound.value.linkEnded(generation, reason: "the connection is not permitted (the account's lease is not held)") }
                return
            }
            let route = self.route
            let address = self.address
            let connectTimeout = machine.configuration.connectTimeout
            let configuration = MTProtoTransportConfiguration(entropy: entropy)
            let (socketHost, socketPort): (String, Int) =
                switch route.proxy {
                case .socks5(let proxy): (proxy.host, proxy.port)
                case .mtproxy(let proxy): (proxy.host, proxy.port)
                case nil: (address.host, address.port)
                }
            let readyBox = NIOLoopBoundBox<EventLoopFuture<Void>?>.makeEmptyBox(valueType: EventLoopFuture<Void>.self, eventLoop: eventLoop)
            MTProtoTransportClient.bootstrap(group: eventLoop, configuration: configuration)
                .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        readyBox.value = try sync.addMTProtoClientHandlers(
                            route: route, targetHost: address.host, targetPort: address.port, configuration: configuration)
                        // A proxy that drops a connection is named: an MTProxy closes one made with a wrong secret.
                        let closedBy = route.proxy.map { proxy in
                            if case .mtproxy = proxy { "closed by the \(proxy) (it closes connections made with a wrong secret)" }
                            else { "closed by the \(proxy) or the DC behind it" }
                        } ?? "closed by the server"
                        try sync.addHandler(LinkHandler(core: bound, generation: generation, closedBy: closedBy))
                    }
                }
                .connect(host: socketHost, port: socketPort)
                .hop(to: eventLoop)
                .whenComplete { result in
                    let core = bound.value
                    switch result {
                    case .failure(let error):
                        core.logger.debug("connect failed", metadata: ["address": "\(address)", "error": "\(error)"])
                        let target = route.proxy.map { "the \($0)" } ?? "\(socketHost):\(socketPort)"
                        core.linkEnded(generation, reason: "\(ConnectFailure.describe(error)) connecting to \(target)")
                    case .success(let channel):
                        guard generation == core.generation, !core.isLinkDown, !core.isClosed else {
                            channel.close(promise: nil)
                            core.linkEnded(generation, reason: "closed")
                            return
                        }
                        core.channel = channel
                        guard let ready = readyBox.value else { return core.linkUp(generation) }
                        ready.hop(to: core.eventLoop).whenComplete { result in
                            let core = bound.value
                            switch result {
                            case .success: core.linkUp(generation)
                            case .failure(let error):
                                // The reason first: the close ends the link at once, as "closed by the server".
                                core.linkEnded(generation, reason: "\(error)" + (route.proxy.map { " [\($0)]" } ?? ""),
                                               refusedByProxy: (error as? ProxyError)?.isRefusal ?? false)
                                channel.close(promise: nil)
                            }
                        }
                    }
                }
        }

        private func linkUp(_ generation: Int) {
            guard generation == self.generation, !isLinkDown else { return }
            logger.debug("connected", metadata: ["address": "\(address)"])
            execute(machine.connected(now: clock.now()))
        }

        fileprivate func received(_ frame: TransportFrame, generation: Int) {
            guard generation == self.generation, !isLinkDown else { return }
            // Restored, not cleared: a close while handling a frame can deliver another (a decoder's
            // last bytes) before this one is done.
            let outer = isHandlingFrame
            isHandlingFrame = true
            defer { isHandlingFrame = outer }
            execute(machine.received(frame, now: clock.now()))
        }

        fileprivate func linkEnded(_ generation: Int, reason: String, refusedByProxy: Bool = false) {
            guard generation == self.generation, !isLinkDown else { return }
            isLinkDown = true
            channel = nil
            logger.debug("connection ended", metadata: ["reason": "\(reason)"])
            execute(machine.disconnected(reason: reason, refusedByProxy: refusedByProxy, now: clock.now()))
        }
    }

    /// The last handler of a link's pipeline: frames to the core, the end of the link with its reason.
    private final class LinkHandler: ChannelInboundHandler {
        typealias InboundIn = TransportFrame

        private let core: NIOLoopBound<Core>
        private let generation: Int
        private var reason: String
        private var refusedByProxy = false

        init(core: NIOLoopBound<Core>, generation: Int, closedBy: String) {
            self.core = core
            self.generation = generation
            self.reason = closedBy
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            core.value.received(unwrapInboundIn(data), generation: generation)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // After a framing error the byte stream cannot be resynchronized.
            reason = "\(error)"
            refusedByProxy = (error as? ProxyError)?.isRefusal ?? false
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            core.value.linkEnded(generation, reason: reason, refusedByProxy: refusedByProxy)
            context.fireChannelInactive()
        }
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
