import COpenSSL

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

/// The system's cryptographic generator: OpenSSL's DRBG (RAND_bytes, seeded and reseeded from
/// getrandom(2); what TDLib uses too). Message padding and nonces ask for 12 to 1,024 bytes at a
/// time, two or more per message; each RAND_bytes call costs a getpid(2) system call (OpenSSL's
/// fork check) and a parameter lookup, so small requests are served from a per-thread reserve of
/// 4 KiB drawn in one call (`EntropyReserve`), and large ones straight from the DRBG.
public struct SystemEntropy: EntropySource {
    public init() {}

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.baseAddress != nil, buffer.count > 0 else { return }
        if buffer.count <= EntropyReserve.largestServed {
            EntropyReserve.fill(buffer)
        } else {
            Self.fillFromDRBG(buffer)
        }
    }

    static func fillFromDRBG(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var offset = 0
        while offset < buffer.count {
            // RAND_bytes takes an Int32 count.
            let chunk = min(buffer.count - offset, Int(Int32.max))
            guard RAND_bytes((base + offset).assumingMemoryBound(to: UInt8.self), Int32(chunk)) == 1 else {
                // Only a DRBG that cannot seed itself gets here; the kernel's generator still answers.
                fillFromStandardLibrary(UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]))
                return
            }
            offset += chunk
        }
    }

    private static func fillFromStandardLibrary(_ buffer: UnsafeMutableRawBufferPointer) {
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
