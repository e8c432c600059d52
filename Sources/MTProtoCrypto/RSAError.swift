import COpenSSL

/// Why an RSA operation or key import failed.
public enum RSAError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The text has no `-----BEGIN ...-----`/`-----END ...-----` block.
    case noPEMBlock
    /// A PEM block of a kind we do not read (we read "RSA PUBLIC KEY" and "PUBLIC KEY").
    case unsupportedPEMLabel(String)
    /// The PEM body or its DER structure is malformed, or the key is not RSA.
    case malformedKey(String)
    /// RSA_PAD and the old scheme need a 2048-bit modulus; this key has `bits`.
    case unsupportedModulusSize(bits: Int)
    /// The payload is longer than the scheme can carry.
    case dataTooLong(length: Int, maximum: Int)
    /// A raw RSA input must be a number below the modulus.
    case valueNotBelowModulus
    /// An RSA ciphertext must be exactly the modulus size.
    case invalidCiphertextLength(length: Int, expected: Int)
    /// The decrypted payload's hash does not match: wrong key, or the sender is not a real client.
    case hashMismatch
    /// The decrypted old-scheme block does not start with a zero byte (it must be a 255-byte value).
    case malformedPlaintext
    /// OpenSSL failed; its error queue said `reason`.
    case openSSL(String)

    public var description: String {
        switch self {
        case .noPEMBlock:
            "no PEM block found: expected text between '-----BEGIN RSA PUBLIC KEY-----' (or 'PUBLIC KEY' / 'PRIVATE KEY') and the matching END line."
        case .unsupportedPEMLabel(let label):
            "PEM block '\(label)' is not supported: give a PKCS#1 'RSA PUBLIC KEY' or an X.509 'PUBLIC KEY' for public keys, a 'PRIVATE KEY' or 'RSA PRIVATE KEY' for private keys."
        case .malformedKey(let reason):
            "the RSA key could not be read (\(reason)); check that the PEM is complete and unmodified."
        case .unsupportedModulusSize(let bits):
            "MTProto RSA needs a 2048-bit modulus, this key has \(bits) bits; use a 2048-bit RSA key."
        case .dataTooLong(let length, let maximum):
            "\(length) bytes cannot be RSA-encrypted by this scheme, which carries at most \(maximum); the inner data is malformed."
        case .valueNotBelowModulus:
            "the RSA input is not below the modulus, so it cannot be encrypted or decrypted; the peer used another key or sent garbage."
        case .invalidCiphertextLength(let length, let expected):
            "RSA ciphertext of \(length) bytes, expected \(expected) (the modulus size); the peer used another key or sent garbage."
        case .hashMismatch:
            "the hash inside the RSA-encrypted data does not match: the data was encrypted for another key or corrupted; reject the handshake."
        case .malformedPlaintext:
            "the RSA-decrypted block is not SHA1(data) + data + padding in 255 bytes: the data was encrypted for another key or scheme; reject the handshake."
        case .openSSL(let reason):
            "OpenSSL failed: \(reason)."
        }
    }

    /// The reason on OpenSSL's error queue (and clears it).
    static func fromOpenSSL(_ operation: String) -> RSAError {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return .openSSL("\(operation) failed") }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let text = buffer.withUnsafeBufferPointer { pointer in
            String(decoding: pointer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return .openSSL("\(operation): \(text)")
    }
}
