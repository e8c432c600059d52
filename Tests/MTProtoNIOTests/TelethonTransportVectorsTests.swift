import Foundation
import MTProtoCrypto
import NIOCore
import Testing

@testable import MTProtoNIO

/// Bytes Telethon 1.45.0's own transport codecs produced (Tests/Interop/make_transport_vectors.py):
/// our client framing must put the same bytes on the wire; a plain detector must not take Telethon's
/// obfuscated2 headers for a plain transport; from the same random bytes our obfuscation must build
/// Telethon's header (direct and MTProxy), and both ends must encrypt and decrypt its streams.
@Suite struct TelethonTransportVectorsTests {
    struct Vectors: Decodable {
        struct Stream: Decodable {
            let transport: String
            let tag: String
            let packets: [Packet]
        }
        struct Packet: Decodable {
            let size: Int
            let seed: Int
            let length: Int
            let head: String
            let tail: String
        }
        struct Obfuscated: Decodable {
            let codec: String
            let header: String
        }
        struct ObfuscatedStream: Decodable {
            let codec: String
            let secret: String?
            let dcID: Int16?
            let random: String
            let header: String
            let clientPlain: String
            let clientWire: String
            let serverPlain: String
            let serverWire: String
        }
        let telethon: String
        let streams: [Stream]
        let obfuscated2Headers: [Obfuscated]
        let obfuscatedStreams: [ObfuscatedStream]
    }

    static func load() throws -> Vectors {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/transport-vectors.json")
        return try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }

    static func hex(_ buffer: ByteBuffer, at index: Int, length: Int) -> String {
        (buffer.getBytes(at: index, length: length) ?? []).map { String(format: "%02x", $0) }.joined()
    }

    @Test func vectorsComeFromThePinnedTelethon() throws {
        let vectors = try Self.load()
        #expect(vectors.telethon == "1.45.0")
        #expect(Set(vectors.streams.map(\.transport)) == ["abridged", "intermediate", "full"])
    }

    @Test(arguments: ["abridged", "intermediate", "full"])
    func clientFramingWritesTelethonsBytes(transport: String) throws {
        let vectors = try Self.load()
        let stream = try #require(vectors.streams.first { $0.transport == transport })
        let kind = try #require(TransportKind(rawValue: transport))
        #expect(kind.tag.map { String(format: "%02x", $0) }.joined() == stream.tag)

        var client = TransportFraming(kind: kind, role: .client)
        var server = TransportFraming(kind: kind, role: .server)
        for (index, packet) in stream.packets.enumerated() {
            let sent = payload(packet.size, seed: UInt8(packet.seed))
            var wire = client.encode(.packet(sent))
            if index == 0 { wire.moveReaderIndex(forwardBy: kind.tag.count) }
            let start = wire.readerIndex
            #expect(wire.readableBytes == packet.length, "\(transport) packet \(index): length")
            #expect(Self.hex(wire, at: start, length: min(12, wire.readableBytes)) == packet.head, "\(transport) packet \(index): head")
            #expect(Self.hex(wire, at: wire.writerIndex - min(8, wire.readableBytes), length: min(8, wire.readableBytes)) == packet.tail, "\(transport) packet \(index): tail")
            #expect(try server.decode(from: &wire) == .packet(sent))
        }
    }

    @Test func telethonObfuscatedHeadersAreNotTakenForAPlainTransport() throws {
        let vectors = try Self.load()
        #expect(vectors.obfuscated2Headers.count == 12)
        for vector in vectors.obfuscated2Headers {
            var header = ByteBuffer(bytes: try #require(Self.bytes(fromHex: vector.header)))
            var detector = TransportDetector()
            #expect(throws: MTProtoTransportError.unrecognizedTransport, "\(vector.codec)") {
                try detector.detect(from: &header)
            }
        }
    }

    static let codecs: [String: TransportKind] = [
        "AbridgedPacketCodec": .abridged, "IntermediatePacketCodec": .intermediate,
        "RandomizedIntermediatePacketCodec": .paddedIntermediate,
    ]

    @Test func obfuscationMatchesTelethonByteForByte() throws {
        let vectors = try Self.load()
        #expect(vectors.obfuscatedStreams.count == 5)
        for vector in vectors.obfuscatedStreams {
            let kind = try #require(Self.codecs[vector.codec])
            let secret = try vector.secret.map { try #require(Self.bytes(fromHex: $0)) }
            let random = try #require(Self.bytes(fromHex: vector.random))
            let header = try #require(Self.bytes(fromHex: vector.header))

            // Our client, given Telethon's random bytes, sends Telethon's header and stream.
            var entropy = ScriptedEntropy(random)
            let client = try ObfuscationHeader.makeClientHeader(kind: kind, dcID: vector.dcID, secret: secret, entropy: &entropy)
            #expect(client.header == header, "\(vector.codec) header")
            let clientPlain = try #require(Self.bytes(fromHex: vector.clientPlain))
            let clientWire = try #require(Self.bytes(fromHex: vector.clientWire))
            #expect(client.ciphers.encryptor.applied(to: clientPlain) == clientWire, "\(vector.codec) client stream")

            // Our server reads Telethon's header: transport, DC id, and both directions of its stream.
            let accepted = try ObfuscationHeader.acceptClientHeader(header, secret: secret)
            #expect(accepted.kind == kind)
            if let dcID = vector.dcID { #expect(accepted.dcID == dcID, "\(vector.codec) DC id") }
            #expect(accepted.ciphers.decryptor.applied(to: clientWire) == clientPlain, "\(vector.codec) server decrypts")
            let serverPlain = try #require(Self.bytes(fromHex: vector.serverPlain))
            let serverWire = try #require(Self.bytes(fromHex: vector.serverWire))
            #expect(accepted.ciphers.encryptor.applied(to: serverPlain) == serverWire, "\(vector.codec) server encrypts")
            #expect(client.ciphers.decryptor.applied(to: serverWire) == serverPlain, "\(vector.codec) client decrypts")
        }
    }

    static func bytes(fromHex hex: String) -> [UInt8]? {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) ?? hex.endIndex
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            result.append(byte)
            index = next
        }
        return result
    }
}
