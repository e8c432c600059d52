import MTProtoCrypto
import Testing

@testable import MTProtoNIO

@Suite struct ObfuscationHeaderTests {
    @Test(arguments: [TransportKind.abridged, .intermediate, .paddedIntermediate])
    func headerCarriesTheTagAndTheDCIDEncrypted(kind: TransportKind) throws {
        var entropy: any EntropySource = SystemEntropy()
        let secret: [UInt8] = Array(0..<16)
        let client = try ObfuscationHeader.makeClientHeader(kind: kind, dcID: -4, secret: secret, entropy: &entropy)
        #expect(client.header.count == 64)
        #expect(ObfuscationHeader.isAcceptable(client.header))
        #expect(Array(client.header[56..<60]) != ObfuscationHeader.tag(for: kind), "the tag never travels in the clear")
        let accepted = try ObfuscationHeader.acceptClientHeader(client.header, secret: secret)
        #expect(accepted.kind == kind)
        #expect(accepted.dcID == -4)
        #expect(throws: ObfuscationError.unknownTag, "another secret derives other keys") {
            try ObfuscationHeader.acceptClientHeader(client.header, secret: Array(repeating: 7, count: 16))
        }
    }

    @Test func forbiddenStartsAreDrawnAgain() throws {
        // Draws starting like abridged, intermediate, POST, a TLS record and a full packet's zero seq_no,
        // then an acceptable one: the header is built from the last.
        let bad: [[UInt8]] = [
            [0xef] + Array(repeating: 1, count: 63),
            [0xee, 0xee, 0xee, 0xee] + Array(repeating: 1, count: 60),
            Array("POST".utf8) + Array(repeating: 1, count: 60),
            [0x16, 0x03, 0x01, 0x02] + Array(repeating: 1, count: 60),
            [1, 2, 3, 4, 0, 0, 0, 0] + Array(repeating: 1, count: 56),
        ]
        for draw in bad { #expect(!ObfuscationHeader.isAcceptable(draw)) }
        let good = (0..<64).map { UInt8(0x40 + $0) }
        var entropy = ScriptedEntropy(bad.flatMap { $0 } + good)
        let client = try ObfuscationHeader.makeClientHeader(kind: .abridged, dcID: nil, secret: nil, entropy: &entropy)
        #expect(Array(client.header[0..<56]) == Array(good[0..<56]))
    }

    @Test func dcIDEncoding() {
        #expect(ObfuscationHeader.encodedDCID(2) == 2)
        #expect(ObfuscationHeader.encodedDCID(4, media: true) == -4)
        #expect(ObfuscationHeader.encodedDCID(2, testServers: true) == 10_002)
        #expect(ObfuscationHeader.encodedDCID(2, testServers: true, media: true) == -10_002)
    }

    @Test func theFullTransportCannotBeObfuscated() {
        var entropy: any EntropySource = SystemEntropy()
        #expect(throws: ObfuscationError.unsupportedTransport(.full)) {
            try ObfuscationHeader.makeClientHeader(kind: .full, dcID: nil, secret: nil, entropy: &entropy)
        }
        #expect(MTProtoClientRoute(transport: .full, obfuscated: true).effectiveTransport == .intermediate)
    }

    @Test func aShortHeaderIsATypedError() {
        #expect(throws: ObfuscationError.headerLength(10)) {
            try ObfuscationHeader.acceptClientHeader(Array(repeating: 1, count: 10), secret: nil)
        }
    }
}
