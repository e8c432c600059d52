import COpenSSL

/// SHA-1 and SHA-256 through OpenSSL. MTProto hashes concatenations everywhere, so each function also
/// takes several parts and hashes them as one message without building the concatenation. The
/// hashed data is often key material (auth key slices, nonces), and a finished context still holds
/// the chaining state, so every context is wiped after use.
public enum Hashing {
    public static func sha1(_ data: [UInt8]) -> [UInt8] { sha1(parts: [data]) }

    public static func sha256(_ data: [UInt8]) -> [UInt8] { sha256(parts: [data]) }

    public static func sha1(parts: [[UInt8]]) -> [UInt8] {
        var context = SHA_CTX()
        SHA1_Init(&context)
        for part in parts {
            part.withUnsafeBytes { _ = SHA1_Update(&context, $0.baseAddress, $0.count) }
        }
        var digest = [UInt8](repeating: 0, count: 20)
        digest.withUnsafeMutableBufferPointer { _ = SHA1_Final($0.baseAddress, &context) }
        OPENSSL_cleanse(&context, MemoryLayout<SHA_CTX>.size)
        return digest
    }

    public static func sha256(parts: [[UInt8]]) -> [UInt8] {
        var context = SHA256_CTX()
        SHA256_Init(&context)
        for part in parts {
            part.withUnsafeBytes { _ = SHA256_Update(&context, $0.baseAddress, $0.count) }
        }
        var digest = [UInt8](repeating: 0, count: 32)
        digest.withUnsafeMutableBufferPointer { _ = SHA256_Final($0.baseAddress, &context) }
        OPENSSL_cleanse(&context, MemoryLayout<SHA256_CTX>.size)
        return digest
    }

    /// SHA-256 of raw memory: the message-key path hashes a slice of a packet buffer without copying it.
    public static func sha256(_ prefix: UnsafeRawBufferPointer, _ data: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        digest.withUnsafeMutableBytes { sha256(prefix, data, into: $0) }
        return digest
    }

    /// SHA-256 of two pieces of raw memory into `digest` (32 bytes): the per-packet key derivation
    /// runs on stack memory, with nothing to allocate or free.
    static func sha256(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, into digest: UnsafeMutableRawBufferPointer) {
        precondition(digest.count >= 32, "a SHA-256 digest is 32 bytes")
        var context = SHA256_CTX()
        SHA256_Init(&context)
        _ = SHA256_Update(&context, first.baseAddress, first.count)
        _ = SHA256_Update(&context, second.baseAddress, second.count)
        _ = SHA256_Final(digest.baseAddress?.assumingMemoryBound(to: UInt8.self), &context)
        OPENSSL_cleanse(&context, MemoryLayout<SHA256_CTX>.size)
    }
}
