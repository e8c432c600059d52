/// A peer broke the transport framing, or spoke a transport this library does not implement.
/// Every case ends the connection: after a framing error the byte stream cannot be resynchronized.
public enum MTProtoTransportError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A frame announced a payload longer than the configured maximum; nothing of it was buffered.
    case frameTooLong(transport: TransportKind, length: Int, maximum: Int)
    /// A frame announced an empty payload.
    case zeroLength(transport: TransportKind)
    /// A frame announced a payload whose length is not a multiple of 4.
    case lengthNotMultipleOfFour(transport: TransportKind, length: Int)
    /// A full-transport frame whose length field cannot hold length, seq_no, a payload and the CRC.
    case fullFrameTooShort(length: Int)
    /// The CRC32 at the end of a full-transport frame does not match its bytes.
    case checksumMismatch(sequenceNumber: Int32, expected: UInt32, received: UInt32)
    /// A full-transport frame carried another seq_no than the next one of this direction.
    case unexpectedSequenceNumber(expected: Int32, received: Int32)
    /// The connection ended in the middle of a frame.
    case truncatedFrame(transport: TransportKind?, bufferedBytes: Int)
    /// The first bytes are no plain transport, and as a 64-byte obfuscation header they decrypt to
    /// no known transport tag: another protocol, or an MTProxy client with a secret.
    case unrecognizedTransport
    /// The first bytes are an HTTP request line (`POST`, `GET `, `HEAD`, `OPTI`): the HTTP transport
    /// is not supported.
    case httpTransportNotSupported
    /// The first bytes are a TLS record header: fake-TLS (an MTProxy "ee" secret) is not supported.
    case tlsTransportNotSupported

    public var description: String {
        switch self {
        case .frameTooLong(let transport, let length, let maximum):
            "\(transport) frame announces \(length) bytes, more than the allowed \(maximum): the peer sent a corrupt "
                + "length, speaks another transport, or sends messages larger than this connection accepts; "
                + "the connection is closed. Raise the maximum frame length (up to 16 MiB) only if such messages are expected."
        case .zeroLength(let transport):
            "\(transport) frame announces an empty payload: an MTProto packet is never empty, so the peer's framing "
                + "is broken or it speaks another transport; the connection is closed, reconnect with a matching transport."
        case .lengthNotMultipleOfFour(let transport, let length):
            "\(transport) frame announces \(length) bytes, not a multiple of 4: MTProto packets are always "
                + "4-byte aligned, so the stream is desynchronized or the peer speaks another transport; the connection is closed."
        case .fullFrameTooShort(let length):
            "full-transport frame announces a total length of \(length) bytes, below the 16 needed for length, seq_no, "
                + "a 4-byte payload and the CRC: the stream is desynchronized or the peer speaks another transport; the connection is closed."
        case .checksumMismatch(let sequenceNumber, let expected, let received):
            "full-transport frame #\(sequenceNumber) has CRC32 0x\(String(received, radix: 16)) but its bytes give "
                + "0x\(String(expected, radix: 16)): the data was corrupted in transit or the peer computes the CRC "
                + "over other bytes (it must cover length, seq_no and payload); the connection is closed, reconnect."
        case .unexpectedSequenceNumber(let expected, let received):
            "full-transport frame carries seq_no \(received) where \(expected) was next: a frame was lost, repeated or "
                + "reordered, or the peer did not restart its count at 0 on this connection; the connection is closed, reconnect."
        case .truncatedFrame(let transport, let bufferedBytes):
            "the connection closed in the middle of a\(transport.map { " \($0)" } ?? "") frame (\(bufferedBytes) bytes "
                + "received of it): the peer closed or crashed while sending; the partial frame is dropped."
        case .unrecognizedTransport:
            "the client's first bytes match no supported transport (abridged 0xef, intermediate 0xeeeeeeee, padded "
                + "intermediate 0xdddddddd, full with seq_no 0, or a 64-byte obfuscation header whose decrypted tag names "
                + "one of these): it speaks another protocol, or obfuscates with an MTProxy secret this server does not "
                + "have; the connection is closed without a reply, so the client sees its connection reset. Connect "
                + "without a proxy secret (plain or obfuscated) to a DC, or through the MTProxy to it."
        case .httpTransportNotSupported:
            "the client's first bytes are an HTTP request: the HTTP transport is not supported and the connection is "
                + "closed without a reply; configure the client for a TCP transport (abridged, intermediate or full)."
        case .tlsTransportNotSupported:
            "the client's first bytes are a TLS record: fake TLS (an MTProxy \"ee\" secret) is spoken to an MTProxy, "
                + "not to a DC, so the connection is closed without a reply; connect through the MTProxy, or to the DC "
                + "without a proxy secret."
        }
    }
}
