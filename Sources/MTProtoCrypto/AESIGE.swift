import CAESNI
import COpenSSL

/// Why an AES-256-IGE call was refused. The inputs come from the network (ciphertext lengths) or from
/// key derivation, so a wrong size is reported rather than trapped.
public enum AESIGEError: Error, Equatable, Sendable, CustomStringConvertible {
    /// IGE works on whole 16-byte blocks; the data had `length` bytes.
    case lengthNotMultipleOfBlock(length: Int)
    /// AES-256 needs a 32-byte key.
    case invalidKeyLength(Int)
    /// IGE needs a 32-byte IV (previous ciphertext block, then previous plaintext block).
    case invalidIVLength(Int)

    public var description: String {
        switch self {
        case .lengthNotMultipleOfBlock(let length):
            "AES-256-IGE refused \(length) bytes: IGE only works on whole 16-byte blocks; pad the plaintext to a multiple of 16 (or drop a truncated ciphertext)."
        case .invalidKeyLength(let length):
            "AES-256-IGE got a \(length)-byte key: AES-256 needs exactly 32 bytes; check the key derivation."
        case .invalidIVLength(let length):
            "AES-256-IGE got a \(length)-byte IV: IGE needs exactly 32 bytes (previous ciphertext block, then previous plaintext block)."
        }
    }
}

/// AES-256 in Infinite Garble Extension mode, as MTProto uses it. With AES-NI the work runs in the
/// C target `CAESNI`; without it, each block goes through OpenSSL's EVP AES-256-ECB.
public enum AESIGE {
    /// Which implementation runs the blocks. Public so benchmarks and tests can pin one.
    public enum Backend: Sendable, CaseIterable {
        case aesni
        case openSSL
    }

    /// True when this CPU has AES-NI (checked once with cpuid).
    public static let hardwareAccelerated: Bool = caesni_available() != 0

    /// The implementation used when none is asked for.
    public static var defaultBackend: Backend { hardwareAccelerated ? .aesni : .openSSL }

    public static func encrypt(_ plaintext: [UInt8], key: [UInt8], iv: [UInt8]) throws(AESIGEError) -> [UInt8] {
        var data = plaintext
        try encrypt(&data, key: key, iv: iv)
        return data
    }

    public static func decrypt(_ ciphertext: [UInt8], key: [UInt8], iv: [UInt8]) throws(AESIGEError) -> [UInt8] {
        var data = ciphertext
        try decrypt(&data, key: key, iv: iv)
        return data
    }

    /// Encrypts in place: no copy on the hot path.
    public static func encrypt(_ data: inout [UInt8], key: [UInt8], iv: [UInt8], backend: Backend = defaultBackend) throws(AESIGEError) {
        try validate(length: data.count, key: key, iv: iv)
        data.withUnsafeMutableBytes { buffer in
            run(.encrypt, buffer, key: key, iv: iv, backend: backend)
        }
    }

    /// Decrypts in place: no copy on the hot path.
    public static func decrypt(_ data: inout [UInt8], key: [UInt8], iv: [UInt8], backend: Backend = defaultBackend) throws(AESIGEError) {
        try validate(length: data.count, key: key, iv: iv)
        data.withUnsafeMutableBytes { buffer in
            run(.decrypt, buffer, key: key, iv: iv, backend: backend)
        }
    }

    /// Encrypts a region of a larger buffer in place (e.g. the encrypted part of a packet).
    public static func encrypt(_ buffer: UnsafeMutableRawBufferPointer, key: [UInt8], iv: [UInt8], backend: Backend = defaultBackend) throws(AESIGEError) {
        try validate(length: buffer.count, key: key, iv: iv)
        run(.encrypt, buffer, key: key, iv: iv, backend: backend)
    }

    /// Decrypts a region of a larger buffer in place.
    public static func decrypt(_ buffer: UnsafeMutableRawBufferPointer, key: [UInt8], iv: [UInt8], backend: Backend = defaultBackend) throws(AESIGEError) {
        try validate(length: buffer.count, key: key, iv: iv)
        run(.decrypt, buffer, key: key, iv: iv, backend: backend)
    }

    private static func validate(length: Int, key: [UInt8], iv: [UInt8]) throws(AESIGEError) {
        guard key.count == 32 else { throw .invalidKeyLength(key.count) }
        guard iv.count == 32 else { throw .invalidIVLength(iv.count) }
        guard length % 16 == 0 else { throw .lengthNotMultipleOfBlock(length: length) }
    }

    enum Operation { case encrypt, decrypt }

    /// AES-128-IGE, for the published IGE test vectors only (they all use 128-bit keys).
    static func aes128(_ operation: Operation, _ data: [UInt8], key: [UInt8], iv: [UInt8], backend: Backend) -> [UInt8] {
        precondition(key.count == 16 && iv.count == 32 && data.count % 16 == 0, "AES-128-IGE test helper misuse")
        var output = data
        output.withUnsafeMutableBytes { run(operation, $0, key: key, iv: iv, backend: backend) }
        return output
    }

    /// AES-256-IGE from `input` into `output`: the same memory or two regions of equal length, in
    /// whole blocks; `key` and `iv` point at 32 bytes each. The per-packet path uses it with key
    /// material on the stack and the plaintext written straight into its own buffer.
    static func run256(
        _ operation: Operation, from input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
        key: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer, backend: Backend = defaultBackend
    ) {
        precondition(input.count == output.count && input.count % 16 == 0, "AES-256-IGE needs whole blocks of equal length")
        precondition(key.count == 32 && iv.count == 32, "AES-256-IGE needs a 32-byte key and a 32-byte IV")
        guard input.count > 0, let source = input.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let target = output.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let keyBytes = key.baseAddress?.assumingMemoryBound(to: UInt8.self),
              let ivBytes = iv.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        switch backend {
        case .aesni:
            precondition(hardwareAccelerated, "AES-NI backend requested on a CPU without AES-NI")
            switch operation {
            case .encrypt: caesni_aes256_ige_encrypt(source, target, input.count, keyBytes, ivBytes)
            case .decrypt: caesni_aes256_ige_decrypt(source, target, input.count, keyBytes, ivBytes)
            }
        case .openSSL:
            if source != target { target.update(from: source, count: input.count) }
            var key = Array(UnsafeBufferPointer(start: keyBytes, count: 32))
            var iv = Array(UnsafeBufferPointer(start: ivBytes, count: 32))
            portable(operation, target, count: input.count, key: key, iv: iv)
            key.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
            iv.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
        }
    }

    private static func run(_ operation: Operation, _ buffer: UnsafeMutableRawBufferPointer, key: [UInt8], iv: [UInt8], backend: Backend) {
        guard buffer.count > 0, let base = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        switch backend {
        case .aesni:
            precondition(hardwareAccelerated, "AES-NI backend requested on a CPU without AES-NI")
            key.withUnsafeBufferPointer { keyBytes in
                iv.withUnsafeBufferPointer { ivBytes in
                    switch (operation, keyBytes.count) {
                    case (.encrypt, 32): caesni_aes256_ige_encrypt(base, base, buffer.count, keyBytes.baseAddress, ivBytes.baseAddress)
                    case (.decrypt, 32): caesni_aes256_ige_decrypt(base, base, buffer.count, keyBytes.baseAddress, ivBytes.baseAddress)
                    case (.encrypt, _): caesni_aes128_ige_encrypt(base, base, buffer.count, keyBytes.baseAddress, ivBytes.baseAddress)
                    case (.decrypt, _): caesni_aes128_ige_decrypt(base, base, buffer.count, keyBytes.baseAddress, ivBytes.baseAddress)
                    }
                }
            }
        case .openSSL:
            portable(operation, base, count: buffer.count, key: key, iv: iv)
        }
    }

    /// IGE over single-block EVP AES-256-ECB calls: slower, but correct on any CPU OpenSSL supports.
    private static func portable(_ operation: Operation, _ base: UnsafeMutablePointer<UInt8>, count: Int, key: [UInt8], iv: [UInt8]) {
        guard let context = EVP_CIPHER_CTX_new() else {
            preconditionFailure("OpenSSL could not allocate a cipher context (out of memory)")
        }
        defer { EVP_CIPHER_CTX_free(context) }
        let cipher = key.count == 32 ? EVP_aes_256_ecb() : EVP_aes_128_ecb()
        let initialised = key.withUnsafeBufferPointer { keyBytes in
            switch operation {
            case .encrypt: EVP_EncryptInit_ex(context, cipher, nil, keyBytes.baseAddress, nil)
            case .decrypt: EVP_DecryptInit_ex(context, cipher, nil, keyBytes.baseAddress, nil)
            }
        }
        precondition(initialised == 1, "OpenSSL refused AES-256-ECB initialisation")
        EVP_CIPHER_CTX_set_padding(context, 0)

        // chain[0..<16]: previous ciphertext block; chain[16..<32]: previous plaintext block.
        var chain = iv
        var block = [UInt8](repeating: 0, count: 16)
        var current = [UInt8](repeating: 0, count: 16)
        var produced: Int32 = 0
        var offset = 0
        while offset < count {
            for index in 0..<16 { current[index] = base[offset + index] }
            switch operation {
            case .encrypt:
                for index in 0..<16 { block[index] = current[index] ^ chain[index] }
                block.withUnsafeMutableBufferPointer { blockBytes in
                    _ = EVP_EncryptUpdate(context, blockBytes.baseAddress, &produced, blockBytes.baseAddress, 16)
                }
                for index in 0..<16 {
                    let cipher = block[index] ^ chain[16 + index]
                    base[offset + index] = cipher
                    chain[index] = cipher
                    chain[16 + index] = current[index]
                }
            case .decrypt:
                for index in 0..<16 { block[index] = current[index] ^ chain[16 + index] }
                block.withUnsafeMutableBufferPointer { blockBytes in
                    _ = EVP_DecryptUpdate(context, blockBytes.baseAddress, &produced, blockBytes.baseAddress, 16)
                }
                for index in 0..<16 {
                    let plain = block[index] ^ chain[index]
                    base[offset + index] = plain
                    chain[index] = current[index]
                    chain[16 + index] = plain
                }
            }
            offset += 16
        }
        // The chain starts as the IV and ends as the last blocks: neither should outlive the call.
        chain.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
    }
}

/// Single AES-256 blocks through the AES-NI code, for the FIPS-197 known-answer test.
func caesniEncryptBlock(key: [UInt8], input: [UInt8], output: inout [UInt8]) {
    precondition(key.count == 32 && input.count == 16 && output.count == 16 && AESIGE.hardwareAccelerated)
    caesni_aes256_encrypt_block(key, input, &output)
}

func caesniDecryptBlock(key: [UInt8], input: [UInt8], output: inout [UInt8]) {
    precondition(key.count == 32 && input.count == 16 && output.count == 16 && AESIGE.hardwareAccelerated)
    caesni_aes256_decrypt_block(key, input, &output)
}
