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

        init(dc: Int32 = 1, core: TestDCCore? = nil) async throws {
            self.core = core ?? TestDCCore(state: DCState.forTests(), clock: { ConnectionHandlerTests.now.seconds })
            let handler = TestDCConnectionHandler(
                core: self.core, dc: dc, handshakeConfiguration: ServerHandshake.Configuration(keys: [ConnectionHandlerTests.serverKey]),
                logger: Logger(label: "test"))
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
        func invoke(_ request: some TLEncodable) throws -> Result<[UInt8], RPCError> {
            guard var session else { throw HarnessError.noSession }
            defer { self.session = session }
            let (id, actions) = session.send(request: request.serialized(), now: ConnectionHandlerTests.now)
            var pending = actions.compactMap { if case .send(let bytes) = $0 { bytes } else { nil } }
            for _ in 0..<20 {
                guard !pending.isEmpty else { break }
                let frames = try send(pending.removeFirst())
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

    @Test func oneKeyInTwoLiveSessionsIsDuplicated() async throws {
        let first = try await Harness()
        let result = try first.handshake()
        _ = try first.invoke(F.help.GetNearestDc()).get()
        let second = try await Harness(core: first.core)
        second.session = ClientSession(authKey: result.authKey, sessionID: 0x0707, serverSalt: result.serverSalt, entropy: SeededEntropy(seed: 8))
        #expect(try second.invoke(F.help.GetNearestDc()) == .failure(RPCError(code: 406, message: "AUTH_KEY_DUPLICATED")))
        #expect(first.core.withState { $0.authKeyIDs(dc: 1) }.isEmpty)
    }
}
