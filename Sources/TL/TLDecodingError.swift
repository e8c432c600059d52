/// Why a TL reader refused its input. Every decoding failure is one of these, never a trap.
public struct TLDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// `needed` bytes were required at the offset but only `available` remained.
        case truncated(needed: Int, available: Int)
        /// A boxed value started with a constructor number its type does not have.
        case unknownConstructor(UInt32)
        /// A `bytes`/`string` announced `length` bytes but fewer remain.
        case lengthBeyondBuffer(length: Int, available: Int)
        /// A `bytes`/`string` announced more than `TLReader.Limits.maxBytesLength`.
        case lengthOverLimit(length: Int, limit: Int)
        /// The padding after a `bytes`/`string` was not all zero.
        case nonZeroPadding
        /// A vector announced more elements than the remaining bytes could hold.
        case vectorCountBeyondBuffer(count: Int, available: Int)
        /// A vector announced more elements than `TLReader.Limits.maxVectorCount` (or a negative count).
        case vectorCountOverLimit(count: Int, limit: Int)
        /// Objects were nested deeper than `TLReader.Limits.maxDepth`.
        case nestingTooDeep(limit: Int)
        /// `gzip_packed` was found but the reader has no inflater.
        case gzipWithoutInflater
        /// The inflater failed; `reason` is its own description.
        case inflateFailed(reason: String)
        /// A decoded value violates a rule of its type (for example a constructor's flags).
        case invalidValue(reason: String)
    }

    /// What went wrong.
    public var kind: Kind
    /// Byte offset in the reader's buffer where the offending value starts. Inside a
    /// `gzip_packed` payload it is the offset within the inflated bytes.
    public var offset: Int
    /// What the reader was trying to read there, e.g. `"int"` or `"constructor of InputPeer"`.
    public var expected: String

    public init(kind: Kind, offset: Int, expected: String) {
        self.kind = kind
        self.offset = offset
        self.expected = expected
    }

    public var description: String {
        let place = "TL decoding failed at byte \(offset) while reading \(expected)"
        switch kind {
        case let .truncated(needed, available):
            return "\(place): needed \(needed) bytes but only \(available) remain. The message was cut short or "
                + "was decoded as the wrong type; check the framing and the schema layer of both sides."
        case let .unknownConstructor(id):
            return "\(place): constructor 0x\(hex32(id)) is not one of this type's constructors. The peer uses "
                + "another schema layer, or the bytes are not this type; regenerate with the peer's layer or check the request."
        case let .lengthBeyondBuffer(length, available):
            return "\(place): the length prefix says \(length) bytes but only \(available) remain. The data is "
                + "corrupted or truncated."
        case let .lengthOverLimit(length, limit):
            return "\(place): the length prefix says \(length) bytes, over the limit of \(limit). Raise "
                + "TLReader.Limits.maxBytesLength if such values are legitimate."
        case .nonZeroPadding:
            return "\(place): the padding after the bytes is not zero. The data is corrupted or not TL."
        case let .vectorCountBeyondBuffer(count, available):
            return "\(place): the vector announces \(count) elements but only \(available) bytes remain, too few "
                + "for that many. The data is corrupted or truncated."
        case let .vectorCountOverLimit(count, limit):
            return "\(place): the vector announces \(count) elements, outside 0...\(limit). Raise "
                + "TLReader.Limits.maxVectorCount if such vectors are legitimate."
        case let .nestingTooDeep(limit):
            return "\(place): objects nest deeper than \(limit) levels. The data is hostile or corrupted; raise "
                + "TLReader.Limits.maxDepth only if legitimate data nests that deep."
        case .gzipWithoutInflater:
            return "\(place): found gzip_packed but this reader has no inflater. Create the TLReader with an "
                + "inflater (the MTProto layer provides a zlib one)."
        case let .inflateFailed(reason):
            return "\(place): the gzip_packed payload could not be inflated (\(reason)). The peer sent corrupt "
                + "compressed data, or it inflates beyond TLReader.Limits.maxInflatedLength."
        case let .invalidValue(reason):
            return "\(place): \(reason)."
        }
    }
}

func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
