/// Why an MTProto 1.0 packet was rejected (only the PFS binding message still uses 1.0). Every
/// case means the message is not authentic under the key it was opened with.
public enum MessageCryptoV1Error: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than auth_key_id (8) + msg_key (16) + the 32-byte header, or not whole blocks.
    case malformedPacket(length: Int)
    /// The packet names another auth key than the one it is being opened with.
    case authKeyIDMismatch(expected: Int64, received: Int64)
    /// msg_len is negative, longer than what was received, or leaves 16 or more bytes of padding.
    case invalidMessageLength(declared: Int32, available: Int)
    /// msg_key is not the lower 128 bits of SHA-1 of the decrypted message: wrong key or tampering.
    case messageKeyMismatch

    public var description: String {
        switch self {
        case .malformedPacket(let length):
            "an MTProto 1.0 message of \(length) bytes cannot hold auth_key_id, msg_key and a 32-byte header in whole 16-byte blocks; it is truncated or not such a message."
        case .authKeyIDMismatch(let expected, let received):
            "the MTProto 1.0 message is for auth key \(String(UInt64(bitPattern: received), radix: 16)), not \(String(UInt64(bitPattern: expected), radix: 16)); it was encrypted with another key."
        case .invalidMessageLength(let declared, let available):
            "msg_len \(declared) does not fit the \(available) decrypted bytes after the header with under 16 bytes of padding; the message is damaged or forged."
        case .messageKeyMismatch:
            "msg_key does not match SHA-1 of the decrypted message: it was encrypted with another key or altered."
        }
    }
}

/// MTProto 1.0 message encryption, kept for the one place the protocol still asks for it: the
/// `encrypted_message` of auth.bindTempAuthKey, which only the permanent key's holder can produce.
/// Differences from 2.0 (`MessageCrypto`): msg_key is the lower 128 bits of SHA-1 of the plaintext
/// *without* padding, the padding is 0...15 bytes, and aes_key/aes_iv come from four SHA-1 hashes.
public enum MessageCryptoV1 {
    /// msg_key: the lower 128 bits (the last 16 bytes) of SHA-1(plaintext), padding excluded.
    public static func messageKey(plaintext: [UInt8]) -> [UInt8] {
        Array(Hashing.sha1(plaintext)[4..<20])
    }

    /// The 1.0 key derivation (spec `mtproto/description`, MTProto 1.0):
    /// sha1_a = SHA1(msg_key + substr(auth_key, x, 32)),
    /// sha1_b = SHA1(substr(auth_key, 32+x, 16) + msg_key + substr(auth_key, 48+x, 16)),
    /// sha1_c = SHA1(substr(auth_key, 64+x, 32) + msg_key),
    /// sha1_d = SHA1(msg_key + substr(auth_key, 96+x, 32)),
    /// aes_key = substr(sha1_a, 0, 8) + substr(sha1_b, 8, 12) + substr(sha1_c, 4, 12),
    /// aes_iv = substr(sha1_a, 8, 12) + substr(sha1_b, 0, 8) + substr(sha1_c, 16, 4) + substr(sha1_d, 0, 8).
    public static func aesKeyAndIV(authKey: AuthKey, messageKey: [UInt8], direction: Direction) -> (key: [UInt8], iv: [UInt8]) {
        precondition(messageKey.count == 16, "msg_key is 16 bytes")
        let x = direction.keyOffset
        let key = authKey.bytes
        let a = Hashing.sha1(parts: [messageKey, Array(key[x..<(x + 32)])])
        let b = Hashing.sha1(parts: [Array(key[(32 + x)..<(48 + x)]), messageKey, Array(key[(48 + x)..<(64 + x)])])
        let c = Hashing.sha1(parts: [Array(key[(64 + x)..<(96 + x)]), messageKey])
        let d = Hashing.sha1(parts: [messageKey, Array(key[(96 + x)..<(128 + x)])])
        let aesKey = Array(a[0..<8]) + Array(b[8..<20]) + Array(c[4..<16])
        let aesIV = Array(a[8..<20]) + Array(b[0..<8]) + Array(c[16..<20]) + Array(d[0..<8])
        return (aesKey, aesIV)
    }

    /// auth_key_id + msg_key + AES-256-IGE(plaintext + padding). `padding` must bring the
    /// plaintext to whole 16-byte blocks (0...15 bytes; the caller draws them at random).
    public static func encrypt(plaintext: [UInt8], padding: [UInt8], authKey: AuthKey, direction: Direction) -> [UInt8] {
        precondition((plaintext.count + padding.count) % 16 == 0 && padding.count < 16, "MTProto 1.0 pads to the next 16-byte boundary only")
        let messageKey = messageKey(plaintext: plaintext)
        let (aesKey, aesIV) = aesKeyAndIV(authKey: authKey, messageKey: messageKey, direction: direction)
        var body = plaintext + padding
        do {
            try AESIGE.encrypt(&body, key: aesKey, iv: aesIV)
        } catch {
            preconditionFailure("the body was padded to whole blocks: \(error)")
        }
        return authKey.idBytes + messageKey + body
    }

    /// The padding a plaintext needs: the least that makes whole 16-byte blocks.
    public static func paddingLength(plaintextLength: Int) -> Int { (16 - plaintextLength % 16) % 16 }

    /// Checks and decrypts a 1.0 message whose header is salt/random (16 bytes), msg_id, seq_no and
    /// msg_len; returns the plaintext without padding (header included). msg_len is read before
    /// msg_key can be checked (1.0 hashes the unpadded text), so every failure after decryption is
    /// reported the same way to the peer by callers.
    public static func decrypt(_ packet: [UInt8], authKey: AuthKey, direction: Direction) throws(MessageCryptoV1Error) -> [UInt8] {
        guard packet.count >= 24 + 32, (packet.count - 24) % 16 == 0 else { throw .malformedPacket(length: packet.count) }
        let receivedID = Bytes.int64LittleEndian(packet[0..<8])
        guard receivedID == authKey.id else { throw .authKeyIDMismatch(expected: authKey.id, received: receivedID) }
        let messageKey = Array(packet[8..<24])
        let (aesKey, aesIV) = aesKeyAndIV(authKey: authKey, messageKey: messageKey, direction: direction)
        var body = Array(packet[24...])
        do {
            try AESIGE.decrypt(&body, key: aesKey, iv: aesIV)
        } catch {
            throw .malformedPacket(length: packet.count)
        }
        let lengthBits = UInt32(body[28]) | UInt32(body[29]) << 8 | UInt32(body[30]) << 16 | UInt32(body[31]) << 24
        let declared = Int32(bitPattern: lengthBits)
        let available = body.count - 32
        guard declared >= 0, Int(declared) <= available, available - Int(declared) < 16 else {
            throw .invalidMessageLength(declared: declared, available: available)
        }
        let plaintext = Array(body[0..<(32 + Int(declared))])
        guard ConstantTime.equals(Self.messageKey(plaintext: plaintext), messageKey) else { throw .messageKeyMismatch }
        return plaintext
    }
}
