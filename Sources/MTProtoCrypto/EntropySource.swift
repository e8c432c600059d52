/// Where every random byte of the protocol comes from: nonces, new_nonce, DH exponents, RSA_PAD keys
/// and message padding. The core never reaches for a global generator, so tests can replay a
/// recorded exchange (the spec's worked example) byte for byte, and production uses the system CSPRNG.
public protocol EntropySource: Sendable {
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer)
}

extension EntropySource {
    public mutating func bytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "asked for a negative number of random bytes")
        var result = [UInt8](repeating: 0, count: count)
        result.withUnsafeMutableBytes { fill($0) }
        return result
    }
}

/// The operating system's CSPRNG (getrandom on Linux), through the standard library.
public struct SystemEntropy: EntropySource {
    public init() {}

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var generator = SystemRandomNumberGenerator()
        var offset = 0
        while offset < buffer.count {
            var word = generator.next()
            let take = min(8, buffer.count - offset)
            withUnsafeBytes(of: &word) { wordBytes in
                for index in 0..<take { buffer[offset + index] = wordBytes[index] }
            }
            offset += take
        }
    }
}
