import Foundation
import Testing
import MTProtoCrypto
@testable import MTProto

/// Packets made by Telethon 1.45.0 (Tests/Interop/make_session_vectors.py): what its client sends
/// must pass every check of our server session, and server packets Telethon accepts must pass our
/// client's checks and decode to the same bodies.
@Suite struct TelethonSessionVectorsTests {
    struct Vector {
        var label: String
        var json: [String: Any]
        var packet: [UInt8]
    }

    static let now = UnixTime(seconds: 1_800_000_000.25)
    static let salt: Int64 = 0x1122_3344_5566_7788
    static let session: Int64 = 0x0BAD_CAFE_0000_0001

    static func key() throws -> AuthKey {
        var bytes: [UInt8] = []
        var block = Array("tgsm session vectors".utf8)
        while bytes.count < 256 {
            block = Hashing.sha256(block)
            bytes += block
        }
        return try AuthKey(Array(bytes.prefix(256)))
    }

    static func vectors() throws -> [String: Vector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/session-vectors.jsonl")
        var result: [String: Vector] = [:]
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let label = try #require(object["label"] as? String)
            let packet = try hex(try #require(object["hex"] as? String))
            result[label] = Vector(label: label, json: object, packet: packet)
        }
        return result
    }

    static func hex(_ text: String) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(try #require(UInt8(text[index..<next], radix: 16)))
            index = next
        }
        return bytes
    }

    func server() throws -> ServerSession {
        ServerSession(authKey: try Self.key(), salts: ServerSaltSchedule(initialSalt: Self.salt, validSince: Self.now + -10, seed: Array(repeating: 9, count: 32)), entropy: SeededEntropy(seed: 1))
    }

    func int64(_ value: Any?) throws -> Int64 { try #require((value as? NSNumber)?.int64Value) }

    @Test func telethonsKeyIDMatchesOurs() throws {
        let vectors = try Self.vectors()
        let packet = try #require(vectors["client-ping"]?.packet)
        #expect(Array(packet.prefix(8)) == (try Self.key()).idBytes)
    }

    @Test func telethonsPingIsAnsweredWithPong() throws {
        let vector = try #require(try Self.vectors()["client-ping"])
        let ping = try #require(vector.json["ping"] as? [NSNumber])
        var server = try server()
        let actions = try server.receive(vector.packet, now: Self.now)
        #expect(actions.contains(.sessionCreated(sessionID: Self.session, firstMessageID: ping[0].int64Value)))
        let bodies = try packets(actions).flatMap { packet -> [ServiceMessage] in
            let message = try Envelope.open(packet, authKey: try Self.key(), direction: .serverToClient)
            let inner = WireConstructor.of(message.body) == WireConstructor.messageContainer
                ? try MessageContainer.decode(message.body, containerID: message.messageID).map(\.body) : [message.body]
            return try inner.map { try ServiceMessage.decode($0) }
        }
        #expect(bodies.contains(.pong(messageID: ping[0].int64Value, pingID: ping[1].int64Value)))
    }

    @Test func telethonsSaltZeroEarnsBadServerSalt() throws {
        let vector = try #require(try Self.vectors()["client-first-message-salt-zero"])
        let rejected = try #require(vector.json["rejected"] as? [NSNumber])
        var server = try server()
        let actions = try server.receive(vector.packet, now: Self.now)
        #expect(actions.contains(.messageRejected(messageID: rejected[0].int64Value, code: 48)))
    }

    @Test(arguments: ["client-resent-after-bad-salt", "client-container-ack-and-query", "client-gzip-query"])
    func telethonsQueriesAreHandedUpUnwrapped(label: String) throws {
        let vector = try #require(try Self.vectors()[label])
        var server = try server()
        let actions = try server.receive(vector.packet, now: Self.now)
        let requests = try #require(vector.json["requests"] as? [[Any]])
        #expect(!requests.isEmpty)
        for request in requests {
            let id = try int64(request[0])
            let body = try Self.hex(try #require(request[1] as? String))
            #expect(actions.contains(.request(messageID: id, body: body)), "\(label)")
        }
        #expect(!actions.contains { if case .messageRejected = $0 { true } else { false } }, "Telethon's msg_id and seq_no pass our checks")
    }

    @Test func serverPacketsTelethonAcceptsPassOurClient() throws {
        let vectors = try Self.vectors()
        var client = ClientSession(authKey: try Self.key(), sessionID: Self.session, serverSalt: Self.salt, entropy: SeededEntropy(seed: 2))
        let key = try Self.key()

        let created = try #require(vectors["server-new-session"])
        #expect(try Envelope.open(created.packet, authKey: key, direction: .serverToClient).body == (try Self.hex(try #require(created.json["body"] as? String))))
        let events = try client.receive(created.packet, now: Self.now)
        #expect(events.contains(.newSessionCreated(firstMessageID: (Int64(1_800_000_000) << 32) | 0x1000, inDoubt: [])))

        let container = try #require(vectors["server-container"])
        let message = try Envelope.open(container.packet, authKey: key, direction: .serverToClient)
        let expected = try (try #require(container.json["bodies"] as? [String])).map { try Self.hex($0) }
        #expect(try MessageContainer.decode(message.body, containerID: message.messageID).map(\.body) == expected)
        _ = try client.receive(container.packet, now: Self.now)

        let error = try #require(vectors["server-rpc-error"])
        let errorMessage = try Envelope.open(error.packet, authKey: key, direction: .serverToClient)
        guard case .rpcResult(_, let result) = try ServiceMessage.decode(errorMessage.body) else {
            Issue.record("not an rpc_result")
            return
        }
        #expect(try RPCError.decode(result) == RPCError(code: 420, message: "FLOOD_WAIT_31"))
        _ = try client.receive(error.packet, now: Self.now)
    }

    /// What our server answers to Telethon's packets, byte for byte (seeded entropy, fixed clock).
    /// `Tests/Interop/check_session_packets.py` (run by scripts/check-session-vectors) makes Telethon
    /// decrypt and parse exactly these packets; this test keeps them what the code produces.
    /// After an intended change: `TGSM_WRITE_SESSION_PACKETS=1 swift test --filter TelethonSessionVectors`.
    @Test func ourServerPacketsForTelethonAreTheCheckedOnes() throws {
        let vectors = try Self.vectors()
        var server = try server()
        var produced: [[UInt8]] = []
        let order = ["client-first-message-salt-zero", "client-resent-after-bad-salt", "client-ping", "client-container-ack-and-query", "client-gzip-query"]
        for label in order {
            let vector = try #require(vectors[label])
            let actions = try server.receive(vector.packet, now: Self.now)
            produced += packets(actions)
            for case .request(let id, let body) in actions {
                // Short answers travel as they are; the long one must come back gzip_packed.
                let result = label == "client-gzip-query" ? body + body : Array(body.reversed())
                produced += packets(server.answer(request: id, result: result, now: Self.now))
            }
        }
        produced += packets(server.push([0x7e, 0xaf, 0x17, 0xe3], now: Self.now))  // updatesTooLong

        let lines = produced.map { packet in "{\"hex\": \"\(packet.map { String(format: "%02x", $0) }.joined())\"}" }
        let text = lines.joined(separator: "\n") + "\n"
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/session-server-packets.jsonl")
        if ProcessInfo.processInfo.environment["TGSM_WRITE_SESSION_PACKETS"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        #expect(try String(contentsOf: url, encoding: .utf8) == text, "regenerate with TGSM_WRITE_SESSION_PACKETS=1, then scripts/check-session-vectors")
    }
}
