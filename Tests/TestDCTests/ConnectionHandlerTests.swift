import Logging
import MTProto
import MTProtoCrypto
import MTProtoNIO
import NIOCore
import NIOEmbedded
import TL
import TLSchema
import Testing
@testable import TestDC

/// One DC connection driven by our own client machines (ClientHandshake, ClientSession) over an
/// EmbeddedChannel: the same bytes a socket would carry, with a fixed clock.
@Suite struct ConnectionHandlerTests {
    static let now = UnixTime(seconds: 1_800_000_000)
    static let serverKey: RSAPrivateKey = {
        do { return try RSAPrivateKey.generate() } catch { preconditionFailure("OpenSSL could not make an RSA key: \(error)") }
    }()

    final class Harness {
        let core: TestDCCore
        let channel: EmbeddedChannel
        var session: ClientSession?

        init(dc: Int32 = 1, core: TestDCCore? = nil, answersTogether: Bool = true) async throws {
            self.core = core ?? TestDCCore(state: DCState.forTests(), clock: { ConnectionHandlerTests.now.seconds })
            let handler = TestDCConnectionHandler(
                core: self.core, dc: dc, handshakeConfiguration: ServerHandshake.Configuration(keys: [ConnectionHandlerTests.serverKey]),
                answersTogether: answersTogether, logger: Logger(label: "test"))
            channel = EmbeddedChannel(handler: handler)
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 5555))
        }

        func send(_ bytes: [UInt8]) throws -> [TransportFrame] {
            var buffer = channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            try channel.writeInbound(TransportFrame.packet(buffer))
            var frames: [TransportFrame] = []
            while let frame = try channel.readOutbound(as: TransportFrame.self) { frames.append(frame) }
            return frames
        }

        static func bytes(_ frame: TransportFrame) -> [UInt8]? {
            if case .packet(let buffer) = frame { return Array(buffer.readableBytesView) }
            return nil
        }

        /// Runs the key exchange with our client; the session that follows uses the new key.
        func handshake(innerData: ClientHandshake.InnerDataEncryption = .rsaPad) throws -> HandshakeResult {
            var client = ClientHandshake(
                configuration: ClientHandshake.Configuration(serverKeys: [ConnectionHandlerTests.serverKey.publicKey], dcID: 1, innerDataEncryption: innerData),
                entropy: SeededEntropy(seed: 3))
            var outgoing = client.start(now: ConnectionHandlerTests.now)
            for _ in 0..<20 {
                guard let reply = try send(outgoing).compactMap(Self.bytes).first else { throw HarnessError.noAnswer }
                switch try client.receive(reply, now: ConnectionHandlerTests.now) {
                case .send(let next): outgoing = next
                case .completed(let result):
                    session = ClientSession(authKey: result.authKey, sessionID: 0x5E55, serverSalt: result.serverSalt, entropy: SeededEntropy(seed: 4))
                    return result
                }
            }
            throw HarnessError.noAnswer
        }

        /// Sends one request and feeds every answer back until its result or error arrives.
        /// `grace`: time the DC may wait before it answers (a suspected duplicate key), advanced after each packet.
        func invoke(_ request: some TLEncodable, grace: TimeAmount? = nil) throws -> Result<[UInt8], RPCError> {
            guard var session else { throw HarnessError.noSession }
            defer { self.session = session }
            let (id, actions) = session.send(request: request.serialized(), now: ConnectionHandlerTests.now)
            var pending = actions.compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
            for _ in 0..<20 {
                guard !pending.isEmpty else { break }
                var frames = try send(pending.removeFirst())
                if let grace {
                    channel.embeddedEventLoop.advanceTime(by: grace)
                    while let frame = try channel.readOutbound(as: TransportFrame.self) { frames.append(frame) }
                }
                for frame in frames {
                    guard let bytes = Self.bytes(frame) else { throw HarnessError.transport(frame) }
                    for action in try session.receive(bytes, now: ConnectionHandlerTests.now) {
                        switch action {
                        case .rpcResult(id, let result): return .success(result)
                        case .rpcError(id, let error): return .failure(error)
                        case .send(let again): pending.append(again)
                        default: break
                        }
                    }
                }
            }
            throw HarnessError.noAnswer
        }
    }

    enum HarnessError: Error {
        case noAnswer
        case noSession
        case transport(TransportFrame)
    }

    typealias F = Api.functions

    @Test(arguments: [ClientHandshake.InnerDataEncryption.rsaPad, .legacy])
    func ourClientExchangesAKeyAndLogsIn(innerData: ClientHandshake.InnerDataEncryption) async throws {
        let harness = try await Harness()
        let result = try harness.handshake(innerData: innerData)
        #expect(harness.core.withState { $0.authKeyIDs(dc: 1) } == [result.authKey.id])

        let config = try harness.invoke(F.InvokeWithLayer(layer: 229, query: F.InitConnection(
            apiId: 1, deviceModel: "t", systemVersion: "t", appVersion: "t", systemLangCode: "en", langPack: "", langCode: "en",
            query: F.help.GetConfig()))).get()
        guard case .config(let decoded) = try Api.Config(serialized: config) else { return }
        #expect(decoded.thisDc == 1 && decoded.dcOptions.count == 3)

        let sent = try Api.auth.SentCode(serialized: harness.invoke(F.auth.SendCode(
            phoneNumber: "15550001", apiId: 1, apiHash: "h", settings: .codeSettings(Api.CodeSettings.CodeSettings()))).get())
        guard case .sentCode(let code) = sent else { return }
        let auth = try Api.auth.Authorization(serialized: harness.invoke(F.auth.SignIn(
            phoneNumber: "15550001", phoneCodeHash: code.phoneCodeHash, phoneCode: DCState.loginCode(for: "15550001"))).get())
        guard case .authorization(let authorization) = auth, case .user(let user) = authorization.user else { return }
        #expect(user.id == 1001)
        #expect(harness.core.liveConnections.first?.userID == 1001)
    }

    @Test func anUnknownKeyGetsTransportError404AndTheConnectionCloses() async throws {
        let harness = try await Harness()
        var packet = [UInt8](repeating: 0xAB, count: 8) + [UInt8](repeating: 0, count: 64)
        packet[0] = 1
        let frames = try harness.send(packet)
        #expect(frames == [.transportError(TransportErrorCode(rawValue: -404))])
        #expect(!harness.channel.isActive)
    }

    @Test func transportErrorFaultReplacesTheAnswer() async throws {
        let harness = try await Harness()
        _ = try harness.handshake()
        _ = try harness.core.withState { try $0.faults.add(FaultRule(match: FaultMatch(method: "help.getNearestDc", count: 1), effect: .transportError(429))) }
        #expect(throws: HarnessError.self) { try harness.invoke(F.help.GetNearestDc()) }
        #expect(harness.channel.isActive)
    }

    @Test func droppedBeforeTheAnswerClosesTheConnection() async throws {
        let harness = try await Harness()
        _ = try harness.handshake()
        _ = try harness.core.withState { try $0.faults.add(FaultRule(match: FaultMatch(method: "help.getNearestDc"), effect: .dropBeforeAnswer)) }
        #expect(throws: HarnessError.self) { try harness.invoke(F.help.GetNearestDc()) }
        #expect(!harness.channel.isActive)
    }

    @Test func badServerSaltMakesOurClientResendAndSucceed() async throws {
        let harness = try await Harness()
        _ = try harness.handshake()
        _ = try harness.core.withState { try $0.faults.add(FaultRule(match: FaultMatch(method: "help.getNearestDc", count: 1), effect: FaultEffect(kind: .badServerSalt))) }
        let saltBefore = harness.session?.serverSalt
        let nearest = try Api.NearestDc(serialized: harness.invoke(F.help.GetNearestDc()).get())
        guard case .nearestDc(let value) = nearest else { return }
        #expect(value.thisDc == 1)
        #expect(harness.core.withState { $0.faults.firedCount(rule: 1) } == 1)
        #expect(harness.session?.serverSalt != saltBefore)
    }

    @Test(arguments: [true, false])
    func theAnswersToRequestsOfOneReadLeaveInOnePacketUnlessConfiguredApart(answersTogether: Bool) async throws {
        let harness = try await Harness(answersTogether: answersTogether)
        _ = try harness.handshake()
        guard var session = harness.session else { throw HarnessError.noSession }
        let requests = (0..<3).map { _ in session.enqueue(request: F.help.GetNearestDc().serialized()) }
        let packets = session.flush(now: Self.now).compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
        #expect(packets.count == 1)
        guard let container = packets.first else { return }
        var answered: [RequestID] = []
        var packetsWithAnswers = 0
        for frame in try harness.send(container) {
            guard let bytes = Harness.bytes(frame) else { throw HarnessError.transport(frame) }
            let results = try session.receive(bytes, now: Self.now).compactMap { if case .rpcResult(let id, _) = $0 { id } else { nil } }
            answered += results
            if !results.isEmpty { packetsWithAnswers += 1 }
        }
        #expect(Set(answered) == Set(requests))
        #expect(packetsWithAnswers == (answersTogether ? 1 : 3))
    }

    @Test func theAnswerOfADropAfterAnswerFaultLeavesBeforeTheConnectionCloses() async throws {
        let harness = try await Harness()
        _ = try harness.handshake()
        _ = try harness.core.withState { try $0.faults.add(FaultRule(match: FaultMatch(method: "help.getNearestDc"), effect: .dropAfterAnswer)) }
        guard case .success(let bytes) = try harness.invoke(F.help.GetNearestDc()) else { Issue.record("no answer before the close"); return }
        #expect(!bytes.isEmpty)
        #expect(!harness.channel.isActive)
    }

    @Test func rpcErrorsReachTheClientTyped() async throws {
        let harness = try await Harness()
        _ = try harness.handshake()
        #expect(try harness.invoke(F.updates.GetState()) == .failure(RPCError(code: 401, message: "AUTH_KEY_UNREGISTERED")))
        _ = try harness.core.withState { try $0.faults.add(FaultRule(match: FaultMatch(method: "help.getNearestDc"), effect: .floodWait(17))) }
        guard case .failure(let error) = try harness.invoke(F.help.GetNearestDc()) else { Issue.record("no error"); return }
        #expect(error.waitSeconds == 17)
    }

    @Test func pingDelayDisconnectClosesWhenDueAndANewOneReplacesIt() async throws {
        let harness = try await Harness()
        _ = try harness.handshake()
        func ping(_ id: Int64, delay: Int32) throws {
            guard var session = harness.session else { throw HarnessError.noSession }
            for case .send(let bytes) in session.pingDelayDisconnect(id: id, disconnectDelay: delay, now: Self.now) {
                _ = try harness.send(bytes)
            }
            harness.session = session
        }
        try ping(1, delay: 75)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        try ping(2, delay: 75)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(harness.channel.isActive)
        harness.channel.embeddedEventLoop.advanceTime(by: .seconds(16))
        #expect(!harness.channel.isActive)
    }

    /// A request whose answer is ready only after the client lost its connection: the client comes
    /// back with the same session id and sends the same message again (it cannot know whether the
    /// request ran). The answer comes from the session; the handler ran once.
    @Test func aRequestSentAgainAfterAReconnectIsAnsweredFromTheSessionNotRunTwice() async throws {
        let first = try await Harness()
        _ = try first.handshake()
        _ = try first.core.withState { try $0.faults.add(FaultRule(match: FaultMatch(method: "help.getNearestDc", count: 1), effect: .delay(milliseconds: 5000))) }
        var client = try #require(first.session)
        let (request, actions) = client.send(request: F.help.GetNearestDc().serialized(), now: Self.now)
        let sent = actions.compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
        for packet in sent { _ = try first.send(packet) }
        #expect(first.core.withState { $0.handlerRuns["help.getNearestDc"] } == 1)
        try await first.channel.close()
        first.channel.embeddedEventLoop.advanceTime(by: .seconds(6))  // the answer is ready; nobody to send it to

        let second = try await Harness(core: first.core)
        var answer: [UInt8]?
        for packet in sent {
            for frame in try second.send(packet) {
                for case .rpcResult(request, let result) in try client.receive(try #require(Harness.bytes(frame)), now: Self.now) { answer = result }
            }
        }
        guard case .nearestDc(let nearest) = try Api.NearestDc(serialized: try #require(answer, "the session's answer reaches the new connection")) else { return }
        #expect(nearest.thisDc == 1)
        #expect(first.core.withState { $0.handlerRuns["help.getNearestDc"] } == 1, "answered from the session, not run again")
        #expect(first.core.sessionCount == 1)
    }

    /// The client comes back while the request is still running: asking again runs nothing, and
    /// the answer, when ready, goes to the connection the client uses now.
    @Test func anAnswerReadyAfterTheClientMovedGoesToItsNewConnection() async throws {
        let first = try await Harness()
        _ = try first.handshake()
        _ = try first.core.withState { try $0.faults.add(FaultRule(match: FaultMatch(method: "help.getNearestDc", count: 1), effect: .delay(milliseconds: 5000))) }
        var client = try #require(first.session)
        let (request, actions) = client.send(request: F.help.GetNearestDc().serialized(), now: Self.now)
        let sent = actions.compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
        for packet in sent { _ = try first.send(packet) }
        try await first.channel.close()

        let second = try await Harness(core: first.core)
        for packet in sent {
            for frame in try second.send(packet) {
                for case .rpcResult(request, _) in try client.receive(try #require(Harness.bytes(frame)), now: Self.now) {
                    Issue.record("answered before the handler finished")
                }
            }
        }
        first.channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        var answered = false
        while let frame = try second.channel.readOutbound(as: TransportFrame.self) {
            for case .rpcResult(request, _) in try client.receive(try #require(Harness.bytes(frame)), now: Self.now) { answered = true }
        }
        #expect(answered)
        #expect(first.core.withState { $0.handlerRuns["help.getNearestDc"] } == 1)
    }

    @Test func serverSessionsExpireWhenIdleAndStayWithinTheirLimit() {
        func session(_ id: Int64) -> ServerSession {
            ServerSession(
                authKey: Self.sessionKey, salts: ServerSaltSchedule(initialSalt: 1, validSince: Self.now, seed: [UInt8](repeating: 1, count: 32)),
                entropy: SeededEntropy(seed: UInt64(id)))
        }
        var table = ServerSessionTable(capacity: 3, idleLifetime: 100)
        for id in Int64(1)...5 {
            table.receiving(.init(dc: 1, keyID: 7, sessionID: id), on: 1, now: 1000 + Double(id), make: { session(id) }) { _, _ in }
        }
        #expect(table.count == 3, "the least recently used went first")
        #expect(Set(table.entries.keys.map(\.sessionID)) == [3, 4, 5])
        let moved = table.receiving(.init(dc: 1, keyID: 7, sessionID: 5), on: 2, now: 1010, make: { session(5) }) { _, moved in moved }
        #expect(moved, "a packet on another connection moves the session there")
        table.receiving(.init(dc: 1, keyID: 7, sessionID: 9), on: 2, now: 1200, make: { session(9) }) { _, _ in }
        #expect(Set(table.entries.keys.map(\.sessionID)) == [9], "idle sessions expired")
        // A sweep that keeps the session (used 70 s ago, lifetime 100) rebuilds the table: the
        // packet still finds its session, not a new one.
        var made = false
        let movedAfterSweep = table.receiving(.init(dc: 1, keyID: 7, sessionID: 9), on: 2, now: 1270, make: { made = true; return session(9) }) { _, moved in moved }
        #expect(!made && !movedAfterSweep)
        #expect(table.count == 1)
    }

    static let sessionKey: AuthKey = {
        var entropy = SeededEntropy(seed: 77)
        do { return try AuthKey(entropy.bytes(256)) } catch { preconditionFailure("256 bytes make an auth key: \(error)") }
    }()

    @Test func oneKeyInTwoLiveSessionsIsDuplicated() async throws {
        let first = try await Harness()
        let result = try first.handshake()
        _ = try first.invoke(F.help.GetNearestDc()).get()
        let second = try await Harness(core: first.core)
        second.session = ClientSession(authKey: result.authKey, sessionID: 0x0707, serverSalt: result.serverSalt, entropy: SeededEntropy(seed: 8))
        #expect(try second.invoke(F.help.GetNearestDc(), grace: TestDCConnectionHandler.duplicateGrace) == .failure(RPCError(code: 406, message: "AUTH_KEY_DUPLICATED")))
        #expect(first.core.withState { $0.authKeyIDs(dc: 1) }.isEmpty)
    }

    /// A session kept across a clock jump back would stamp its answers with the old, later time
    /// (its msg_ids never go backwards) and a client synchronized to the new time would drop them:
    /// the jump ends the DC's sessions, and only that DC's.
    @Test func aClockJumpEndsTheSessionsOfThatDCOnly() async throws {
        let harness = try await Harness()
        _ = try harness.handshake()
        var client = try #require(harness.session)
        let (_, actions) = client.send(request: F.help.GetNearestDc().serialized(), now: Self.now)
        for case .send(let bytes) in actions { _ = try harness.send(bytes) }
        #expect(harness.core.sessionCount == 1)
        harness.core.setClockOffset(-600, dc: 2)
        #expect(harness.core.sessionCount == 1)
        harness.core.setClockOffset(-600, dc: 1)
        #expect(harness.core.sessionCount == 0)
        #expect(harness.core.withState { $0.faults.clockOffset(dc: 1) } == -600)
    }
}
