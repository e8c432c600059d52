import NIOCore
import NIOPosix
import Testing

@testable import MTProtoNIO

/// What a test server's connections report, in order.
enum ServerEvent: Sendable, Equatable {
    case obfuscated(dcID: Int16)
    case detected(TransportKind)
    case closed
}

/// The per-connection handler of the test server: answers a quick-ack request with a quick ack,
/// a packet starting with 0xffffffff with transport error -404, and echoes every packet.
final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = TransportFrame
    typealias OutboundOut = TransportFrame

    private let events: AsyncStream<ServerEvent>.Continuation

    init(events: AsyncStream<ServerEvent>.Continuation) { self.events = events }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? MTProtoTransportDetected { events.yield(.detected(event.kind)) }
        if let event = event as? MTProtoObfuscationDetected { events.yield(.obfuscated(dcID: event.dcID)) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .packet(let packet):
            if packet.getInteger(at: packet.readerIndex, as: UInt32.self) == 0xffff_ffff {
                context.writeAndFlush(wrapOutboundOut(.transportError(.authKeyNotFound)), promise: nil)
            } else {
                context.writeAndFlush(wrapOutboundOut(.packet(packet)), promise: nil)
            }
        case .packetRequestingQuickAck(let packet):
            context.write(wrapOutboundOut(.quickAck(0x8000_0000 | UInt32(packet.readableBytes))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.packet(packet)), promise: nil)
        case .quickAck, .transportError:
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.yield(.closed)
        context.fireChannelInactive()
    }
}

/// Everything the peer sends until it closes. A server that closes with unread input makes the
/// kernel send a reset instead of a FIN: that counts as closed too.
func framesUntilClosed<Element: Sendable>(_ inbound: NIOAsyncChannelInboundStream<Element>) async throws -> [Element] {
    var received: [Element] = []
    do {
        for try await element in inbound { received.append(element) }
    } catch let error as IOError where error.errnoCode == ECONNRESET {}
    return received
}

@Suite struct MTProtoTransportConnectionTests {
    private func startServer(
        configuration: MTProtoTransportConfiguration = fullRangePadding
    ) async throws -> (MTProtoTransportServer, AsyncStream<ServerEvent>, port: Int) {
        let (events, continuation) = AsyncStream.makeStream(of: ServerEvent.self)
        let server = try await MTProtoTransportServer.bind(host: "127.0.0.1", port: 0, configuration: configuration) { _ in
            EchoHandler(events: continuation)
        }
        let port = try #require(server.localAddress?.port)
        return (server, events, port)
    }

    @Test(arguments: TransportKind.allCases)
    func clientAndServerExchangeFramesThenCloseCleanly(kind: TransportKind) async throws {
        let (server, events, port) = try await startServer()
        var serverEvents = events.makeAsyncIterator()

        let client = try await MTProtoTransportClient.connect(host: "127.0.0.1", port: port, transport: kind, configuration: fullRangePadding)
        let sent = roundTripSizes.enumerated().map { payload($0.element, seed: UInt8($0.offset)) }
        let received = try await client.executeThenClose { inbound, outbound in
            for packet in sent { try await outbound.write(.packet(packet)) }
            // Real MTProto packets are at least 24 bytes: shorter ones holding a negative int32 may be
            // read as transport errors (see FrameRules.inboundFrame); 40 is an encrypted message's size.
            try await outbound.write(.packetRequestingQuickAck(payload(40, seed: 9)))
            var frames: [TransportFrame] = []
            for try await frame in inbound {
                frames.append(frame)
                if frames.count == sent.count + 2 { break }
            }
            return frames
        }
        #expect(received == sent.map { .packet($0) } + [.quickAck(0x8000_0028), .packet(payload(40, seed: 9))])

        #expect(await serverEvents.next() == .detected(kind))
        #expect(await serverEvents.next() == .closed, "the server sees the client's close")
        try await server.close()
    }

    @Test(arguments: TransportKind.allCases)
    func serverTransportErrorReachesTheClientTyped(kind: TransportKind) async throws {
        let (server, _, port) = try await startServer()
        let client = try await MTProtoTransportClient.connect(host: "127.0.0.1", port: port, transport: kind)
        let first = try await client.executeThenClose { inbound, outbound in
            try await outbound.write(.packet(bytes([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])))
            var iterator = inbound.makeAsyncIterator()
            return try await iterator.next()
        }
        #expect(first == .transportError(.authKeyNotFound))
        try await server.close()
    }

    @Test(arguments: [TransportKind.abridged, .intermediate, .paddedIntermediate])
    func obfuscatedClientAndServerExchangeFrames(kind: TransportKind) async throws {
        let (server, events, port) = try await startServer()
        var serverEvents = events.makeAsyncIterator()
        let route = MTProtoClientRoute(transport: kind, obfuscated: true)
        let client = try await MTProtoTransportClient.connect(host: "127.0.0.1", port: port, route: route, configuration: fullRangePadding)
        let sent = roundTripSizes.enumerated().map { payload($0.element, seed: UInt8($0.offset)) }
        let received = try await client.executeThenClose { inbound, outbound in
            for packet in sent { try await outbound.write(.packet(packet)) }
            try await outbound.write(.packetRequestingQuickAck(payload(40, seed: 9)))
            try await outbound.write(.packet(bytes([0xff, 0xff, 0xff, 0xff] + Array(repeating: 0, count: 36))))
            var frames: [TransportFrame] = []
            for try await frame in inbound {
                frames.append(frame)
                if frames.count == sent.count + 3 { break }
            }
            return frames
        }
        #expect(
            received == sent.map { .packet($0) } + [.quickAck(0x8000_0028), .packet(payload(40, seed: 9)), .transportError(.authKeyNotFound)]
        )
        guard case .obfuscated = await serverEvents.next() else {
            Issue.record("the server did not see an obfuscation header first")
            return
        }
        #expect(await serverEvents.next() == .detected(kind))
        #expect(await serverEvents.next() == .closed)
        try await server.close()
    }

    @Test func clientWithAnUnknownHeaderIsDisconnectedWithoutAReply() async throws {
        let (server, events, port) = try await startServer()
        var serverEvents = events.makeAsyncIterator()
        // A raw socket sends 64 random-looking bytes whose decrypted tag names no transport.
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let reply = try await raw.executeThenClose { inbound, outbound in
            try await outbound.write(bytes((0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 0x35) }))
            return try await framesUntilClosed(inbound).reduce(0) { $0 + $1.readableBytes }
        }
        #expect(reply == 0)
        #expect(await serverEvents.next() == .closed)
        try await server.close()
    }

    @Test func closingTheServerClosesItsConnections() async throws {
        let (server, events, port) = try await startServer()
        var serverEvents = events.makeAsyncIterator()
        let client = try await MTProtoTransportClient.connect(host: "127.0.0.1", port: port, transport: .abridged)
        let frames = try await client.executeThenClose { inbound, outbound in
            try await outbound.write(.packet(payload(24)))
            var iterator = inbound.makeAsyncIterator()
            let echo = try await iterator.next()
            #expect(server.openConnectionCount == 1)
            try await server.close()
            var rest: [TransportFrame] = []
            while let frame = try await iterator.next() { rest.append(frame) }  // ends when the server closes
            return [echo] + rest.map { $0 }
        }
        #expect(frames == [.packet(payload(24))])
        #expect(await serverEvents.next() == .detected(.abridged))
        #expect(await serverEvents.next() == .closed)
        #expect(server.openConnectionCount == 0)
    }

    @Test func oversizedFrameClosesTheServerConnection() async throws {
        let (server, events, port) = try await startServer(
            configuration: MTProtoTransportConfiguration(limits: TransportLimits(maximumFrameLength: 1024))
        )
        var serverEvents = events.makeAsyncIterator()
        let client = try await MTProtoTransportClient.connect(host: "127.0.0.1", port: port, transport: .intermediate)
        let frames = try await client.executeThenClose { inbound, outbound in
            try await outbound.write(.packet(payload(2048)))
            return try await framesUntilClosed(inbound)
        }
        #expect(frames.isEmpty)
        #expect(await serverEvents.next() == .detected(.intermediate))
        #expect(await serverEvents.next() == .closed)
        try await server.close()
    }
}
