import Testing
import MTProtoCrypto

/// MTProto 1.0, as the PFS binding message uses it. The expected values come from
/// Tests/Interop/make_bind_vector.py (hashlib + tgcrypto, written from the spec's formulas).
@Suite("MTProto 1.0 message crypto (PFS binding)")
struct MessageCryptoV1Tests {
    static let permanentKey: AuthKey = {
        do {
            return try AuthKey((0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        } catch {
            preconditionFailure("256 bytes always make a key: \(error)")
        }
    }()
    static let messageKey = hex("2e2e03d8d158a01d4a37a78670624cec")

    @Test func theKeyIDIsTheSpecsSHA1Slice() {
        #expect(Self.permanentKey.id == 3_587_517_436_832_175_774)
    }

    @Test func keyDerivationMatchesTheSpecFormulas() {
        let (key, iv) = MessageCryptoV1.aesKeyAndIV(authKey: Self.permanentKey, messageKey: Self.messageKey, direction: .clientToServer)
        #expect(hexString(key) == "b99b520ab9ecaf71c8c711db8e143ea337c66637f42f86f86e0fec9feb7d3088")
        #expect(hexString(iv) == "55da04432e5f97407f65e9494b6a84a75c0f2ce05188cd33824fe7c91ebc8c56")
    }

    @Test func messageKeyIsTheLower128BitsOfSHA1WithoutPadding() {
        let plaintext = [UInt8](repeating: 0x41, count: 72)
        #expect(MessageCryptoV1.messageKey(plaintext: plaintext) == Array(Hashing.sha1(plaintext)[4..<20]))
    }

    @Test func roundTripAndPaddingBounds() throws {
        let plaintext = (0..<72).map { UInt8($0) }
        let padding = [UInt8](repeating: 0xEE, count: MessageCryptoV1.paddingLength(plaintextLength: 72))
        #expect(padding.count == 8)
        let packet = MessageCryptoV1.encrypt(plaintext: withLength(plaintext, 40), padding: padding, authKey: Self.permanentKey, direction: .clientToServer)
        #expect(packet.count == 8 + 16 + 80)
        #expect(Array(packet[0..<8]) == Self.permanentKey.idBytes)
        #expect(try MessageCryptoV1.decrypt(packet, authKey: Self.permanentKey, direction: .clientToServer) == withLength(plaintext, 40))
    }

    @Test func forgedOrForeignMessagesAreRefused() throws {
        let plaintext = withLength((0..<72).map { UInt8($0) }, 40)
        let packet = MessageCryptoV1.encrypt(plaintext: plaintext, padding: Array(repeating: 1, count: 8), authKey: Self.permanentKey, direction: .clientToServer)
        var tampered = packet
        tampered[60] ^= 0x01
        #expect(throws: MessageCryptoV1Error.self) { _ = try MessageCryptoV1.decrypt(tampered, authKey: Self.permanentKey, direction: .clientToServer) }
        let other = try AuthKey([UInt8](repeating: 9, count: 256))
        #expect(throws: MessageCryptoV1Error.authKeyIDMismatch(expected: other.id, received: Self.permanentKey.id)) {
            _ = try MessageCryptoV1.decrypt(packet, authKey: other, direction: .clientToServer)
        }
        #expect(throws: MessageCryptoV1Error.malformedPacket(length: 50)) {
            _ = try MessageCryptoV1.decrypt(Array(packet[0..<50]), authKey: Self.permanentKey, direction: .clientToServer)
        }
        // The direction is part of the key: a server-to-client reading does not authenticate.
        #expect(throws: MessageCryptoV1Error.self) { _ = try MessageCryptoV1.decrypt(packet, authKey: Self.permanentKey, direction: .serverToClient) }
    }

    /// Writes msg_len (bytes 28..<32) so the header is consistent with `length` body bytes.
    private func withLength(_ bytes: [UInt8], _ length: UInt32) -> [UInt8] {
        var copy = bytes
        for index in 0..<4 { copy[28 + index] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(index))) }
        return copy
    }
}
