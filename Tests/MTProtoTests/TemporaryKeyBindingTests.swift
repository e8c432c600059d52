import Testing
import MTProtoCrypto
import MTProtoSchema
import TL
@testable import MTProto

/// auth.bindTempAuthKey's binding message. Known answers from Tests/Interop/make_bind_vector.py
/// (hashlib + tgcrypto, written from the spec independently of this code).
@Suite struct TemporaryKeyBindingTests {
    static let permanentKey: AuthKey = {
        do {
            return try AuthKey((0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        } catch {
            preconditionFailure("256 bytes always make a key: \(error)")
        }
    }()
    static let temporaryKeyID: Int64 = 0x1122_3344_5566_7788
    static let sessionID: Int64 = -0x0123_4567_89AB_CDEF
    static let messageID: Int64 = 0x6500_0000_0000_0004
    static let expected = """
        9ed6e6ef196cc9312e2e03d8d158a01d4a37a78670624cecf62d8e38771ad55ae4af85f0f1e120a1ce926b42b4de9c780c1cefc313dfc735a59540ad22668cdd4a6cf367e026d1fa535a306e16c4c4e585e5ecad2f8e4db692d5ce70d0008cd4d8e56ba7428d7de7
        """

    static func binding() -> TemporaryKeyBinding {
        TemporaryKeyBinding(
            permanentKey: permanentKey, temporaryKeyID: temporaryKeyID, expiresAt: 1_800_000_000, nonce: 0x0102_0304_0506_0708,
            random: Array(UInt8(0x30)..<0x40), padding: Array(UInt8(0xA0)..<0xA8))
    }

    @Test func encryptedMessageMatchesTheIndependentVector() {
        let message = Self.binding().encryptedMessage(messageID: Self.messageID, sessionID: Self.sessionID)
        #expect(message == bytes(hex: Self.expected))
    }

    @Test func theRequestIsAuthBindTempAuthKey() throws {
        let binding = Self.binding()
        let request = binding.request(messageID: Self.messageID, sessionID: Self.sessionID)
        var reader = TLReader(request)
        #expect(try reader.readConstructorID() == 0xcdd4_2a05)
        #expect(try reader.readInt64() == Self.permanentKey.id)
        #expect(try reader.readInt64() == 0x0102_0304_0506_0708)
        #expect(try reader.readInt32() == 1_800_000_000)
        #expect(try reader.readBytes() == bytes(hex: Self.expected))
        #expect(reader.isAtEnd)
    }

    @Test func theServerAcceptsTheMatchingRequestOnly() throws {
        let message = Self.binding().encryptedMessage(messageID: Self.messageID, sessionID: Self.sessionID)
        func verify(
            key: AuthKey = Self.permanentKey, nonce: Int64 = 0x0102_0304_0506_0708, expiresAt: Int32 = 1_800_000_000,
            temporary: Int64 = Self.temporaryKeyID, session: Int64 = Self.sessionID, messageID: Int64 = Self.messageID
        ) throws(TemporaryKeyBindingError) {
            _ = try TemporaryKeyBinding.verify(
                encryptedMessage: message, permanentKey: key, permanentKeyID: key.id, nonce: nonce, expiresAt: expiresAt,
                temporaryKeyID: temporary, sessionID: session, messageID: messageID)
        }
        try verify()
        #expect(throws: TemporaryKeyBindingError.mismatch(field: "nonce")) { try verify(nonce: 1) }
        #expect(throws: TemporaryKeyBindingError.mismatch(field: "expires_at")) { try verify(expiresAt: 1_800_000_001) }
        #expect(throws: TemporaryKeyBindingError.mismatch(field: "temp_auth_key_id")) { try verify(temporary: 5) }
        #expect(throws: TemporaryKeyBindingError.mismatch(field: "temp_session_id")) { try verify(session: 5) }
        #expect(throws: TemporaryKeyBindingError.mismatch(field: "msg_id")) { try verify(messageID: Self.messageID + 4) }
        #expect(throws: TemporaryKeyBindingError.self) { try verify(key: Fixtures.authKey(seed: 3)) }
    }

    /// The session builds the request when it gives it a msg_id, and anew under a new msg_id
    /// when bad_server_salt makes it resend: the server sees a matching binding both times.
    @Test func theSessionBindsTheRequestToItsOwnMsgIDAcrossAResend() throws {
        var pair = SessionPair(clientSalt: 0x0BAD)
        var entropy = SeededEntropy(seed: 11)
        let binding = TemporaryKeyBinding(permanentKey: Self.permanentKey, temporaryKeyID: pair.client.authKey.id, expiresAt: 1_900_000_000, entropy: &entropy)
        let request = pair.client.enqueue(binding: binding)
        pair.clientDid(pair.client.flush(now: pair.now))
        var checked = 0
        let temporaryKeyID = pair.client.authKey.id
        let sessionID = pair.client.sessionID
        try pair.run { messageID, body in
            var reader = TLReader(body)
            guard (try? reader.readConstructorID()) == TemporaryKeyBinding.functionID,
                  let perm = try? reader.readInt64(), let nonce = try? reader.readInt64(), let expiresAt = try? reader.readInt32(),
                  let message = try? reader.readBytes()
            else { return nil }
            do {
                _ = try TemporaryKeyBinding.verify(
                    encryptedMessage: message, permanentKey: Self.permanentKey, permanentKeyID: perm, nonce: nonce, expiresAt: expiresAt,
                    temporaryKeyID: temporaryKeyID, sessionID: sessionID, messageID: messageID)
                checked += 1
                return [0xb5, 0x75, 0x72, 0x99]
            } catch {
                return nil
            }
        }
        #expect(checked == 1)
        #expect(pair.serverEvents.contains { if case .messageRejected = $0 { true } else { false } }, "the first attempt met bad_server_salt")
        #expect(pair.results[request] == [0xb5, 0x75, 0x72, 0x99])
    }

    private func bytes(hex text: String) -> [UInt8] {
        let digits = Array(text.utf8)
        return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(decoding: digits[$0...$0 + 1], as: UTF8.self), radix: 16) }
    }
}
