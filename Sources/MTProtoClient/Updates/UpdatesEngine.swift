import Logging
import MTProto
import Synchronization
import TL
import TLSchema

/// The calls and storage the engine needs from its client.
struct UpdatesBackend: Sendable {
    var getState: @Sendable () async throws(TelegramError) -> Api.updates.State
    var getDifference: @Sendable (_ pts: Int32, _ qts: Int32, _ date: Int32) async throws(TelegramError) -> Api.updates.Difference
    var getChannelDifference: @Sendable (_ channelID: Int64, _ accessHash: Int64, _ pts: Int32, _ limit: Int32) async throws(TelegramError) -> Api.updates.ChannelDifference
    var save: @Sendable (UpdatesState) async -> Void
}

/// The actor side of `UpdatesStateMachine`: one queue owns the machine and takes its inputs in
/// arrival order (pushes, answers, differences, timers), runs the calls it asks for,
/// yields the events to `events`, and saves each state once the consumer has finished the events
/// handed out before it (`UpdateStream`: asking for the next event finishes the previous ones).
/// Saving on hand-out instead would lose, at a crash, the events still waiting in the buffer: the
/// stored pts would already be past them.
final class UpdatesEngine: Sendable {
    enum Input: Sendable {
        case start(UpdatesState?, isCurrent: Bool, UpdatesStateMachine.Configuration, UpdatesBackend, any TelegramClock)
        case server(ServerEvent)
        case result(Api.Updates)
        case affected(pts: Int32, count: Int32)
        case channel(id: Int64, pts: Int32?, accessHash: Int64?)
        case stateFetched(Api.updates.State)
        case difference(Api.updates.Difference)
        case channelDifference(Int64, Api.updates.ChannelDifference)
        case fetchFailed(UpdatesStateMachine.Box)
        case wake
        /// The consumer has finished this many events in all (it asked for the next one).
        case finished(Int)
    }

    let events: AsyncStream<UpdateEvent>
    /// Events returned to the consumer so far; `UpdateStream`'s iterator counts them.
    let returned = Atomic<Int>(0)
    private let output: AsyncStream<UpdateEvent>.Continuation
    /// Runs only while inputs wait: an idle client holds no task for its updates.
    private let inputs: OnDemandSerialQueue<Input, Runner>
    private let feedback: Feedback
    /// Where service notifications go, whether updates are started or not.
    let notices = ServiceNotificationSink()

    init(logger: Logger) {
        let (events, output) = AsyncStream.makeStream(of: UpdateEvent.self, bufferingPolicy: .unbounded)
        self.events = events
        self.output = output
        let feedback = Feedback()
        let notices = self.notices
        inputs = OnDemandSerialQueue(context: Runner(output: output, inputs: feedback, notices: notices, logger: logger)) { runner, input in
            await runner.handle(input)
        }
        feedback.queue = inputs
        self.feedback = feedback
    }

    func submit(_ input: Input) {
        if case .start = input { feedback.isStarted.store(true, ordering: .relaxed) }
        inputs.submit(input)
    }

    /// The stream the client hands out: each request for the next event reports the ones before as
    /// finished. Asking for it says someone reads: from then on updates outside every sequence go
    /// out before updates are started too.
    var stream: UpdateStream {
        feedback.hasConsumer.store(true, ordering: .relaxed)
        return UpdateStream(engine: self)
    }

    /// Feeds the answer of one of the client's own calls: Updates and affected pts move the boxes too.
    func noteResult<Result>(_ result: Result) {
        // Most answers are none of these: comparing the static type first spares them four
        // dynamic casts (a measurable share of a small call's client time).
        let type = Result.self
        // A service notification in an answer reaches its handler whether updates run or not.
        if type == Api.Updates.self, let updates = result as? Api.Updates { notices.deliver(updates) }
        // Before updates are started nothing here changes the machine (the state fetched at the
        // start covers these answers), and a call's answer costs no task for the queue.
        guard feedback.isStarted.load(ordering: .relaxed) else { return }
        guard type == Api.Updates.self || type == Api.messages.AffectedMessages.self
            || type == Api.messages.AffectedHistory.self || type == Api.messages.Messages.self
        else { return }
        switch result as Any {
        case let updates as Api.Updates:
            inputs.submit(.result(updates))
        case let affected as Api.messages.AffectedMessages:
            if case .affectedMessages(let value) = affected { inputs.submit(.affected(pts: value.pts, count: value.ptsCount)) }
        case let affected as Api.messages.AffectedHistory:
            if case .affectedHistory(let value) = affected { inputs.submit(.affected(pts: value.pts, count: value.ptsCount)) }
        case let messages as Api.messages.Messages:
            guard case .channelMessages(let value) = messages,
                let first = value.messages.first, let channelID = UpdatesStateMachine.channelID(of: first)
            else { return }
            var hash: Int64?
            for chat in value.chats {
                if case .channel(let channel) = chat, channel.id == channelID, !channel.min { hash = channel.accessHash }
            }
            inputs.submit(.channel(id: channelID, pts: value.pts, accessHash: hash))
        default:
            break
        }
    }

    /// Stops taking input and waits until what already arrived is handled and the state of the
    /// events the consumer finished is saved (not beyond: the rest comes again after a restart).
    func close() async {
        inputs.finish()
        await inputs.drained()
        _ = inputs.withIdleContext { $0.stop() }
        output.finish()
    }

    /// How the runner's own tasks (fetches, the timer) submit what they got: weakly, because the
    /// runner lives inside the queue (a strong reference would keep an unclosed engine forever).
    private final class Feedback: Sendable {
        private let weakQueue = Mutex<WeakQueue>(WeakQueue())
        /// Set when `.start` is submitted (the machine never stops once started), for `noteResult`.
        let isStarted = Atomic<Bool>(false)
        /// Set when the client's `updates` stream is first asked for.
        let hasConsumer = Atomic<Bool>(false)
        private struct WeakQueue { weak var queue: OnDemandSerialQueue<Input, Runner>? }

        var queue: OnDemandSerialQueue<Input, Runner>? {
            get { weakQueue.withLock { $0.queue } }
            set { weakQueue.withLock { $0.queue = newValue } }
        }

        /// Dropped after `close()`, as the stream's `yield` after `finish()` was.
        func yield(_ input: Input) { queue?.submit(input) }
    }

    /// Lives inside the queue: the machine, the backend, the timer.
    private struct Runner {
        let output: AsyncStream<UpdateEvent>.Continuation
        let inputs: Feedback
        let notices: ServiceNotificationSink
        let logger: Logger
        var machine = UpdatesStateMachine()
        var backend: UpdatesBackend?
        var clock: (any TelegramClock)?
        var timer: Task<Void, Never>?
        var timerTarget: Double?
        /// Events yielded so far, and how many of them the consumer has finished.
        var yielded = 0
        var finished = 0
        /// States waiting for the consumer: each may be saved once `finished` reaches `through`.
        var unsaved: [(through: Int, state: UpdatesState)] = []

        init(output: AsyncStream<UpdateEvent>.Continuation, inputs: Feedback, notices: ServiceNotificationSink, logger: Logger) {
            self.output = output
            self.inputs = inputs
            self.notices = notices
            self.logger = logger
        }

        mutating func handle(_ input: Input) async {
            let now = clock?.now().seconds ?? 0
            let actions: [UpdatesStateMachine.Action]
            switch input {
            case .start(let stored, let isCurrent, let configuration, let backend, let clock):
                self.backend = backend
                self.clock = clock
                machine.configuration = configuration
                actions = machine.start(from: stored, isCurrent: isCurrent, now: clock.now().seconds)
            case .server(.update(let body)):
                var reader = TLReader(body, inflater: ZlibGzip())
                guard let updates = try? Api.Updates(from: &reader) else {
                    // Not an Updates (or undecodable): the spec's "incorrect update" case.
                    logger.debug("unsolicited message is not an Updates; fetching the difference")
                    actions = machine.sessionRestarted(now: now)
                    break
                }
                // Pushed notices reach their handler before the machine, started or not.
                notices.deliver(updates)
                actions = machine.receive(updates, now: now)
            case .server(.sessionCreated), .server(.linkLost):
                actions = machine.sessionRestarted(now: now)
            case .result(let updates):
                actions = machine.receive(updates, now: now)
            case .affected(let pts, let count):
                actions = machine.receiveAffected(pts: pts, count: count, now: now)
            case .channel(let id, let pts, let hash):
                actions = machine.noteChannel(id, pts: pts, accessHash: hash)
            case .stateFetched(let state):
                actions = machine.stateFetched(state, now: now)
            case .difference(let difference):
                // Notices sent while the client was away (or lost in a gap) reach the handler too.
                notices.deliver(ServiceNotification.all(in: difference))
                actions = machine.differenceReceived(difference, now: now)
            case .channelDifference(let id, let difference):
                actions = machine.channelDifferenceReceived(difference, channelID: id, now: now)
            case .fetchFailed(let box):
                actions = machine.fetchFailed(box, now: now)
            case .wake:
                timer = nil
                timerTarget = nil
                actions = machine.wakeUp(now: now)
            case .finished(let count):
                finished = max(finished, count)
                guard let last = unsaved.lastIndex(where: { $0.through <= finished }) else { return }
                let state = unsaved[last].state
                unsaved.removeFirst(last + 1)
                await backend?.save(state)
                return
            }
            await perform(actions)
        }

        mutating func perform(_ actions: [UpdatesStateMachine.Action]) async {
            for action in actions {
                switch action {
                case .deliver(let events):
                    // Before updates are started, updates outside every sequence (a status, typing)
                    // go out only to a consumer already iterating (QR login's wait): with none, the
                    // unbounded buffer would hold every one for the process's life.
                    guard inputs.isStarted.load(ordering: .relaxed) || inputs.hasConsumer.load(ordering: .relaxed) else { continue }
                    for event in events { output.yield(event) }
                    yielded += events.count
                case .save(let state):
                    if yielded <= finished, unsaved.isEmpty {
                        await backend?.save(state)
                    } else {
                        unsaved.append((through: yielded, state: state))
                    }
                case .wakeUp(let at):
                    schedule(at: at)
                case .fetchState:
                    guard let backend, let clock else { continue }
                    let inputs = self.inputs
                    let retry = machine.configuration.retryDelay
                    let logger = self.logger
                    Task {
                        while !Task.isCancelled {
                            do throws(TelegramError) {
                                inputs.yield(.stateFetched(try await backend.getState()))
                                return
                            } catch {
                                if case .closed = error { return }
                                logger.debug("updates.getState failed; retrying", metadata: ["error": "\(error)"])
                                do { try await clock.sleep(for: retry) } catch { return }
                            }
                        }
                    }
                case .fetchDifference(let pts, let qts, let date):
                    guard let backend else { continue }
                    fetch(.common) { () throws(TelegramError) -> Input in .difference(try await backend.getDifference(pts, qts, date)) }
                case .fetchChannelDifference(let id, let hash, let pts, let limit):
                    guard let backend else { continue }
                    fetch(.channel(id)) { () throws(TelegramError) -> Input in
                        .channelDifference(id, try await backend.getChannelDifference(id, hash, pts, limit))
                    }
                }
            }
        }

        private func fetch(_ box: UpdatesStateMachine.Box, _ call: @escaping @Sendable () async throws(TelegramError) -> Input) {
            let inputs = self.inputs
            let logger = self.logger
            Task {
                do throws(TelegramError) {
                    inputs.yield(try await call())
                } catch {
                    if case .closed = error { return }
                    logger.debug("fetching the difference failed", metadata: ["box": "\(box)", "error": "\(error)"])
                    inputs.yield(.fetchFailed(box))
                }
            }
        }

        private mutating func schedule(at deadline: Double) {
            guard let clock else { return }
            if let target = timerTarget, target <= deadline, timer != nil { return }
            timer?.cancel()
            timerTarget = deadline
            let inputs = self.inputs
            timer = Task {
                do { try await clock.sleep(for: max(0, deadline - clock.now().seconds)) } catch { return }
                inputs.yield(.wake)
            }
        }

        mutating func stop() {
            timer?.cancel()
            timer = nil
        }
    }
}

/// The account's updates, for one consumer. Asking for the next event tells the client the events
/// returned before are finished; the update state is saved only as far as finished events go. So a
/// process that dies while handling an event (or with events still buffered) gets them again from
/// updates.getDifference after its restart: at least once, never lost. Handle an event fully
/// (store it, enqueue its job) before asking for the next one.
public struct UpdateStream: AsyncSequence, Sendable {
    public typealias Element = UpdateEvent
    public typealias Failure = Never

    let engine: UpdatesEngine

    public func makeAsyncIterator() -> Iterator {
        Iterator(inner: engine.events.makeAsyncIterator(), engine: engine)
    }

    public struct Iterator: AsyncIteratorProtocol {
        var inner: AsyncStream<UpdateEvent>.Iterator
        let engine: UpdatesEngine

        public mutating func next() async -> UpdateEvent? {
            finish()
            return counted(await inner.next())
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> UpdateEvent? {
            finish()
            return counted(await inner.next(isolation: actor))
        }

        /// Marks every event returned so far as finished without waiting for another one: a
        /// consumer that stops (before `TelegramClient.close()`) after handling its last event.
        public func finish() {
            let finished = engine.returned.load(ordering: .acquiring)
            if finished > 0 { engine.submit(.finished(finished)) }
        }

        private func counted(_ event: UpdateEvent?) -> UpdateEvent? {
            if event != nil { engine.returned.add(1, ordering: .releasing) }
            return event
        }
    }
}
