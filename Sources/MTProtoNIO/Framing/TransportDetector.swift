import NIOCore

/// Tells, on the server, which transport a client speaks from its first bytes (spec: "The server
/// recognizes these different protocols ... by the header"):
///
/// - `0xef` → abridged; `0xeeeeeeee` → intermediate; `0xdddddddd` → padded intermediate (the tag is consumed);
/// - otherwise the first 4 bytes are a full-transport length and the next 4 the seq_no, which is 0 on a
///   fresh connection (nothing is consumed: the full decoder reads that packet).
///
/// An obfuscated client's 64-byte random header is built to avoid every tag above and a zero second
/// word, so it lands in `unrecognizedTransport` here; `ServerObfuscationDetector`, which runs this
/// first, then reads it as an obfuscation header (and decrypts the tag this detector sees next).
/// Without the check, random bytes would be taken as a full-transport length and the connection
/// would wait for up to 16 MiB that never comes, or fail later with a confusing CRC error.
public struct TransportDetector: Sendable {
    public init() {}

    /// Returns the transport once enough bytes arrived (at most 8), nil before; throws for a
    /// transport this library does not speak.
    public mutating func detect(from buffer: inout ByteBuffer) throws(MTProtoTransportError) -> TransportKind? {
        let start = buffer.readerIndex
        guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        if first == 0xef {
            buffer.moveReaderIndex(forwardBy: 1)
            return .abridged
        }

        guard let firstWord = buffer.getInteger(at: start, endianness: .little, as: UInt32.self) else { return nil }
        switch firstWord {
        case 0xeeee_eeee:
            buffer.moveReaderIndex(forwardBy: 4)
            return .intermediate
        case 0xdddd_dddd:
            buffer.moveReaderIndex(forwardBy: 4)
            return .paddedIntermediate
        case Self.post, Self.get, Self.head, Self.options:
            throw .httpTransportNotSupported
        case Self.tlsHandshake:
            throw .tlsTransportNotSupported
        default:
            break
        }

        guard let secondWord = buffer.getInteger(at: start + 4, endianness: .little, as: UInt32.self) else { return nil }
        guard secondWord == 0 else { throw .unrecognizedTransport }
        return .full
    }

    // First words the spec tells obfuscation to avoid, read little-endian: "POST", "GET ", "HEAD",
    // "OPTI", and a TLS handshake record header (16 03 01 02).
    private static let post: UInt32 = 0x5453_4f50
    private static let get: UInt32 = 0x2054_4547
    private static let head: UInt32 = 0x4441_4548
    private static let options: UInt32 = 0x4954_504f
    private static let tlsHandshake: UInt32 = 0x0201_0316
}
