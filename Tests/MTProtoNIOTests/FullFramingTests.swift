import NIOCore
import Testing

@testable import MTProtoNIO

@Suite struct FullFramingTests {
    @Test(arguments: roundTripSizes)
    func packetsRoundTripBothWays(size: Int) throws {
        var client = FullFraming(role: .client)
        var server = FullFraming(role: .server)
        let packet = payload(size)

        var wire = client.encode(.packet(packet))
        #expect(wire.readableBytes == 12 + size, "no tag: length, seq_no, payload, CRC")
        #expect(wire.getInteger(at: 0, endianness: .little, as: UInt32.self) == UInt32(12 + size))
        #expect(wire.getInteger(at: 4, endianness: .little, as: Int32.self) == 0)
        #expect(try server.decode(from: &wire) == .packet(packet))
        #expect(wire.readableBytes == 0)

        var reply = server.encode(.packet(packet))
        #expect(try client.decode(from: &reply) == .packet(packet))
    }

    /// The standard check value of CRC-32/ISO-HDLC, the CRC of zlib, Python and the spec.
    @Test func checksumIsStandardCRC32() {
        let check = bytes(Array("123456789".utf8))
        #expect(FullFraming.crc32(of: check, from: 0, count: 9) == 0xcbf4_3926)
    }

    @Test func checksumCoversLengthSeqAndPayload() {
        var client = FullFraming(role: .client)
        let wire = client.encode(.packet(bytes([1, 2, 3, 4])))
        #expect(wire.getBytes(at: 0, length: 12) == [16, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        let crc = wire.getInteger(at: 12, endianness: .little, as: UInt32.self)
        #expect(crc == FullFraming.crc32(of: wire, from: 0, count: 12))
    }

    @Test func sequenceNumbersCountPerDirection() throws {
        var client = FullFraming(role: .client)
        var server = FullFraming(role: .server)
        for expected in Int32(0)..<3 {
            var wire = client.encode(.packet(payload(8)))
            #expect(wire.getInteger(at: 4, endianness: .little, as: Int32.self) == expected)
            _ = try server.decode(from: &wire)
        }
        #expect(client.nextSendSequenceNumber == 3)
        #expect(server.nextReceiveSequenceNumber == 3)
        #expect(server.nextSendSequenceNumber == 0, "the other direction counts on its own")
        let reply = server.encode(.packet(payload(8)))
        #expect(reply.getInteger(at: 4, endianness: .little, as: Int32.self) == 0)
    }

    @Test func streamDecodesAtEveryByteBoundary() throws {
        let frames: [TransportFrame] = [.packet(payload(4)), .packet(payload(700, seed: 1)), .packetRequestingQuickAck(payload(12, seed: 2))]
        try expectStreamDecodes(frames, encoder: FullFraming(role: .client), decoder: FullFraming(role: .server))
        let serverFrames: [TransportFrame] = [.packet(payload(8)), .quickAck(0x8765_4321), .transportError(.authKeyNotFound), .packet(payload(4))]
        try expectStreamDecodes(serverFrames, encoder: FullFraming(role: .server), decoder: FullFraming(role: .client))
    }

    @Test func corruptChecksumIsRejected() {
        var client = FullFraming(role: .client)
        var wire = client.encode(.packet(payload(16)))
        let good = FullFraming.crc32(of: wire, from: 0, count: 24)
        wire.setInteger(UInt8(0xff), at: 10)  // a payload byte flipped in transit
        let actual = FullFraming.crc32(of: wire, from: 0, count: 24)
        #expect(decodingError(FullFraming(role: .server), wire) == .checksumMismatch(sequenceNumber: 0, expected: actual, received: good))
    }

    @Test func skippedSequenceNumberIsRejected() throws {
        var client = FullFraming(role: .client)
        let first = client.encode(.packet(payload(8)))
        _ = client.encode(.packet(payload(8)))  // seq_no 1, lost
        let third = client.encode(.packet(payload(8)))
        #expect(
            decodingError(FullFraming(role: .server), concatenate([first, third])) == .unexpectedSequenceNumber(expected: 1, received: 2)
        )
        #expect(decodingError(FullFraming(role: .server), first) == nil)
    }

    @Test func repeatedSequenceNumberIsRejected() {
        var client = FullFraming(role: .client)
        let first = client.encode(.packet(payload(8)))
        #expect(decodingError(FullFraming(role: .server), concatenate([first, first])) == .unexpectedSequenceNumber(expected: 1, received: 0))
    }

    @Test func badLengthsAreRejected() {
        #expect(decodingError(FullFraming(role: .server), bytes([12, 0, 0, 0])) == .zeroLength(transport: .full))
        #expect(decodingError(FullFraming(role: .server), bytes([8, 0, 0, 0])) == .fullFrameTooShort(length: 8))
        #expect(decodingError(FullFraming(role: .server), bytes([0, 0, 0, 0])) == .fullFrameTooShort(length: 0))
        #expect(decodingError(FullFraming(role: .server), bytes([18, 0, 0, 0])) == .lengthNotMultipleOfFour(transport: .full, length: 6))
        let limits = TransportLimits(maximumFrameLength: 1024)
        #expect(
            decodingError(FullFraming(role: .server, limits: limits), bytes([0x0c, 0x08, 0, 0]))
                == .frameTooLong(transport: .full, length: 2048, maximum: 1024)
        )
    }

    @Test(arguments: [TransportErrorCode.authKeyNotFound, .transportFlood, .invalidDC])
    func transportErrorsDecodeTypedFramedAndBare(code: TransportErrorCode) throws {
        var server = FullFraming(role: .server)
        let framed = server.encode(.transportError(code))
        #expect(framed.readableBytes == 16)
        #expect(try FullFraming(role: .client).decodeOne(framed) == .transportError(code))

        // Telegram has been seen sending the code bare, in place of the length (Telethon issue 4042).
        var bare = ByteBufferAllocator().buffer(capacity: 12)
        for _ in 0..<3 { bare.writeInteger(code.rawValue, endianness: .little) }
        #expect(try decodeAll(FullFraming(role: .client), chunks: [bare]) == Array(repeating: .transportError(code), count: 3))
    }

    @Test func quickAckOutsideTheErrorRangeIsAQuickAck() throws {
        var server = FullFraming(role: .server)
        let wire = server.encode(.quickAck(0xffff_fc17))  // -1001: outside -999...-1
        #expect(try FullFraming(role: .client).decodeOne(wire) == .quickAck(0xffff_fc17))
        #expect(server.nextSendSequenceNumber == 0, "a quick ack is not a numbered packet")
    }
}
