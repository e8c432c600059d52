import MTProtoCrypto
import NIOCore

/// Encrypts every byte written and decrypts every byte read with the connection's two AES-256-CTR
/// streams. Sits between the socket (or a proxy's handlers) and the framing. A client's handler
/// writes its 64-byte header in front of the first bytes it sends.
public final class ObfuscationHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let ciphers: ObfuscationCiphers
    private var pendingHeader: [UInt8]?

    /// - Parameter header: a client's header, sent (as is: its tail is already encrypted) before
    ///   the first bytes written; nil on a server, which has read the client's.
    public init(ciphers: ObfuscationCiphers, header: [UInt8]?) {
        self.ciphers = ciphers
        self.pendingHeader = header
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        buffer.withUnsafeMutableReadableBytes { ciphers.decryptor.apply($0) }
        context.fireChannelRead(wrapInboundOut(buffer))
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var buffer = unwrapOutboundIn(data)
        buffer.withUnsafeMutableReadableBytes { ciphers.encryptor.apply($0) }
        if let header = pendingHeader {
            pendingHeader = nil
            var combined = context.channel.allocator.buffer(capacity: header.count + buffer.readableBytes)
            combined.writeBytes(header)
            combined.writeBuffer(&buffer)
            buffer = combined
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}

@available(*, unavailable)
extension ObfuscationHandler: Sendable {}

/// Fired inbound on a server connection when the client opened with an obfuscation header, before
/// `MTProtoTransportDetected`.
public struct MTProtoObfuscationDetected: Sendable, Hashable {
    /// Bytes 60..<62 of the header: the DC id when the client wrote one (towards an MTProxy), else random.
    public let dcID: Int16
}

/// The first handler of a server connection: tells an obfuscated client from a plain one. A plain
/// client's bytes pass on untouched and this handler leaves the pipeline. An obfuscated client's
/// header is read, an `ObfuscationHandler` takes this one's place, and the framing downstream gets
/// the tag the header carried followed by the decrypted stream, so `MTProtoFrameDecoder` detects
/// the transport the same way for both.
final class ServerObfuscationDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var buffered: ByteBuffer?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffered {
            buffered.writeBuffer(&incoming)
            incoming = buffered
        }
        var probe = incoming
        var detector = TransportDetector()
        do {
            if try detector.detect(from: &probe) == nil {
                buffered = incoming  // not enough bytes to tell yet
                return
            }
            forwardPlain(incoming, context: context)
        } catch .unrecognizedTransport {
            guard incoming.readableBytes >= ObfuscationHeader.length else {
                buffered = incoming
                return
            }
            acceptObfuscated(incoming, context: context)
        } catch {
            // HTTP, TLS: the frame decoder reports them with the same typed error.
            forwardPlain(incoming, context: context)
        }
    }

    private func forwardPlain(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        buffered = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func acceptObfuscated(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        buffered = nil
        var rest = bytes
        let header = rest.readBytes(length: ObfuscationHeader.length) ?? []
        let accepted: ObfuscationHeader.Accepted
        do {
            accepted = try ObfuscationHeader.acceptClientHeader(header, secret: nil)
        } catch {
            context.fireErrorCaught(MTProtoTransportError.unrecognizedTransport)
            return
        }
        context.fireUserInboundEventTriggered(MTProtoObfuscationDetected(dcID: accepted.dcID))
        // The tag as a plain client would have sent it goes straight to the framing; the rest, and
        // everything after, through the decryption of the handler that takes this one's place.
        context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: accepted.kind.tag)))
        let handler = ObfuscationHandler(ciphers: accepted.ciphers, header: nil)
        do {
            try context.pipeline.syncOperations.addHandler(handler, position: .after(self))
        } catch {
            context.fireErrorCaught(error)
            return
        }
        if rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Bytes too few to tell go on, so the decoder reports the truncated start.
        if let buffered, buffered.readableBytes > 0 {
            self.buffered = nil
            context.fireChannelRead(wrapInboundOut(buffered))
        }
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension ServerObfuscationDetector: Sendable {}
