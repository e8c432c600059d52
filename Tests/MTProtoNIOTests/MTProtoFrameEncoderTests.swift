import NIOCore
import NIOEmbedded
import Testing

@testable import MTProtoNIO

@Suite struct MTProtoFrameEncoderTests {
    @Test(arguments: TransportKind.allCases)
    func clientWritesTheTagOnceThenFramedPackets(kind: TransportKind) throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addMTProtoClientHandlers(transport: kind, configuration: fullRangePadding)
        try channel.writeOutbound(TransportFrame.packet(payload(40)))
        try channel.writeOutbound(TransportFrame.packetRequestingQuickAck(payload(24 + 16 * 31, seed: 1)))
        let first = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let second = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(first.getBytes(at: 0, length: kind.tag.count) == kind.tag)

        var detector = TransportDetector()
        var stream = concatenate([first, second])
        #expect(try detector.detect(from: &stream) == kind)
        #expect(
            try decodeAll(TransportFraming(kind: kind, role: .server), chunks: [stream])
                == [.packet(payload(40)), .packetRequestingQuickAck(payload(24 + 16 * 31, seed: 1))]
        )
        #expect(try channel.finish().isClean)
    }

    @Test(arguments: [TransportKind.abridged, .intermediate, .full])
    func eachWriteIsABufferOfExactlyItsFrame(kind: TransportKind) throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(MTProtoFrameEncoder(framing: TransportFraming(kind: kind, role: .server)))
        try channel.writeOutbound(TransportFrame.packet(payload(256 * 1024)))
        try channel.writeOutbound(TransportFrame.packet(payload(4)))
        let large = try #require(try channel.readOutbound(as: ByteBuffer.self))
        let small = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(large.readableBytes >= 256 * 1024)
        // No buffer is reused across writes: a small frame after a large one gets a small buffer.
        #expect(small.capacity < 64, "capacity \(small.capacity)")
        _ = try channel.finish()
    }
}
