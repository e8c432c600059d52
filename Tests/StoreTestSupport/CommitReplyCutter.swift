import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy in front of a real PostgreSQL server that, once armed, lets the next COMMITs through
/// and the server's answers to them not: it closes the client's connection when an answer arrives.
/// The transaction has then taken effect on the server while the client only saw its connection
/// end after sending COMMIT: the in-doubt case a network failure makes, at a chosen moment.
/// `proxied(_:)` gives a scratch database's URL through it.
public final class CommitReplyCutter: Sendable {
    public let port: Int
    private let server: any Channel
    private let switches: Switches

    private init(port: Int, server: any Channel, switches: Switches) {
        self.port = port
        self.server = server
        self.switches = switches
    }

    /// Listens on a free loopback port and forwards every connection to `targetPort`.
    private static func start(targetPort: Int) async throws -> CommitReplyCutter {
        let switches = Switches()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(ChannelOptions.autoRead, value: false)
            .childChannelInitializer { client in
                ClientBootstrap(group: client.eventLoop).connect(host: "127.0.0.1", port: targetPort).flatMap { upstream in
                    let pair = Pair()
                    return client.pipeline.addHandler(Relay(peer: upstream, side: .client, pair: pair, switches: switches))
                        .flatMap { upstream.pipeline.addHandler(Relay(peer: client, side: .server, pair: pair, switches: switches)) }
                        .flatMap { client.setOption(ChannelOptions.autoRead, value: true) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return CommitReplyCutter(port: server.localAddress?.port ?? 0, server: server, switches: switches)
    }

    /// `url` (a scratch database's), through this proxy.
    public func proxied(_ url: String) throws -> String {
        guard var components = URLComponents(string: url) else { throw ScratchPostgresDatabase.ScratchError.badURL }
        components.port = port
        guard let proxied = components.string else { throw ScratchPostgresDatabase.ScratchError.badURL }
        return proxied
    }

    /// Starts one in front of the server of `url` (a scratch database's).
    public static func start(before url: String) async throws -> CommitReplyCutter {
        guard let port = URLComponents(string: url)?.port else { throw ScratchPostgresDatabase.ScratchError.badURL }
        return try await start(targetPort: port)
    }

    /// The answers of the next `count` COMMITs are not passed on: each one's connection is closed instead.
    public func loseTheNextCommitAnswer(_ count: Int = 1) { switches.state.withLock { $0.armed = count } }

    /// How many answers were lost so far.
    public var cuts: Int { switches.state.withLock { $0.cuts } }

    public func stop() async { try? await server.close() }

    private final class Switches: Sendable {
        struct State {
            var armed = 0
            var cuts = 0
        }
        let state = Mutex(State())
    }

    /// One proxied connection: whether its client sent a COMMIT while the cutter was armed.
    private final class Pair: Sendable {
        let commitSent = Mutex(false)
    }

    /// Passes bytes to `peer`. From the client it notes a COMMIT sent while armed (postgres-nio
    /// sends the statement's text in a Parse message); from the server it closes both connections
    /// instead of passing on the CommandComplete "COMMIT" that answers it.
    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        enum Side { case client, server }
        private let peer: any Channel
        private let side: Side
        private let pair: Pair
        private let switches: Switches

        init(peer: any Channel, side: Side, pair: Pair, switches: Switches) {
            self.peer = peer
            self.side = side
            self.pair = pair
            self.switches = switches
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            let mentionsCommit = String(decoding: buffer.readableBytesView, as: UTF8.self).contains("COMMIT\0")
            switch side {
            case .client:
                if mentionsCommit, switches.state.withLock({ $0.armed > 0 }) { pair.commitSent.withLock { $0 = true } }
            case .server:
                let cut = mentionsCommit && pair.commitSent.withLock { $0 } && switches.state.withLock { state in
                    guard state.armed > 0 else { return false }
                    state.armed -= 1
                    state.cuts += 1
                    return true
                }
                if cut {
                    peer.close(promise: nil)
                    context.close(promise: nil)
                    return
                }
            }
            peer.writeAndFlush(buffer, promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
