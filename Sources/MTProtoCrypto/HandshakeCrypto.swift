/// Why a piece of the handshake's symmetric layer was rejected.
public enum HandshakeCryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A nonce had the wrong size (nonce/server_nonce 16 bytes, new_nonce 32).
    case invalidNonceLength(name: String, length: Int)
    /// The decrypted answer is shorter than its SHA-1 plus the TL answer.
    case answerTooShort(length: Int)
    /// The bytes after the answer are not 0...15 bytes of padding.
    case invalidAnswerPadding(length: Int)
    /// SHA1(answer) at the start of the decrypted block does not match the answer.
    case answerHashMismatch

    public var description: String {
        switch self {
        case .invalidNonceLength(let name, let length):
            "\(name) has \(length) bytes; nonce and server_nonce are 16 bytes, new_nonce 32. The message is malformed: abort the handshake."
        case .answerTooShort(let length):
            "the decrypted handshake answer has \(length) bytes, too few for SHA1 + the answer; abort the handshake."
        case .invalidAnswerPadding(let length):
            "the decrypted handshake answer carries \(length) bytes after the TL object; only 0...15 bytes of padding are allowed: abort the handshake."
        case .answerHashMismatch:
            "SHA1 of the decrypted handshake answer does not match: wrong new_nonce/server_nonce or a tampered message; abort the handshake."
        }
    }
}

/// The symmetric pieces of the auth key exchange (spec page `mtproto/auth_key`, steps 6-9). Nonces
/// are taken as their wire bytes (TL int128/int256), exactly as the spec's SHA1 inputs.
public enum HandshakeCrypto {
    /// tmp_aes_key := SHA1(new_nonce + server_nonce) + substr(SHA1(server_nonce + new_nonce), 0, 12);
    /// tmp_aes_iv := substr(SHA1(server_nonce + new_nonce), 12, 8) + SHA1(new_nonce + new_nonce) + substr(new_nonce, 0, 4).
    public static func temporaryKeyAndIV(newNonce: [UInt8], serverNonce: [UInt8]) throws(HandshakeCryptoError) -> (key: [UInt8], iv: [UInt8]) {
        try check(newNonce: newNonce)
        try check(serverNonce: serverNonce)
        let newServer = Hashing.sha1(parts: [newNonce, serverNonce])
        let serverNew = Hashing.sha1(parts: [serverNonce, newNonce])
        let newNew = Hashing.sha1(parts: [newNonce, newNonce])
        let key = newServer + Array(serverNew[0..<12])
        let iv = Array(serverNew[12..<20]) + newNew + Array(newNonce[0..<4])
        return (key, iv)
    }

    /// new_nonce_hash1/2/3: the 128 lower-order bits of SHA1(new_nonce + [number] + auth_key_aux_hash),
    /// as the 16 bytes of the int128 field.
    public static func newNonceHash(newNonce: [UInt8], number: UInt8, authKey: AuthKey) throws(HandshakeCryptoError) -> [UInt8] {
        try check(newNonce: newNonce)
        precondition((1...3).contains(number), "new_nonce_hash is numbered 1, 2 or 3")
        return Array(Hashing.sha1(parts: [newNonce, [number], authKey.auxHash])[4..<20])
    }

    /// The first server_salt: substr(new_nonce, 0, 8) XOR substr(server_nonce, 0, 8), as a TL long.
    public static func initialServerSalt(newNonce: [UInt8], serverNonce: [UInt8]) throws(HandshakeCryptoError) -> Int64 {
        try check(newNonce: newNonce)
        try check(serverNonce: serverNonce)
        return Bytes.int64LittleEndian(Bytes.xor(Array(newNonce[0..<8]), Array(serverNonce[0..<8]))[0..<8])
    }

    /// SHA1(answer) + answer + 0...15 random bytes so the length is a multiple of 16 (both
    /// server_DH_inner_data and client_DH_inner_data are wrapped like this before AES-IGE).
    public static func withHashAndPadding(_ answer: [UInt8], entropy: inout some EntropySource) -> [UInt8] {
        let unpadded = 20 + answer.count
        return Hashing.sha1(answer) + answer + entropy.bytes((16 - unpadded % 16) % 16)
    }

    /// Checks a decrypted `SHA1(answer) + answer + padding` once the TL answer's length is known and
    /// returns the answer.
    public static func verifyHashAndPadding(_ decrypted: [UInt8], answerLength: Int) throws(HandshakeCryptoError) -> [UInt8] {
        guard answerLength >= 0, decrypted.count >= 20 + answerLength else { throw .answerTooShort(length: decrypted.count) }
        let padding = decrypted.count - 20 - answerLength
        guard padding < 16 else { throw .invalidAnswerPadding(length: padding) }
        let answer = Array(decrypted[20..<(20 + answerLength)])
        guard ConstantTime.equals(Hashing.sha1(answer), Array(decrypted[0..<20])) else { throw .answerHashMismatch }
        return answer
    }

    private static func check(newNonce: [UInt8]) throws(HandshakeCryptoError) {
        guard newNonce.count == 32 else { throw .invalidNonceLength(name: "new_nonce", length: newNonce.count) }
    }

    private static func check(serverNonce: [UInt8]) throws(HandshakeCryptoError) {
        guard serverNonce.count == 16 else { throw .invalidNonceLength(name: "server_nonce", length: serverNonce.count) }
    }
}
