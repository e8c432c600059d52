import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import MTProtoNIO

/// Keeps what reaches the end of a test pipeline besides frames: detection events.
final class DetectionRecorder: ChannelInboundHandler {
    typealias InboundIn = TransportFrame
    var detected: [TransportKind] = []

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? MTProtoTransportDetected { detected.append(event.kind) }
        context.fireUserInboundEventTriggered(event)
    }
}

/// A byte-level handler nearer the socket than the framing, as an obfuscation layer would be.
final class OutboundByteRecorder: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var written: [ByteBuffer] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        written.append(unwrapOutboundIn(data))
        context.write(data, promise: promise)
    }
}

@Suite struct MTProtoFrameDecoderTests {
    /// NIO's own checker: single reads, byte-by-byte drip feed and everything coalesced in one read.
    @Test(arguments: [TransportKind.abridged, .intermediate, .paddedIntermediate])
    func decoderPassesByteToMessageDecoderVerifier(kind: TransportKind) throws {
        // Padded intermediate pads the first packet with 15 bytes, the rest with none.
        let configuration = MTProtoTransportConfiguration(entropy: ScriptedEntropy([15] + Array(1...15)))
        var server = configuration.framing(kind, role: .server)
        let serverFrames: [TransportFrame] = [
            .packet(payload(40)), .packet(payload(24 + 16 * 30, seed: 1)), .quickAck(0x8abc_def0),
            .transportError(.authKeyNotFound), .packet(payload(1048, seed: 2)),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: serverFrames.map { (server.encode($0), [$0]) },
            decoderFactory: { MTProtoFrameDecoder(framing: configuration.framing(kind, role: .client)) }
        )

        var client = configuration.framing(kind, role: .client)
        _ = client.encode(.packet(payload(40)))  // the tag goes out once, with the first packet
        let clientFrames: [TransportFrame] = [.packet(payload(40)), .packetRequestingQuickAck(payload(24 + 16 * 31, seed: 3))]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: clientFrames.map { (client.encode($0), [$0]) },
            decoderFactory: { MTProtoFrameDecoder(framing: configuration.framing(kind, role: .server)) }
        )
    }

    @Test(arguments: TransportKind.allCases)
    func serverDetectsTheTransportAndAnswersInIt(kind: TransportKind) throws {
        let channel = EmbeddedChannel()
        let recorder = DetectionRecorder()
        try channel.pipeline.syncOperations.addMTProtoServerHandlers(configuration: fullRangePadding)
        try channel.pipeline.syncOperations.addHandler(recorder)

        var client = fullRangePadding.framing(kind, role: .client)
        let first = client.encode(.packet(payload(40)))
        let second = client.encode(.packet(payload(1048, seed: 1)))
        // The first packet arrives a byte at a time, the second with it coalesced in the last read.
        for byte in chunked(first, size: 1).dropLast() { try channel.writeInbound(byte) }
        try channel.writeInbound(concatenate([chunked(first, size: 1).last ?? ByteBuffer(), second]))

        #expect(recorder.detected == [kind])
        #expect(try channel.readInbound(as: TransportFrame.self) == .packet(payload(40)))
        #expect(try channel.readInbound(as: TransportFrame.self) == .packet(payload(1048, seed: 1)))

        try channel.writeOutbound(TransportFrame.packet(payload(56, seed: 2)))
        let reply = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(try client.decodeOne(reply) == .packet(payload(56, seed: 2)))
        #expect(try channel.finish().isClean)
    }

    @Test func detectedEncoderSitsBetweenTheCallerAndByteLevelHandlers() throws {
        let channel = EmbeddedChannel()
        let bytesOut = OutboundByteRecorder()
        try channel.pipeline.syncOperations.addHandler(bytesOut)
        try channel.pipeline.syncOperations.addMTProtoServerHandlers()
        try channel.writeInbound(bytes([0xef, 0x01, 1, 2, 3, 4]))
        #expect(try channel.readInbound(as: TransportFrame.self) == .packet(bytes([1, 2, 3, 4])))

        try channel.writeOutbound(TransportFrame.packet(bytes([5, 6, 7, 8])))
        #expect(bytesOut.written == [bytes([0x01, 5, 6, 7, 8])], "the byte-level handler sees the framed bytes")
        #expect(try channel.readOutbound(as: ByteBuffer.self) == bytes([0x01, 5, 6, 7, 8]))
        #expect(try channel.finish().isClean)
    }

    @Test func serverRejectsAnObfuscatedClient() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addMTProtoServerHandlers()
        #expect(throws: MTProtoTransportError.unrecognizedTransport) {
            try channel.writeInbound(bytes([0x37, 0x8c, 0x11, 0x02, 0xaa, 0xbb, 0xcc, 0xdd] + Array(repeating: 7, count: 56)))
        }
        #expect(try channel.readInbound(as: TransportFrame.self) == nil)
        _ = try? channel.finish()
    }

    @Test func framingErrorsSurfaceThroughThePipeline() throws {
        let channel = EmbeddedChannel()
        let limits = TransportLimits(maximumFrameLength: 1024)
        try channel.pipeline.syncOperations.addMTProtoClientHandlers(
            transport: .intermediate,
            configuration: MTProtoTransportConfiguration(limits: limits)
        )
        #expect(throws: MTProtoTransportError.frameTooLong(transport: .intermediate, length: 1028, maximum: 1024)) {
            try channel.writeInbound(bytes([0x04, 0x04, 0, 0]))
        }
        _ = try? channel.finish()
    }

    @Test func connectionClosingMidFrameIsATruncatedFrame() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addMTProtoClientHandlers(transport: .full)
        try channel.writeInbound(bytes([32, 0, 0, 0, 0, 0, 0, 0, 1, 2]))
        #expect(throws: MTProtoTransportError.truncatedFrame(transport: .full, bufferedBytes: 10)) {
            _ = try channel.finish()
        }
    }

    @Test func serverConnectionClosingBeforeDetectionIsATruncatedFrame() throws {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addMTProtoServerHandlers()
        try channel.writeInbound(bytes([16, 0, 0]))
        #expect(throws: MTProtoTransportError.truncatedFrame(transport: nil, bufferedBytes: 3)) {
            _ = try channel.finish()
        }
    }
}
