import MTProto
import Synchronization
import TLSchema
import TestDC
import Testing
import class MTProtoClient.TelegramClient
@testable import MTProtoClient

/// Our client's update stream against the test DC's real pushes, gaps and differences.
@Suite struct UpdatesEndToEndTests {
    static let newsChannel = (id: Int64(2001), accessHash: Int64(0x2001))

    @Test func aPrivateMessageFromAnotherAccountIsPushed() async throws {
        let cluster = try await Cluster.start()
        let alicesClient = cluster.client()
        _ = try await cluster.logIn(alicesClient, phone: alice.phone)
        try await alicesClient.startUpdates()
        var events = UpdateReader(alicesClient.updates)

        let bobsClient = cluster.client()
        _ = try await cluster.logIn(bobsClient, phone: bob.phone, password: bob.password)
        let alicePeer = Api.InputPeer.inputPeerUser(.init(userId: alice.id, accessHash: 0x0A11CE))
        _ = try await bobsClient.invoke(Api.functions.messages.SendMessage(peer: alicePeer, message: "hi alice, it's bob", randomId: 1))

        let event = try await events.next { $0.messageText == "hi alice, it's bob" }
        #expect(event.origin == .live)
        #expect(event.users.map(\.userID).contains(bob.id))
        guard case .updateNewMessage(let update) = event.update, case .message(let message) = update.message else {
            Issue.record("expected updateNewMessage, got \(event.update)")
            return
        }
        #expect(!message.out)
        #expect(message.fromId == .peerUser(.init(userId: bob.id)))
        await alicesClient.close()
        await bobsClient.close()
        await cluster.shutdown()
    }

    /// A client that never reads its updates and never starts them (`tgsm run`) keeps none of the
    /// updates pushed meanwhile: before, each one outside every sequence (statuses, typing, notices)
    /// stayed in the unbounded buffer for the process's life. Once something iterates, they come.
    @Test func updatesNobodyReadsAreNotBufferedBeforeUpdatesStart() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        _ = try await cluster.logIn(client, phone: alice.phone)
        let heard = Mutex<[String]>([])
        client.onServiceNotification { notice in heard.withLock { $0.append(notice.type) } }
        for n in 1...3 { try cluster.dc.core.pushServiceNotification(to: alice.id, type: "NOTE_\(n)", message: "note \(n)", popup: false) }
        for _ in 0..<500 where heard.withLock({ $0.count }) < 3 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(heard.withLock { $0 } == ["NOTE_1", "NOTE_2", "NOTE_3"], "the notices' handler hears them all the same")

        var iterator = client.updates.makeAsyncIterator()
        try cluster.dc.core.pushServiceNotification(to: alice.id, type: "NOTE_4", message: "note 4", popup: false)
        let first = await iterator.next()
        guard case .updateServiceNotification(let notice)? = first?.update else {
            Issue.record("expected the notice pushed after iterating began, got \(String(describing: first))")
            return
        }
        #expect(notice.type == "NOTE_4", "nothing from before anyone read")
        await client.close()
        await cluster.shutdown()
    }

    @Test func aChannelPostAndItsEditArePushed() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        _ = try await cluster.logIn(client, phone: bob.phone, password: bob.password)
        try await client.startUpdates()
        var events = UpdateReader(client.updates)

        let id = try cluster.dc.core.postToChannel(Self.newsChannel.id, text: "breaking news")
        let posted = try await events.next { $0.messageText == "breaking news" }
        guard case .updateNewChannelMessage = posted.update else {
            Issue.record("expected updateNewChannelMessage, got \(posted.update)")
            return
        }
        #expect(posted.chats.contains { if case .channel(let channel) = $0 { channel.id == Self.newsChannel.id } else { false } })

        try cluster.dc.core.editChannelMessage(Self.newsChannel.id, messageID: id, text: "breaking news (corrected)")
        let edited = try await events.next { $0.messageText == "breaking news (corrected)" }
        guard case .updateEditChannelMessage = edited.update else {
            Issue.record("expected updateEditChannelMessage, got \(edited.update)")
            return
        }
        // The state is saved once the consumer finished the event (it asked for the next), after any
        // session save under way: looked for until it lands.
        var saved = await client.storedUpdatesState
        for _ in 0..<500 where saved?.channels[Self.newsChannel.id] == nil {
            try await Task.sleep(for: .milliseconds(10))
            saved = await client.storedUpdatesState
        }
        let stored = try #require(saved)
        #expect(stored.channels[Self.newsChannel.id] != nil)
        #expect(stored.channelAccessHashes[Self.newsChannel.id] == Self.newsChannel.accessHash)
        await client.close()
        await cluster.shutdown()
    }

    /// A push the DC drops leaves a pts gap: the next push waits, getDifference recovers the lost
    /// one, and each message comes out exactly once, in order.
    @Test func aDroppedPushIsRecoveredWithGetDifference() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        _ = try await cluster.logIn(client, phone: alice.phone)
        try await client.startUpdates(gapTimeout: 0.05)
        var events = UpdateReader(client.updates)
        try cluster.dc.addFault(FaultRule(match: FaultMatch(account: alice.id, count: 1), effect: FaultEffect(kind: .dropUpdates)))

        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "first (dropped)")
        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "second")
        let first = try await events.next { $0.messageText != nil }
        let second = try await events.next { $0.messageText != nil }
        #expect(first.messageText == "first (dropped)")
        #expect(first.origin == .difference)
        #expect(second.messageText == "second")

        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "third")
        let third = try await events.next { $0.messageText != nil }
        #expect(third.messageText == "third")
        #expect(third.origin == .live)
        await client.close()
        await cluster.shutdown()
    }

    /// The state is saved with the session: a new client on the same storage fetches what happened
    /// while no client ran (a private message and a channel post) and repeats nothing.
    @Test func aRestartResumesWithoutLossOrRepeats() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let first = cluster.client(storage: storage)
        _ = try await cluster.logIn(first, phone: alice.phone)
        try await first.startUpdates()
        var firstEvents = UpdateReader(first.updates)
        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "before the restart")
        try cluster.dc.core.postToChannel(Self.newsChannel.id, text: "post before the restart")
        let seen = [try await firstEvents.next { $0.messageText != nil }, try await firstEvents.next { $0.messageText != nil }]
        #expect(Set(seen.compactMap(\.messageText)) == ["before the restart", "post before the restart"])
        firstEvents.finish()
        await first.close()

        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "while offline")
        try cluster.dc.core.postToChannel(Self.newsChannel.id, text: "post while offline")

        let second = cluster.client(storage: storage)
        try await second.startUpdates()
        var secondEvents = UpdateReader(second.updates)
        let recovered = [try await secondEvents.next { $0.messageText != nil }, try await secondEvents.next { $0.messageText != nil }]
        #expect(Set(recovered.compactMap(\.messageText)) == ["while offline", "post while offline"])
        #expect(recovered.allSatisfy { $0.origin == .difference })

        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "after the restart")
        let live = try await secondEvents.next { $0.messageText != nil }
        #expect(live.messageText == "after the restart")
        await second.close()
        await cluster.shutdown()
    }

    /// At least once: an event handed out but not finished (the consumer never asked for the next
    /// one) is not covered by the stored state, so after a crash the next process gets it again;
    /// a finished one does not come back.
    @Test func anEventNotFinishedBeforeARestartComesAgain() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let first = cluster.client(storage: storage)
        _ = try await cluster.logIn(first, phone: alice.phone)
        try await first.startUpdates()
        var firstEvents = UpdateReader(first.updates)
        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "finished")
        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "handed out, then the crash")
        #expect(try await firstEvents.next { $0.messageText != nil }.messageText == "finished")
        // Asking for the next event finishes "finished"; the process dies while handling this one.
        #expect(try await firstEvents.next { $0.messageText != nil }.messageText == "handed out, then the crash")
        await first.close()
        #expect(await first.storedUpdatesState?.pts == 2)

        let second = cluster.client(storage: storage)
        try await second.startUpdates()
        var secondEvents = UpdateReader(second.updates)
        let again = try await secondEvents.next { $0.messageText != nil }
        #expect(again.messageText == "handed out, then the crash" && again.origin == .difference)
        try cluster.dc.core.sendPrivateMessage(from: bob.id, to: alice.id, text: "after the restart")
        #expect(try await secondEvents.next { $0.messageText != nil }.messageText == "after the restart")
        secondEvents.finish()
        await second.close()
        #expect(await second.storedUpdatesState?.pts == 4)
        await cluster.shutdown()
    }

    /// Saved Messages: Telegram answers messages.sendMessage to yourself with `updates`
    /// (updateMessageID + updateNewMessage), which the update stream also hands out.
    @Test func sendingToSavedMessagesAnswersWithFullUpdates() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        _ = try await cluster.logIn(client, phone: alice.phone)
        try await client.startUpdates()
        var events = UpdateReader(client.updates)
        let answer = try await client.invoke(Api.functions.messages.SendMessage(peer: .inputPeerSelf(.init()), message: "note to self", randomId: 77))
        guard case .updates(let updates) = answer, updates.updates.count == 2,
            case .updateMessageID(let messageID) = updates.updates[0], case .updateNewMessage(let new) = updates.updates[1],
            case .message(let message) = new.message
        else {
            Issue.record("expected updates(updateMessageID, updateNewMessage), got \(answer)")
            return
        }
        #expect(messageID.randomId == 77)
        #expect(messageID.id == message.id)
        #expect(message.peerId == .peerUser(.init(userId: alice.id)))
        let event = try await events.next { $0.messageText == "note to self" }
        #expect(event.origin == .live)
        await client.close()
        await cluster.shutdown()
    }
}

/// Reads an update stream with a deadline, so a missing update fails the test instead of hanging it.
struct UpdateReader {
    private var iterator: UpdateStream.Iterator

    init(_ stream: UpdateStream) {
        iterator = stream.makeAsyncIterator()
    }

    /// Marks what was read as finished (a consumer stopping after its last event).
    func finish() { iterator.finish() }

    struct Timeout: Error, CustomStringConvertible {
        var description: String { "no matching update within the deadline" }
    }

    /// `seconds` only bounds a failure: the full suite on a loaded 2-core CI machine once took over
    /// 10 s to hand a recovered event over (the run's tests share the cooperative threads).
    mutating func next(within seconds: Double = 60, where matches: @escaping @Sendable (UpdateEvent) -> Bool) async throws -> UpdateEvent {
        var local = iterator
        defer { iterator = local }
        let found: UpdateEvent? = try await withThrowingTaskGroup(of: UpdateEvent?.self) { group in
            nonisolated(unsafe) var reading = local
            group.addTask {
                while let event = await reading.next() {
                    if matches(event) { return event }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                throw Timeout()
            }
            defer { group.cancelAll() }
            let result = try await group.next() ?? nil
            local = reading
            return result
        }
        guard let found else { throw Timeout() }
        return found
    }
}

extension UpdateEvent {
    /// The text of the message a new/edit message update carries.
    var messageText: String? {
        let message: Api.Message
        switch update {
        case .updateNewMessage(let value): message = value.message
        case .updateEditMessage(let value): message = value.message
        case .updateNewChannelMessage(let value): message = value.message
        case .updateEditChannelMessage(let value): message = value.message
        default: return nil
        }
        guard case .message(let plain) = message else { return nil }
        return plain.message
    }
}
