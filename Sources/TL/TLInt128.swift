/// TL `int128`: 16 opaque bytes (nonces), kept in wire order.
///
/// Stored as two words loaded little-endian from the wire, so the value is two registers wide,
/// hashes cheaply and never allocates; `bytes` and the subscript give the wire bytes back.
public struct TLInt128: Sendable, Hashable {
    /// Bytes 0..<8 of the wire form, as a little-endian word.
    public var low: UInt64
    /// Bytes 8..<16 of the wire form, as a little-endian word.
    public var high: UInt64

    public static let byteCount = 16
    public static let zero = TLInt128(low: 0, high: 0)

    public init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }

    /// Builds the value from its 16 wire bytes; `nil` when `bytes` does not hold exactly 16.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        self.init(low: UInt64(littleEndian: words.0), high: UInt64(littleEndian: words.1))
    }

    /// The 16 bytes in wire order.
    public var bytes: [UInt8] {
        var words = (low.littleEndian, high.littleEndian)
        return withUnsafeBytes(of: &words) { Array($0) }
    }

    /// The byte at `index` (0..<16) in wire order.
    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < Self.byteCount, "TLInt128 byte index \(index) is outside 0..<16")
        let word = index < 8 ? low : high
        return UInt8(truncatingIfNeeded: word >> (UInt64(index & 7) * 8))
    }
}

/// TL `int256`: 32 opaque bytes (new_nonce), kept in wire order as two `TLInt128` halves.
public struct TLInt256: Sendable, Hashable {
    /// Bytes 0..<16 of the wire form.
    public var first: TLInt128
    /// Bytes 16..<32 of the wire form.
    public var second: TLInt128

    public static let byteCount = 32
    public static let zero = TLInt256(first: .zero, second: .zero)

    public init(first: TLInt128, second: TLInt128) {
        self.first = first
        self.second = second
    }

    /// Builds the value from its 32 wire bytes; `nil` when `bytes` does not hold exactly 32.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        let all = Array(bytes)
        guard let first = TLInt128(bytes: all[0..<16]), let second = TLInt128(bytes: all[16..<32]) else { return nil }
        self.init(first: first, second: second)
    }

    /// The 32 bytes in wire order.
    public var bytes: [UInt8] { first.bytes + second.bytes }

    /// The byte at `index` (0..<32) in wire order.
    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < Self.byteCount, "TLInt256 byte index \(index) is outside 0..<32")
        return index < 16 ? first[index] : second[index - 16]
    }
}

extension TLInt128: CustomStringConvertible {
    public var description: String { hex(bytes) }
}

extension TLInt256: CustomStringConvertible {
    public var description: String { hex(bytes) }
}

private func hex(_ bytes: [UInt8]) -> String {
    let digits: [Character] = Array("0123456789abcdef")
    var text = ""
    text.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0f)])
    }
    return text
}
