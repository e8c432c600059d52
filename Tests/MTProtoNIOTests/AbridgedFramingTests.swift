import NIOCore
import Testing

@testable import MTProtoNIO

@Suite struct AbridgedFramingTests {
    @Test(arguments: roundTripSizes)
    func packetsRoundTripBothWays(size: Int) throws {
        var client = AbridgedFraming(role: .client)
        var server = AbridgedFraming(role: .server)
        let packet = payload(size)

        var wire = client.encode(.packet(packet))
        #expect(wire.readInteger(as: UInt8.self) == 0xef, "the client's first byte is the tag")
        #expect(try server.decode(from: &wire) == .packet(packet))
        #expect(wire.readableBytes == 0)

        var reply = server.encode(.packet(packet))
        #expect(try client.decode(from: &reply) == .packet(packet))
        #expect(reply.readableBytes == 0)
    }

    @Test func shortLengthIsOneByteOfWords() {
        var server = AbridgedFraming(role: .server)
        let wire = server.encode(.packet(payload(4 * 126)))
        #expect(wire.getInteger(at: 0, as: UInt8.self) == 126)
        #expect(wire.readableBytes == 1 + 4 * 126)
    }

    @Test func longLengthFromOneHundredTwentySevenWords() {
        var server = AbridgedFraming(role: .server)
        let wire = server.encode(.packet(payload(4 * 127)))
        #expect(wire.getBytes(at: 0, length: 4) == [0x7f, 127, 0, 0])
        #expect(wire.readableBytes == 4 + 4 * 127)

        let large = server.encode(.packet(payload(4 * 0x01_0203)))
        #expect(large.getBytes(at: 0, length: 4) == [0x7f, 0x03, 0x02, 0x01], "3-byte little-endian word count")
    }

    @Test func streamDecodesAtEveryByteBoundary() throws {
        let frames: [TransportFrame] = [.packet(payload(4)), .packet(payload(4 * 127, seed: 1)), .packet(payload(8, seed: 2)), .packet(payload(1024, seed: 3))]
        try expectStreamDecodes(frames, encoder: AbridgedFraming(role: .server), decoder: AbridgedFraming(role: .client))
        try expectStreamDecodes(frames, encoder: AbridgedFraming(role: .client), decoder: AbridgedFraming(role: .server))
    }

    @Test func quickAckRequestSetsTheHighBitOfTheLengthByte() throws {
        var client = AbridgedFraming(role: .client)
        var server = AbridgedFraming(role: .server)
        var short = client.encode(.packetRequestingQuickAck(payload(8)))
        #expect(short.getBytes(at: 0, length: 2) == [0xef, 0x82])
        short.moveReaderIndex(forwardBy: 1)
        #expect(try server.decode(from: &short) == .packetRequestingQuickAck(payload(8)))

        var long = client.encode(.packetRequestingQuickAck(payload(4 * 200)))
        #expect(long.getBytes(at: 0, length: 4) == [0xff, 200, 0, 0])
        #expect(try server.decode(from: &long) == .packetRequestingQuickAck(payload(4 * 200)))
    }

    @Test func quickAckIsByteSwapped() throws {
        var server = AbridgedFraming(role: .server)
        var client = AbridgedFraming(role: .client)
        var wire = server.encode(.quickAck(0x8123_4567))
        #expect(wire.getBytes(at: 0, length: 4) == [0x81, 0x23, 0x45, 0x67])
        #expect(try client.decode(from: &wire) == .quickAck(0x8123_4567))
    }

    @Test(arguments: [TransportErrorCode.authKeyNotFound, .transportFlood, .invalidDC, TransportErrorCode(rawValue: -500)])
    func transportErrorsDecodeTyped(code: TransportErrorCode) throws {
        var server = AbridgedFraming(role: .server)
        var client = AbridgedFraming(role: .client)
        var wire = server.encode(.transportError(code))
        #expect(wire.readableBytes == 5)
        #expect(try client.decode(from: &wire) == .transportError(code))

        var raw = bytes([0x01])
        raw.writeInteger(code.rawValue, endianness: .little)
        #expect(try AbridgedFraming(role: .client).decodeOne(raw) == .transportError(code))
    }

    @Test func zeroLengthIsRejected() {
        #expect(decodingError(AbridgedFraming(role: .client), bytes([0x00, 1, 2, 3])) == .zeroLength(transport: .abridged))
        #expect(decodingError(AbridgedFraming(role: .server), bytes([0x80])) == .zeroLength(transport: .abridged))
        #expect(decodingError(AbridgedFraming(role: .server), bytes([0x7f, 0, 0, 0])) == .zeroLength(transport: .abridged))
    }

    @Test func lengthAboveTheMaximumIsRejectedFromTheHeader() {
        let limits = TransportLimits(maximumFrameLength: 1024)
        // 0x7f ff ff ff announces 64 MiB; only the 4-byte header is present: nothing is waited for.
        #expect(
            decodingError(AbridgedFraming(role: .client, limits: limits), bytes([0x7f, 0x01, 0x01, 0x00]))
                == .frameTooLong(transport: .abridged, length: 4 * 0x0101, maximum: 1024)
        )
        #expect(
            decodingError(AbridgedFraming(role: .server), bytes([0x7f, 0xff, 0xff, 0xff]))
                == .frameTooLong(transport: .abridged, length: 4 * 0xFF_FFFF, maximum: TransportLimits.hardMaximumFrameLength)
        )
    }

    @Test func incompleteInputIsLeftUntouched() throws {
        var server = AbridgedFraming(role: .server)
        var partial = bytes([0x7f, 200, 0])
        #expect(try server.decode(from: &partial) == nil)
        #expect(partial.readableBytes == 3)
        var body = bytes([0x02, 1, 2, 3, 4, 5, 6, 7])
        #expect(try server.decode(from: &body) == nil)
        #expect(body.readableBytes == 8)
    }
}

extension MTProtoFraming {
    /// Decodes exactly one frame from a buffer holding exactly one.
    func decodeOne(_ stream: ByteBuffer) throws -> TransportFrame? {
        var stream = stream
        var framing = self
        let frame = try framing.decode(from: &stream)
        #expect(stream.readableBytes == 0)
        return frame
    }
}
