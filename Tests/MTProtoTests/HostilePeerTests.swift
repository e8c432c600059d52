import Testing
import MTProtoCrypto
@testable import MTProto

/// A hostile server: each receive check of security_guidelines fed a message that violates it,
/// expecting its specific error, and the session still usable afterwards.
@Suite struct HostilePeerTests {
    var peer = RawPeer()
    var client = ClientSession(
        authKey: Fixtures.authKey(), sessionID: Fixtures.sessionID, serverSalt: Fixtures.initialSalt,
        entropy: SeededEntropy(seed: 21))
    let now = Fixtures.start

    mutating func expect(_ error: SessionError, for packet: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: error, sourceLocation: sourceLocation) { try client.receive(packet, now: now) }
    }

    /// The session still gets a request answered by a well-behaved server message.
    mutating func stillUsable(step: Int64) throws -> Bool {
        let (id, actions) = client.send(request: Fixtures.request(0xAA), now: now)
        let sent = try peer.open(try #require(packets(actions).last), direction: .clientToServer)
        let requestMessageID = WireConstructor.of(sent.body) == WireConstructor.messageContainer
            ? try MessageContainer.decode(sent.body, containerID: sent.messageID).last?.messageID ?? 0 : sent.messageID
        let body = ServiceMessage.rpcResult(requestMessageID: requestMessageID, result: [7, 7, 7, 7]).serialized
        let answer = peer.packet(messageID: serverMessageID(now, step: 1000 + step), seqNo: 1, body: body, direction: .serverToClient)
        return try client.receive(answer, now: now).contains(.rpcResult(id, [7, 7, 7, 7]))
    }

    @Test mutating func envelopeViolationsAreFatalAndTyped() throws {
        let good = peer.packet(messageID: serverMessageID(now), seqNo: 1, body: Fixtures.request(1), direction: .serverToClient)

        expect(.undecryptable(.packetTooShort(30)), for: Array(good.prefix(30)))
        expect(.undecryptable(.encryptedLengthNotMultipleOfBlock(good.count - 24 - 4)), for: Array(good.dropLast(4)))
        var otherKey = good
        otherKey[0] ^= 1
        #expect(throws: SessionError.self) { try client.receive(otherKey, now: now) }
        var flipped = good
        flipped[good.count - 1] ^= 0x80
        expect(.undecryptable(.messageKeyMismatch), for: flipped)
        var forgedKey = good
        forgedKey[10] ^= 1
        expect(.undecryptable(.messageKeyMismatch), for: forgedKey)
        let wrongDirection = peer.packet(messageID: serverMessageID(now), seqNo: 1, body: Fixtures.request(1), direction: .clientToServer)
        expect(.undecryptable(.messageKeyMismatch), for: wrongDirection)
        #expect(SessionError.undecryptable(.messageKeyMismatch).isFatal)
        #expect(try stillUsable(step: 0))
    }

    /// Lengths and padding can only be checked on a packet with a valid msg_key: forge those.
    @Test mutating func lengthAndPaddingViolationsAreFatal() throws {
        func plaintext(declared: Int32, bodyAndPadding: Int) -> [UInt8] {
            var writer = WireWriter()
            writer.write(Fixtures.initialSalt)
            writer.write(Fixtures.sessionID)
            writer.write(serverMessageID(now))
            writer.write(Int32(1))
            writer.write(declared)
            writer.writeRaw([UInt8](repeating: 0, count: bodyAndPadding))
            return writer.bytes
        }
        expect(.undecryptable(.invalidMessageLength(declared: 64, available: 32)), for: try peer.packet(plaintext: plaintext(declared: 64, bodyAndPadding: 32), direction: .serverToClient))
        expect(.undecryptable(.invalidMessageLength(declared: -4, available: 32)), for: try peer.packet(plaintext: plaintext(declared: -4, bodyAndPadding: 32), direction: .serverToClient))
        expect(.undecryptable(.invalidMessageLength(declared: 6, available: 32)), for: try peer.packet(plaintext: plaintext(declared: 6, bodyAndPadding: 32), direction: .serverToClient))
        expect(.undecryptable(.paddingOutOfRange(length: 8)), for: try peer.packet(plaintext: plaintext(declared: 24, bodyAndPadding: 32), direction: .serverToClient))
        expect(.undecryptable(.paddingOutOfRange(length: 1040)), for: try peer.packet(plaintext: plaintext(declared: 0, bodyAndPadding: 1040), direction: .serverToClient))
        #expect(try stillUsable(step: 0))
    }

    @Test mutating func identityViolationsAreIgnorable() throws {
        let id = serverMessageID(now)
        expect(.wrongSession(received: 99, expected: Fixtures.sessionID),
               for: peer.packet(messageID: id, seqNo: 1, body: Fixtures.request(1), sessionID: 99, direction: .serverToClient))
        expect(.wrongMessageIDParity(messageID: id - 1), for: peer.packet(messageID: id - 1, seqNo: 1, body: Fixtures.request(1), direction: .serverToClient))
        _ = try client.receive(peer.packet(messageID: id, seqNo: 1, body: Fixtures.request(1), direction: .serverToClient), now: now)
        expect(.duplicateMessage(messageID: id), for: peer.packet(messageID: id, seqNo: 1, body: Fixtures.request(1), direction: .serverToClient))
        #expect(!SessionError.duplicateMessage(messageID: id).isFatal)
        #expect(try stillUsable(step: 1))
    }

    @Test mutating func idsBelowAFullWindowAreTooOld() throws {
        var configuration = SessionConfiguration()
        configuration.receivedWindowCapacity = 3
        client = ClientSession(authKey: Fixtures.authKey(), sessionID: Fixtures.sessionID, serverSalt: Fixtures.initialSalt, entropy: SeededEntropy(seed: 1), configuration: configuration)
        for step in 1...3 {
            _ = try client.receive(peer.packet(messageID: serverMessageID(now, step: Int64(step)), seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
        }
        let old = serverMessageID(now)
        expect(.messageIDTooOld(messageID: old), for: peer.packet(messageID: old, seqNo: 0, body: Fixtures.request(1), direction: .serverToClient))
    }

    /// A server whose clock leads ours by 30-300 s accepts our msg_ids (they are only old to it)
    /// and never sends 16/17: its packets, dropped as from the future, are the only sign. The
    /// session drops them but follows the server's clock, so its next messages and the server's
    /// next answers are in time. A packet from the past moves nothing (a delayed one looks alike).
    @Test mutating func aServerClockAheadIsFollowedThoughItsPacketIsDropped() throws {
        _ = try client.receive(peer.packet(messageID: serverMessageID(now), seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
        let stale = serverMessageID(now + -400, step: 1)
        #expect(throws: SessionError.self) {
            try client.receive(peer.packet(messageID: stale, seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
        }
        #expect(client.timeOffset == 0)
        let ahead = serverMessageID(now + 72, step: 2)
        #expect(throws: SessionError.self) {
            try client.receive(peer.packet(messageID: ahead, seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
        }
        let (_, actions) = client.send(request: Fixtures.request(2), now: now)
        let sent = try peer.open(try #require(packets(actions).first), direction: .clientToServer)
        #expect(abs(MessageIDGenerator.seconds(of: sent.messageID) - (now.seconds + 72)) < 1)
        _ = try client.receive(peer.packet(messageID: serverMessageID(now + 72, step: 3), seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
    }

    @Test mutating func staleTimesAreRefusedOnceSynchronizedExceptSaltAndTimeNotices() throws {
        _ = try client.receive(peer.packet(messageID: serverMessageID(now), seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
        #expect(client.isTimeSynchronized)
        let stale = serverMessageID(now + -400)
        #expect(throws: SessionError.self) {
            try client.receive(peer.packet(messageID: stale, seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
        }
        let future = serverMessageID(now + 60, step: 1)
        #expect(throws: SessionError.self) {
            try client.receive(peer.packet(messageID: future, seqNo: 0, body: Fixtures.request(1), direction: .serverToClient), now: now)
        }
        // A salt notice about a message we sent is processed even though its time looks off.
        let (_, actions) = client.send(request: Fixtures.request(2), now: now)
        let sent = try peer.open(try #require(packets(actions).first), direction: .clientToServer)
        let notice = ServiceMessage.badServerSalt(badMessageID: sent.messageID, badSeqNo: sent.seqNo, code: 48, newSalt: 0x4242).serialized
        let resent = try client.receive(peer.packet(messageID: serverMessageID(now + 100, step: 2), seqNo: 0, body: notice, direction: .serverToClient), now: now)
        #expect(client.serverSalt == 0x4242)
        #expect(packets(resent).count == 1)
    }

    @Test mutating func containerViolationsRejectTheWholeContainer() throws {
        let base = serverMessageID(now)
        let inner = [SessionMessage(messageID: base, seqNo: 1, body: Fixtures.request(1))]
        let nested = MessageContainer.encode([SessionMessage(messageID: base + 4, seqNo: 0, body: MessageContainer.encode(inner))])
        expect(.nestedContainer(messageID: base + 8), for: peer.packet(messageID: base + 8, seqNo: 0, body: nested, direction: .serverToClient))
        let evenInner = MessageContainer.encode([SessionMessage(messageID: base + 11, seqNo: 1, body: Fixtures.request(1))])
        expect(.wrongMessageIDParity(messageID: base + 11), for: peer.packet(messageID: base + 16, seqNo: 0, body: evenInner, direction: .serverToClient))
        let laterInner = MessageContainer.encode([SessionMessage(messageID: base + 25, seqNo: 1, body: Fixtures.request(1))])
        #expect(throws: SessionError.self) { try client.receive(peer.packet(messageID: base + 20, seqNo: 0, body: laterInner, direction: .serverToClient), now: now) }
        // Empty containers are allowed (the server's answer to an expired http_wait).
        #expect(try client.receive(peer.packet(messageID: base + 28, seqNo: 0, body: MessageContainer.encode([]), direction: .serverToClient), now: now).isEmpty)
        #expect(try stillUsable(step: 10))
    }

    @Test mutating func gzipBombsAndMalformedBodiesAreDiscardedNotFatal() throws {
        let bomb = try #require(GzipPacked.pack([UInt8](repeating: 0, count: 17 << 20)))
        let id = serverMessageID(now)
        let actions = try client.receive(peer.packet(messageID: id, seqNo: 1, body: bomb, direction: .serverToClient), now: now)
        #expect(actions.contains(.messageDiscarded(messageID: id, .gzip(.outputTooLarge(limit: 16 << 20)))))

        let (request, sentActions) = client.send(request: Fixtures.request(3), now: now)
        let sent = try peer.open(try #require(packets(sentActions).first), direction: .clientToServer)
        let requestMessageID = try MessageContainer.decode(sent.body, containerID: sent.messageID).last?.messageID ?? 0
        let bombResult = ServiceMessage.rpcResult(requestMessageID: requestMessageID, result: bomb).serialized
        let failed = try client.receive(peer.packet(messageID: serverMessageID(now, step: 1), seqNo: 1, body: bombResult, direction: .serverToClient), now: now)
        #expect(failed.contains(.requestFailed(request, .undecodableResult(.gzip(.outputTooLarge(limit: 16 << 20))))))

        let truncated = Array(ServiceMessage.badServerSalt(badMessageID: 1, badSeqNo: 1, code: 48, newSalt: 1).serialized.prefix(12))
        let malformed = try client.receive(peer.packet(messageID: serverMessageID(now, step: 2), seqNo: 0, body: truncated, direction: .serverToClient), now: now)
        #expect(malformed.contains { if case .messageDiscarded(_, .malformedMessage) = $0 { true } else { false } })
        #expect(try stillUsable(step: 3))
    }

    @Test mutating func noticesAboutMessagesNeverSentChangeNothing() throws {
        let salt = client.serverSalt
        let offset = client.timeOffset
        let fakeSalt = ServiceMessage.badServerSalt(badMessageID: 123_456, badSeqNo: 1, code: 48, newSalt: 0x6666).serialized
        #expect(packets(try client.receive(peer.packet(messageID: serverMessageID(now), seqNo: 0, body: fakeSalt, direction: .serverToClient), now: now)).isEmpty)
        let fakeTime = ServiceMessage.badMsgNotification(badMessageID: 123_456, badSeqNo: 1, code: 17).serialized
        _ = try client.receive(peer.packet(messageID: serverMessageID(now + 5000, step: 1), seqNo: 0, body: fakeTime, direction: .serverToClient), now: now)
        #expect(client.serverSalt == salt)
        #expect(client.timeOffset == offset)
        // Results for requests never made are dropped (but acknowledged).
        let stray = ServiceMessage.rpcResult(requestMessageID: 8, result: [1, 2, 3, 4]).serialized
        let actions = try client.receive(peer.packet(messageID: serverMessageID(now, step: 2), seqNo: 1, body: stray, direction: .serverToClient), now: now)
        #expect(!actions.contains { if case .rpcResult = $0 { true } else { false } })
    }

    @Test(arguments: [Int32(18), 19, 20, 48])
    mutating func fixableCodesResendUnderANewMessageID(code: Int32) throws {
        let (request, actions) = client.send(request: Fixtures.request(6), now: now)
        let sent = try peer.open(try #require(packets(actions).first), direction: .clientToServer)
        let notice = ServiceMessage.badMsgNotification(badMessageID: sent.messageID, badSeqNo: sent.seqNo, code: code).serialized
        let again = try client.receive(peer.packet(messageID: serverMessageID(now), seqNo: 0, body: notice, direction: .serverToClient), now: now)
        let resent = try peer.open(try #require(packets(again).first), direction: .clientToServer)
        #expect(resent.messageID > sent.messageID)
        #expect(client.messageID(of: request) == resent.messageID)
        #expect(resent.body == Fixtures.request(6))
        #expect(client.timeOffset == 0, "only 16/17 move the clock")
    }

    @Test(arguments: [Int32(32), 33])
    mutating func seqNoTroubleResetsTheSessionAndResendsTheRefusedMessage(code: Int32) throws {
        let (request, actions) = client.send(request: Fixtures.request(4), now: now)
        let sent = try peer.open(try #require(packets(actions).first), direction: .clientToServer)
        let oldSession = client.sessionID
        let notice = ServiceMessage.badMsgNotification(badMessageID: sent.messageID, badSeqNo: sent.seqNo, code: code).serialized
        let reset = try client.receive(peer.packet(messageID: serverMessageID(now), seqNo: 0, body: notice, direction: .serverToClient), now: now)
        #expect(client.sessionID != oldSession)
        #expect(reset.contains(.sessionReset(newSessionID: client.sessionID, inDoubt: [])))
        let resent = try peer.open(try #require(packets(reset).first), direction: .clientToServer)
        #expect(resent.sessionID == client.sessionID)
        #expect(resent.seqNo == 1, "seq_no restarted with the session")
        #expect(client.pendingRequests == [request])
    }

    @Test mutating func unfixableCodesFailTheRequest() throws {
        let (request, actions) = client.send(request: Fixtures.request(5), now: now)
        let sent = try peer.open(try #require(packets(actions).first), direction: .clientToServer)
        let notice = ServiceMessage.badMsgNotification(badMessageID: sent.messageID, badSeqNo: sent.seqNo, code: 35).serialized
        let failed = try client.receive(peer.packet(messageID: serverMessageID(now), seqNo: 0, body: notice, direction: .serverToClient), now: now)
        #expect(failed.contains(.requestFailed(request, .rejected(code: 35))))
        #expect(client.pendingRequests.isEmpty)
        #expect(RequestFailure.rejected(code: 35).description.contains("odd seq_no expected"))
    }

    @Test mutating func detailedInfoAsksForMissingAnswersAndAcksKnownOnes() throws {
        let known = serverMessageID(now)
        _ = try client.receive(peer.packet(messageID: known, seqNo: 1, body: Fixtures.request(1), direction: .serverToClient), now: now)
        let missing = serverMessageID(now, step: 5)
        let info = ServiceMessage.msgNewDetailedInfo(answerMessageID: missing, bytes: 100, status: 0).serialized
        let actions = try client.receive(peer.packet(messageID: serverMessageID(now, step: 1), seqNo: 0, body: info, direction: .serverToClient), now: now)
        let sent = try peer.open(try #require(packets(actions).first), direction: .clientToServer)
        let bodies = try MessageContainer.decode(sent.body, containerID: sent.messageID).map { try ServiceMessage.decode($0.body) }
        #expect(bodies.contains(.msgResendReq([missing])))
        #expect(bodies.contains(.msgsAck([known])))
    }
}
