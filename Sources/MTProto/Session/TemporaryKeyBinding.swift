import MTProtoCrypto
import MTProtoSchema
import TL

/// Why a server refused a binding message (auth.bindTempAuthKey's `encrypted_message`): every case
/// is answered with 400 ENCRYPTED_MESSAGE_INVALID.
public enum TemporaryKeyBindingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message did not decrypt under the permanent key it names.
    case undecryptable(MessageCryptoV1Error)
    /// The decrypted header is not the spec's (seq_no 0, msg_len 40) or the body is not bind_auth_key_inner.
    case malformedInner(String)
    /// A field of the inner message disagrees with the request that carried it.
    case mismatch(field: String)

    public var description: String {
        switch self {
        case .undecryptable(let error): "the binding message does not decrypt under the permanent key: \(error)"
        case .malformedInner(let reason): "the binding message is not a bind_auth_key_inner as the spec describes: \(reason)"
        case .mismatch(let field): "the binding message's \(field) differs from the request that carried it (or from its temporary key and session)"
        }
    }
}

/// The PFS binding (spec `method/auth.bindTempAuthKey`): proof, made with the permanent key, that
/// the temporary key belongs to its holder. The inner `bind_auth_key_inner` is encrypted with
/// MTProto 1.0 under the permanent key, as a message whose header carries `random:int128` instead
/// of salt and session, the msg_id of the auth.bindTempAuthKey request itself, seq_no 0 and
/// msg_len 40.
///
/// The request depends on its own msg_id, so the session builds it when it assigns one
/// (`ClientSession.enqueue(binding:)`); a resend (bad_server_salt, a new session) gets a new msg_id
/// and therefore a newly encrypted message.
public struct TemporaryKeyBinding: Sendable, Equatable {
    public static let functionID: UInt32 = 0xcdd42a05
    public let permanentKey: AuthKey
    public let temporaryKeyID: Int64
    public let nonce: Int64
    /// Server time (Unix seconds) at which the temporary key stops working.
    public let expiresAt: Int32
    /// The 16 random bytes in place of salt and session id.
    public let random: [UInt8]
    /// Up to 15 random bytes that pad the 72-byte message to whole blocks (it needs 8).
    public let padding: [UInt8]

    public init(permanentKey: AuthKey, temporaryKeyID: Int64, expiresAt: Int32, entropy: inout some EntropySource) {
        self.permanentKey = permanentKey
        self.temporaryKeyID = temporaryKeyID
        self.expiresAt = expiresAt
        var nonce: Int64 = 0
        while nonce == 0 { nonce = entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) } }
        self.nonce = nonce
        self.random = entropy.bytes(16)
        self.padding = entropy.bytes(MessageCryptoV1.paddingLength(plaintextLength: 32 + 40))
    }

    /// For known-answer tests: every random part given.
    public init(permanentKey: AuthKey, temporaryKeyID: Int64, expiresAt: Int32, nonce: Int64, random: [UInt8], padding: [UInt8]) {
        precondition(random.count == 16 && padding.count == MessageCryptoV1.paddingLength(plaintextLength: 72), "random:int128 and 8 bytes of padding")
        self.permanentKey = permanentKey
        self.temporaryKeyID = temporaryKeyID
        self.expiresAt = expiresAt
        self.nonce = nonce
        self.random = random
        self.padding = padding
    }

    /// The plaintext before padding: random, msg_id, seq_no 0, msg_len 40, bind_auth_key_inner.
    public func plaintext(messageID: Int64, sessionID: Int64) -> [UInt8] {
        let inner = MT.BindAuthKeyInner.bindAuthKeyInner(.init(
            nonce: nonce, tempAuthKeyId: temporaryKeyID, permAuthKeyId: permanentKey.id, tempSessionId: sessionID, expiresAt: expiresAt))
        var writer = TLWriter(capacity: 80)
        writer.writeRawBytes(random)
        writer.writeInt64(messageID)
        writer.writeInt32(0)
        writer.writeInt32(40)
        inner.encode(to: &writer)
        return writer.takeBytes()
    }

    /// `encrypted_message`: perm_auth_key_id + msg_key + AES-256-IGE under MTProto 1.0.
    public func encryptedMessage(messageID: Int64, sessionID: Int64) -> [UInt8] {
        MessageCryptoV1.encrypt(
            plaintext: plaintext(messageID: messageID, sessionID: sessionID), padding: padding, authKey: permanentKey, direction: .clientToServer)
    }

    /// The serialized `auth.bindTempAuthKey(perm_auth_key_id, nonce, expires_at, encrypted_message)`
    /// for the request sent under `messageID` in session `sessionID` of the temporary key.
    public func request(messageID: Int64, sessionID: Int64) -> [UInt8] {
        var writer = TLWriter(capacity: 128)
        writer.writeConstructorID(Self.functionID)
        writer.writeInt64(permanentKey.id)
        writer.writeInt64(nonce)
        writer.writeInt32(expiresAt)
        writer.writeBytes(encryptedMessage(messageID: messageID, sessionID: sessionID))
        return writer.takeBytes()
    }

    /// What a server checks: the message opens under `permanentKey`, has the spec's header, and
    /// names the request's perm_auth_key_id, nonce and expires_at, the temporary key and session it
    /// arrived on, and the request's msg_id. Returns the inner message.
    public static func verify(
        encryptedMessage: [UInt8], permanentKey: AuthKey, permanentKeyID: Int64, nonce: Int64, expiresAt: Int32,
        temporaryKeyID: Int64, sessionID: Int64, messageID: Int64
    ) throws(TemporaryKeyBindingError) -> MT.BindAuthKeyInner.BindAuthKeyInner {
        let plaintext: [UInt8]
        do {
            plaintext = try MessageCryptoV1.decrypt(encryptedMessage, authKey: permanentKey, direction: .clientToServer)
        } catch {
            throw .undecryptable(error)
        }
        var reader = TLReader(plaintext)
        let inner: MT.BindAuthKeyInner.BindAuthKeyInner
        let innerMessageID: Int64
        do {
            _ = try reader.readInt128()
            innerMessageID = try reader.readInt64()
            let seqNo = try reader.readInt32()
            let length = try reader.readInt32()
            guard seqNo == 0, length == 40 else { throw TemporaryKeyBindingError.malformedInner("seq_no \(seqNo), msg_len \(length)") }
            let decoded = try MT.BindAuthKeyInner(from: &reader)
            guard reader.isAtEnd else { throw TemporaryKeyBindingError.malformedInner("bytes after bind_auth_key_inner") }
            switch decoded {
            case .bindAuthKeyInner(let value): inner = value
            }
        } catch let error as TemporaryKeyBindingError {
            throw error
        } catch {
            throw .malformedInner("\(error)")
        }
        if innerMessageID != messageID { throw .mismatch(field: "msg_id") }
        if inner.permAuthKeyId != permanentKeyID || permanentKey.id != permanentKeyID { throw .mismatch(field: "perm_auth_key_id") }
        if inner.nonce != nonce { throw .mismatch(field: "nonce") }
        if inner.expiresAt != expiresAt { throw .mismatch(field: "expires_at") }
        if inner.tempAuthKeyId != temporaryKeyID { throw .mismatch(field: "temp_auth_key_id") }
        if inner.tempSessionId != sessionID { throw .mismatch(field: "temp_session_id") }
        return inner
    }
}
