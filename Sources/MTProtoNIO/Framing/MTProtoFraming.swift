import NIOCore

/// A sans-IO MTProto transport framing: turns frames into bytes and bytes into frames, with no
/// socket, event loop or clock. NIO handlers (`MTProtoFrameDecoder`, `MTProtoFrameEncoder`) are thin
/// wrappers; tests and other runtimes drive a framing directly.
///
/// Encoding and decoding are independent directions: a connection may use one value for each
/// (the full transport counts seq_no per direction, so each direction's count lives in its value).
public protocol MTProtoFraming: Sendable {
    var kind: TransportKind { get }
    var role: TransportRole { get }

    /// An upper bound of the bytes `encode` writes for `frame` (exact except for random padding),
    /// so a caller can allocate once.
    func maximumEncodedLength(of frame: TransportFrame) -> Int

    /// Appends `frame`, framed, to `buffer`; a client's first call also writes the transport's tag.
    ///
    /// - Precondition: the frame is one this role may send (a client sends packets, a server sends
    ///   packets, quick acks and transport errors) and a packet's payload is a non-empty multiple of 4
    ///   bytes no longer than `TransportLimits.hardMaximumFrameLength`. Breaking it is a bug of the caller.
    mutating func encode(_ frame: TransportFrame, into buffer: inout ByteBuffer)

    /// Reads one frame from the front of `buffer`. Returns nil, leaving `buffer` untouched, while the
    /// frame is incomplete; throws when the peer broke the framing (the stream cannot be trusted after).
    mutating func decode(from buffer: inout ByteBuffer) throws(MTProtoTransportError) -> TransportFrame?
}

extension MTProtoFraming {
    /// Encodes `frame` into a new buffer of the right size.
    public mutating func encode(_ frame: TransportFrame) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: maximumEncodedLength(of: frame))
        encode(frame, into: &buffer)
        return buffer
    }
}

/// Rules every framing shares: what each role may send, and how a received payload is classified.
enum FrameRules {
    static let quickAckBit: UInt32 = 0x8000_0000

    /// Checks our own caller, not the peer: a violation is a programming error.
    static func checkOutbound(_ frame: TransportFrame, role: TransportRole) {
        switch frame {
        case .packet(let payload):
            checkPayload(payload)
        case .packetRequestingQuickAck(let payload):
            precondition(role == .client, "only a client asks for quick acks")
            checkPayload(payload)
        case .quickAck(let token):
            precondition(role == .server, "only a server sends quick acks")
            precondition(token & quickAckBit != 0, "a quick ack token has its high bit set (spec: Quick ack)")
        case .transportError:
            precondition(role == .server, "only a server sends transport errors")
        }
    }

    private static func checkPayload(_ payload: ByteBuffer) {
        let length = payload.readableBytes
        precondition(length > 0 && length % 4 == 0, "an MTProto packet is a non-empty multiple of 4 bytes, got \(length)")
        precondition(length <= TransportLimits.hardMaximumFrameLength, "packet of \(length) bytes exceeds the 16 MiB cap")
    }

    /// Validates a payload length announced by the peer, before anything of the payload is buffered.
    static func checkAnnouncedLength(
        _ length: Int,
        transport: TransportKind,
        limits: TransportLimits,
        requireMultipleOfFour: Bool = true
    ) throws(MTProtoTransportError) {
        if length == 0 { throw .zeroLength(transport: transport) }
        if length > limits.maximumFrameLength {
            throw .frameTooLong(transport: transport, length: length, maximum: limits.maximumFrameLength)
        }
        if requireMultipleOfFour && length % 4 != 0 {
            throw .lengthNotMultipleOfFour(transport: transport, length: length)
        }
    }

    /// Gives a received payload its meaning. A client reads a short packet holding a negative int32 as
    /// a transport error (no MTProto message is shorter than 24 bytes, so nothing real is lost);
    /// `errorPacketLimit` is 4 except for padded intermediate, where padding may follow the code.
    static func inboundFrame(
        payload: ByteBuffer,
        quickAckRequested: Bool,
        role: TransportRole,
        errorPacketLimit: Int = 4
    ) -> TransportFrame {
        switch role {
        case .server:
            return quickAckRequested ? .packetRequestingQuickAck(payload) : .packet(payload)
        case .client:
            if payload.readableBytes <= errorPacketLimit,
                let value = payload.getInteger(at: payload.readerIndex, endianness: .little, as: Int32.self),
                value < 0
            {
                return .transportError(TransportErrorCode(rawValue: value))
            }
            return .packet(payload)
        }
    }
}
