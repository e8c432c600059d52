import TLSchema

/// The update-sequence rules of https://core.telegram.org/api/updates as a value: feed it what the
/// server sent (pushes, answers of the client's own calls, differences) and the time; it returns
/// what to do (hand events out, fetch a difference, save the state, wake it at a deadline). The
/// actor-side glue (`UpdatesEngine`) runs the calls and the timer; nothing here does I/O.
///
/// - pts (common box and each channel), qts: `local + count == remote` applies, `>` is a repeat and
///   is dropped, `<` is a gap. A gap waits `gapTimeout` for the missing events to arrive (they often
///   do, out of order), then the box is fetched with updates.getDifference / getChannelDifference.
/// - seq (updates/updatesCombined): `seq_start == 0` applies at once, `local + 1 == seq_start`
///   applies, `>` is a repeat, `<` fetches the difference.
/// - While a box is being fetched its live events wait, and are checked again against the new state.
public struct UpdatesStateMachine: Sendable {
    public struct Configuration: Sendable, Equatable {
        /// How long a pts/qts gap may wait for the missing events before a difference is fetched.
        public var gapTimeout: Double
        /// How long to wait before fetching again after a difference call failed.
        public var retryDelay: Double
        /// The `limit` of updates.getChannelDifference.
        public var channelDifferenceLimit: Int32
        /// The logged-in user, to rebuild updateShortMessage as an updateNewMessage.
        public var selfUserID: Int64?

        public init(gapTimeout: Double = 0.5, retryDelay: Double = 1, channelDifferenceLimit: Int32 = 100, selfUserID: Int64? = nil) {
            self.gapTimeout = gapTimeout
            self.retryDelay = retryDelay
            self.channelDifferenceLimit = channelDifferenceLimit
            self.selfUserID = selfUserID
        }
    }

    /// A sequence the client keeps: the common box (pts), the secondary one (qts), or a channel's box.
    public enum Box: Hashable, Sendable, Comparable {
        case common
        case secondary
        case channel(Int64)
    }

    public enum Action: Sendable, Equatable {
        /// Hand these to the consumer, in order.
        case deliver([UpdateEvent])
        case fetchState
        case fetchDifference(pts: Int32, qts: Int32, date: Int32)
        case fetchChannelDifference(channelID: Int64, accessHash: Int64, pts: Int32, limit: Int32)
        /// Persist this state (after the events delivered before it).
        case save(UpdatesState)
        /// Call `wakeUp(now:)` at this time (a gap's deadline or a retry).
        case wakeUp(at: Double)
    }

    enum Phase: Sendable, Equatable {
        /// Not tracking: only updates outside every sequence (updateShort, e.g. updateLoginToken) go out.
        case stopped
        /// updates.getState is under way; everything waits.
        case fetchingState
        case running
    }

    /// An event of a box, waiting for its turn (a gap before it, or its box being fetched).
    struct Pending: Sendable, Equatable {
        var box: Box
        var pts: Int32
        var count: Int32
        /// nil for events that only move pts (updateShortSentMessage, messages.affectedMessages).
        var event: UpdateEvent?
    }

    public var configuration: Configuration
    public private(set) var state: UpdatesState?
    private(set) var phase: Phase = .stopped
    private(set) var fetching: Set<Box> = []
    private(set) var pending: [Pending] = []
    private(set) var deadlines: [Box: Double] = [:]
    /// A session restarted while the common box's difference was under way: fetch once more after it.
    private(set) var fetchAgain = false
    /// Containers that arrived while updates.getState was under way.
    private var queued: [Api.Updates] = []

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    public var isRunning: Bool { phase == .running }

    // MARK: - Start

    /// Starts tracking: from a stored state (fetching what happened meanwhile unless `isCurrent`, i.e.
    /// it was just read with updates.getState), or from the server's current state when there is
    /// none (`.fetchState`; nothing before it can be recovered).
    public mutating func start(from stored: UpdatesState?, isCurrent: Bool = false, now: Double) -> [Action] {
        guard phase == .stopped else { return [] }
        if let stored {
            state = stored
            phase = .running
            return isCurrent ? [] : fetch(.common, now: now)
        }
        phase = .fetchingState
        return [.fetchState]
    }

    public mutating func stateFetched(_ fetched: Api.updates.State, now: Double) -> [Action] {
        guard phase == .fetchingState else { return [] }
        state = UpdatesState(fetched, keepingChannelsOf: state)
        phase = .running
        var actions: [Action] = []
        if let state { actions.append(.save(state)) }
        let waiting = queued
        queued.removeAll()
        for updates in waiting { actions += receive(updates, now: now) }
        return actions
    }

    // MARK: - Input

    /// An `Updates` the server pushed, or the answer of one of the client's own calls.
    public mutating func receive(_ updates: Api.Updates, now: Double) -> [Action] {
        switch phase {
        case .stopped:
            // Outside any sequence, an update needs no state (QR login's updateLoginToken arrives so).
            guard case .updateShort(let short) = updates, Self.sequence(of: short.update) == nil else { return [] }
            return [.deliver([UpdateEvent(update: short.update, users: [], chats: [], origin: .live)])]
        case .fetchingState:
            queued.append(updates)
            return []
        case .running:
            break
        }
        var context = Batch(now: now)
        switch updates {
        case .updatesTooLong:
            context.actions += fetch(.common, now: now)
        case .updateShort(let short):
            process(short.update, users: [], chats: [], origin: .live, into: &context)
        case .updateShortMessage(let short):
            let me = configuration.selfUserID
            let message = Api.Message.message(Api.Message.Message(
                out: short.out, mentioned: short.mentioned, mediaUnread: short.mediaUnread, silent: short.silent, id: short.id,
                fromId: .peerUser(Api.Peer.PeerUser(userId: short.out ? (me ?? 0) : short.userId)),
                peerId: .peerUser(Api.Peer.PeerUser(userId: short.userId)), fwdFrom: short.fwdFrom, viaBotId: short.viaBotId,
                replyTo: short.replyTo, date: short.date, message: short.message, entities: short.entities, ttlPeriod: short.ttlPeriod))
            process(.updateNewMessage(Api.Update.UpdateNewMessage(message: message, pts: short.pts, ptsCount: short.ptsCount)),
                    users: [], chats: [], origin: .live, into: &context)
        case .updateShortChatMessage(let short):
            let message = Api.Message.message(Api.Message.Message(
                out: short.out, mentioned: short.mentioned, mediaUnread: short.mediaUnread, silent: short.silent, id: short.id,
                fromId: .peerUser(Api.Peer.PeerUser(userId: short.fromId)), peerId: .peerChat(Api.Peer.PeerChat(chatId: short.chatId)),
                fwdFrom: short.fwdFrom, viaBotId: short.viaBotId, replyTo: short.replyTo, date: short.date, message: short.message,
                entities: short.entities, ttlPeriod: short.ttlPeriod))
            process(.updateNewMessage(Api.Update.UpdateNewMessage(message: message, pts: short.pts, ptsCount: short.ptsCount)),
                    users: [], chats: [], origin: .live, into: &context)
        case .updateShortSentMessage(let sent):
            enqueue(Pending(box: .common, pts: sent.pts, count: sent.ptsCount, event: nil), into: &context)
        case .updates(let value):
            receiveSequenced(value.updates, users: value.users, chats: value.chats, date: value.date, seqStart: value.seq, seq: value.seq, into: &context)
        case .updatesCombined(let value):
            receiveSequenced(value.updates, users: value.users, chats: value.chats, date: value.date, seqStart: value.seqStart, seq: value.seq, into: &context)
        }
        return finish(context)
    }

    /// messages.affectedMessages / affectedHistory of the client's own calls: the common box moved.
    public mutating func receiveAffected(pts: Int32, count: Int32, now: Double) -> [Action] {
        guard phase == .running else { return [] }
        var context = Batch(now: now)
        enqueue(Pending(box: .common, pts: pts, count: count, event: nil), into: &context)
        return finish(context)
    }

    /// A channel's pts and access hash seen in an answer (channelMessages, chats lists): remembered
    /// only when the client has no pts for it yet, so a later gap can be fetched.
    public mutating func noteChannel(_ channelID: Int64, pts: Int32?, accessHash: Int64?) -> [Action] {
        guard phase == .running, var current = state else { return [] }
        var changed = false
        if let pts, current.channels[channelID] == nil {
            current.channels[channelID] = pts
            changed = true
        }
        if let accessHash, current.channelAccessHashes[channelID] != accessHash {
            current.channelAccessHashes[channelID] = accessHash
            changed = true
        }
        guard changed else { return [] }
        state = current
        return [.save(current)]
    }

    /// The server started a new session for us (or the link came back after a loss): pushes may have
    /// been lost meanwhile, so the common box is fetched (the spec's "session loss" case).
    public mutating func sessionRestarted(now: Double) -> [Action] {
        guard phase == .running else { return [] }
        // A difference already under way may have been answered before the pushes this link lost
        // were sent: once it is in, fetch again from where it leaves the state.
        if fetching.contains(.common) {
            fetchAgain = true
            return []
        }
        return fetch(.common, now: now)
    }

    /// Deadlines passed: gaps that did not fill are fetched; failed fetches are retried.
    public mutating func wakeUp(now: Double) -> [Action] {
        var actions: [Action] = []
        for (box, deadline) in deadlines.sorted(by: { $0.key < $1.key }) where deadline <= now {
            deadlines[box] = nil
            actions += fetch(box, now: now)
        }
        if let next = deadlines.values.min() { actions.append(.wakeUp(at: next)) }
        return actions
    }

    // MARK: - Differences

    public mutating func differenceReceived(_ difference: Api.updates.Difference, now: Double) -> [Action] {
        guard phase == .running, fetching.contains(.common), var current = state else { return [] }
        var context = Batch(now: now)
        var again = false
        switch difference {
        case .differenceEmpty(let empty):
            current.date = empty.date
            current.seq = empty.seq
            state = current
        case .difference(let value):
            apply(value.newMessages, value.otherUpdates, users: value.users, chats: value.chats, pts: value.state, into: &context)
            state = UpdatesState(value.state, keepingChannelsOf: state)
        case .differenceSlice(let slice):
            apply(slice.newMessages, slice.otherUpdates, users: slice.users, chats: slice.chats, pts: slice.intermediateState, into: &context)
            state = UpdatesState(slice.intermediateState, keepingChannelsOf: state)
            again = true
        case .differenceTooLong(let tooLong):
            // Too much happened: the server gives the pts to continue from; what came before is gone.
            current.pts = tooLong.pts
            state = current
            again = true
        }
        fetching.remove(.common)
        if fetchAgain {
            fetchAgain = false
            again = true
        }
        if again {
            context.actions += fetch(.common, now: now)
        } else {
            drain(.common, into: &context)
            drain(.secondary, into: &context)
        }
        context.stateChanged = true
        return finish(context)
    }

    public mutating func channelDifferenceReceived(_ difference: Api.updates.ChannelDifference, channelID: Int64, now: Double) -> [Action] {
        let box = Box.channel(channelID)
        guard phase == .running, fetching.contains(box), var current = state else { return [] }
        var context = Batch(now: now)
        var again = false
        switch difference {
        case .channelDifferenceEmpty(let empty):
            current.channels[channelID] = empty.pts
            state = current
        case .channelDifference(let value):
            learnChannels(value.chats)
            let messages = value.newMessages.map { message in
                Api.Update.updateNewChannelMessage(Api.Update.UpdateNewChannelMessage(message: message, pts: value.pts, ptsCount: 0))
            }
            for update in messages + value.otherUpdates {
                context.events.append(UpdateEvent(update: update, users: value.users, chats: value.chats, origin: .difference))
            }
            state?.channels[channelID] = value.pts
            again = !value.final
        case .channelDifferenceTooLong(let tooLong):
            learnChannels(tooLong.chats)
            // The gap is too large to replay: the consumer is told to reload the channel.
            if case .dialog(let dialog) = tooLong.dialog, let pts = dialog.pts {
                state?.channels[channelID] = pts
            }
            let notice = Api.Update.updateChannelTooLong(Api.Update.UpdateChannelTooLong(channelId: channelID, pts: state?.channels[channelID]))
            context.events.append(UpdateEvent(update: notice, users: tooLong.users, chats: tooLong.chats, origin: .difference))
            again = !tooLong.final
        }
        fetching.remove(box)
        if again {
            context.actions += fetch(box, now: now)
        } else {
            drain(box, into: &context)
        }
        context.stateChanged = true
        return finish(context)
    }

    /// A difference call failed (network, flood wait...): the box is fetched again after `retryDelay`.
    public mutating func fetchFailed(_ box: Box, now: Double) -> [Action] {
        guard fetching.remove(box) != nil else { return [] }
        // The retry starts from the current state, which covers what a lost link asked for.
        if box == .common { fetchAgain = false }
        let deadline = now + configuration.retryDelay
        deadlines[box] = min(deadlines[box] ?? deadline, deadline)
        return [.wakeUp(at: deadlines.values.min() ?? deadline)]
    }

    // MARK: - Internals

    /// What one input produced: events in order, then other actions, then one save.
    private struct Batch {
        var now: Double
        var events: [UpdateEvent] = []
        var actions: [Action] = []
        var stateChanged = false
    }

    private mutating func finish(_ context: Batch) -> [Action] {
        var actions: [Action] = []
        if !context.events.isEmpty { actions.append(.deliver(context.events)) }
        actions += context.actions
        if context.stateChanged, let state { actions.append(.save(state)) }
        if let next = deadlines.values.min(), !context.actions.contains(where: { if case .wakeUp = $0 { true } else { false } }) {
            actions.append(.wakeUp(at: next))
        }
        return actions
    }

    private mutating func receiveSequenced(
        _ updates: [Api.Update], users: [Api.User], chats: [Api.Chat], date: Int32, seqStart: Int32, seq: Int32, into context: inout Batch
    ) {
        learnChannels(chats)
        guard let local = state?.seq else { return }
        if seqStart != 0 {
            if local + 1 > seqStart { return }  // already applied
            if local + 1 < seqStart {
                // A container went missing. Its pts-carrying events still sort themselves out below;
                // the difference brings the rest and the new seq.
                context.actions += fetch(.common, now: context.now)
            }
        }
        for update in updates { process(update, users: users, chats: chats, origin: .live, into: &context) }
        if seqStart != 0, local + 1 == seqStart, !fetching.contains(.common) {
            state?.seq = seq
            state?.date = date
            context.stateChanged = true
        } else if seqStart == 0, let current = state?.date, date > current {
            state?.date = date
            context.stateChanged = true
        }
    }

    private mutating func process(_ update: Api.Update, users: [Api.User], chats: [Api.Chat], origin: UpdateEvent.Origin, into context: inout Batch) {
        let event = UpdateEvent(update: update, users: users, chats: chats, origin: origin)
        if case .updateChannelTooLong(let tooLong) = update {
            if state?.channels[tooLong.channelId] == nil, let pts = tooLong.pts {
                // Nothing known about this channel: start from the server's pts (older events are history).
                state?.channels[tooLong.channelId] = pts
                context.stateChanged = true
            }
            context.actions += fetch(.channel(tooLong.channelId), now: context.now)
            return
        }
        guard let (box, pts, count) = Self.sequence(of: update) else {
            context.events.append(event)
            return
        }
        enqueue(Pending(box: box, pts: pts, count: count, event: event), into: &context)
    }

    /// Applies an event of a box now if it is next, or keeps it until its turn (or drops a repeat).
    private mutating func enqueue(_ item: Pending, into context: inout Batch) {
        if case .channel(let id) = item.box, state?.channels[id] == nil {
            // The first event seen of a channel sets its pts: there is nothing to compare with.
            state?.channels[id] = item.pts - item.count
            context.stateChanged = true
        }
        pending.append(item)
        drain(item.box, into: &context)
    }

    /// Applies the box's waiting events that are next in order, drops repeats, and keeps a deadline
    /// for the gap when some still wait.
    private mutating func drain(_ box: Box, into context: inout Batch) {
        guard !fetching.contains(box) else { return }
        while true {
            guard let local = localPts(box) else { return }
            var progressed = false
            pending.removeAll { $0.box == box && local + $0.count > $0.pts }
            if let index = pending.firstIndex(where: { $0.box == box && local + $0.count == $0.pts }) {
                let item = pending.remove(at: index)
                setLocalPts(box, item.pts)
                context.stateChanged = true
                if let event = item.event { context.events.append(event) }
                progressed = true
            }
            if !progressed { break }
        }
        if pending.contains(where: { $0.box == box }) {
            if deadlines[box] == nil { deadlines[box] = context.now + configuration.gapTimeout }
        } else {
            deadlines[box] = nil
        }
    }

    private mutating func fetch(_ box: Box, now: Double) -> [Action] {
        guard phase == .running, let current = state, !fetching.contains(box) else { return [] }
        switch box {
        case .common, .secondary:
            // One getDifference covers both pts and qts.
            fetching.insert(.common)
            fetching.insert(.secondary)
            deadlines[.common] = nil
            deadlines[.secondary] = nil
            return [.fetchDifference(pts: current.pts, qts: current.qts, date: current.date)]
        case .channel(let id):
            guard let accessHash = current.channelAccessHashes[id], let pts = current.channels[id] else {
                // Without an access hash the channel cannot be named; its waiting events are dropped
                // rather than blocking forever (a later update with the channel in `chats` starts it over).
                pending.removeAll { $0.box == box }
                deadlines[box] = nil
                return []
            }
            fetching.insert(box)
            deadlines[box] = nil
            return [.fetchChannelDifference(channelID: id, accessHash: accessHash, pts: pts, limit: configuration.channelDifferenceLimit)]
        }
    }

    /// Hands out a difference: new messages as updateNewMessage (pts of the new state, count 0:
    /// already applied), other updates as they are, channels that need a fetch fetched.
    private mutating func apply(
        _ messages: [Api.Message], _ others: [Api.Update], users: [Api.User], chats: [Api.Chat], pts state: Api.updates.State, into context: inout Batch
    ) {
        learnChannels(chats)
        guard case .state(let value) = state else { return }
        for message in messages {
            let update = Api.Update.updateNewMessage(Api.Update.UpdateNewMessage(message: message, pts: value.pts, ptsCount: 0))
            context.events.append(UpdateEvent(update: update, users: users, chats: chats, origin: .difference))
        }
        for update in others {
            switch update {
            case .updateChannelTooLong:
                process(update, users: users, chats: chats, origin: .difference, into: &context)
            default:
                if let (box, pts, count) = Self.sequence(of: update), case .channel = box {
                    // A channel event inside the common difference still follows its channel's pts.
                    enqueue(Pending(box: box, pts: pts, count: count, event: UpdateEvent(update: update, users: users, chats: chats, origin: .difference)), into: &context)
                } else {
                    context.events.append(UpdateEvent(update: update, users: users, chats: chats, origin: .difference))
                }
            }
        }
    }

    private mutating func learnChannels(_ chats: [Api.Chat]) {
        for chat in chats {
            guard case .channel(let channel) = chat, !channel.min, let hash = channel.accessHash else { continue }
            if state?.channelAccessHashes[channel.id] != hash { state?.channelAccessHashes[channel.id] = hash }
        }
    }

    private func localPts(_ box: Box) -> Int32? {
        switch box {
        case .common: state?.pts
        case .secondary: state?.qts
        case .channel(let id): state?.channels[id]
        }
    }

    private mutating func setLocalPts(_ box: Box, _ value: Int32) {
        switch box {
        case .common: state?.pts = value
        case .secondary: state?.qts = value
        case .channel(let id): state?.channels[id] = value
        }
    }

    /// The box an update belongs to, with its pts (or qts) and count; nil for updates outside every sequence.
    static func sequence(of update: Api.Update) -> (Box, Int32, Int32)? {
        switch update {
        case .updateNewMessage(let u): (.common, u.pts, u.ptsCount)
        case .updateEditMessage(let u): (.common, u.pts, u.ptsCount)
        case .updateDeleteMessages(let u): (.common, u.pts, u.ptsCount)
        case .updateReadHistoryInbox(let u): (.common, u.pts, u.ptsCount)
        case .updateReadHistoryOutbox(let u): (.common, u.pts, u.ptsCount)
        case .updateReadMessagesContents(let u): (.common, u.pts, u.ptsCount)
        case .updateWebPage(let u): (.common, u.pts, u.ptsCount)
        case .updatePinnedMessages(let u): (.common, u.pts, u.ptsCount)
        case .updateFolderPeers(let u): (.common, u.pts, u.ptsCount)
        case .updateNewEncryptedMessage(let u): (.secondary, u.qts, 1)
        case .updateBotStopped(let u): (.secondary, u.qts, 1)
        case .updateChannelParticipant(let u): (.secondary, u.qts, 1)
        case .updateChatParticipant(let u): (.secondary, u.qts, 1)
        case .updateBotChatInviteRequester(let u): (.secondary, u.qts, 1)
        case .updateNewChannelMessage(let u): channelID(of: u.message).map { (.channel($0), u.pts, u.ptsCount) }
        case .updateEditChannelMessage(let u): channelID(of: u.message).map { (.channel($0), u.pts, u.ptsCount) }
        case .updateDeleteChannelMessages(let u): (.channel(u.channelId), u.pts, u.ptsCount)
        case .updateChannelWebPage(let u): (.channel(u.channelId), u.pts, u.ptsCount)
        case .updatePinnedChannelMessages(let u): (.channel(u.channelId), u.pts, u.ptsCount)
        default: nil
        }
    }

    static func channelID(of message: Api.Message) -> Int64? {
        let peer: Api.Peer?
        switch message {
        case .message(let value): peer = value.peerId
        case .messageService(let value): peer = value.peerId
        case .messageEmpty(let value): peer = value.peerId
        }
        if case .peerChannel(let channel) = peer { return channel.channelId }
        return nil
    }
}
