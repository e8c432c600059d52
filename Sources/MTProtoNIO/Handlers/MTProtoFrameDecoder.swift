import NIOCore

/// Fired inbound on a server connection once the client's transport is known, before its first frame.
public struct MTProtoTransportDetected: Sendable, Hashable {
    public let kind: TransportKind
}

/// Reads `TransportFrame`s from bytes (wrap in `ByteToMessageHandler`). On a client it is built with
/// the transport it speaks; on a server it first detects the transport from the client's first bytes,
/// then installs the matching `MTProtoFrameEncoder` just in front of itself and fires
/// `MTProtoTransportDetected`. Framing errors are thrown as `MTProtoTransportError`.
public struct MTProtoFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = TransportFrame

    private enum State {
        case detecting(TransportDetector, MTProtoTransportConfiguration)
        case decoding(TransportFraming)
    }

    private var state: State

    /// Decodes a transport known in advance (a client, or a server told its transport).
    public init(framing: TransportFraming) {
        self.state = .decoding(framing)
    }

    /// Detects the client's transport first (a server).
    public init(detectingWith configuration: MTProtoTransportConfiguration) {
        self.state = .detecting(TransportDetector(), configuration)
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .detecting(var detector, let configuration):
            guard let kind = try detector.detect(from: &buffer) else {
                state = .detecting(detector, configuration)
                return .needMoreData
            }
            state = .decoding(configuration.framing(kind, role: .server))
            let encoder = MTProtoFrameEncoder(framing: configuration.framing(kind, role: .server))
            // Right in front of this decoder, not at the pipeline's head: a byte-level handler there
            // (a future obfuscation layer, a traffic counter) must still see the framed bytes.
            try context.pipeline.syncOperations.addHandler(encoder, position: .before(context.handler))
            context.fireUserInboundEventTriggered(MTProtoTransportDetected(kind: kind))
            return .continue
        case .decoding(var framing):
            defer { state = .decoding(framing) }
            guard let frame = try framing.decode(from: &buffer) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(frame))
            return .continue
        }
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let transport: TransportKind? =
                switch state {
                case .detecting: nil
                case .decoding(let framing): framing.kind
                }
            let buffered = buffer.readableBytes
            buffer.moveReaderIndex(to: buffer.writerIndex)
            throw MTProtoTransportError.truncatedFrame(transport: transport, bufferedBytes: buffered)
        }
        return .needMoreData
    }
}
