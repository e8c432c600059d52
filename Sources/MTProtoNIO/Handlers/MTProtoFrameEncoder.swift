import NIOCore

/// Writes `TransportFrame`s as bytes. Each frame goes into a buffer of its own size from the
/// channel's allocator: unlike `MessageToByteHandler`, nothing keeps the largest buffer ever written
/// alive for the life of the connection.
public final class MTProtoFrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = TransportFrame
    public typealias OutboundOut = ByteBuffer

    private var framing: TransportFraming

    public init(framing: TransportFraming) {
        self.framing = framing
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: framing.maximumEncodedLength(of: frame))
        framing.encode(frame, into: &buffer)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}

@available(*, unavailable)
extension MTProtoFrameEncoder: Sendable {}
