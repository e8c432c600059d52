import TLSchema
import Testing
@testable import MTProtoClient

/// The gap rules of https://core.telegram.org/api/updates, input by input, with an explicit clock.
@Suite struct UpdatesStateMachineTests {
    typealias Machine = UpdatesStateMachine
    static let me: Int64 = 1001
    static let channelID: Int64 = 2001
    static let channelHash: Int64 = 0x2001

    // MARK: - Builders

    static func message(_ id: Int32, _ text: String, channel: Int64? = nil) -> Api.Message {
        .message(Api.Message.Message(
            id: id, fromId: .peerUser(.init(userId: 1002)),
            peerId: channel.map { .peerChannel(.init(channelId: $0)) } ?? .peerUser(.init(userId: 1002)), date: 100, message: text))
    }

    static func newMessage(_ text: String, pts: Int32, count: Int32 = 1) -> Api.Update {
        .updateNewMessage(.init(message: message(pts, text), pts: pts, ptsCount: count))
    }

    static func channelPost(_ text: String, pts: Int32) -> Api.Update {
        .updateNewChannelMessage(.init(message: message(pts, text, channel: channelID), pts: pts, ptsCount: 1))
    }

    static let channelChat = Api.Chat.channel(.init(id: channelID, accessHash: channelHash, title: "News", photo: .chatPhotoEmpty(.init()), date: 1))

    static func updates(_ list: [Api.Update], seq: Int32 = 0, date: Int32 = 200, chats: [Api.Chat] = []) -> Api.Updates {
        .updates(.init(updates: list, users: [], chats: chats, date: date, seq: seq))
    }

    static func state(pts: Int32, qts: Int32 = 0, seq: Int32 = 0, date: Int32 = 100) -> Api.updates.State {
        .state(.init(pts: pts, qts: qts, date: date, seq: seq, unreadCount: 0))
    }

    /// A running machine at pts 10, seq 5.
    static func running(gapTimeout: Double = 0.5) -> Machine {
        var machine = Machine(configuration: .init(gapTimeout: gapTimeout, retryDelay: 2, selfUserID: me))
        _ = machine.start(from: UpdatesState(pts: 10, qts: 3, seq: 5, date: 100), isCurrent: true, now: 0)
        return machine
    }

    static func delivered(_ actions: [Machine.Action]) -> [String] {
        actions.flatMap { action -> [String] in
            guard case .deliver(let events) = action else { return [] }
            return events.map { event in
                switch event.update {
                case .updateNewMessage(let u): text(u.message)
                case .updateNewChannelMessage(let u): text(u.message)
                case .updateLoginToken: "loginToken"
                case .updateChannelTooLong(let u): "tooLong \(u.channelId)"
                default: "other"
                }
            }
        }
    }

    static func text(_ message: Api.Message) -> String {
        if case .message(let plain) = message { return plain.message }
        return "?"
    }

    static func fetches(_ actions: [Machine.Action]) -> [Machine.Action] {
        actions.filter {
            switch $0 {
            case .fetchDifference, .fetchChannelDifference, .fetchState: true
            default: false
            }
        }
    }

    // MARK: - pts

    @Test func theNextPtsIsAppliedAndSaved() {
        var machine = Self.running()
        let actions = machine.receive(Self.updates([Self.newMessage("a", pts: 11)]), now: 1)
        #expect(Self.delivered(actions) == ["a"])
        #expect(machine.state?.pts == 11)
        #expect(actions.contains(.save(machine.state ?? UpdatesState(pts: 0, qts: 0, seq: 0, date: 0))))
        // The save comes after the events it covers.
        #expect(actions.firstIndex { if case .deliver = $0 { true } else { false } } ?? 9 < actions.firstIndex { if case .save = $0 { true } else { false } } ?? 0)
    }

    @Test func aRepeatedUpdateIsDropped() {
        var machine = Self.running()
        _ = machine.receive(Self.updates([Self.newMessage("a", pts: 11)]), now: 1)
        let again = machine.receive(Self.updates([Self.newMessage("a", pts: 11)]), now: 2)
        #expect(Self.delivered(again).isEmpty)
        #expect(machine.state?.pts == 11)
    }

    @Test func aGapWaitsAndIsFilledByTheMissingUpdateArrivingLate() {
        var machine = Self.running()
        let early = machine.receive(Self.updates([Self.newMessage("second", pts: 12)]), now: 1)
        #expect(Self.delivered(early).isEmpty)
        #expect(early.contains(.wakeUp(at: 1.5)))
        #expect(machine.state?.pts == 10)
        let late = machine.receive(Self.updates([Self.newMessage("first", pts: 11)]), now: 1.2)
        #expect(Self.delivered(late) == ["first", "second"])
        #expect(machine.state?.pts == 12)
        // The deadline is gone: waking up fetches nothing.
        #expect(Self.fetches(machine.wakeUp(now: 1.5)).isEmpty)
    }

    @Test func anUnfilledGapIsFetchedWithGetDifferenceAndNothingRepeats() {
        var machine = Self.running()
        _ = machine.receive(Self.updates([Self.newMessage("third", pts: 13)]), now: 1)
        #expect(Self.fetches(machine.wakeUp(now: 1.4)).isEmpty)
        let fetch = machine.wakeUp(now: 1.5)
        // The container's date (200) was taken even though its event waits: seq 0 containers still carry the date.
        #expect(Self.fetches(fetch) == [.fetchDifference(pts: 10, qts: 3, date: 200)])
        // What arrives during the fetch waits for it.
        #expect(Self.delivered(machine.receive(Self.updates([Self.newMessage("fourth", pts: 14)]), now: 1.6)).isEmpty)
        let difference = Api.updates.Difference.difference(.init(
            newMessages: [Self.message(11, "first"), Self.message(12, "second"), Self.message(13, "third")], newEncryptedMessages: [],
            otherUpdates: [], chats: [], users: [], state: Self.state(pts: 13, qts: 3, seq: 6, date: 150)))
        let actions = machine.differenceReceived(difference, now: 2)
        #expect(Self.delivered(actions) == ["first", "second", "third", "fourth"])
        #expect(machine.state == UpdatesState(pts: 14, qts: 3, seq: 6, date: 150))
    }

    @Test func aDifferenceSliceIsFollowedFromItsIntermediateState() {
        var machine = Self.running()
        _ = machine.sessionRestarted(now: 0)
        let slice = Api.updates.Difference.differenceSlice(.init(
            newMessages: [Self.message(11, "first")], newEncryptedMessages: [], otherUpdates: [], chats: [], users: [],
            intermediateState: Self.state(pts: 11, seq: 5, date: 120)))
        let actions = machine.differenceReceived(slice, now: 1)
        #expect(Self.delivered(actions) == ["first"])
        #expect(Self.fetches(actions) == [.fetchDifference(pts: 11, qts: 0, date: 120)])
        let end = machine.differenceReceived(.differenceEmpty(.init(date: 130, seq: 7)), now: 2)
        #expect(Self.fetches(end).isEmpty)
        #expect(machine.state?.seq == 7)
        #expect(machine.state?.date == 130)
    }

    @Test func differenceTooLongMovesPtsAndFetchesAgain() {
        var machine = Self.running()
        _ = machine.sessionRestarted(now: 0)
        let actions = machine.differenceReceived(.differenceTooLong(.init(pts: 500)), now: 1)
        #expect(machine.state?.pts == 500)
        #expect(Self.fetches(actions) == [.fetchDifference(pts: 500, qts: 3, date: 100)])
    }

    @Test func ownCallsMovePtsWithoutEvents() {
        var machine = Self.running()
        let sent = machine.receive(.updateShortSentMessage(.init(out: true, id: 1, pts: 11, ptsCount: 1, date: 5)), now: 1)
        #expect(Self.delivered(sent).isEmpty)
        #expect(machine.state?.pts == 11)
        _ = machine.receiveAffected(pts: 13, count: 2, now: 1)
        #expect(machine.state?.pts == 13)
    }

    @Test func updateShortMessageBecomesUpdateNewMessage() {
        var machine = Self.running()
        let actions = machine.receive(.updateShortMessage(.init(id: 7, userId: 1002, message: "short", pts: 11, ptsCount: 1, date: 5)), now: 1)
        guard case .deliver(let events) = actions.first, case .updateNewMessage(let update) = events.first?.update,
            case .message(let message) = update.message
        else {
            Issue.record("expected an updateNewMessage, got \(actions)")
            return
        }
        #expect(message.message == "short")
        #expect(message.fromId == .peerUser(.init(userId: 1002)))
        #expect(message.peerId == .peerUser(.init(userId: 1002)))
    }

    // MARK: - qts

    @Test func qtsFollowsItsOwnSequence() {
        var machine = Self.running()
        let stopped = Api.Update.updateBotStopped(.init(userId: 5, date: 1, stopped: true, qts: 4))
        #expect(Self.delivered(machine.receive(Self.updates([stopped]), now: 1)) == ["other"])
        #expect(machine.state?.qts == 4)
        #expect(machine.state?.pts == 10)
    }

    // MARK: - seq

    @Test func seqAppliesInOrderIgnoresRepeatsAndFetchesOnGaps() {
        var machine = Self.running()
        _ = machine.receive(Self.updates([Self.newMessage("a", pts: 11)], seq: 6, date: 300), now: 1)
        #expect(machine.state?.seq == 6)
        #expect(machine.state?.date == 300)
        let repeated = machine.receive(Self.updates([Self.newMessage("b", pts: 12)], seq: 6), now: 2)
        #expect(Self.delivered(repeated).isEmpty)
        #expect(machine.state?.pts == 11)
        let gap = machine.receive(Self.updates([Self.newMessage("c", pts: 12)], seq: 9), now: 3)
        #expect(Self.fetches(gap) == [.fetchDifference(pts: 11, qts: 3, date: 300)])
        #expect(Self.delivered(gap).isEmpty)
    }

    // MARK: - Channels

    @Test func aChannelsFirstEventSetsItsPtsAndAGapFetchesChannelDifference() {
        var machine = Self.running()
        let first = machine.receive(Self.updates([Self.channelPost("p1", pts: 40)], chats: [Self.channelChat]), now: 1)
        #expect(Self.delivered(first) == ["p1"])
        #expect(machine.state?.channels[Self.channelID] == 40)
        #expect(machine.state?.channelAccessHashes[Self.channelID] == Self.channelHash)
        _ = machine.receive(Self.updates([Self.channelPost("p3", pts: 42)]), now: 2)
        let fetch = machine.wakeUp(now: 2.5)
        #expect(Self.fetches(fetch) == [.fetchChannelDifference(channelID: Self.channelID, accessHash: Self.channelHash, pts: 40, limit: 100)])
        // The common box is untouched by a channel's gap.
        #expect(Self.delivered(machine.receive(Self.updates([Self.newMessage("dm", pts: 11)]), now: 2.6)) == ["dm"])
        let partial = Api.updates.ChannelDifference.channelDifference(.init(
            final: false, pts: 41, newMessages: [Self.message(41, "p2", channel: Self.channelID)], otherUpdates: [], chats: [Self.channelChat], users: []))
        let more = machine.channelDifferenceReceived(partial, channelID: Self.channelID, now: 3)
        #expect(Self.delivered(more) == ["p2"])
        #expect(Self.fetches(more) == [.fetchChannelDifference(channelID: Self.channelID, accessHash: Self.channelHash, pts: 41, limit: 100)])
        let rest = machine.channelDifferenceReceived(.channelDifferenceEmpty(.init(final: true, pts: 41)), channelID: Self.channelID, now: 4)
        #expect(Self.delivered(rest) == ["p3"])
        #expect(machine.state?.channels[Self.channelID] == 42)
    }

    @Test func updateChannelTooLongInADifferenceFetchesThatChannel() {
        var machine = Self.running()
        _ = machine.noteChannel(Self.channelID, pts: 40, accessHash: Self.channelHash)
        _ = machine.sessionRestarted(now: 0)
        let difference = Api.updates.Difference.difference(.init(
            newMessages: [], newEncryptedMessages: [], otherUpdates: [.updateChannelTooLong(.init(channelId: Self.channelID, pts: 45))],
            chats: [Self.channelChat], users: [], state: Self.state(pts: 10, qts: 3, seq: 5)))
        let actions = machine.differenceReceived(difference, now: 1)
        #expect(Self.fetches(actions) == [.fetchChannelDifference(channelID: Self.channelID, accessHash: Self.channelHash, pts: 40, limit: 100)])
    }

    // MARK: - Lifecycle

    @Test func beforeStartOnlyUpdatesOutsideEverySequenceComeOut() {
        var machine = Machine()
        let token = machine.receive(.updateShort(.init(update: .updateLoginToken(.init()), date: 1)), now: 0)
        #expect(Self.delivered(token) == ["loginToken"])
        let message = machine.receive(Self.updates([Self.newMessage("a", pts: 11)]), now: 0)
        #expect(message.isEmpty)
    }

    @Test func withoutAStoredStateTheMachineFetchesItAndReplaysWhatArrivedMeanwhile() {
        var machine = Machine()
        #expect(machine.start(from: nil, now: 0) == [.fetchState])
        #expect(machine.receive(Self.updates([Self.newMessage("early", pts: 21)]), now: 0.1).isEmpty)
        let actions = machine.stateFetched(Self.state(pts: 20), now: 0.2)
        #expect(Self.delivered(actions) == ["early"])
        #expect(machine.state?.pts == 21)
    }

    @Test func aStoredStateIsCaughtUpWithGetDifferenceAtStart() {
        var machine = Machine()
        let actions = machine.start(from: UpdatesState(pts: 7, qts: 1, seq: 2, date: 50), now: 0)
        #expect(actions == [.fetchDifference(pts: 7, qts: 1, date: 50)])
    }

    @Test func updatesTooLongAndANewSessionFetchTheDifferenceOnce() {
        var machine = Self.running()
        #expect(Self.fetches(machine.receive(.updatesTooLong(.init()), now: 1)) == [.fetchDifference(pts: 10, qts: 3, date: 100)])
        #expect(Self.fetches(machine.sessionRestarted(now: 1)).isEmpty)
    }

    /// The link died again while a difference was under way: its answer may predate the pushes
    /// that link carried, so one more getDifference follows it, from the state it left.
    @Test func aSessionRestartDuringAFetchFetchesAgainAfterIt() {
        var machine = Self.running()
        #expect(Self.fetches(machine.sessionRestarted(now: 1)) == [.fetchDifference(pts: 10, qts: 3, date: 100)])
        #expect(Self.fetches(machine.sessionRestarted(now: 2)).isEmpty)
        let answered = machine.differenceReceived(.differenceEmpty(.init(date: 120, seq: 4)), now: 3)
        #expect(Self.fetches(answered) == [.fetchDifference(pts: 10, qts: 3, date: 120)])
        // Only once: the second answer ends it.
        #expect(Self.fetches(machine.differenceReceived(.differenceEmpty(.init(date: 121, seq: 4)), now: 4)).isEmpty)
    }

    @Test func aFailedFetchIsRetriedAfterTheDelay() {
        var machine = Self.running()
        _ = machine.sessionRestarted(now: 0)
        #expect(machine.fetchFailed(.common, now: 1) == [.wakeUp(at: 3)])
        #expect(Self.fetches(machine.wakeUp(now: 2)).isEmpty)
        #expect(Self.fetches(machine.wakeUp(now: 3)) == [.fetchDifference(pts: 10, qts: 3, date: 100)])
    }
}
