import NIOCore
import NIOPosix
import Synchronization

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
    private let connections: Connections

    /// The open connections, so `close` can end them and tests can check none leaked.
    final class Connections: Sendable {
        private let open = Mutex<[ObjectIdentifier: any Channel]>([:])

        func add(_ channel: any Channel) {
            open.withLock { $0[ObjectIdentifier(channel)] = channel }
            channel.closeFuture.whenComplete { [self] _ in
                _ = open.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
            }
        }

        var all: [any Channel] { open.withLock { Array($0.values) } }
    }

    private init(channel: any Channel, connections: Connections) {
        self.channel = channel
        self.connections = connections
    }

    /// The bound address; read the port from here after binding port 0.
    public var localAddress: SocketAddress? { channel.localAddress }

    /// How many accepted connections are open now.
    public var openConnectionCount: Int { connections.all.count }

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
        let connections = Connections()
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
                    connections.add(connection)
                }
            }
            .bind(host: host, port: port)
            .get()
        return MTProtoTransportServer(channel: listener, connections: connections)
    }

    /// Stops accepting connections and, unless told otherwise, closes the open ones.
    public func close(closingConnections: Bool = true) async throws {
        try await channel.close()
        guard closingConnections else { return }
        for connection in connections.all {
            // A connection may close by itself meanwhile; that is the outcome wanted.
            try? await connection.close()
            // Its bookkeeping runs on close; waiting here means the count is settled on return.
            try? await connection.closeFuture.get()
        }
    }
}
