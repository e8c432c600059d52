/// Which way a message travels; MTProto 2.0 derives different keys for each (x = 0 or 8).
public enum Direction: Sendable, Hashable, CustomStringConvertible {
    case clientToServer
    case serverToClient

    /// The spec's `x`: 0 for messages from client to server, 8 for the reverse.
    public var keyOffset: Int {
        switch self {
        case .clientToServer: 0
        case .serverToClient: 8
        }
    }

    public var description: String {
        switch self {
        case .clientToServer: "client to server"
        case .serverToClient: "server to client"
        }
    }
}

/// Why an encrypted MTProto 2.0 packet was rejected. Every case means the packet must be dropped
/// (and, per the security guidelines, treated like a transport error), never partially processed.
public enum MessageCryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than auth_key_id (8) + msg_key (16) + one encrypted block.
    case packetTooShort(Int)
    /// The packet names another auth key than the one it is being decrypted with.
    case authKeyIDMismatch(expected: Int64, received: Int64)
    /// The encrypted part is not whole 16-byte blocks.
    case encryptedLengthNotMultipleOfBlock(Int)
    /// msg_key does not match SHA-256 of the decrypted plaintext: wrong key, wrong direction, or tampering.
    case messageKeyMismatch
    /// The decrypted plaintext is shorter than the 32-byte message header plus 12 bytes of padding.
    case plaintextTooShort(Int)
    /// message_data_length is negative, not a multiple of 4, or longer than what was received.
    case invalidMessageLength(declared: Int32, available: Int)
    /// Padding must be 12...1024 bytes; this packet had `length`.
    case paddingOutOfRange(length: Int)

    public var description: String {
        switch self {
        case .packetTooShort(let length):
            "encrypted packet of \(length) bytes is too short: it needs auth_key_id, msg_key and at least one 16-byte block; drop it."
        case .authKeyIDMismatch(let expected, let received):
            "encrypted packet is for auth key \(String(UInt64(bitPattern: received), radix: 16)), not this connection's \(String(UInt64(bitPattern: expected), radix: 16)); the peer lost or replaced its key: drop the packet (a server answers with error -404)."
        case .encryptedLengthNotMultipleOfBlock(let length):
            "encrypted payload of \(length) bytes is not whole 16-byte blocks; the packet is truncated or corrupt: drop it."
        case .messageKeyMismatch:
            "msg_key does not match the decrypted content: wrong key, wrong direction or a tampered packet; drop it and close the connection."
        case .plaintextTooShort(let length):
            "decrypted message of \(length) bytes cannot hold the 32-byte header and 12 bytes of padding; drop it."
        case .invalidMessageLength(let declared, let available):
            "message_data_length \(declared) is impossible with \(available) bytes after the header (must be a non-negative multiple of 4 that fits); drop the packet."
        case .paddingOutOfRange(let length):
            "message padding of \(length) bytes is outside 12...1024 as MTProto 2.0 requires; drop the packet."
        }
    }
}

/// The inner message of a decrypted packet, with the header fields the session layer checks.
public struct DecryptedMessage: Sendable, Equatable {
    public let salt: Int64
    public let sessionID: Int64
    public let messageID: Int64
    public let seqNo: Int32
    /// message_data: exactly message_data_length bytes, padding removed.
    public let body: [UInt8]
    public let paddingLength: Int

    public init(salt: Int64, sessionID: Int64, messageID: Int64, seqNo: Int32, body: [UInt8], paddingLength: Int) {
        self.salt = salt
        self.sessionID = sessionID
        self.messageID = messageID
        self.seqNo = seqNo
        self.body = body
        self.paddingLength = paddingLength
    }
}

/// MTProto 2.0 message encryption (spec page `mtproto/description`).
/// A packet is `auth_key_id (8) + msg_key (16) + AES-256-IGE(plaintext + padding)`.
public enum MessageCrypto {
    public static let minimumPadding = 12
    public static let maximumPadding = 1024

    /// msg_key = the middle 128 bits of SHA256(substr(auth_key, 88 + x, 32) + plaintext + padding).
    public static func messageKey(authKey: AuthKey, paddedPlaintext: [UInt8], direction: Direction) -> [UInt8] {
        paddedPlaintext.withUnsafeBytes { messageKey(authKey: authKey, paddedPlaintext: $0, direction: direction) }
    }

    static func messageKey(authKey: AuthKey, paddedPlaintext: UnsafeRawBufferPointer, direction: Direction) -> [UInt8] {
        let start = 88 + direction.keyOffset
        let large = authKey.bytes.withUnsafeBytes { key in
            Hashing.sha256(UnsafeRawBufferPointer(rebasing: key[start..<(start + 32)]), paddedPlaintext)
        }
        return Array(large[8..<24])
    }

    /// aes_key and aes_iv from sha256_a = SHA256(msg_key + substr(auth_key, x, 36)) and
    /// sha256_b = SHA256(substr(auth_key, 40 + x, 36) + msg_key).
    public static func aesKeyAndIV(authKey: AuthKey, messageKey: [UInt8], direction: Direction) -> (key: [UInt8], iv: [UInt8]) {
        precondition(messageKey.count == 16, "msg_key is 16 bytes")
        let x = direction.keyOffset
        let a = Hashing.sha256(parts: [messageKey, Array(authKey.bytes[x..<(x + 36)])])
        let b = Hashing.sha256(parts: [Array(authKey.bytes[(40 + x)..<(76 + x)]), messageKey])
        let key = Array(a[0..<8]) + Array(b[8..<24]) + Array(a[24..<32])
        let iv = Array(b[0..<8]) + Array(a[8..<24]) + Array(b[24..<32])
        return (key, iv)
    }

    /// The padding for a plaintext: the least that makes it 12+ bytes and whole blocks (12...27),
    /// plus `extraBlocks` more blocks to blur the length.
    public static func paddingLength(plaintextLength: Int, extraBlocks: Int = 0) -> Int {
        precondition(plaintextLength >= 0, "negative plaintext length")
        let base = 12 + (16 - (plaintextLength + 12) % 16) % 16
        let total = base + 16 * extraBlocks
        precondition(extraBlocks >= 0 && total <= maximumPadding, "padding must stay within 12...1024 bytes")
        return total
    }

    /// Encrypts `plaintext` (salt, session_id, msg_id, seq_no, length, body) into a full packet, adding
    /// random padding from `entropy`.
    public static func encrypt(
        _ plaintext: [UInt8], authKey: AuthKey, direction: Direction,
        entropy: inout some EntropySource, extraPaddingBlocks: Int = 0
    ) -> [UInt8] {
        let padding = paddingLength(plaintextLength: plaintext.count, extraBlocks: extraPaddingBlocks)
        var packet = [UInt8](repeating: 0, count: 24 + plaintext.count + padding)
        packet.withUnsafeMutableBytes { buffer in
            let body = UnsafeMutableRawBufferPointer(rebasing: buffer[24...])
            plaintext.withUnsafeBytes { source in
                if source.count > 0 { body.copyMemory(from: source) }
            }
            entropy.fill(UnsafeMutableRawBufferPointer(rebasing: body[plaintext.count...]))
            seal(buffer, authKey: authKey, direction: direction)
        }
        return packet
    }

    /// Encrypts an already padded plaintext (length a multiple of 16, padding 12...1024 bytes chosen
    /// by the caller). Deterministic: for replaying recorded exchanges and cross-checks.
    public static func encrypt(paddedPlaintext: [UInt8], authKey: AuthKey, direction: Direction) throws(AESIGEError) -> [UInt8] {
        guard paddedPlaintext.count % 16 == 0 else {
            throw .lengthNotMultipleOfBlock(length: paddedPlaintext.count)
        }
        var packet = [UInt8](repeating: 0, count: 24) + paddedPlaintext
        packet.withUnsafeMutableBytes { seal($0, authKey: authKey, direction: direction) }
        return packet
    }

    /// Fills auth_key_id and msg_key of `packet` and encrypts its body (from byte 24) in place.
    private static func seal(_ packet: UnsafeMutableRawBufferPointer, authKey: AuthKey, direction: Direction) {
        let body = UnsafeMutableRawBufferPointer(rebasing: packet[24...])
        let key = messageKey(authKey: authKey, paddedPlaintext: UnsafeRawBufferPointer(body), direction: direction)
        let (aesKey, aesIV) = aesKeyAndIV(authKey: authKey, messageKey: key, direction: direction)
        UnsafeMutableRawBufferPointer(rebasing: packet[0..<8]).copyBytes(from: authKey.idBytes)
        UnsafeMutableRawBufferPointer(rebasing: packet[8..<24]).copyBytes(from: key)
        do {
            try AESIGE.encrypt(body, key: aesKey, iv: aesIV)
        } catch {
            preconditionFailure("message body was padded to whole blocks: \(error)")
        }
    }

    /// Checks and decrypts a packet; returns the plaintext including its padding. Only framing that
    /// anyone on the wire can see (length, auth_key_id) is judged before decryption; nothing about the
    /// content is looked at until msg_key has been verified, so the security guidelines' rule holds:
    /// every content error answers like a failed msg_key check (callers drop the packet either way).
    public static func decrypt(_ packet: [UInt8], authKey: AuthKey, direction: Direction) throws(MessageCryptoError) -> [UInt8] {
        guard packet.count >= 24 + 16 else { throw .packetTooShort(packet.count) }
        let receivedID = Bytes.int64LittleEndian(packet[0..<8])
        guard receivedID == authKey.id else { throw .authKeyIDMismatch(expected: authKey.id, received: receivedID) }
        let encryptedLength = packet.count - 24
        guard encryptedLength % 16 == 0 else { throw .encryptedLengthNotMultipleOfBlock(encryptedLength) }
        let receivedKey = Array(packet[8..<24])
        var plaintext = Array(packet[24...])
        let (aesKey, aesIV) = aesKeyAndIV(authKey: authKey, messageKey: receivedKey, direction: direction)
        do {
            try AESIGE.decrypt(&plaintext, key: aesKey, iv: aesIV)
        } catch {
            throw .encryptedLengthNotMultipleOfBlock(encryptedLength)
        }
        let computedKey = messageKey(authKey: authKey, paddedPlaintext: plaintext, direction: direction)
        guard ConstantTime.equals(computedKey, receivedKey) else { throw .messageKeyMismatch }
        return plaintext
    }

    /// Decrypts a packet and splits the inner message, checking message_data_length and the padding
    /// bounds as the security guidelines require.
    public static func decryptMessage(_ packet: [UInt8], authKey: AuthKey, direction: Direction) throws(MessageCryptoError) -> DecryptedMessage {
        let plaintext = try decrypt(packet, authKey: authKey, direction: direction)
        return try parse(plaintext)
    }

    /// Splits a decrypted plaintext into header fields, body and padding, with the same checks.
    public static func parse(_ plaintext: [UInt8]) throws(MessageCryptoError) -> DecryptedMessage {
        guard plaintext.count >= 32 + minimumPadding else { throw .plaintextTooShort(plaintext.count) }
        let lengthBits = UInt32(plaintext[28]) | UInt32(plaintext[29]) << 8 | UInt32(plaintext[30]) << 16 | UInt32(plaintext[31]) << 24
        let declared = Int32(bitPattern: lengthBits)
        let available = plaintext.count - 32
        guard declared >= 0, declared % 4 == 0, Int(declared) <= available else {
            throw .invalidMessageLength(declared: declared, available: available)
        }
        let padding = available - Int(declared)
        guard padding >= minimumPadding, padding <= maximumPadding else { throw .paddingOutOfRange(length: padding) }
        let seqBits = UInt32(plaintext[24]) | UInt32(plaintext[25]) << 8 | UInt32(plaintext[26]) << 16 | UInt32(plaintext[27]) << 24
        return DecryptedMessage(
            salt: Bytes.int64LittleEndian(plaintext[0..<8]),
            sessionID: Bytes.int64LittleEndian(plaintext[8..<16]),
            messageID: Bytes.int64LittleEndian(plaintext[16..<24]),
            seqNo: Int32(bitPattern: seqBits),
            body: Array(plaintext[32..<(32 + Int(declared))]),
            paddingLength: padding
        )
    }
}
