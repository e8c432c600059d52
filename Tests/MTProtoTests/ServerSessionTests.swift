import Testing
import MTProtoCrypto
@testable import MTProto

/// The server machine fed hand-made client packets, its answers opened and inspected.
@Suite struct ServerSessionTests {
    var peer = RawPeer()
    var server = ServerSession(
        authKey: Fixtures.authKey(), salts: ServerSaltSchedule(initialSalt: Fixtures.initialSalt, validSince: Fixtures.start + -10, seed: Array(repeating: 9, count: 32)),
        entropy: SeededEntropy(seed: 4))
    let now = Fixtures.start

    /// The service messages inside the server's packets, containers opened.
    func bodies(_ actions: [ServerSessionAction]) throws -> [ServiceMessage] {
        var result: [ServiceMessage] = []
        for packet in packets(actions) {
            let message = try peer.open(packet)
            let inner = WireConstructor.of(message.body) == WireConstructor.messageContainer
                ? try MessageContainer.decode(message.body, containerID: message.messageID).map(\.body) : [message.body]
            for body in inner { result.append(try ServiceMessage.decode(body)) }
        }
        return result
    }

    mutating func send(_ body: [UInt8], messageID: Int64, seqNo: Int32, salt: Int64 = Fixtures.initialSalt) throws -> [ServerSessionAction] {
        try server.receive(peer.packet(messageID: messageID, seqNo: seqNo, body: body, salt: salt, direction: .clientToServer), now: now)
    }

    @Test mutating func aWrongSaltEarnsBadServerSaltAloneWithTheCurrentSalt() throws {
        let id = clientMessageID(now)
        let actions = try send(Fixtures.request(1), messageID: id, seqNo: 1, salt: 0)
        let sent = packets(actions)
        #expect(sent.count == 1)
        let message = try peer.open(sent[0])
        #expect(message.messageID & 3 == 1)
        #expect(try ServiceMessage.decode(message.body) == .badServerSalt(badMessageID: id, badSeqNo: 1, code: 48, newSalt: Fixtures.initialSalt))
        #expect(actions.contains(.messageRejected(messageID: id, code: 48)))
        #expect(server.clientSessionID == nil, "a refused message does not create the session")
    }

    @Test(arguments: [(-301.0, Int32(16)), (31.0, Int32(17))])
    mutating func aBadClockEarnsSixteenOrSeventeenAloneNeverInAContainer(skew: Double, code: Int32) throws {
        let id = clientMessageID(now + skew)
        let actions = try send(Fixtures.request(1), messageID: id, seqNo: 1)
        let sent = packets(actions)
        #expect(sent.count == 1)
        let message = try peer.open(sent[0])
        #expect(WireConstructor.of(message.body) == WireConstructor.badMsgNotification)
        #expect(try ServiceMessage.decode(message.body) == .badMsgNotification(badMessageID: id, badSeqNo: 1, code: code))
        #expect(abs(MessageIDGenerator.seconds(of: message.messageID) - now.seconds) < 1, "the server's id carries its true time")
    }

    @Test mutating func aFirstMessageCreatesTheSessionAndIsHandedUp() throws {
        let id = clientMessageID(now)
        let actions = try send(Fixtures.request(2), messageID: id, seqNo: 1)
        #expect(actions.contains(.sessionCreated(sessionID: Fixtures.sessionID, firstMessageID: id)))
        #expect(actions.contains(.request(messageID: id, body: Fixtures.request(2))))
        let service = try bodies(actions)
        #expect(service.contains { if case .newSessionCreated(id, _, Fixtures.initialSalt) = $0 { true } else { false } })
        #expect(service.contains(.msgsAck([id])))
    }

    @Test mutating func answersAreRPCResultsWithResponseIDs() throws {
        let id = clientMessageID(now)
        _ = try send(Fixtures.request(3), messageID: id, seqNo: 1)
        let answer = server.answer(request: id, result: [1, 2, 3, 4], now: now)
        let message = try peer.open(try #require(packets(answer).first))
        #expect(message.messageID & 3 == 1)
        #expect(message.seqNo & 1 == 1)
        #expect(try ServiceMessage.decode(message.body) == .rpcResult(requestMessageID: id, result: [1, 2, 3, 4]))
        #expect(server.answer(request: id, result: [9], now: now).isEmpty, "a request is answered once")
        let update = try peer.open(try #require(packets(server.push(Fixtures.request(7), now: now)).first))
        #expect(update.messageID & 3 == 3)
    }

    @Test mutating func rotatingTheSaltRefusesTheOpenRequestWithTheNewSalt() throws {
        let id = clientMessageID(now)
        _ = try send(Fixtures.request(3), messageID: id, seqNo: 1)
        let fresh = ServerSaltSchedule(initialSalt: 0x0102_0304, validSince: now, seed: Array(repeating: 7, count: 32))
        let actions = server.rotateSalt(to: fresh, refusing: id, now: now)
        let sent = packets(actions)
        #expect(sent.count == 1)
        let notice = try peer.open(sent[0])
        #expect(try ServiceMessage.decode(notice.body) == .badServerSalt(badMessageID: id, badSeqNo: 1, code: 48, newSalt: 0x0102_0304))
        #expect(actions.contains(.messageRejected(messageID: id, code: 48)))
        #expect(server.answer(request: id, result: [1], now: now).isEmpty, "the refused request is no longer open")
        // The old salt is refused from now on, the new one accepted.
        #expect(try send(Fixtures.request(4), messageID: id + 4, seqNo: 3).contains(.messageRejected(messageID: id + 4, code: 48)))
        #expect(try send(Fixtures.request(4), messageID: id + 8, seqNo: 3, salt: 0x0102_0304).contains(.request(messageID: id + 8, body: Fixtures.request(4))))
    }

    @Test mutating func aQuerySentAgainInANewContainerGetsItsAnswerAgainNotARun() throws {
        let base = clientMessageID(now)
        _ = try send(Fixtures.request(5), messageID: base, seqNo: 1)
        let answered = try messages(server.answer(request: base, result: [5, 5, 5, 5], now: now))
        let answer = try #require(answered.first { WireConstructor.of($0.body) == WireConstructor.rpcResult })
        // The client, unsure the query arrived, sends it again (same msg_id) in a new container.
        let again = MessageContainer.encode([SessionMessage(messageID: base, seqNo: 1, body: Fixtures.request(5))])
        let actions = try send(again, messageID: base + 4, seqNo: 2)
        #expect(!actions.contains { if case .request = $0 { true } else { false } }, "the query does not run twice")
        #expect(try messages(actions).contains { $0.messageID == answer.messageID && $0.body == answer.body }, "the answer goes again under its own msg_id")
    }

    /// The messages inside the server's packets, containers opened.
    func messages(_ actions: [ServerSessionAction]) throws -> [SessionMessage] {
        try packets(actions).flatMap { packet -> [SessionMessage] in
            let message = try peer.open(packet)
            return WireConstructor.of(message.body) == WireConstructor.messageContainer
                ? try MessageContainer.decode(message.body, containerID: message.messageID)
                : [SessionMessage(messageID: message.messageID, seqNo: message.seqNo, body: message.body)]
        }
    }

    @Test mutating func aForgottenRequestIsReportedNotReceivedAndRunsWhenSentAgain() throws {
        let id = clientMessageID(now)
        _ = try send(Fixtures.request(8), messageID: id, seqNo: 1)
        server.forget(request: id)
        #expect(server.answer(request: id, result: [1], now: now).isEmpty)
        let state = try bodies(try send(ServiceMessage.msgsStateReq([id]).serialized, messageID: id + 4, seqNo: 2))
        #expect(state.contains { if case .msgsStateInfo(id + 4, let info) = $0 { info.first.map { $0 & 7 } != 4 } else { false } })
        #expect(try send(Fixtures.request(8), messageID: id, seqNo: 1).contains(.request(messageID: id, body: Fixtures.request(8))))
    }

    @Test mutating func openThenReceiveIsReceive() throws {
        let id = clientMessageID(now)
        let packet = peer.packet(messageID: id, seqNo: 1, body: Fixtures.request(6), direction: .clientToServer)
        let opened = try ServerSession.open(packet, authKey: Fixtures.authKey())
        #expect(opened.sessionID == Fixtures.sessionID)
        #expect(server.receive(opened, now: now).contains(.request(messageID: id, body: Fixtures.request(6))))
        #expect(throws: SessionError.self) { try ServerSession.open(packet, authKey: Fixtures.authKey(seed: 2)) }
    }

    @Test mutating func seqNoRulesEarnThirtyTwoToThirtyFive() throws {
        let base = clientMessageID(now)
        _ = try send(Fixtures.request(1), messageID: base, seqNo: 5)
        // An RPC query must be content-related (odd).
        #expect(try send(Fixtures.request(2), messageID: base + 4, seqNo: 6).contains(.messageRejected(messageID: base + 4, code: 35)))
        // An ack must not be content-related.
        let ack = ServiceMessage.msgsAck([1]).serialized
        #expect(try send(ack, messageID: base + 8, seqNo: 7).contains(.messageRejected(messageID: base + 8, code: 34)))
        // Lower seq_no than an earlier message: too low.
        #expect(try send(Fixtures.request(3), messageID: base + 12, seqNo: 3).contains(.messageRejected(messageID: base + 12, code: 32)))
        // Equal odd seq_no: too low as well.
        #expect(try send(Fixtures.request(3), messageID: base + 16, seqNo: 5).contains(.messageRejected(messageID: base + 16, code: 32)))
        // An earlier msg_id with a higher seq_no than a later message: too high.
        #expect(try send(Fixtures.request(4), messageID: base - 4, seqNo: 9).contains(.messageRejected(messageID: base - 4, code: 33)))
        // And the right one passes.
        #expect(try send(Fixtures.request(5), messageID: base + 20, seqNo: 7).contains(.request(messageID: base + 20, body: Fixtures.request(5))))
    }

    @Test mutating func wrongLowBitsAndReusedContainersAreRefused() throws {
        let base = clientMessageID(now)
        #expect(try send(Fixtures.request(1), messageID: base + 1, seqNo: 1).contains(.messageRejected(messageID: base + 1, code: 18)))
        let container = MessageContainer.encode([SessionMessage(messageID: base, seqNo: 1, body: Fixtures.request(2))])
        _ = try send(container, messageID: base + 8, seqNo: 2)
        #expect(try send(container, messageID: base + 8, seqNo: 2).isEmpty, "a replayed container is ignored, its query not run twice")
        let reused = MessageContainer.encode([SessionMessage(messageID: base + 4, seqNo: 3, body: Fixtures.request(3))])
        #expect(try send(reused, messageID: base, seqNo: 4).contains(.messageRejected(messageID: base, code: 19)), "a container reusing a message's id")
        let nested = MessageContainer.encode([SessionMessage(messageID: base + 12, seqNo: 2, body: container)])
        #expect(try send(nested, messageID: base + 16, seqNo: 2).contains(.messageRejected(messageID: base + 16, code: 64)))
    }

    @Test mutating func duplicatesAreIgnoredAndForgottenIDsAreTooOld() throws {
        var configuration = SessionConfiguration()
        configuration.receivedWindowCapacity = 2
        server.configuration = configuration
        server = ServerSession(authKey: Fixtures.authKey(), salts: server.salts, entropy: SeededEntropy(seed: 1), configuration: configuration)
        let base = clientMessageID(now)
        _ = try send(Fixtures.request(1), messageID: base + 8, seqNo: 1)
        #expect(try send(Fixtures.request(1), messageID: base + 8, seqNo: 1).isEmpty)
        _ = try send(Fixtures.request(2), messageID: base + 12, seqNo: 3)
        _ = try send(Fixtures.request(3), messageID: base + 16, seqNo: 5)
        #expect(try send(Fixtures.request(0), messageID: base, seqNo: 1).contains(.messageRejected(messageID: base, code: 20)))
    }

    @Test mutating func pingStateFutureSaltsAndDropAnswerAreAnsweredInProtocol() throws {
        let base = clientMessageID(now)
        _ = try send(Fixtures.request(1), messageID: base, seqNo: 1)
        let pong = try bodies(try send(ServiceMessage.ping(pingID: 42).serialized, messageID: base + 4, seqNo: 3))
        #expect(pong.contains(.pong(messageID: base + 4, pingID: 42)))

        let state = try bodies(try send(ServiceMessage.msgsStateReq([base, base + 400, base - 400]).serialized, messageID: base + 8, seqNo: 4))
        // Running; ahead of everything received; below it, but the window never let an id go.
        #expect(state.contains(.msgsStateInfo(requestMessageID: base + 8, info: [4 | 32, 3, 2])))

        let salts = try bodies(try send(ServiceMessage.getFutureSalts(count: 4).serialized, messageID: base + 12, seqNo: 5))
        let answer = try #require(salts.first { if case .futureSalts = $0 { true } else { false } })
        guard case .futureSalts(let requestID, _, let list) = answer else { return }
        #expect(requestID == base + 12)
        #expect(list.count == 4)
        #expect(list.first?.salt == Fixtures.initialSalt)
        #expect(zip(list, list.dropFirst()).allSatisfy { $0.validSince < $1.validSince && $0.validUntil > $1.validSince })

        let drop = try bodies(try send(ServiceMessage.rpcDropAnswer(requestMessageID: base).serialized, messageID: base + 16, seqNo: 7))
        #expect(drop.contains(.rpcResult(requestMessageID: base + 16, result: [0x86, 0xe5, 0x78, 0xcd])))
        #expect(server.answer(request: base, result: [1, 2, 3, 4], now: now).isEmpty, "the dropped answer is not sent")
    }

    @Test mutating func resendRequestsRepeatUnacknowledgedMessages() throws {
        let base = clientMessageID(now)
        _ = try send(Fixtures.request(1), messageID: base, seqNo: 1)
        let update = try peer.open(try #require(packets(server.push(Fixtures.request(9), now: now)).first))
        let again = try bodies(try send(ServiceMessage.msgResendReq([update.messageID]).serialized, messageID: base + 4, seqNo: 2))
        #expect(again.contains(.content))
        let unknown = try bodies(try send(ServiceMessage.msgResendReq([12345]).serialized, messageID: base + 8, seqNo: 2))
        #expect(unknown.contains(.msgsStateInfo(requestMessageID: base + 8, info: [2])))
    }

    @Test mutating func answerResendRequestsRepeatHeldAnswersAndReportEveryState() throws {
        let base = clientMessageID(now)
        _ = try send(Fixtures.request(1), messageID: base, seqNo: 1)
        _ = try send(Fixtures.request(2), messageID: base + 4, seqNo: 3)
        // The answer goes in a container with the acks of the two queries: its own msg_id is inside.
        let answered = try messages(server.answer(request: base, result: [5, 6, 7, 8], now: now))
        let answer = try #require(answered.first { WireConstructor.of($0.body) == WireConstructor.rpcResult })
        let asked = base + 8
        let actions = try send(ServiceMessage.msgResendAnsReq([base, base + 4, base + 400]).serialized, messageID: asked, seqNo: 4)
        // The held answer again under its own msg_id.
        #expect(try messages(actions).map(\.messageID).contains(answer.messageID))
        let service = try bodies(actions)
        #expect(service.contains(.rpcResult(requestMessageID: base, result: [5, 6, 7, 8])))
        // Answered (answer made: +32 +64), still running (+32 alone), never received.
        #expect(service.contains(.msgsStateInfo(requestMessageID: asked, info: [4 | 32 | 64, 4 | 32, 3])))
        // Once acknowledged, the answer is not held any more: only the state goes.
        _ = try send(ServiceMessage.msgsAck([answer.messageID]).serialized, messageID: base + 12, seqNo: 4)
        let later = try bodies(try send(ServiceMessage.msgResendAnsReq([base]).serialized, messageID: base + 16, seqNo: 4))
        #expect(!later.contains(.rpcResult(requestMessageID: base, result: [5, 6, 7, 8])))
        #expect(later.contains(.msgsStateInfo(requestMessageID: base + 16, info: [4 | 32 | 64])), "its answer is still known, if not held")
    }

    /// A query still running is known as such after the window of received ids let its msg_id go
    /// (many calls in flight): never "nothing known".
    @Test func queriesAreKnownAfterTheWindowLetTheirIDsGo() throws {
        var configuration = SessionConfiguration()
        configuration.receivedWindowCapacity = 4
        var pair = SessionPair(configuration: configuration)
        let (running, first) = pair.client.send(request: Fixtures.request(31), now: pair.now)
        pair.clientDid(first)
        let (answered, second) = pair.client.send(request: Fixtures.request(32), now: pair.now)
        pair.clientDid(second)
        try pair.run { _, body in body == Fixtures.request(32) ? [1, 2, 3, 4] : nil }
        for id in 0..<6 {
            pair.clientDid(pair.client.ping(id: Int64(id), now: pair.now))
            try pair.run { _, _ in nil }
        }
        pair.clientDid(pair.client.requestState(of: [running], now: pair.now))
        try pair.run { _, _ in nil }
        #expect(pair.clientEvents.contains(.stillRunning([running])))
        #expect(!pair.clientEvents.contains { if case .forgottenByServer = $0 { true } else { false } })
        #expect(pair.results[answered] == [1, 2, 3, 4])
    }

    @Test mutating func gzippedQueriesAreUnpackedAndBombsDiscarded() throws {
        let base = clientMessageID(now)
        let query = Fixtures.request(5) + [UInt8](repeating: 3, count: 4_000)
        let packed = try #require(GzipPacked.pack(query))
        #expect(try send(packed, messageID: base, seqNo: 1).contains(.request(messageID: base, body: query)))
        let bomb = try #require(GzipPacked.pack([UInt8](repeating: 0, count: 17 << 20)))
        let actions = try send(bomb, messageID: base + 4, seqNo: 3)
        #expect(actions.contains(.messageDiscarded(messageID: base + 4, .gzip(.outputTooLarge(limit: 16 << 20)))))
    }

    @Test mutating func aRepeatedQueryGetsItsUnacknowledgedAnswerAgainUnderTheSameID() throws {
        let id = clientMessageID(now)
        let packet = peer.packet(messageID: id, seqNo: 1, body: Fixtures.request(8), direction: .clientToServer)
        _ = try server.receive(packet, now: now)
        let answer = try peer.open(try #require(packets(server.answer(request: id, result: [5, 6, 7, 8], now: now)).first))
        let again = try server.receive(packet, now: now)
        let resent = try peer.open(try #require(packets(again).first))
        let inner = try MessageContainer.decode(resent.body, containerID: resent.messageID)
        #expect(inner.map(\.messageID) == [answer.messageID], "the original msg_id, wrapped in a new container")
        #expect(try ServiceMessage.decode(inner[0].body) == .rpcResult(requestMessageID: id, result: [5, 6, 7, 8]))
        // Once acknowledged, a repeat is just ignored.
        _ = try send(ServiceMessage.msgsAck([answer.messageID]).serialized, messageID: id + 4, seqNo: 2)
        #expect(try server.receive(packet, now: now).isEmpty)
    }

    @Test mutating func messageCopiesAreUnwrappedOnceAndGzippedContainersRefused() throws {
        let base = clientMessageID(now)
        let original = SessionMessage(messageID: base, seqNo: 1, body: Fixtures.request(11))
        let copy = ServiceMessage.messageCopy(original).serialized
        #expect(try send(copy, messageID: base + 4, seqNo: 3).contains(.request(messageID: base, body: Fixtures.request(11))))
        #expect(!(try send(copy, messageID: base + 8, seqNo: 5)).contains { if case .request = $0 { true } else { false } }, "the original id was already received")

        let container = MessageContainer.encode([SessionMessage(messageID: base + 12, seqNo: 7, body: Fixtures.request(12))])
        var packed = WireWriter()
        packed.write(WireConstructor.gzipPacked)
        packed.writeBytes(try #require(GzipPacked.deflate(container)))
        let actions = try send(packed.bytes, messageID: base + 16, seqNo: 9)
        #expect(actions.contains(.messageDiscarded(messageID: base + 16, .nestedContainer(messageID: base + 16))))
        #expect(!actions.contains { if case .request = $0 { true } else { false } })
    }

    @Test mutating func latePacketsOfALeftSessionDoNotDisturbTheNewOne() throws {
        let base = clientMessageID(now)
        let old = peer.packet(messageID: base + 8, seqNo: 3, body: Fixtures.request(1), sessionID: 0xA, direction: .clientToServer)
        _ = try server.receive(peer.packet(messageID: base, seqNo: 1, body: Fixtures.request(0), sessionID: 0xA, direction: .clientToServer), now: now)
        let fresh = try server.receive(peer.packet(messageID: base + 4, seqNo: 1, body: Fixtures.request(2), sessionID: 0xB, direction: .clientToServer), now: now)
        #expect(fresh.contains(.sessionCreated(sessionID: 0xB, firstMessageID: base + 4)))
        let late = try server.receive(old, now: now)
        #expect(late == [.messageDiscarded(messageID: base + 8, .wrongSession(received: 0xA, expected: 0xB))])
        #expect(server.clientSessionID == 0xB)
        #expect(!server.answer(request: base + 4, result: [1, 2, 3, 4], now: now).isEmpty, "the live session's query is still open")
    }
}
