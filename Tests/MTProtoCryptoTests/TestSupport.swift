import MTProtoCrypto
import SeededRandom

/// Hex to bytes for test vectors; spaces are ignored. Bad hex is a test bug, so it traps.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8.filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") })
    precondition(digits.count % 2 == 0, "odd hex length in a test vector")
    return stride(from: 0, to: digits.count, by: 2).map { index in
        guard let byte = UInt8(String(decoding: digits[index..<(index + 2)], as: UTF8.self), radix: 16) else {
            preconditionFailure("bad hex in a test vector")
        }
        return byte
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

/// Hands out recorded bytes in order (what a peer drew from its RNG), so a test can replay an
/// exchange byte for byte. Running dry is a test bug.
struct ReplayEntropy: EntropySource {
    private var bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        precondition(offset + buffer.count <= bytes.count, "ReplayEntropy ran out of recorded bytes")
        for index in 0..<buffer.count { buffer[index] = bytes[offset + index] }
        offset += buffer.count
    }
}

/// A deterministic generator (SplitMix64) for tests that need many "random" bytes.
struct SeededEntropy: EntropySource {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: generator.next()) }
    }
}

/// Always the same byte: forces the worst cases (e.g. a value above the RSA modulus).
struct ConstantEntropy: EntropySource {
    let byte: UInt8
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count { buffer[index] = byte }
    }
}
