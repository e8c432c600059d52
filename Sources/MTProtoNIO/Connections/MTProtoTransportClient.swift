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
        try await bootstrap(group: group, configuration: configuration)
            .connectTimeout(connectTimeout)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addMTProtoClientHandlers(
                        transport: transport,
                        configuration: configuration
                    )
                    return try NIOAsyncChannel<TransportFrame, TransportFrame>(wrappingChannelSynchronously: channel)
                }
            }
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
