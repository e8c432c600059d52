/// Why bytes could not become an auth key.
public enum AuthKeyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An MTProto auth key is exactly 2048 bits.
    case invalidLength(Int)

    public var description: String {
        switch self {
        case .invalidLength(let length):
            "an auth key must be exactly 256 bytes, got \(length): a key stored by a client that keeps the minimal-length form of g^ab (Telethon does) must be left-padded with zeros via AuthKey(minimalBigEndian:)."
        }
    }
}

/// A 2048-bit MTProto authorization key with its identifiers. Its description never shows key bytes.
public struct AuthKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The 256 key bytes. Secret: never log them.
    public let bytes: [UInt8]
    /// auth_key_id: the 64 lower-order bits of SHA1(auth_key), i.e. the last 8 bytes of the digest
    /// read as a little-endian TL `long`, as it appears on the wire.
    public let id: Int64
    /// auth_key_aux_hash: the 64 higher-order bits of SHA1(auth_key) (first 8 bytes of the digest),
    /// used in new_nonce_hash1/2/3.
    public let auxHash: [UInt8]

    public init(_ bytes: [UInt8]) throws(AuthKeyError) {
        guard bytes.count == 256 else { throw .invalidLength(bytes.count) }
        self.bytes = bytes
        let digest = Hashing.sha1(bytes)
        self.id = Bytes.int64LittleEndian(digest[12..<20])
        self.auxHash = Array(digest[0..<8])
    }

    /// Builds a key from the minimal-length big-endian form of g^ab (leading zeros dropped), as
    /// Telethon stores it; left-pads it to 256 bytes.
    public init(minimalBigEndian bytes: [UInt8]) throws(AuthKeyError) {
        guard let padded = Bytes.leftPadded(bytes, to: 256) else { throw .invalidLength(bytes.count) }
        try self.init(padded)
    }

    /// auth_key_id as the 8 bytes that start every encrypted packet.
    public var idBytes: [UInt8] { Bytes.littleEndian(id) }

    public var description: String {
        "AuthKey(id: \(String(UInt64(bitPattern: id), radix: 16, uppercase: false)))"
    }

    public var debugDescription: String { description }

    /// `dump` and debuggers see the id only.
    public var customMirror: Mirror { Mirror(self, children: ["id": id], displayStyle: .struct) }

    /// Constant time: comparing keys must not leak where they differ.
    public static func == (lhs: AuthKey, rhs: AuthKey) -> Bool {
        ConstantTime.equals(lhs.bytes, rhs.bytes)
    }
}
