import MTProtoCrypto
import NIOCore
import NIOPosix

/// Connects to an MTProto server over TCP with a chosen transport. What flows through the channel is
/// `TransportFrame`s; the session logic that fills them lives in the core.
public enum MTProtoTransportClient {
    /// Connects and returns an async channel: read server frames from `inbound` (a framing error ends
    /// it with an `MTProtoTransportError`), write `.packet`s to `outbound`.
    ///
    /// The async bridge costs a few KiB per connection; for many idle connections, use `bootstrap`
    /// with handlers of your own instead.
    public static func connect(
        host: String,
        port: Int,
        transport: TransportKind,
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration(),
        connectTimeout: TimeAmount = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NIOAsyncChannel<TransportFrame, TransportFrame> {
        try await connect(
            host: host, port: port, route: MTProtoClientRoute(transport: transport),
            configuration: configuration, connectTimeout: connectTimeout, group: group
        )
    }

    /// Connects along `route`: through its proxy when it has one (the TCP connection goes to the
    /// proxy, which is told or keyed to reach `host`:`port` or the DC), obfuscated when it says so.
    /// Returns once the proxy's handshake (if any) completed, so a refusing proxy fails here with a
    /// `ProxyError`.
    public static func connect(
        host: String,
        port: Int,
        route: MTProtoClientRoute,
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration(),
        connectTimeout: TimeAmount = .seconds(10),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> NIOAsyncChannel<TransportFrame, TransportFrame> {
        let (socketHost, socketPort): (String, Int) =
            switch route.proxy {
            case .socks5(let proxy): (proxy.host, proxy.port)
            case .mtproxy(let proxy): (proxy.host, proxy.port)
            case nil: (host, port)
            }
        let (channel, proxyReady) = try await bootstrap(group: group, configuration: configuration)
            .connectTimeout(connectTimeout)
            .connect(host: socketHost, port: socketPort) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let ready = try channel.pipeline.syncOperations.addMTProtoClientHandlers(
                        route: route, targetHost: host, targetPort: port, configuration: configuration
                    )
                    let asyncChannel = try NIOAsyncChannel<TransportFrame, TransportFrame>(wrappingChannelSynchronously: channel)
                    return (asyncChannel, ready)
                }
            }
        if let proxyReady {
            do {
                try await proxyReady.get()
            } catch {
                try? await channel.channel.close()
                throw error
            }
        }
        return channel
    }

    /// A `ClientBootstrap` with this library's socket options (TCP_NODELAY, a small receive buffer).
    /// Add `addMTProtoClientHandlers` and your own handler in its channel initializer.
    public static func bootstrap(
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration()
    ) -> ClientBootstrap {
        ClientBootstrap(group: group)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.recvAllocator, value: configuration.receiveAllocator)
    }
}
