import NIOCore

/// A proxy's handshake run as the first handler of a client connection: while it runs, writes from
/// the handlers behind it wait; once it completes they go out in order, `established` succeeds,
/// and (when `leavesPipeline`) the handler removes itself. A failure fails `established`, reaches
/// the pipeline as an error and closes the connection.
protocol ProxyHandshake {
    /// Bytes to send when the connection opens.
    mutating func start(now: Int) -> [UInt8]
    /// Consumes what the proxy sent; returns what to send, whether the handshake completed, and
    /// nil for "need more bytes".
    mutating func read(_ buffer: inout ByteBuffer) throws(ProxyError) -> ProxyHandshakeStep?
    /// After completion: the bytes received from the proxy, unwrapped (fake TLS strips its records).
    mutating func unwrapInbound(_ buffer: inout ByteBuffer) throws(ProxyError) -> ByteBuffer?
    /// After completion: bytes to send, wrapped (fake TLS puts them in records).
    mutating func wrapOutbound(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer
    /// Whether the handshake's handler stays for the life of the connection (to wrap and unwrap).
    var staysAfterHandshake: Bool { get }
    /// How to name the proxy in an error.
    var proxyName: String { get }
}

enum ProxyHandshakeStep: Equatable {
    case send([UInt8])
    case established
}

final class ProxyHandshakeHandler<Handshake: ProxyHandshake>: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var handshake: Handshake
    private let established: EventLoopPromise<Void>
    private let now: @Sendable () -> Int
    private var received: ByteBuffer?
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    private var isEstablished = false
    private var failed = false

    init(handshake: Handshake, established: EventLoopPromise<Void>, now: @escaping @Sendable () -> Int) {
        self.handshake = handshake
        self.established = established
        self.now = now
    }

    func channelActive(context: ChannelHandlerContext) {
        let opening = handshake.start(now: now())
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: opening)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var received {
            received.writeBuffer(&incoming)
            incoming = received
        }
        received = nil
        do {
            if isEstablished {
                try deliver(&incoming, context: context)
                return
            }
            while !isEstablished, let step = try handshake.read(&incoming) {
                switch step {
                case .send(let bytes):
                    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                case .established:
                    isEstablished = true
                }
            }
            if isEstablished {
                complete(context: context, leftover: &incoming)
            } else if incoming.readableBytes > 0 {
                received = incoming
            }
        } catch {
            fail(error, context: context)
        }
    }

    private func deliver(_ incoming: inout ByteBuffer, context: ChannelHandlerContext) throws(ProxyError) {
        while incoming.readableBytes > 0, let payload = try handshake.unwrapInbound(&incoming) {
            if payload.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(payload)) }
        }
        if incoming.readableBytes > 0 { received = incoming }
    }

    private func complete(context: ChannelHandlerContext, leftover: inout ByteBuffer) {
        established.succeed()
        let writes = pendingWrites
        pendingWrites = []
        for (buffer, promise) in writes {
            context.write(wrapOutboundOut(outbound(buffer, context: context)), promise: promise)
        }
        context.flush()
        if handshake.staysAfterHandshake {
            do {
                try deliver(&leftover, context: context)
            } catch {
                fail(error, context: context)
            }
        } else {
            if leftover.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(leftover)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    private func outbound(_ buffer: ByteBuffer, context: ChannelHandlerContext) -> ByteBuffer {
        handshake.staysAfterHandshake ? handshake.wrapOutbound(buffer, allocator: context.channel.allocator) : buffer
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        if isEstablished {
            context.write(wrapOutboundOut(outbound(buffer, context: context)), promise: promise)
        } else {
            pendingWrites.append((buffer, promise))
        }
    }

    func flush(context: ChannelHandlerContext) {
        if isEstablished { context.flush() }
    }

    private func fail(_ error: ProxyError, context: ChannelHandlerContext) {
        guard !failed else { return }
        failed = true
        // The pipeline hears why before `established`'s waiters may close the channel.
        context.fireErrorCaught(error)
        established.fail(error)
        for (_, promise) in pendingWrites { promise?.fail(error) }
        pendingWrites = []
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !isEstablished { fail(.closedDuringHandshake(proxy: handshake.proxyName), context: context) }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if !isEstablished && !failed {
            failed = true
            established.fail(ProxyError.closedDuringHandshake(proxy: handshake.proxyName))
        }
    }
}

@available(*, unavailable)
extension ProxyHandshakeHandler: Sendable {}

extension SOCKS5ClientHandshake: ProxyHandshake {
    mutating func start(now: Int) -> [UInt8] { start() }

    mutating func read(_ buffer: inout ByteBuffer) throws(ProxyError) -> ProxyHandshakeStep? {
        switch try readStep(&buffer) {
        case nil: nil
        case .send(let bytes): .send(bytes)
        case .established: .established
        }
    }

    mutating func unwrapInbound(_ buffer: inout ByteBuffer) throws(ProxyError) -> ByteBuffer? {
        let all = buffer
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return all
    }

    mutating func wrapOutbound(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer { buffer }

    var staysAfterHandshake: Bool { false }
    var proxyName: String { "SOCKS5 proxy" }
}
