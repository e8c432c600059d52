import NIOCore
import Testing

@testable import MTProtoNIO

@Suite struct TransportDetectorTests {
    private func detect(_ stream: ByteBuffer) throws -> (TransportKind?, remaining: Int) {
        var detector = TransportDetector()
        var stream = stream
        let kind = try detector.detect(from: &stream)
        return (kind, stream.readableBytes)
    }

    @Test(arguments: TransportKind.allCases)
    func eachTransportIsDetectedFromAClientsFirstPacket(kind: TransportKind) throws {
        var client = TransportFraming(kind: kind, role: .client)
        let wire = client.encode(.packet(payload(8)))
        let (detected, remaining) = try detect(wire)
        #expect(detected == kind)
        #expect(remaining == wire.readableBytes - kind.tag.count, "the tag is consumed, the packet is not")
    }

    @Test(arguments: TransportKind.allCases)
    func detectionWaitsForEnoughBytesAtEverySplit(kind: TransportKind) throws {
        var client = TransportFraming(kind: kind, role: .client)
        let wire = client.encode(.packet(payload(8)))
        let needed = kind == .full ? 8 : kind.tag.count
        for count in 0..<needed {
            let prefix = wire.getSlice(at: 0, length: count) ?? ByteBuffer()
            #expect(try detect(prefix).0 == nil, "\(count) bytes are not enough")
        }
    }

    @Test func obfuscatedHeaderIsRejectedNotMisparsed() {
        // An obfuscated2 header: random, but its first byte is not 0xef, its first int no tag, and its
        // second int not zero (spec: Transport obfuscation).
        var header = bytes([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0])
        header.writeBytes(Array(repeating: 0x42, count: 56))
        #expect(throws: MTProtoTransportError.unrecognizedTransport) { try detect(header) }
    }

    @Test func plausibleLengthWithNonZeroSeqIsNotFull() {
        #expect(throws: MTProtoTransportError.unrecognizedTransport) { try detect(bytes([16, 0, 0, 0, 1, 0, 0, 0])) }
    }

    @Test(arguments: ["POST /api", "GET /api ", "HEAD /api", "OPTIONS /"])
    func httpIsRejected(requestLine: String) {
        #expect(throws: MTProtoTransportError.httpTransportNotSupported) { try detect(bytes(Array(requestLine.utf8))) }
    }

    @Test func fakeTLSIsRejected() {
        #expect(throws: MTProtoTransportError.tlsTransportNotSupported) { try detect(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])) }
    }

    @Test func errorDescriptionsSayWhatToDo() {
        #expect(MTProtoTransportError.unrecognizedTransport.description.contains("obfuscat"))
        #expect(MTProtoTransportError.unrecognizedTransport.description.contains("MTProxy secret"))
        #expect(MTProtoTransportError.httpTransportNotSupported.description.contains("HTTP"))
        #expect(MTProtoTransportError.tlsTransportNotSupported.description.contains("fake TLS"))
    }
}
