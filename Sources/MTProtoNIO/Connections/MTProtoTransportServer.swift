import NIOCore
import NIOPosix

/// Listens for MTProto clients over TCP. Each connection detects its client's transport, then hands
/// `TransportFrame`s to a handler made by the caller for that connection; the handler writes frames
/// back (`.packet`, `.quickAck`, `.transportError`). A framing error closes the connection.
///
/// Per connection the pipeline is: [encoder, installed on detection] → frame decoder → the caller's
/// handler → a handler that closes the connection on an error nobody handled. Plain handlers, not
/// `NIOAsyncChannel`, keep an idle connection at a few KiB.
public final class MTProtoTransportServer: Sendable {
    /// The listening channel.
    public let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// The bound address; read the port from here after binding port 0.
    public var localAddress: SocketAddress? { channel.localAddress }

    /// - Parameter makeConnectionHandler: called on the connection's event loop for each accepted
    ///   connection; the handler's `InboundIn` and `OutboundOut` are `TransportFrame`, and it receives
    ///   `MTProtoTransportDetected` as a user inbound event.
    public static func bind(
        host: String,
        port: Int,
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        makeConnectionHandler: @escaping @Sendable (any Channel) -> any ChannelHandler
    ) async throws -> MTProtoTransportServer {
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: configuration.receiveAllocator)
            .childChannelInitializer { connection in
                connection.eventLoop.makeCompletedFuture {
                    let pipeline = connection.pipeline.syncOperations
                    try pipeline.addMTProtoServerHandlers(configuration: configuration)
                    try pipeline.addHandler(makeConnectionHandler(connection))
                    try pipeline.addHandler(CloseOnErrorHandler())
                }
            }
            .bind(host: host, port: port)
            .get()
        return MTProtoTransportServer(channel: listener)
    }

    /// Stops accepting connections. Open connections stay open until their handlers close them.
    public func close() async throws {
        try await channel.close()
    }
}
