import COpenSSL

/// AES-256-CTR as a stream: the counter and the unused part of the last keystream block carry over
/// from one call to the next, as transport obfuscation requires ("reuse the two AES-256-CTR
/// instances until the connection is closed"). swift-crypto's `AES._CTR` is one-shot and keeps no
/// counter between calls, so this wraps an OpenSSL EVP context, which runs on AES-NI when the CPU has it.
///
/// One instance per direction of one connection; it is not thread-safe and is used from a single
/// event loop. Encrypting and decrypting are the same operation.
public final class AESCTR {
    private let context: OpaquePointer

    /// - Parameters:
    ///   - key: 32 bytes.
    ///   - iv: 16 bytes, the initial counter block (big-endian, incremented per block).
    public init(key: [UInt8], iv: [UInt8]) throws(AESCTRError) {
        guard key.count == 32 else { throw .invalidKeyLength(key.count) }
        guard iv.count == 16 else { throw .invalidIVLength(iv.count) }
        guard let context = EVP_CIPHER_CTX_new() else { throw .openSSLFailure }
        let initialized = key.withUnsafeBufferPointer { key in
            iv.withUnsafeBufferPointer { iv in
                EVP_EncryptInit_ex(context, EVP_aes_256_ctr(), nil, key.baseAddress, iv.baseAddress)
            }
        }
        guard initialized == 1 else {
            EVP_CIPHER_CTX_free(context)
            throw .openSSLFailure
        }
        self.context = context
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
    }

    /// XORs the next `buffer.count` bytes of keystream into `buffer`, in place.
    public func apply(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var offset = 0
        while offset < buffer.count {
            // EVP takes an Int32 length; CTR mode writes exactly what it reads and cannot fail on a
            // context that was initialized.
            let chunk = min(buffer.count - offset, 1 << 30)
            var written: Int32 = 0
            _ = EVP_EncryptUpdate(context, base + offset, &written, base + offset, Int32(chunk))
            offset += chunk
        }
    }

    /// `apply` over an array.
    public func apply(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { apply($0) }
    }

    /// The bytes with the next keystream applied.
    public func applied(to bytes: [UInt8]) -> [UInt8] {
        var copy = bytes
        apply(&copy)
        return copy
    }
}

@available(*, unavailable)
extension AESCTR: Sendable {}

/// Why an AES-256-CTR stream could not be created.
public enum AESCTRError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidKeyLength(Int)
    case invalidIVLength(Int)
    case openSSLFailure

    public var description: String {
        switch self {
        case .invalidKeyLength(let length):
            "AES-256-CTR got a \(length)-byte key: AES-256 needs exactly 32 bytes; check the key derivation."
        case .invalidIVLength(let length):
            "AES-256-CTR got a \(length)-byte IV: CTR needs exactly 16 bytes (the initial counter block)."
        case .openSSLFailure:
            "OpenSSL could not set up an AES-256-CTR context (out of memory, or a libcrypto without AES); "
                + "check the OpenSSL installation."
        }
    }
}

extension Hashing {
    /// HMAC-SHA-256 of `data` under `key` (fake-TLS proxies sign their hellos with it).
    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        key.withUnsafeBytes { key in
            data.withUnsafeBytes { data in
                digest.withUnsafeMutableBufferPointer { output in
                    _ = HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count, output.baseAddress, &length)
                }
            }
        }
        return digest
    }
}
