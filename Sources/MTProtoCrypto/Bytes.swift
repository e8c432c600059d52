/// Little byte helpers shared by the crypto units.
enum Bytes {
    /// Reads 8 bytes as a little-endian integer, as TL `long` fields are laid out.
    static func int64LittleEndian(_ bytes: ArraySlice<UInt8>) -> Int64 {
        precondition(bytes.count == 8, "int64LittleEndian needs 8 bytes")
        var value: UInt64 = 0
        for (shift, byte) in bytes.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return Int64(bitPattern: value)
    }

    static func littleEndian(_ value: Int64) -> [UInt8] {
        let bits = UInt64(bitPattern: value)
        return (0..<8).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64($0))) }
    }

    static func xor(_ lhs: [UInt8], _ rhs: [UInt8]) -> [UInt8] {
        precondition(lhs.count == rhs.count, "xor of unequal lengths")
        return zip(lhs, rhs).map { $0 ^ $1 }
    }

    /// Big-endian bytes with leading zeros removed (at least one byte).
    static func minimal(_ bytes: [UInt8]) -> [UInt8] {
        guard let first = bytes.firstIndex(where: { $0 != 0 }) else { return [0] }
        return Array(bytes[first...])
    }

    /// Big-endian bytes left-padded with zeros to `length`; nil when they need more than `length`
    /// bytes once leading zeros are dropped.
    static func leftPadded(_ bytes: [UInt8], to length: Int) -> [UInt8]? {
        let trimmed = bytes.drop(while: { $0 == 0 })
        guard trimmed.count <= length else { return nil }
        return [UInt8](repeating: 0, count: length - trimmed.count) + trimmed
    }
}
