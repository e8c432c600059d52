import NIOCore
import Testing

@testable import MTProtoNIO

@Suite struct IntermediateFramingTests {
    @Test(arguments: roundTripSizes)
    func packetsRoundTripBothWays(size: Int) throws {
        var client = IntermediateFraming(role: .client)
        var server = IntermediateFraming(role: .server)
        let packet = payload(size)

        var wire = client.encode(.packet(packet))
        #expect(wire.readInteger(endianness: .little, as: UInt32.self) == 0xeeee_eeee, "the client's first int is the tag")
        #expect(wire.getInteger(at: wire.readerIndex, endianness: .little, as: UInt32.self) == UInt32(size))
        #expect(try server.decode(from: &wire) == .packet(packet))
        #expect(wire.readableBytes == 0)

        var reply = server.encode(.packet(packet))
        #expect(reply.readableBytes == 4 + size, "no tag from the server")
        #expect(try client.decode(from: &reply) == .packet(packet))
    }

    @Test func streamDecodesAtEveryByteBoundary() throws {
        let frames: [TransportFrame] = [.packet(payload(4)), .packet(payload(520, seed: 1)), .packet(payload(12, seed: 2))]
        try expectStreamDecodes(frames, encoder: IntermediateFraming(role: .server), decoder: IntermediateFraming(role: .client))
        try expectStreamDecodes(frames, encoder: IntermediateFraming(role: .client), decoder: IntermediateFraming(role: .server))
        let serverFrames: [TransportFrame] = [.quickAck(0x8000_0001), .packet(payload(8)), .transportError(.transportFlood)]
        try expectStreamDecodes(serverFrames, encoder: IntermediateFraming(role: .server), decoder: IntermediateFraming(role: .client))
    }

    @Test func quickAckRequestAndAnswer() throws {
        var client = IntermediateFraming(role: .client)
        var server = IntermediateFraming(role: .server)
        var request = client.encode(.packetRequestingQuickAck(payload(16)))
        request.moveReaderIndex(forwardBy: 4)
        #expect(request.getInteger(at: request.readerIndex, endianness: .little, as: UInt32.self) == 0x8000_0010)
        #expect(try server.decode(from: &request) == .packetRequestingQuickAck(payload(16)))

        var answer = server.encode(.quickAck(0xdead_beef))
        #expect(answer.readableBytes == 4, "a bare word, no length")
        #expect(try client.decode(from: &answer) == .quickAck(0xdead_beef))
    }

    @Test(arguments: [TransportErrorCode.authKeyNotFound, .transportFlood, .invalidDC, TransportErrorCode(rawValue: -1)])
    func transportErrorsDecodeTyped(code: TransportErrorCode) throws {
        var server = IntermediateFraming(role: .server)
        let wire = server.encode(.transportError(code))
        #expect(wire.getBytes(at: 0, length: 4) == [4, 0, 0, 0])
        #expect(try IntermediateFraming(role: .client).decodeOne(wire) == .transportError(code))
    }

    @Test func fourBytePositivePayloadIsAPacket() throws {
        let wire = bytes([4, 0, 0, 0, 1, 0, 0, 0])
        #expect(try IntermediateFraming(role: .client).decodeOne(wire) == .packet(bytes([1, 0, 0, 0])))
    }

    @Test func badLengthsAreRejected() {
        #expect(decodingError(IntermediateFraming(role: .client), bytes([0, 0, 0, 0])) == .zeroLength(transport: .intermediate))
        #expect(
            decodingError(IntermediateFraming(role: .server), bytes([6, 0, 0, 0, 1, 2, 3, 4, 5, 6]))
                == .lengthNotMultipleOfFour(transport: .intermediate, length: 6)
        )
        let limits = TransportLimits(maximumFrameLength: 4096)
        #expect(
            decodingError(IntermediateFraming(role: .server, limits: limits), bytes([0x04, 0x10, 0, 0]))
                == .frameTooLong(transport: .intermediate, length: 4100, maximum: 4096)
        )
        #expect(
            decodingError(IntermediateFraming(role: .server), bytes([0xff, 0xff, 0xff, 0x7f]))
                == .frameTooLong(transport: .intermediate, length: 0x7fff_ffff, maximum: TransportLimits.hardMaximumFrameLength)
        )
    }

    @Test func maximumLengthItselfIsAccepted() throws {
        let limits = TransportLimits(maximumFrameLength: 4096)
        var server = IntermediateFraming(role: .server, limits: limits)
        let client = IntermediateFraming(role: .client, limits: limits)
        let wire = server.encode(.packet(payload(4096)))
        #expect(try client.decodeOne(wire) == .packet(payload(4096)))
    }
}
