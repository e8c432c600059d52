import NIOCore

/// One unit of an MTProto transport, in either direction. The payload of a packet is opaque to the
/// transport: an MTProto message (plain or encrypted) whose length is a non-zero multiple of 4.
///
/// A decoded payload is a slice of the connection's receive buffer, not a copy: holding it keeps that
/// whole buffer alive (up to the largest frame received). Decrypt or copy it, then let it go.
public enum TransportFrame: Sendable, Hashable {
    /// An MTProto packet.
    case packet(ByteBuffer)
    /// An MTProto packet for which the client asks the server to answer with a quick ack
    /// (client to server only: the high bit of the length is set).
    case packetRequestingQuickAck(ByteBuffer)
    /// The server's quick acknowledgment: the 32 high bits of the packet's SHA-256 (see the spec's
    /// "Quick ack"), with the high bit set (server to client only).
    case quickAck(UInt32)
    /// A 4-byte packet holding a negative int32: the server reports a transport-level failure
    /// (server to client only).
    case transportError(TransportErrorCode)
}

extension TransportFrame: CustomStringConvertible {
    /// Says which frame and how long, never the bytes: payloads carry encrypted messages and keys' ids.
    public var description: String {
        switch self {
        case .packet(let payload): "packet(\(payload.readableBytes) bytes)"
        case .packetRequestingQuickAck(let payload): "packet(\(payload.readableBytes) bytes, quick ack requested)"
        case .quickAck(let token): "quickAck(0x\(String(token, radix: 16)))"
        case .transportError(let code): "transportError(\(code.rawValue))"
        }
    }
}
