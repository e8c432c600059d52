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

/// Closes the connection when a transport error reaches the end of the pipeline: after a framing
/// error the byte stream cannot be resynchronized, and an open socket would only hold memory.
final class CloseOnErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension CloseOnErrorHandler: Sendable {}
