import NIOCore

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
