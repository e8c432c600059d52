import COpenSSL

/// The plaintext of an old-scheme block (SHA1(data) + data + padding): the data's length is only
/// known once the TL inside is parsed, so the hash is checked afterwards with `data(length:)`.
public struct OldSchemePlaintext: Sendable {
    public let sha1: [UInt8]
    /// 235 bytes: the data followed by random padding.
    public let dataWithPadding: [UInt8]

    /// The first `length` bytes, once their SHA-1 matches (constant time).
    public func data(length: Int) throws(RSAError) -> [UInt8] {
        guard length >= 0, length <= dataWithPadding.count else {
            throw .dataTooLong(length: length, maximum: dataWithPadding.count)
        }
        let data = Array(dataWithPadding[0..<length])
        guard ConstantTime.equals(Hashing.sha1(data), sha1) else { throw .hashMismatch }
        return data
    }
}

/// An RSA private key held by OpenSSL: the test DC's server key. Decryption uses OpenSSL's
/// blinded CRT path.
public final class RSAPrivateKey: @unchecked Sendable {
    // Immutable after init; OpenSSL allows concurrent use of one EVP_PKEY for private-key operations.
    private let key: OpaquePointer
    public let publicKey: RSAPublicKey

    /// Takes ownership of `key` (freed here if it is not a usable RSA key).
    private init(taking key: OpaquePointer) throws(RSAError) {
        do {
            self.publicKey = try RSAPrivateKey.readPublicKey(key)
        } catch {
            EVP_PKEY_free(key)
            throw error
        }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    private static func readPublicKey(_ key: OpaquePointer) throws(RSAError) -> RSAPublicKey {
        guard EVP_PKEY_is_a(key, "RSA") == 1 else { throw .malformedKey("the private key is not an RSA key") }
        var n: OpaquePointer?
        var e: OpaquePointer?
        defer {
            BN_free(n)
            BN_free(e)
        }
        guard EVP_PKEY_get_bn_param(key, "n", &n) == 1, EVP_PKEY_get_bn_param(key, "e", &e) == 1,
              let n, let e else {
            throw RSAError.fromOpenSSL("reading the RSA public components")
        }
        return try RSAPublicKey(modulus: BigNumber.bytes(of: n), exponent: BigNumber.bytes(of: e))
    }

    /// A fresh key pair from OpenSSL's CSPRNG (keys are long-lived; they never come from an injected
    /// EntropySource).
    public static func generate(bits: Int = 2048) throws(RSAError) -> RSAPrivateKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else {
            throw RSAError.fromOpenSSL("creating an RSA key generation context")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1,
              EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) == 1 else {
            throw RSAError.fromOpenSSL("configuring RSA key generation")
        }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(context, &key) == 1, let key else {
            throw RSAError.fromOpenSSL("generating an RSA key")
        }
        return try RSAPrivateKey(taking: key)
    }

    /// Reads a `-----BEGIN PRIVATE KEY-----` (PKCS#8) or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1) PEM.
    public convenience init(pem: String) throws(RSAError) {
        let bytes = Array(pem.utf8)
        guard pem.contains("-----BEGIN ") else { throw .noPEMBlock }
        let parsed: OpaquePointer? = bytes.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let parsed else { throw RSAError.fromOpenSSL("reading the private key PEM") }
        try self.init(taking: parsed)
    }

    /// The private key as an unencrypted PKCS#8 `-----BEGIN PRIVATE KEY-----` PEM, loadable by
    /// `init(pem:)` and by OpenSSL-based tools. Secret: store it like a password.
    public func pem() throws(RSAError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw RSAError.fromOpenSSL("allocating a memory BIO") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else {
            throw RSAError.fromOpenSSL("writing the private key PEM")
        }
        let pending = Int(BIO_ctrl_pending(bio))
        var output = [UInt8](repeating: 0, count: pending)
        let read = output.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(pending)) }
        guard read == Int32(pending) else { throw RSAError.fromOpenSSL("reading the PEM buffer") }
        return String(decoding: output, as: UTF8.self)
    }

    /// Raw RSA decryption: value^d mod n, exactly `publicKey.byteCount` bytes.
    public func rawDecrypt(_ ciphertext: [UInt8]) throws(RSAError) -> [UInt8] {
        let size = publicKey.byteCount
        guard ciphertext.count == size else { throw .invalidCiphertextLength(length: ciphertext.count, expected: size) }
        guard BigNumber(bytes: ciphertext).compare(BigNumber(bytes: publicKey.modulus)) < 0 else {
            throw .valueNotBelowModulus
        }
        guard let context = EVP_PKEY_CTX_new(key, nil) else { throw RSAError.fromOpenSSL("creating a decryption context") }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_decrypt_init(context) == 1, EVP_PKEY_CTX_set_rsa_padding(context, RSA_NO_PADDING) == 1 else {
            throw RSAError.fromOpenSSL("configuring raw RSA decryption")
        }
        var output = [UInt8](repeating: 0, count: size)
        var outputLength = size
        let ok = output.withUnsafeMutableBufferPointer { out in
            ciphertext.withUnsafeBufferPointer { input in
                EVP_PKEY_decrypt(context, out.baseAddress, &outputLength, input.baseAddress, input.count)
            }
        }
        guard ok == 1, outputLength == size else { throw RSAError.fromOpenSSL("raw RSA decryption") }
        return output
    }

    /// The server side of RSA_PAD: decrypts, undoes the padding, checks the SHA-256 inside, and returns
    /// data_with_padding (192 bytes: the TL data followed by random padding).
    public func decryptRSAPad(_ encryptedData: [UInt8]) throws(RSAError) -> [UInt8] {
        guard publicKey.byteCount == 256 else { throw .unsupportedModulusSize(bits: publicKey.bitCount) }
        let keyAESEncrypted = try rawDecrypt(encryptedData)
        let tempKeyXor = Array(keyAESEncrypted[0..<32])
        let aesEncrypted = Array(keyAESEncrypted[32..<256])
        let tempKey = Bytes.xor(tempKeyXor, Hashing.sha256(aesEncrypted))
        let dataWithHash: [UInt8]
        do {
            dataWithHash = try AESIGE.decrypt(aesEncrypted, key: tempKey, iv: [UInt8](repeating: 0, count: 32))
        } catch {
            throw .malformedPlaintext
        }
        let dataWithPadding = Array(dataWithHash[0..<RSAPad.paddedLength].reversed())
        let hash = Array(dataWithHash[RSAPad.paddedLength..<224])
        guard ConstantTime.equals(Hashing.sha256(parts: [tempKey, dataWithPadding]), hash) else { throw .hashMismatch }
        return dataWithPadding
    }

    /// The server side of the old scheme Telethon uses: decrypts and splits SHA1(data) from
    /// data + padding; check the hash with `data(length:)` once the TL length is known.
    public func decryptOldScheme(_ encryptedData: [UInt8]) throws(RSAError) -> OldSchemePlaintext {
        guard publicKey.byteCount == 256 else { throw .unsupportedModulusSize(bits: publicKey.bitCount) }
        let block = try rawDecrypt(encryptedData)
        guard block[0] == 0 else { throw .malformedPlaintext }
        return OldSchemePlaintext(sha1: Array(block[1..<21]), dataWithPadding: Array(block[21..<256]))
    }
}

extension BigNumber {
    /// Minimal big-endian bytes of a BIGNUM we do not own.
    static func bytes(of number: OpaquePointer) -> [UInt8] {
        let count = (Int(BN_num_bits(number)) + 7) / 8
        var result = [UInt8](repeating: 0, count: count)
        if count > 0 { result.withUnsafeMutableBufferPointer { _ = BN_bn2bin(number, $0.baseAddress) } }
        return result
    }
}
