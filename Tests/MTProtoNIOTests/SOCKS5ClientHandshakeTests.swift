import NIOCore
import NIOEmbedded
import Testing

@testable import MTProtoNIO

@Suite struct SOCKS5ClientHandshakeTests {
    @Test func passwordHandshakeThenTunnelledFrames() throws {
        let channel = EmbeddedChannel()
        let route = MTProtoClientRoute(
            transport: .intermediate,
            proxy: .socks5(SOCKS5Proxy(host: "proxy", port: 1080, credentials: .init(username: "user", password: "pw")))
        )
        let ready = try channel.pipeline.syncOperations.addMTProtoClientHandlers(route: route, targetHost: "149.154.167.51", targetPort: 443)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1080)).wait()
        #expect(try channel.readOutbound(as: ByteBuffer.self) == bytes([5, 2, 0, 2]), "offers none and username/password")

        // The framing's first packet waits for the tunnel.
        let written = channel.writeAndFlush(TransportFrame.packet(payload(40)))
        try channel.writeInbound(bytes([5, 2]))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == bytes([1, 4] + Array("user".utf8) + [2] + Array("pw".utf8)))
        try channel.writeInbound(bytes([1, 0]))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == bytes([5, 1, 0, 1, 149, 154, 167, 51, 0x01, 0xbb]))
        // The reply, with the server's first frame right behind it in the same read.
        var reply = bytes([5, 0, 0, 1, 10, 0, 0, 1, 0x12, 0x34])
        var frame = bytes([40, 0, 0, 0])
        reply.writeBuffer(&frame)
        var body = payload(40, seed: 1)
        reply.writeBuffer(&body)
        try channel.writeInbound(reply)
        #expect(try ready?.wait() != nil)
        try written.wait()
        let first = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(first == concatenate([bytes([0xee, 0xee, 0xee, 0xee, 40, 0, 0, 0]), payload(40)]))
        #expect(try channel.readInbound(as: TransportFrame.self) == .packet(payload(40, seed: 1)))
        _ = try? channel.finish()
    }

    @Test func aRejectedPasswordIsATypedError() throws {
        let channel = EmbeddedChannel()
        let route = MTProtoClientRoute(
            transport: .abridged,
            proxy: .socks5(SOCKS5Proxy(host: "proxy", port: 1080, credentials: .init(username: "user", password: "pw")))
        )
        let ready = try channel.pipeline.syncOperations.addMTProtoClientHandlers(route: route, targetHost: "dc.example", targetPort: 443)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1080)).wait()
        _ = try channel.readOutbound(as: ByteBuffer.self)
        try channel.writeInbound(bytes([5, 2]))
        _ = try channel.readOutbound(as: ByteBuffer.self)
        #expect(throws: ProxyError.socksAuthenticationFailed(status: 1)) { try channel.writeInbound(bytes([1, 1])) }
        #expect(throws: ProxyError.socksAuthenticationFailed(status: 1)) { try ready?.wait() }
        _ = try? channel.finish()
    }

    @Test func aNameIsSentAsADomainAndNoAuthenticationIsOfferedAlone() throws {
        var handshake = SOCKS5ClientHandshake(targetHost: "dc.example", targetPort: 80, credentials: nil)
        #expect(handshake.start() == [5, 1, 0])
        var answer = bytes([5, 0])
        #expect(try handshake.readStep(&answer) == .send([5, 1, 0, 3, 10] + Array("dc.example".utf8) + [0, 80]))
        var refused = bytes([5, 5, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(throws: ProxyError.socksConnectFailed(reply: 5)) { try handshake.readStep(&refused) }
    }
}
