@testable import MTProto
import MTProtoCrypto
import SeededRandom

/// SplitMix64: a deterministic entropy source, so every test replays byte for byte. Its bytes are
/// the generator's counter after each step, as they have always been (the suites' recorded values
/// depend on them).
struct SeededEntropy: EntropySource {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count {
            if index % 8 == 0 { _ = next() }
            buffer[index] = UInt8(truncatingIfNeeded: generator.state >> (8 * UInt64(index % 8)))
        }
    }

    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}

enum Fixtures {
    static let start = UnixTime(seconds: 1_800_000_000.25)
    static let initialSalt: Int64 = 0x1122_3344_5566_7788
    static let sessionID: Int64 = 0x0BAD_CAFE_0000_0001

    static func authKey(seed: UInt64 = 1) -> AuthKey {
        var entropy = SeededEntropy(seed: seed)
        do {
            return try AuthKey(entropy.bytes(256))
        } catch {
            preconditionFailure("256 bytes always make a key: \(error)")
        }
    }

    /// A serialized fake API call: an unknown constructor and some payload.
    static func request(_ tag: UInt32, payload: Int = 8) -> [UInt8] {
        var writer = WireWriter()
        writer.write(tag)
        writer.writeRaw((0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(tag)) })
        return writer.bytes
    }
}

/// A client and a server session wired back to back in memory, with one injected clock.
struct SessionPair {
    var client: ClientSession
    var server: ServerSession
    var now: UnixTime
    /// Everything the client surfaced that is not a packet, in order.
    var clientEvents: [ClientSessionAction] = []
    var serverEvents: [ServerSessionAction] = []
    /// Packets in flight: delivered by `deliver`.
    var toServer: [[UInt8]] = []
    var toClient: [[UInt8]] = []

    init(clientSalt: Int64 = Fixtures.initialSalt, clientClockSkew: Double = 0, configuration: SessionConfiguration = SessionConfiguration(), seed: UInt64 = 7) {
        let key = Fixtures.authKey()
        now = Fixtures.start
        client = ClientSession(
            authKey: key, sessionID: Fixtures.sessionID, serverSalt: clientSalt, timeOffset: clientClockSkew,
            entropy: SeededEntropy(seed: seed), configuration: configuration)
        server = ServerSession(
            authKey: key, salts: ServerSaltSchedule(initialSalt: Fixtures.initialSalt, validSince: Fixtures.start + -10, seed: Array(repeating: 9, count: 32)),
            entropy: SeededEntropy(seed: seed &+ 1), configuration: configuration)
    }

    mutating func clientDid(_ actions: [ClientSessionAction]) {
        for action in actions {
            if case .send(let packet) = action { toServer.append(packet) } else { clientEvents.append(action) }
        }
    }

    mutating func serverDid(_ actions: [ServerSessionAction]) {
        for action in actions {
            if case .send(let packet) = action { toClient.append(packet) } else { serverEvents.append(action) }
        }
    }

    /// One ping and its pong: the server's session exists and its new_session_created is handled,
    /// so what a test does next happens in a session both sides know.
    mutating func exchangePing(id: Int64 = 1) throws {
        clientDid(client.ping(id: id, now: now))
        try run()
    }

    /// Delivers packets both ways until nothing is in flight; RPC requests the server surfaces are
    /// answered by `answer` (nil leaves them open).
    mutating func run(answer: (Int64, [UInt8]) -> [UInt8]? = { _, body in body.reversed() }) throws {
        var rounds = 0
        while !toServer.isEmpty || !toClient.isEmpty {
            rounds += 1
            precondition(rounds < 100, "the sessions keep talking: a resend loop")
            let outbound = toServer
            toServer.removeAll()
            for packet in outbound {
                let actions = try server.receive(packet, now: now)
                serverDid(actions)
                for case .request(let id, let body) in actions {
                    if let result = answer(id, body) { serverDid(server.answer(request: id, result: result, now: now)) }
                }
            }
            let inbound = toClient
            toClient.removeAll()
            for packet in inbound { clientDid(try client.receive(packet, now: now)) }
        }
    }

    var results: [RequestID: [UInt8]] {
        var found: [RequestID: [UInt8]] = [:]
        for case .rpcResult(let id, let bytes) in clientEvents { found[id] = bytes }
        return found
    }

    var rejections: [Int32] {
        serverEvents.compactMap { if case .messageRejected(_, let code) = $0 { code } else { nil } }
    }
}

/// Hand-made packets for the hostile-peer and server tests: any header, any body.
struct RawPeer {
    var key = Fixtures.authKey()
    var entropy: any EntropySource = SeededEntropy(seed: 99)

    mutating func packet(
        messageID: Int64, seqNo: Int32, body: [UInt8], salt: Int64 = Fixtures.initialSalt,
        sessionID: Int64 = Fixtures.sessionID, direction: Direction
    ) -> [UInt8] {
        Envelope.seal(
            SessionMessage(messageID: messageID, seqNo: seqNo, body: body), salt: salt, sessionID: sessionID,
            authKey: key, direction: direction, entropy: &entropy, maxExtraPaddingBlocks: 0)
    }

    /// A packet whose plaintext is exactly `plaintext` + `padding` bytes, valid msg_key included:
    /// for checks that only a well-encrypted packet can reach (lengths, padding).
    func packet(plaintext: [UInt8], direction: Direction) throws -> [UInt8] {
        try MessageCrypto.encrypt(paddedPlaintext: plaintext, authKey: key, direction: direction)
    }

    func open(_ packet: [UInt8], direction: Direction = .serverToClient) throws -> DecryptedMessage {
        try Envelope.open(packet, authKey: key, direction: direction)
    }
}

/// Server msg_ids at a given time, for packets a test forges on the server's behalf.
func serverMessageID(_ time: UnixTime, kind: MessageIDKind = .serverResponse, step: Int64 = 0) -> Int64 {
    var generator = MessageIDGenerator()
    return generator.next(now: time, kind: kind) + step * 4
}

func clientMessageID(_ time: UnixTime, step: Int64 = 0) -> Int64 {
    var generator = MessageIDGenerator()
    return generator.next(now: time, kind: .client) + step * 4
}

func packets(_ actions: [ServerSessionAction]) -> [[UInt8]] {
    actions.compactMap { if case .send(let packet) = $0 { packet } else { nil } }
}

func packets(_ actions: [ClientSessionAction]) -> [[UInt8]] {
    actions.compactMap { if case .send(let packet) = $0 { packet } else { nil } }
}
