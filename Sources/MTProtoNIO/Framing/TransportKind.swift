/// The four MTProto transport framings of the spec (`mtproto/mtproto-transports`).
///
/// Obfuscation (a random 64-byte header, AES-256-CTR) goes over abridged, intermediate and padded
/// intermediate (`MTProtoClientRoute.obfuscated`, `ObfuscationHeader`). HTTP is not supported: a
/// server sees it as an unrecognized first packet and closes the connection with a typed error.
public enum TransportKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `0xef`, then a 1-byte (or `0x7f` + 3-byte) length in 4-byte words.
    case abridged
    /// `0xeeeeeeee`, then a 4-byte little-endian length.
    case intermediate
    /// `0xdddddddd`, then a 4-byte little-endian length that covers random padding bytes (0–15).
    case paddedIntermediate
    /// No tag: length, seq_no, payload, CRC32.
    case full

    public var description: String {
        switch self {
        case .abridged: "abridged"
        case .intermediate: "intermediate"
        case .paddedIntermediate: "padded intermediate"
        case .full: "full"
        }
    }

    /// The bytes a client sends once before its first packet, so the server can tell the framing.
    public var tag: [UInt8] {
        switch self {
        case .abridged: [0xef]
        case .intermediate: [0xee, 0xee, 0xee, 0xee]
        case .paddedIntermediate: [0xdd, 0xdd, 0xdd, 0xdd]
        case .full: []
        }
    }
}

/// Which end of the connection a framing serves. The wire format is the same both ways, but the
/// meaning of the high bit of a length is not: a client sets it to ask for a quick ack, a server
/// sets it on the quick ack itself. Only a client sends the tag; only a server sends transport errors.
public enum TransportRole: Sendable, Hashable {
    case client
    case server
}
