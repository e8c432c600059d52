import NIOCore

extension ChannelPipeline.SynchronousOperations {
    /// Adds a client's framing: frames of `TransportFrame` in and out, the tag sent before the first packet.
    public func addMTProtoClientHandlers(
        transport: TransportKind,
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration()
    ) throws {
        try addHandler(MTProtoFrameEncoder(framing: configuration.framing(transport, role: .client)))
        try addHandler(ByteToMessageHandler(MTProtoFrameDecoder(framing: configuration.framing(transport, role: .client))))
    }

    /// Adds a server's framing: the transport is detected from the client's first bytes, then the
    /// encoder for it is installed (see `MTProtoFrameDecoder`).
    public func addMTProtoServerHandlers(
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration()
    ) throws {
        try addHandler(ByteToMessageHandler(MTProtoFrameDecoder(detectingWith: configuration)))
    }
}
