import Testing
import MTProtoCrypto

@Suite("MTProto 2.0 message crypto")
struct MessageCryptoTests {
    let authKey: AuthKey

    init() throws { authKey = try AuthKey(hex(TelethonVectors.authKey)) }

    @Test func clientPacketMatchesTelethonByteForByte() throws {
        var entropy = ReplayEntropy(hex(TelethonVectors.clientPadding))
        let packet = MessageCrypto.encrypt(hex(TelethonVectors.clientPlaintext), authKey: authKey, direction: .clientToServer, entropy: &entropy)
        #expect(packet == hex(TelethonVectors.clientPacket))
        #expect(entropy.remaining == 0)
    }

    @Test func aMessageSealedFromItsFieldsMatchesTelethonByteForByte() throws {
        // The header and body written straight into the packet: the same bytes as the plaintext
        // built first and then encrypted, drawing the same padding from the entropy.
        let plaintext = hex(TelethonVectors.clientPlaintext)
        var entropy = ReplayEntropy(hex(TelethonVectors.clientPadding))
        let packet = MessageCrypto.encryptMessage(
            salt: 0x1122334455667788, sessionID: -0x0123456789ABCDEF, messageID: 0x65ABC0FC000DF764, seqNo: 3,
            body: Array(plaintext[32...]), authKey: authKey, direction: .clientToServer, entropy: &entropy)
        #expect(packet == hex(TelethonVectors.clientPacket))
        #expect(entropy.remaining == 0)
        let opened = try MessageCrypto.decryptMessage(packet, authKey: authKey, direction: .clientToServer)
        #expect(opened.body == Array(plaintext[32...]))
    }

    @Test func aesKeyAndIVAreTheSpecsSlicesOfTwoHashes() {
        let msgKey = Array(hex(TelethonVectors.clientPacket)[8..<24])
        for (direction, x) in [(Direction.clientToServer, 0), (.serverToClient, 8)] {
            let a = Hashing.sha256(parts: [msgKey, Array(authKey.bytes[x..<(x + 36)])])
            let b = Hashing.sha256(parts: [Array(authKey.bytes[(40 + x)..<(76 + x)]), msgKey])
            let (key, iv) = MessageCrypto.aesKeyAndIV(authKey: authKey, messageKey: msgKey, direction: direction)
            #expect(key == Array(a[0..<8]) + Array(b[8..<24]) + Array(a[24..<32]))
            #expect(iv == Array(b[0..<8]) + Array(a[8..<24]) + Array(b[24..<32]))
        }
    }

    @Test func deterministicFormMatchesTelethon() throws {
        let padded = hex(TelethonVectors.clientPlaintext) + hex(TelethonVectors.clientPadding)
        #expect(try MessageCrypto.encrypt(paddedPlaintext: padded, authKey: authKey, direction: .clientToServer) == hex(TelethonVectors.clientPacket))
        #expect(throws: AESIGEError.lengthNotMultipleOfBlock(length: 17)) {
            _ = try MessageCrypto.encrypt(paddedPlaintext: [UInt8](repeating: 0, count: 17), authKey: authKey, direction: .clientToServer)
        }
    }

    @Test func serverDecryptsTelethonsClientPacket() throws {
        let plaintext = try MessageCrypto.decrypt(hex(TelethonVectors.clientPacket), authKey: authKey, direction: .clientToServer)
        #expect(plaintext == hex(TelethonVectors.clientPlaintext) + hex(TelethonVectors.clientPadding))
        let message = try MessageCrypto.decryptMessage(hex(TelethonVectors.clientPacket), authKey: authKey, direction: .clientToServer)
        #expect(message.salt == 0x1122334455667788)
        #expect(message.sessionID == -0x0123456789ABCDEF)
        #expect(message.messageID == 0x65ABC0FC000DF764)
        #expect(message.seqNo == 3)
        #expect(message.body.count == 24)
        #expect(message.paddingLength == hex(TelethonVectors.clientPadding).count)
    }

    @Test func serverPacketThatTelethonAcceptsIsReproduced() throws {
        let plaintext = hex(TelethonVectors.serverPlaintext)
        let packet = try MessageCrypto.encrypt(paddedPlaintext: plaintext, authKey: authKey, direction: .serverToClient)
        #expect(packet == hex(TelethonVectors.serverPacket))
        let message = try MessageCrypto.decryptMessage(packet, authKey: authKey, direction: .serverToClient)
        #expect(message.messageID == TelethonVectors.serverMessageID)
    }

    @Test func messageKeyAndAESKeysFollowTheSpec() throws {
        let padded = hex(TelethonVectors.clientPlaintext) + hex(TelethonVectors.clientPadding)
        let msgKey = MessageCrypto.messageKey(authKey: authKey, paddedPlaintext: padded, direction: .clientToServer)
        let expected = Array(Hashing.sha256(Array(authKey.bytes[88..<120]) + padded)[8..<24])
        #expect(msgKey == expected)
        #expect(msgKey == Array(hex(TelethonVectors.clientPacket)[8..<24]))
        let server = MessageCrypto.messageKey(authKey: authKey, paddedPlaintext: padded, direction: .serverToClient)
        #expect(server == Array(Hashing.sha256(Array(authKey.bytes[96..<128]) + padded)[8..<24]))
        let (key, iv) = MessageCrypto.aesKeyAndIV(authKey: authKey, messageKey: msgKey, direction: .clientToServer)
        #expect(key.count == 32 && iv.count == 32)
        let (serverKey, _) = MessageCrypto.aesKeyAndIV(authKey: authKey, messageKey: msgKey, direction: .serverToClient)
        #expect(serverKey != key)
    }

    @Test func paddingRule() {
        for length in 0..<200 {
            let padding = MessageCrypto.paddingLength(plaintextLength: length)
            #expect((12...27).contains(padding))
            #expect((length + padding) % 16 == 0)
        }
        #expect(MessageCrypto.paddingLength(plaintextLength: 32, extraBlocks: 62) <= 1024)
        #expect(MessageCrypto.paddingLength(plaintextLength: 36, extraBlocks: 3) == 12 + 48)
    }

    @Test func roundTripWithExtraPaddingBothDirections() throws {
        var entropy = SeededEntropy(seed: 1)
        for direction in [Direction.clientToServer, .serverToClient] {
            for bodyLength in stride(from: 0, through: 400, by: 4) {
                var plaintext = entropy.bytes(24) + [0, 0, 0, 0]
                let length = UInt32(bodyLength)
                plaintext += [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), 0, 0] + entropy.bytes(bodyLength)
                let packet = MessageCrypto.encrypt(plaintext, authKey: authKey, direction: direction, entropy: &entropy, extraPaddingBlocks: bodyLength % 5)
                let message = try MessageCrypto.decryptMessage(packet, authKey: authKey, direction: direction)
                #expect(message.body == Array(plaintext[32...]))
                #expect((12...1024).contains(message.paddingLength))
            }
        }
    }

    /// Random packets carrying the right auth_key_id reach the AES and msg_key path: always a typed error.
    @Test func randomPacketsAreRejectedWithoutCrashing() {
        var entropy = SeededEntropy(seed: 23)
        for length in 0..<300 {
            var packet = entropy.bytes(length)
            if length >= 8 { packet.replaceSubrange(0..<8, with: authKey.idBytes) }
            #expect(throws: MessageCryptoError.self) {
                _ = try MessageCrypto.decryptMessage(packet, authKey: authKey, direction: .clientToServer)
            }
        }
    }

    @Test func wrongDirectionIsAMessageKeyMismatch() {
        #expect(throws: MessageCryptoError.messageKeyMismatch) {
            _ = try MessageCrypto.decrypt(hex(TelethonVectors.clientPacket), authKey: authKey, direction: .serverToClient)
        }
    }

    @Test func everyTamperedByteIsRejected() {
        let packet = hex(TelethonVectors.clientPacket)
        for index in 8..<packet.count {
            var tampered = packet
            tampered[index] ^= 0x01
            #expect(throws: MessageCryptoError.messageKeyMismatch) {
                _ = try MessageCrypto.decrypt(tampered, authKey: authKey, direction: .clientToServer)
            }
        }
    }

    @Test func foreignAuthKeyIDIsRejected() throws {
        var packet = hex(TelethonVectors.clientPacket)
        packet[0] ^= 0xff
        let received = Int64(bitPattern: packet[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        #expect(throws: MessageCryptoError.authKeyIDMismatch(expected: authKey.id, received: received)) {
            _ = try MessageCrypto.decrypt(packet, authKey: authKey, direction: .clientToServer)
        }
    }

    @Test func shortAndRaggedPacketsAreRejected() {
        let packet = hex(TelethonVectors.clientPacket)
        #expect(throws: MessageCryptoError.packetTooShort(39)) {
            _ = try MessageCrypto.decrypt(Array(packet[0..<39]), authKey: authKey, direction: .clientToServer)
        }
        #expect(throws: MessageCryptoError.packetTooShort(0)) {
            _ = try MessageCrypto.decrypt([], authKey: authKey, direction: .clientToServer)
        }
        #expect(throws: MessageCryptoError.encryptedLengthNotMultipleOfBlock(packet.count - 24 - 1)) {
            _ = try MessageCrypto.decrypt(Array(packet.dropLast()), authKey: authKey, direction: .clientToServer)
        }
    }

    /// Builds plaintext with a chosen message_data_length and total size, to reach each structural check.
    private func plaintext(declaredLength: Int32, total: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0x5A, count: total)
        let bits = UInt32(bitPattern: declaredLength)
        for index in 0..<4 { bytes[28 + index] = UInt8(truncatingIfNeeded: bits >> (8 * UInt32(index))) }
        return bytes
    }

    @Test func structuralChecksOnTheDecryptedMessage() throws {
        #expect(throws: MessageCryptoError.plaintextTooShort(32)) { try MessageCrypto.parse([UInt8](repeating: 0, count: 32)) }
        #expect(throws: MessageCryptoError.invalidMessageLength(declared: -4, available: 32)) {
            try MessageCrypto.parse(plaintext(declaredLength: -4, total: 64))
        }
        #expect(throws: MessageCryptoError.invalidMessageLength(declared: 6, available: 32)) {
            try MessageCrypto.parse(plaintext(declaredLength: 6, total: 64))
        }
        #expect(throws: MessageCryptoError.invalidMessageLength(declared: 36, available: 32)) {
            try MessageCrypto.parse(plaintext(declaredLength: 36, total: 64))
        }
        #expect(throws: MessageCryptoError.paddingOutOfRange(length: 8)) {
            try MessageCrypto.parse(plaintext(declaredLength: 24, total: 64))
        }
        #expect(throws: MessageCryptoError.paddingOutOfRange(length: 1040)) {
            try MessageCrypto.parse(plaintext(declaredLength: 0, total: 32 + 1040))
        }
        let ok = try MessageCrypto.parse(plaintext(declaredLength: 20, total: 64))
        #expect(ok.body.count == 20 && ok.paddingLength == 12)
    }

    @Test func structuralErrorsSurfaceThroughDecryptMessage() throws {
        // A validly encrypted packet whose inner length lies.
        let bad = plaintext(declaredLength: 40, total: 64)
        let packet = try MessageCrypto.encrypt(paddedPlaintext: bad, authKey: authKey, direction: .serverToClient)
        #expect(throws: MessageCryptoError.invalidMessageLength(declared: 40, available: 32)) {
            _ = try MessageCrypto.decryptMessage(packet, authKey: authKey, direction: .serverToClient)
        }
    }

    @Test func errorsExplainThemselvesWithoutSecrets() {
        let errors: [MessageCryptoError] = [
            .packetTooShort(3), .authKeyIDMismatch(expected: 1, received: 2), .encryptedLengthNotMultipleOfBlock(5),
            .messageKeyMismatch, .plaintextTooShort(4), .invalidMessageLength(declared: 7, available: 3), .paddingOutOfRange(length: 2),
        ]
        for error in errors { #expect(error.description.contains("drop")) }
        #expect(Direction.clientToServer.keyOffset == 0 && Direction.serverToClient.keyOffset == 8)
        #expect(Direction.clientToServer.description != Direction.serverToClient.description)
    }
}
