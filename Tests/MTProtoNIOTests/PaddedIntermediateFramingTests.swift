import NIOCore
import Testing

@testable import MTProtoNIO

/// An unencrypted MTProto message (`auth_key_id = 0 | msg_id | length | body`) with a body of `bodyLength` bytes.
func plainMessage(bodyLength: Int, seed: UInt8 = 0) -> ByteBuffer {
    var buffer = ByteBufferAllocator().buffer(capacity: 20 + bodyLength)
    buffer.writeInteger(UInt64(0), endianness: .little)
    buffer.writeInteger(UInt64(0x6543_2100_0000_0004), endianness: .little)
    buffer.writeInteger(UInt32(bodyLength), endianness: .little)
    var body = payload(bodyLength, seed: seed)
    buffer.writeBuffer(&body)
    return buffer
}

@Suite struct PaddedIntermediateFramingTests {
    @Test(arguments: roundTripSizes)
    func packetsRoundTripWithFifteenBytesOfPadding(size: Int) throws {
        var client = PaddedIntermediateFraming(role: .client, entropy: ScriptedEntropy([15] + Array(0xa1...0xaf)))
        var server = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([0xfe] + Array(repeating: 0xb1, count: 14)))
        let packet = payload(size)

        var wire = client.encode(.packet(packet))
        #expect(wire.readInteger(endianness: .little, as: UInt32.self) == 0xdddd_dddd, "the client's first int is the tag")
        #expect(wire.getInteger(at: wire.readerIndex, endianness: .little, as: UInt32.self) == UInt32(size + 15))
        #expect(wire.getBytes(at: wire.writerIndex - 15, length: 15) == Array(0xa1...0xaf), "the injected padding")
        #expect(try server.decode(from: &wire) == .packet(packet))
        #expect(wire.readableBytes == 0)

        var reply = server.encode(.packet(packet))
        #expect(reply.readableBytes == 4 + size + 14, "0xfe % 16 = 14 padding bytes")
        #expect(try client.decode(from: &reply) == .packet(packet))
    }

    /// The message says where it ends, so every padding length of the spec comes off exactly: an
    /// encrypted message by its whole AES blocks, an unencrypted one by its length field (which
    /// need not be a multiple of 16).
    @Test(arguments: 0...15)
    func everyPaddingLengthIsStrippedByTheMessagesOwnLength(padding: Int) throws {
        let paddingBytes = (0..<padding).map { UInt8(0xc0 + $0) }
        for message in [payload(40), payload(24 + 16 * 5, seed: 1), plainMessage(bodyLength: 20), plainMessage(bodyLength: 84, seed: 2)] {
            for role in [TransportRole.client, .server] {
                var sender = PaddedIntermediateFraming(role: role == .client ? .server : .client, entropy: ScriptedEntropy([UInt8(padding)] + paddingBytes))
                var wire = sender.encode(.packet(message))
                if role == .server { wire.moveReaderIndex(forwardBy: 4) }  // the tag, consumed by detection
                #expect(wire.getInteger(at: wire.readerIndex, endianness: .little, as: UInt32.self) == UInt32(message.readableBytes + padding))
                #expect(wire.getBytes(at: wire.writerIndex - padding, length: padding) == paddingBytes)
                #expect(try PaddedIntermediateFraming(role: role).decodeOne(wire) == .packet(message))
            }
        }
    }

    @Test func paddingLengthComesFromTheEntropyModuloSixteen() {
        var server = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([0xf3]))
        let wire = server.encode(.packet(payload(40)))
        #expect(wire.readableBytes == 4 + 40 + 3, "0xf3 % 16 = 3 padding bytes")
        var limited = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([0xff]), maximumPadding: 3)
        #expect(limited.encode(.packet(payload(40))).readableBytes == 4 + 40 + 3, "a lower maximum is kept")
    }

    @Test func aPayloadWhoseFieldsCannotTellIsPassedOnWhole() throws {
        // An unencrypted message declaring more body than arrived: its own decoder must reject it.
        var lying = plainMessage(bodyLength: 20)
        lying.setInteger(UInt32(400), at: 16, endianness: .little)
        var sender = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([3, 9, 9, 9]))
        let wire = sender.encode(.packet(lying))
        let frame = try PaddedIntermediateFraming(role: .client).decodeOne(wire)
        #expect(frame == .packet(concatenate([lying, bytes([9, 9, 9])])))
    }

    @Test func streamDecodesAtEveryByteBoundary() throws {
        let frames: [TransportFrame] = [
            .packet(payload(40)), .packet(payload(24 + 16 * 37, seed: 1)), .packetRequestingQuickAck(plainMessage(bodyLength: 28, seed: 2)),
        ]
        let entropy = ScriptedEntropy([15] + Array(repeating: 9, count: 15) + [7] + Array(repeating: 9, count: 7) + [12])
        try expectStreamDecodes(
            frames,
            encoder: PaddedIntermediateFraming(role: .client, entropy: entropy),
            decoder: PaddedIntermediateFraming(role: .server)
        )
        let serverFrames: [TransportFrame] = [.packet(payload(40)), .quickAck(0x9000_0000), .transportError(.authKeyNotFound)]
        try expectStreamDecodes(
            serverFrames,
            encoder: PaddedIntermediateFraming(role: .server, entropy: entropy),
            decoder: PaddedIntermediateFraming(role: .client)
        )
    }

    @Test(arguments: 0...15)
    func transportErrorIsRecognizedDespitePadding(padding: Int) throws {
        var server = PaddedIntermediateFraming(
            role: .server,
            entropy: ScriptedEntropy([UInt8(padding)] + Array(repeating: 0x55, count: padding))
        )
        let wire = server.encode(.transportError(.transportFlood))
        #expect(try PaddedIntermediateFraming(role: .client).decodeOne(wire) == .transportError(.transportFlood))
    }

    @Test func badLengthsAreRejected() {
        let transport = TransportKind.paddedIntermediate
        #expect(decodingError(PaddedIntermediateFraming(role: .client), bytes([0, 0, 0, 0])) == .zeroLength(transport: transport))
        #expect(
            decodingError(PaddedIntermediateFraming(role: .client), bytes([3, 0, 0, 0, 1, 2, 3])) == .zeroLength(transport: transport),
            "three bytes are only padding"
        )
        let limits = TransportLimits(maximumFrameLength: 64)
        #expect(
            decodingError(PaddedIntermediateFraming(role: .server, limits: limits), bytes([65, 0, 0, 0]))
                == .frameTooLong(transport: transport, length: 65, maximum: 64)
        )
    }
}
