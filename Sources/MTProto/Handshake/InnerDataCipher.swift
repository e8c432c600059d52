import MTProtoCrypto

/// server_DH_inner_data and client_DH_inner_data travel the same way:
/// AES256_IGE(SHA1(data) + data + 0-15 random bytes, tmp_aes_key, tmp_aes_iv).
enum InnerDataCipher {
    static func seal(_ data: [UInt8], key: [UInt8], iv: [UInt8], entropy: inout any EntropySource) -> [UInt8] {
        var plaintext = HandshakeCrypto.withHashAndPadding(data, entropy: &entropy)
        do {
            try AESIGE.encrypt(&plaintext, key: key, iv: iv)
        } catch {
            preconditionFailure("tmp_aes_key/iv are 32 bytes and the plaintext is block-aligned by construction: \(error)")
        }
        return plaintext
    }

    /// Decrypts, decodes the TL object after the SHA-1 with `decode` (which says how long it was), then
    /// checks the hash and the padding.
    static func open<Inner>(
        _ ciphertext: [UInt8],
        key: [UInt8],
        iv: [UInt8],
        step: HandshakeStep,
        decode: ([UInt8]) throws(HandshakeError) -> (Inner, length: Int)
    ) throws(HandshakeError) -> Inner {
        guard ciphertext.count % 16 == 0, ciphertext.count > 20 else {
            throw .encryptedDataNotBlockAligned(step, byteCount: ciphertext.count)
        }
        var plaintext = ciphertext
        do {
            try AESIGE.decrypt(&plaintext, key: key, iv: iv)
        } catch {
            throw .encryptedDataNotBlockAligned(step, byteCount: ciphertext.count)
        }
        // Under the wrong nonces the bytes rarely even decode (malformedMessage); when they do, the
        // hash catches it.
        let (inner, length) = try decode(Array(plaintext[20...]))
        do {
            _ = try HandshakeCrypto.verifyHashAndPadding(plaintext, answerLength: length)
        } catch {
            switch error {
            case .invalidAnswerPadding(let count): throw .innerPaddingTooLong(step, byteCount: count)
            default: throw .innerHashMismatch(step)
            }
        }
        return inner
    }
}
