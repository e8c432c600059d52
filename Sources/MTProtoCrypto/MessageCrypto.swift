import COpenSSL

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
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { digest in
            messageKeyDigest(authKey: authKey, paddedPlaintext: paddedPlaintext, direction: direction, into: digest)
            return Array(UnsafeRawBufferPointer(rebasing: digest[8..<24]))
        }
    }

    /// The SHA-256 whose bytes 8..<24 are msg_key, written into `digest` (32 bytes).
    private static func messageKeyDigest(
        authKey: AuthKey, paddedPlaintext: UnsafeRawBufferPointer, direction: Direction, into digest: UnsafeMutableRawBufferPointer
    ) {
        let start = 88 + direction.keyOffset
        authKey.bytes.withUnsafeBytes { key in
            Hashing.sha256(UnsafeRawBufferPointer(rebasing: key[start..<(start + 32)]), paddedPlaintext, into: digest)
        }
    }

    /// aes_key and aes_iv from sha256_a = SHA256(msg_key + substr(auth_key, x, 36)) and
    /// sha256_b = SHA256(substr(auth_key, 40 + x, 36) + msg_key).
    public static func aesKeyAndIV(authKey: AuthKey, messageKey: [UInt8], direction: Direction) -> (key: [UInt8], iv: [UInt8]) {
        precondition(messageKey.count == 16, "msg_key is 16 bytes")
        return messageKey.withUnsafeBytes { messageKey in
            withKeyAndIV(authKey: authKey, messageKey: messageKey, direction: direction) { (Array($0), Array($1)) }
        }
    }

    /// Derives aes_key and aes_iv (32 bytes each) on the stack, hands them to `body`, then wipes them:
    /// every packet needs its own, and nothing of them should outlive the packet or cost an allocation.
    static func withKeyAndIV<Result>(
        authKey: AuthKey, messageKey: UnsafeRawBufferPointer, direction: Direction,
        _ body: (_ key: UnsafeRawBufferPointer, _ iv: UnsafeRawBufferPointer) -> Result
    ) -> Result {
        let x = direction.keyOffset
        return withUnsafeTemporaryAllocation(byteCount: 128, alignment: 16) { scratch in
            defer { OPENSSL_cleanse(scratch.baseAddress, scratch.count) }
            let a = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<32])
            let b = UnsafeMutableRawBufferPointer(rebasing: scratch[32..<64])
            authKey.bytes.withUnsafeBytes { key in
                Hashing.sha256(messageKey, UnsafeRawBufferPointer(rebasing: key[x..<(x + 36)]), into: a)
                Hashing.sha256(UnsafeRawBufferPointer(rebasing: key[(40 + x)..<(76 + x)]), messageKey, into: b)
            }
            // aes_key = a[0..<8] + b[8..<24] + a[24..<32]; aes_iv = b[0..<8] + a[8..<24] + b[24..<32].
            func put(_ offset: Int, _ source: UnsafeMutableRawBufferPointer, _ range: Range<Int>) {
                UnsafeMutableRawBufferPointer(rebasing: scratch[(64 + offset)..<(64 + offset + range.count)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[range]))
            }
            put(0, a, 0..<8)
            put(8, b, 8..<24)
            put(24, a, 24..<32)
            put(32, b, 0..<8)
            put(40, a, 8..<24)
            put(56, b, 24..<32)
            return body(UnsafeRawBufferPointer(rebasing: scratch[64..<96]), UnsafeRawBufferPointer(rebasing: scratch[96..<128]))
        }
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
        packet(plaintextLength: plaintext.count, authKey: authKey, direction: direction, entropy: &entropy, extraPaddingBlocks: extraPaddingBlocks) { region in
            plaintext.withUnsafeBytes { source in
                if source.count > 0 { region.copyMemory(from: source) }
            }
        }
    }

    /// Encrypts one inner message (salt, session_id, msg_id, seq_no, length, body) into a full packet
    /// with random padding: the header and body are written straight into the packet, one allocation.
    public static func encryptMessage(
        salt: Int64, sessionID: Int64, messageID: Int64, seqNo: Int32, body: [UInt8],
        authKey: AuthKey, direction: Direction, entropy: inout some EntropySource, extraPaddingBlocks: Int = 0
    ) -> [UInt8] {
        packet(plaintextLength: 32 + body.count, authKey: authKey, direction: direction, entropy: &entropy, extraPaddingBlocks: extraPaddingBlocks) { region in
            region.storeBytes(of: salt.littleEndian, toByteOffset: 0, as: Int64.self)
            region.storeBytes(of: sessionID.littleEndian, toByteOffset: 8, as: Int64.self)
            region.storeBytes(of: messageID.littleEndian, toByteOffset: 16, as: Int64.self)
            region.storeBytes(of: seqNo.littleEndian, toByteOffset: 24, as: Int32.self)
            region.storeBytes(of: Int32(body.count).littleEndian, toByteOffset: 28, as: Int32.self)
            body.withUnsafeBytes { source in
                if source.count > 0 { UnsafeMutableRawBufferPointer(rebasing: region[32...]).copyMemory(from: source) }
            }
        }
    }

    /// A packet of one allocation: `writePlaintext` fills the plaintext's region (exactly
    /// `plaintextLength` bytes), the padding comes from `entropy`, then the packet is sealed.
    private static func packet(
        plaintextLength: Int, authKey: AuthKey, direction: Direction, entropy: inout some EntropySource, extraPaddingBlocks: Int,
        writePlaintext: (UnsafeMutableRawBufferPointer) -> Void
    ) -> [UInt8] {
        let total = 24 + plaintextLength + paddingLength(plaintextLength: plaintextLength, extraBlocks: extraPaddingBlocks)
        return [UInt8](unsafeUninitializedCapacity: total) { output, initialized in
            let packet = UnsafeMutableRawBufferPointer(output)
            writePlaintext(UnsafeMutableRawBufferPointer(rebasing: packet[24..<(24 + plaintextLength)]))
            // Zeroed first: the buffer is fresh heap memory, and an entropy source that filled
            // only part of it must not send what the heap held before.
            let padding = UnsafeMutableRawBufferPointer(rebasing: packet[(24 + plaintextLength)...])
            padding.initializeMemory(as: UInt8.self, repeating: 0)
            entropy.fill(padding)
            seal(packet, authKey: authKey, direction: direction)
            initialized = total
        }
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
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { digest in
            messageKeyDigest(authKey: authKey, paddedPlaintext: UnsafeRawBufferPointer(body), direction: direction, into: digest)
            let messageKey = UnsafeRawBufferPointer(rebasing: digest[8..<24])
            packet.storeBytes(of: authKey.id.littleEndian, toByteOffset: 0, as: Int64.self)
            UnsafeMutableRawBufferPointer(rebasing: packet[8..<24]).copyMemory(from: messageKey)
            withKeyAndIV(authKey: authKey, messageKey: messageKey, direction: direction) { key, iv in
                AESIGE.run256(.encrypt, from: UnsafeRawBufferPointer(body), into: body, key: key, iv: iv)
            }
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
        var keyMatches = false
        // The plaintext is decrypted straight from the packet into its own buffer: one allocation.
        let plaintext = packet.withUnsafeBytes { packet in
            [UInt8](unsafeUninitializedCapacity: encryptedLength) { output, initialized in
                let plaintext = UnsafeMutableRawBufferPointer(output)
                let receivedKey = UnsafeRawBufferPointer(rebasing: packet[8..<24])
                withKeyAndIV(authKey: authKey, messageKey: receivedKey, direction: direction) { key, iv in
                    AESIGE.run256(.decrypt, from: UnsafeRawBufferPointer(rebasing: packet[24...]), into: plaintext, key: key, iv: iv)
                }
                initialized = encryptedLength
                keyMatches = withUnsafeTemporaryAllocation(byteCount: 32, alignment: 16) { digest in
                    messageKeyDigest(authKey: authKey, paddedPlaintext: UnsafeRawBufferPointer(plaintext), direction: direction, into: digest)
                    return ConstantTime.equals(UnsafeRawBufferPointer(rebasing: digest[8..<24]), receivedKey)
                }
            }
        }
        guard keyMatches else { throw .messageKeyMismatch }
        return plaintext
    }

    /// Decrypts a packet and splits the inner message, checking message_data_length and the padding
    /// bounds as the security guidelines require.
    public static func decryptMessage(_ packet: [UInt8], authKey: AuthKey, direction: Direction) throws(MessageCryptoError) -> DecryptedMessage {
        let plaintext = try decrypt(packet, authKey: authKey, direction: direction)
        return try parse(consume plaintext)
    }

    /// Splits a decrypted plaintext into header fields, body and padding, with the same checks.
    public static func parse(_ plaintext: consuming [UInt8]) throws(MessageCryptoError) -> DecryptedMessage {
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
        let salt = Bytes.int64LittleEndian(plaintext[0..<8])
        let sessionID = Bytes.int64LittleEndian(plaintext[8..<16])
        let messageID = Bytes.int64LittleEndian(plaintext[16..<24])
        // The body keeps the plaintext's buffer (owned here when the caller hands it over): the
        // padding and the header are cut off in place instead of copying the body out.
        plaintext.removeSubrange((32 + Int(declared))...)
        plaintext.removeSubrange(0..<32)
        return DecryptedMessage(
            salt: salt, sessionID: sessionID, messageID: messageID, seqNo: Int32(bitPattern: seqBits),
            body: plaintext, paddingLength: padding
        )
    }
}
