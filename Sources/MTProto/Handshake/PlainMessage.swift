/// An unencrypted MTProto message: `auth_key_id = 0 (int64) | msg_id (int64) | length (int32) | body`.
///
/// Only the key exchange travels like this, so its checks live here: a peer that sends a nonzero key
/// id, a length that disagrees with the bytes received, or a body that cannot hold a constructor is
/// rejected before any TL decoding starts.
public struct PlainMessage: Sendable, Hashable {
    public var messageID: Int64
    public var body: [UInt8]

    /// Bytes before the body: auth_key_id, msg_id and the body length.
    public static let headerLength = 20

    public init(messageID: Int64, body: [UInt8]) {
        self.messageID = messageID
        self.body = body
    }

    /// Parses a whole transport payload as one unencrypted message.
    public init(decoding bytes: some Collection<UInt8>) throws(PlainMessageError) {
        let bytes = Array(bytes)
        guard bytes.count >= Self.headerLength else { throw .tooShort(byteCount: bytes.count) }
        let authKeyID = Self.readUInt64(bytes, at: 0)
        guard authKeyID == 0 else { throw .notPlain }
        let length = Int(Self.readUInt32(bytes, at: 16))
        let available = bytes.count - Self.headerLength
        guard length == available else { throw .lengthMismatch(declared: length, available: available) }
        // A TL body is a whole number of 4-byte words and starts with a 4-byte constructor.
        guard length >= 4, length % 4 == 0 else { throw .bodyNotWordAligned(length: length) }
        self.messageID = Int64(bitPattern: Self.readUInt64(bytes, at: 8))
        self.body = Array(bytes[Self.headerLength...])
    }

    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerLength + body.count)
        out.append(contentsOf: repeatElement(0, count: 8))
        withUnsafeBytes(of: UInt64(bitPattern: messageID).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(body.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: body)
        return out
    }

    private static func readUInt64(_ bytes: [UInt8], at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        return value
    }

    private static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[offset + index]) << (8 * UInt32(index)) }
        return value
    }
}

/// Why a transport payload is not a well-formed unencrypted message.
public enum PlainMessageError: Error, Sendable, Hashable, CustomStringConvertible {
    case tooShort(byteCount: Int)
    case notPlain
    case lengthMismatch(declared: Int, available: Int)
    case bodyNotWordAligned(length: Int)

    public var description: String {
        switch self {
        case .tooShort(let count):
            "An unencrypted message of \(count) bytes is shorter than its 20-byte header "
                + "(auth_key_id, msg_id, length): the packet was truncated or is not MTProto. Drop the connection."
        case .notPlain:
            "A message expected to be unencrypted carries a nonzero auth_key_id: the peer sent an encrypted "
                + "message during the key exchange. Drop the connection and start a new key exchange."
        case .lengthMismatch(let declared, let available):
            "An unencrypted message declares a \(declared)-byte body but \(available) bytes follow its header: "
                + "the packet was truncated or corrupted. Drop the connection."
        case .bodyNotWordAligned(let length):
            "An unencrypted message body of \(length) bytes cannot be a TL object (at least 4 bytes, a multiple "
                + "of 4). Drop the connection."
        }
    }
}
