import Testing
import MTProtoCrypto
@testable import MTProto

/// The client machine driven against the real server machine in memory: every repair path of the
/// service layer ends in the request's answer.
@Suite struct ClientSessionTests {
    @Test func aRequestGetsItsResult() throws {
        var pair = SessionPair()
        let body = Fixtures.request(0xCAFE_0001)
        let (id, actions) = pair.client.send(request: body, now: pair.now)
        pair.clientDid(actions)
        #expect(pair.toServer.count == 1)
        try pair.run()
        #expect(pair.results[id] == body.reversed())
        #expect(pair.client.pendingRequests.isEmpty)
    }

    @Test func saltZeroLikeTelethonIsRepairedByBadServerSalt() throws {
        var pair = SessionPair(clientSalt: 0)
        let (id, actions) = pair.client.send(request: Fixtures.request(1), now: pair.now)
        pair.clientDid(actions)
        try pair.run()
        #expect(pair.rejections == [BadMessageCode.badServerSalt])
        #expect(pair.client.serverSalt == Fixtures.initialSalt)
        #expect(pair.results[id] != nil)
        #expect(pair.clientEvents.contains(.resent([id])), "the owner learns a new copy went out")
    }

    /// A withheld request the server refuses unprocessed is dropped and reported, not sent again;
    /// the others are repaired as usual.
    @Test func aWithheldRequestIsDroppedInsteadOfResent() throws {
        var pair = SessionPair(clientSalt: 0)
        let held = pair.client.enqueue(request: Fixtures.request(11))
        let other = pair.client.enqueue(request: Fixtures.request(12))
        pair.clientDid(pair.client.flush(now: pair.now))
        pair.client.withholdResends(of: [held])
        try pair.run()
        #expect(pair.clientEvents.contains(.resendWithheld([held])))
        #expect(pair.results[held] == nil && pair.results[other] != nil)
        #expect(pair.client.pendingRequests.isEmpty)
        #expect(pair.serverEvents.filter { if case .request(_, let body) = $0 { body == Fixtures.request(11) } else { false } }.isEmpty,
                "the server refused the first send and never saw another")
    }

    /// After `allowResends` the repair goes on as before.
    @Test func anAllowedRequestIsResentAgain() throws {
        var pair = SessionPair(clientSalt: 0)
        let (id, actions) = pair.client.send(request: Fixtures.request(13), now: pair.now)
        pair.client.withholdResends(of: [id])
        pair.client.allowResends(of: [id])
        pair.clientDid(actions)
        try pair.run()
        #expect(pair.results[id] != nil)
        #expect(!pair.clientEvents.contains { if case .resendWithheld = $0 { true } else { false } })
    }

    @Test(arguments: [-900.0, 900.0])
    func aSkewedClockIsFixedByBadMsgNotification(skew: Double) throws {
        var pair = SessionPair(clientClockSkew: skew)
        let firstSession = pair.client.sessionID
        let (id, actions) = pair.client.send(request: Fixtures.request(2), now: pair.now)
        pair.clientDid(actions)
        try pair.run()
        #expect(pair.rejections == [skew < 0 ? BadMessageCode.messageIDTooLow : BadMessageCode.messageIDTooHigh])
        #expect(abs(pair.client.timeOffset) < 1, "offset now matches the server clock")
        #expect(pair.client.isTimeSynchronized)
        #expect(pair.results[id] != nil)
        // A clock corrected backwards is behind the ids this session issued: a new session, so no
        // msg_id is ever issued twice in one (the DC would answer it with the old answer).
        #expect((pair.client.sessionID != firstSession) == (skew > 0))
    }

    /// A server session saw ids 20 s ahead (within its 30 s allowance); then the client's clock
    /// jumps 15 s forward, the next id is 35 s ahead (17), and the client starts a new session
    /// whose ids run below the first session's. State reports still work there: a request lost on
    /// the way is reported "not received" and sent again (a floor kept from the first session's
    /// new_session_created silenced them).
    @Test func stateReportsWorkInASessionWhoseIDsRestartedBelowTheLastOnes() throws {
        var pair = SessionPair(clientClockSkew: 20)
        let (first, actions) = pair.client.send(request: Fixtures.request(8), now: pair.now)
        pair.clientDid(actions)
        try pair.run()
        #expect(pair.results[first] != nil)
        let firstSession = pair.client.sessionID

        // From here on the client's clock reads 15 s more than the server's.
        let jump = 15.0
        func exchange(_ pair: inout SessionPair) throws {
            for _ in 0..<20 where !pair.toServer.isEmpty || !pair.toClient.isEmpty {
                let outbound = pair.toServer
                pair.toServer.removeAll()
                for packet in outbound {
                    let actions = try pair.server.receive(packet, now: pair.now)
                    pair.serverDid(actions)
                    for case .request(let id, let body) in actions {
                        pair.serverDid(pair.server.answer(request: id, result: Array(body.reversed()), now: pair.now))
                    }
                }
                let inbound = pair.toClient
                pair.toClient.removeAll()
                for packet in inbound { pair.clientDid(try pair.client.receive(packet, now: pair.now + jump)) }
            }
        }
        let (second, more) = pair.client.send(request: Fixtures.request(9), now: pair.now + jump)
        pair.clientDid(more)
        try exchange(&pair)
        #expect(pair.rejections == [BadMessageCode.messageIDTooHigh])
        #expect(pair.client.sessionID != firstSession, "ids restarted in a new session")
        #expect(pair.results[second] != nil)

        let (lost, _) = pair.client.send(request: Fixtures.request(10), now: pair.now + jump)
        pair.now = pair.now + 2
        pair.clientDid(pair.client.requestState(of: [lost], now: pair.now + jump))
        try exchange(&pair)
        #expect(pair.results[lost] == Array(Fixtures.request(10).reversed()))
    }

    @Test func badSaltAndSkewTogetherStillSucceed() throws {
        var pair = SessionPair(clientSalt: 0, clientClockSkew: 1000)
        let (id, actions) = pair.client.send(request: Fixtures.request(3), now: pair.now)
        pair.clientDid(actions)
        try pair.run()
        #expect(pair.rejections == [BadMessageCode.messageIDTooHigh, BadMessageCode.badServerSalt])
        #expect(pair.results[id] != nil)
    }

    @Test func theServerReportsTheNewSessionAndTheClientStoresItsSalt() throws {
        var pair = SessionPair()
        let (first, actions) = pair.client.send(request: Fixtures.request(4), now: pair.now)
        let firstMessageID = try #require(pair.client.messageID(of: first))
        pair.clientDid(actions)
        try pair.run()
        #expect(pair.serverEvents.contains(.sessionCreated(sessionID: Fixtures.sessionID, firstMessageID: firstMessageID)))
        #expect(pair.clientEvents.contains(.newSessionCreated(firstMessageID: firstMessageID, inDoubt: [])))
    }

    @Test func requestsSentBeforeTheServersNewSessionAreReportedInDoubt() throws {
        var pair = SessionPair()
        // The first packet is lost: the server never sees request `lost`.
        let (lost, lostActions) = pair.client.send(request: Fixtures.request(5), now: pair.now)
        _ = lostActions
        pair.now = pair.now + 1
        let (second, actions) = pair.client.send(request: Fixtures.request(6), now: pair.now)
        pair.clientDid(actions)
        try pair.run()
        let secondID = pair.clientEvents.compactMap { event -> Int64? in
            if case .newSessionCreated(let first, let inDoubt) = event, inDoubt == [lost] { return first }
            return nil
        }
        #expect(secondID.count == 1)
        #expect(pair.results[second] != nil)
        // The caller decides the lost request is safe to repeat.
        pair.clientDid(pair.client.resend([lost], now: pair.now))
        try pair.run()
        #expect(pair.results[lost] != nil)
    }

    @Test func severalRequestsTravelInOneContainerWithTheAcks() throws {
        var pair = SessionPair()
        let first = pair.client.enqueue(request: Fixtures.request(7))
        let second = pair.client.enqueue(request: Fixtures.request(8))
        let third = pair.client.enqueue(request: Fixtures.request(9))
        pair.clientDid(pair.client.flush(now: pair.now))
        #expect(pair.toServer.count == 1, "one container")
        try pair.run()
        #expect(Set(pair.results.keys) == [first, second, third])
        let requests = pair.serverEvents.filter { if case .request = $0 { true } else { false } }
        #expect(requests.count == 3)
    }

    @Test func largeRequestsAndResultsTravelGzipped() throws {
        var pair = SessionPair()
        let big = Fixtures.request(10) + [UInt8](repeating: 0x20, count: 50_000)
        let (id, actions) = pair.client.send(request: big, now: pair.now)
        pair.clientDid(actions)
        let packetSize = try #require(pair.toServer.first?.count)
        #expect(packetSize < 5_000, "the request went out gzip_packed")
        try pair.run { _, body in body + body }
        let received = pair.serverEvents.compactMap { if case .request(_, let body) = $0 { body } else { nil } }
        #expect(received == [big], "the server unpacked gzip_packed before handing the query up")
        #expect(pair.results[id] == big + big)
    }

    @Test func rpcErrorsArriveTyped() throws {
        var pair = SessionPair()
        let (id, actions) = pair.client.send(request: Fixtures.request(11), now: pair.now)
        pair.clientDid(actions)
        try pair.run { _, _ in RPCError(code: 420, message: "FLOOD_WAIT_17").serialized }
        #expect(pair.clientEvents.contains(.rpcError(id, RPCError(code: 420, message: "FLOOD_WAIT_17"))))
        #expect(pair.client.pendingRequests.isEmpty)
    }

    @Test func pingGetsPongAndPingDelayDisconnectArmsTheServerTimer() throws {
        var pair = SessionPair()
        try pair.exchangePing(id: 77)
        #expect(pair.clientEvents.contains(.pong(pingID: 77)))
        pair.clientDid(pair.client.pingDelayDisconnect(id: 78, disconnectDelay: 75, now: pair.now))
        try pair.run()
        #expect(pair.clientEvents.contains(.pong(pingID: 78)))
        #expect(pair.serverEvents.contains(.disconnectAfter(seconds: 75)))
    }

    @Test func futureSaltsAreStoredAndUsedWhenTheirTimeComes() throws {
        var pair = SessionPair()
        pair.clientDid(pair.client.requestFutureSalts(count: 3, now: pair.now))
        try pair.run()
        let salts = pair.clientEvents.compactMap { if case .futureSalts(let list) = $0 { list } else { nil } }.first
        let list = try #require(salts)
        #expect(list.count == 3)
        #expect(list[0].salt == Fixtures.initialSalt)
        // Two hours later the first salt has expired and the server has moved on: no bad_server_salt.
        pair.now = pair.now + 7_300
        let (id, actions) = pair.client.send(request: Fixtures.request(12), now: pair.now)
        pair.clientDid(actions)
        #expect(pair.client.serverSalt == list[2].salt)
        try pair.run()
        #expect(pair.rejections.isEmpty)
        #expect(pair.results[id] != nil)
    }

    @Test func contentRelatedMessagesAreAcknowledgedByCountAndByTime() throws {
        var configuration = SessionConfiguration()
        configuration.ackFlushCount = 4
        var pair = SessionPair(configuration: configuration)
        try pair.exchangePing(id: 1)
        let acked = { (pair: SessionPair) in pair.serverEvents.flatMap { if case .acknowledged(let ids) = $0 { ids } else { [] } } }
        // new_session_created is waiting for an ack; nothing was sent yet.
        #expect(acked(pair).isEmpty)
        #expect(pair.client.tick(now: pair.now + 1).isEmpty)
        pair.now = pair.now + 31
        pair.clientDid(pair.client.tick(now: pair.now))
        try pair.run()
        #expect(acked(pair).count == 1)

        for _ in 0..<4 { pair.serverDid(pair.server.push(Fixtures.request(0xBEEF), now: pair.now)) }
        try pair.run()
        #expect(acked(pair).count == 5, "the fourth update flushed the acks on its own")
        let updates = pair.clientEvents.filter { if case .update = $0 { true } else { false } }
        #expect(updates.count == 4)
    }

    @Test func stateRequestsResendWhatTheServerNeverGot() throws {
        var pair = SessionPair()
        try pair.exchangePing(id: 5)
        // This request's packet is lost on the way.
        let (lost, _) = pair.client.send(request: Fixtures.request(13), now: pair.now)
        pair.now = pair.now + 5
        pair.clientDid(pair.client.requestState(of: [lost], now: pair.now))
        try pair.run()
        #expect(pair.results[lost] != nil, "status 'not received' made the client resend it")
    }

    /// msg_resend_ans_req's reply (msgs_state_info for its ids): a request still running is
    /// named, an answer the server holds comes again, a request it never got goes again.
    @Test func answerRequestsReportRunningFetchLostAnswersAndResendWhatNeverArrived() throws {
        var pair = SessionPair()
        try pair.exchangePing(id: 6)
        let (running, sent) = pair.client.send(request: Fixtures.request(21), now: pair.now)
        pair.clientDid(sent)
        try pair.run { _, _ in nil }
        pair.now = pair.now + 5
        pair.client.requestAnswers(of: [running])
        pair.clientDid(pair.client.flush(now: pair.now))
        try pair.run { _, _ in nil }
        #expect(pair.clientEvents.contains(.stillRunning([running])))
        #expect(pair.results[running] == nil)

        // Now the server answers, and the answer is lost on the way.
        let open = pair.serverEvents.compactMap { if case .request(let id, _) = $0 { id } else { nil } }
        #expect(open.count == 1)
        _ = pair.server.answer(request: open[0], result: [9, 9, 9, 9], now: pair.now)
        pair.now = pair.now + 5
        pair.client.requestAnswers(of: [running])
        pair.clientDid(pair.client.flush(now: pair.now))
        try pair.run { _, _ in nil }
        #expect(pair.results[running] == [9, 9, 9, 9], "the held answer came again")
        #expect(pair.clientEvents.filter { if case .stillRunning = $0 { true } else { false } }.count == 1)

        // This request's packet is lost on the way: the reply says "not received", so it goes again.
        let (lost, _) = pair.client.send(request: Fixtures.request(22), now: pair.now)
        pair.now = pair.now + 5
        pair.client.requestAnswers(of: [lost])
        pair.clientDid(pair.client.flush(now: pair.now))
        try pair.run()
        #expect(pair.results[lost] == Array(Fixtures.request(22).reversed()))
        #expect(pair.client.pendingRequests.isEmpty)
    }

    /// "Nothing known" (status 1: below what the server still remembers) does not resend the
    /// request: it may have run, and the owner decides. "Not received" (2) does. Reports about ids
    /// below a new session's first_msg_id are ignored.
    @Test func requestsTheServerForgotAreNamedNotResent() throws {
        var pair = SessionPair()
        try pair.exchangePing(id: 1)
        let (forgotten, first) = pair.client.send(request: Fixtures.request(23), now: pair.now)
        pair.clientDid(first)
        let (lost, _) = pair.client.send(request: Fixtures.request(24), now: pair.now)
        try pair.run { _, _ in nil }
        let ids = [try #require(pair.client.messageID(of: forgotten)), try #require(pair.client.messageID(of: lost))]
        pair.serverDid(pair.server.push(ServiceMessage.msgsAllInfo(ids, info: [1, 2]).serialized, now: pair.now))
        try pair.run()
        #expect(pair.clientEvents.contains(.forgottenByServer([forgotten])))
        #expect(pair.results[lost] == Array(Fixtures.request(24).reversed()), "not received: sent again")
        let queries = pair.serverEvents.filter { if case .request(_, let body) = $0 { body == Fixtures.request(23) } else { false } }
        #expect(queries.count == 1, "the forgotten one never went again")
        #expect(pair.client.pendingRequests == [forgotten], "still the owner's to resend or give up")

        // "Nothing known" of a container: its requests are named, not resent with it.
        let inner = [pair.client.enqueue(request: Fixtures.request(25)), pair.client.enqueue(request: Fixtures.request(26))]
        pair.clientDid(pair.client.flush(now: pair.now))
        let container = try RawPeer().open(try #require(pair.toServer.last), direction: .clientToServer).messageID
        try pair.run { _, _ in nil }
        pair.serverDid(pair.server.push(ServiceMessage.msgsAllInfo([container], info: [1]).serialized, now: pair.now))
        try pair.run { _, _ in nil }
        #expect(pair.clientEvents.contains(.forgottenByServer(inner)))
        for tag: UInt32 in [25, 26] {
            #expect(pair.serverEvents.filter { if case .request(_, let body) = $0 { body == Fixtures.request(tag) } else { false } }.count == 1)
        }

        // A new server session: what it says of the ids before it speaks for itself only.
        pair.client.startNewSession()
        try pair.exchangePing(id: 2)
        let reports = pair.clientEvents.count
        pair.serverDid(pair.server.push(ServiceMessage.msgsAllInfo([ids[0]], info: [2]).serialized, now: pair.now))
        try pair.run()
        #expect(pair.clientEvents.count == reports, "nothing reported")
        #expect(pair.serverEvents.filter { if case .request(_, let body) = $0 { body == Fixtures.request(23) } else { false } }.count == 1)
    }

    @Test func destroySessionIsAnswered() throws {
        var pair = SessionPair()
        pair.clientDid(pair.client.destroySession(0x5555, now: pair.now))
        try pair.run()
        #expect(pair.clientEvents.contains(.sessionDestroyed(sessionID: 0x5555, existed: false)))
        #expect(pair.serverEvents.contains(.destroySessionRequested(sessionID: 0x5555)))
    }

    @Test func aNewClientSessionIsNoticedByTheServer() throws {
        var pair = SessionPair()
        let (first, actions) = pair.client.send(request: Fixtures.request(14), now: pair.now)
        pair.clientDid(actions)
        try pair.run()
        #expect(pair.results[first] != nil)
        let newSession = pair.client.startNewSession()
        let (second, more) = pair.client.send(request: Fixtures.request(15), now: pair.now)
        pair.clientDid(more)
        try pair.run()
        #expect(pair.server.clientSessionID == newSession)
        #expect(pair.results[second] != nil)
        let created = pair.serverEvents.filter { if case .sessionCreated = $0 { true } else { false } }
        #expect(created.count == 2)
    }

    @Test func updatesFromTheServerSurfaceAsRawBytes() throws {
        var pair = SessionPair()
        try pair.exchangePing(id: 9)
        let update = Fixtures.request(0x7777_0000, payload: 40)
        pair.serverDid(pair.server.push(update, now: pair.now))
        try pair.run()
        #expect(pair.clientEvents.contains(.update(update)))
    }

    @Test func aRejectedContainerHasAllItsContentsResent() throws {
        var pair = SessionPair(clientSalt: 0, clientClockSkew: 600)
        let first = pair.client.enqueue(request: Fixtures.request(16))
        let second = pair.client.enqueue(request: Fixtures.request(17))
        pair.clientDid(pair.client.ping(id: 3, now: pair.now))
        #expect(pair.toServer.count == 1)
        try pair.run()
        #expect(pair.rejections == [BadMessageCode.messageIDTooHigh, BadMessageCode.badServerSalt])
        #expect(Set(pair.results.keys) == [first, second])
        #expect(pair.clientEvents.contains(.pong(pingID: 3)))
    }

    @Test func answersLostWithAConnectionArriveOnceWhenTheServerResends() throws {
        var pair = SessionPair()
        let (id, actions) = pair.client.send(request: Fixtures.request(18), now: pair.now)
        pair.clientDid(actions)
        // Deliver the query, then lose everything the server sends back (the connection dropped).
        for packet in pair.toServer {
            for case .request(let messageID, let body) in try pair.server.receive(packet, now: pair.now) {
                _ = pair.server.answer(request: messageID, result: body, now: pair.now)
            }
        }
        pair.toServer.removeAll()
        #expect(pair.results.isEmpty)
        // On the new connection the server resends what the client never acknowledged.
        pair.now = pair.now + 2
        pair.serverDid(pair.server.resendUnacknowledged(now: pair.now))
        try pair.run()
        #expect(pair.results[id] == Fixtures.request(18))
        // Acknowledged now: nothing left to resend, and a second copy would be dropped as a duplicate.
        pair.clientDid(pair.client.flush(now: pair.now))
        try pair.run()
        #expect(pair.server.resendUnacknowledged(now: pair.now).isEmpty)
        let resultCount = pair.clientEvents.filter { if case .rpcResult = $0 { true } else { false } }.count
        #expect(resultCount == 1)
    }

    @Test func aCancelledRequestIsDroppedOnBothSides() throws {
        var pair = SessionPair()
        let queued = pair.client.enqueue(request: Fixtures.request(19))
        #expect(pair.client.cancel(queued, now: pair.now).isEmpty, "never sent: just forgotten")
        let (id, actions) = pair.client.send(request: Fixtures.request(20), now: pair.now)
        pair.clientDid(actions)
        pair.clientDid(pair.client.cancel(id, now: pair.now))
        #expect(pair.client.pendingRequests.isEmpty)
        // The server gets both the query and the drop before answering: the answer is never sent.
        try pair.run { _, _ in nil }
        let requests = pair.serverEvents.compactMap { if case .request(let messageID, _) = $0 { messageID } else { nil } }
        #expect(requests.count == 1)
        #expect(pair.server.answer(request: requests[0], result: [1, 2, 3, 4], now: pair.now).isEmpty)
        #expect(!pair.clientEvents.contains { if case .rpcResult = $0 { true } else { false } })
    }

    @Test func saltsKeptFromAnEarlierRunAreUsedWhenValid() throws {
        let stored = [
            FutureSalt(validSince: Int32(Fixtures.start.seconds) - 100, validUntil: Int32(Fixtures.start.seconds) + 3000, salt: 0x5A17),
            FutureSalt(validSince: Int32(Fixtures.start.seconds) + 3000, validUntil: Int32(Fixtures.start.seconds) + 9000, salt: 0x5A18),
        ]
        var client = ClientSession(
            authKey: Fixtures.authKey(), sessionID: 1, serverSalt: 0, futureSalts: stored, entropy: SeededEntropy(seed: 1))
        let (_, actions) = client.send(request: Fixtures.request(1), now: Fixtures.start)
        let sent = try RawPeer().open(try #require(packets(actions).first), direction: .clientToServer)
        #expect(sent.salt == 0x5A17)
        _ = client.send(request: Fixtures.request(2), now: Fixtures.start + 3500)
        #expect(client.serverSalt == 0x5A18)
        #expect(client.futureSalts.count == 1, "expired salts are dropped")
    }
}
