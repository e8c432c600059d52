import NIOCore
import Testing

@testable import MTProtoNIO

@Suite struct PaddedIntermediateFramingTests {
    @Test(arguments: roundTripSizes)
    func packetsRoundTripWithPaddingBelowFour(size: Int) throws {
        // Padding of 0–3 bytes is dropped exactly by the receiver (length % 4).
        var client = PaddedIntermediateFraming(role: .client, entropy: ScriptedEntropy([3, 0xa1, 0xa2, 0xa3]), maximumPadding: 3)
        var server = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([2, 0xb1, 0xb2]), maximumPadding: 3)
        let packet = payload(size)

        var wire = client.encode(.packet(packet))
        #expect(wire.readInteger(endianness: .little, as: UInt32.self) == 0xdddd_dddd, "the client's first int is the tag")
        #expect(wire.getInteger(at: wire.readerIndex, endianness: .little, as: UInt32.self) == UInt32(size + 3))
        #expect(wire.getBytes(at: wire.writerIndex - 3, length: 3) == [0xa1, 0xa2, 0xa3], "the injected padding")
        #expect(try server.decode(from: &wire) == .packet(packet))
        #expect(wire.readableBytes == 0)

        var reply = server.encode(.packet(packet))
        #expect(reply.readableBytes == 4 + size + 2)
        #expect(try client.decode(from: &reply) == .packet(packet))
    }

    @Test(arguments: 0...15)
    func paddingOfEachLengthIsAppendedAndCounted(padding: Int) throws {
        let paddingBytes = (0..<padding).map { UInt8(0xc0 + $0) }
        var server = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([UInt8(padding)] + paddingBytes), maximumPadding: 15)
        let wire = server.encode(.packet(payload(8)))
        #expect(wire.getInteger(at: 0, endianness: .little, as: UInt32.self) == UInt32(8 + padding))
        #expect(wire.getBytes(at: 12, length: padding) == paddingBytes)

        // The receiver drops padding % 4 bytes; whole words of padding stay for the MTProto layer.
        let kept = padding - padding % 4
        let expected = concatenate([payload(8), bytes(Array(paddingBytes.prefix(kept)))])
        #expect(try PaddedIntermediateFraming(role: .client).decodeOne(wire) == .packet(expected))
    }

    @Test func defaultPaddingIsAtMostThreeBytes() throws {
        var server = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([0xff, 1, 2, 3]))
        let wire = server.encode(.packet(payload(4)))
        #expect(wire.readableBytes == 4 + 4 + 3, "0xff % 4 = 3 padding bytes")
        #expect(try PaddedIntermediateFraming(role: .client).decodeOne(wire) == .packet(payload(4)))
    }

    @Test func paddingLengthComesFromTheEntropyModuloSixteen() {
        var server = PaddedIntermediateFraming(role: .server, entropy: ScriptedEntropy([0xf3]), maximumPadding: 15)
        let wire = server.encode(.packet(payload(4)))
        #expect(wire.readableBytes == 4 + 4 + 3, "0xf3 % 16 = 3 padding bytes")
    }

    @Test func streamDecodesAtEveryByteBoundary() throws {
        let frames: [TransportFrame] = [.packet(payload(4)), .packet(payload(600, seed: 1)), .packetRequestingQuickAck(payload(12, seed: 2))]
        let entropy = ScriptedEntropy([1, 9, 2, 9, 9, 3, 9, 9, 9])
        try expectStreamDecodes(
            frames,
            encoder: PaddedIntermediateFraming(role: .client, entropy: entropy),
            decoder: PaddedIntermediateFraming(role: .server)
        )
        let serverFrames: [TransportFrame] = [.packet(payload(8)), .quickAck(0x9000_0000), .transportError(.authKeyNotFound)]
        try expectStreamDecodes(
            serverFrames,
            encoder: PaddedIntermediateFraming(role: .server, entropy: entropy),
            decoder: PaddedIntermediateFraming(role: .client)
        )
    }

    @Test(arguments: [0, 3, 7, 12, 15])
    func transportErrorIsRecognizedDespitePadding(padding: Int) throws {
        var server = PaddedIntermediateFraming(
            role: .server,
            entropy: ScriptedEntropy([UInt8(padding)] + Array(repeating: 0x55, count: padding)),
            maximumPadding: 15
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
