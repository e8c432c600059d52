import MTProto
import MTProtoCrypto
import TL
import TLSchema

/// Perfect forward secrecy (spec `api/pfs`, `method/auth.bindTempAuthKey`): binding a temporary
/// key, made by a p_q_inner_data_temp_dc exchange, to the permanent key whose authorization it
/// then carries.
extension DCState {
    mutating func bindTempAuthKey(_ request: Api.functions.auth.BindTempAuthKey, context: CallContext, now: Double) throws -> RPCAnswer {
        let temporaryRef = AuthKeyRef(dc: context.dc, keyID: context.authKeyID)
        guard var temporary = temporaryKeys[temporaryRef] else {
            // Called over a permanent key: there is no temporary key to bind.
            throw RequestError(code: 400, message: "TEMP_AUTH_KEY_EMPTY")
        }
        let permanentRef = AuthKeyRef(dc: context.dc, keyID: request.permAuthKeyId)
        guard !droppedKeys.contains(permanentRef), let permanent = authKeys[permanentRef] else {
            // Nothing to decrypt the message with: to the client this is the same as a forgery.
            throw RequestError(code: 400, message: "ENCRYPTED_MESSAGE_INVALID")
        }
        do {
            _ = try TemporaryKeyBinding.verify(
                encryptedMessage: request.encryptedMessage, permanentKey: permanent, permanentKeyID: request.permAuthKeyId,
                nonce: request.nonce, expiresAt: request.expiresAt, temporaryKeyID: context.authKeyID,
                sessionID: context.sessionID, messageID: context.messageID)
        } catch {
            throw RequestError(code: 400, message: "ENCRYPTED_MESSAGE_INVALID")
        }
        guard Double(request.expiresAt) > now else { throw RequestError(code: 400, message: "ENCRYPTED_MESSAGE_INVALID") }
        if let bound = temporary.boundTo, bound != permanent.id {
            throw RequestError(code: 400, message: "TEMP_AUTH_KEY_ALREADY_BOUND")
        }
        // "Each permanent key may only be bound to one temporary key at a time, binding a new
        // temporary key overwrites the previous one."
        for (other, record) in temporaryKeys where other != temporaryRef && other.dc == context.dc && record.boundTo == permanent.id {
            temporaryKeys[other]?.boundTo = nil
        }
        temporary.boundTo = permanent.id
        temporary.expiresAt = min(temporary.expiresAt, Double(request.expiresAt))
        temporaryKeys[temporaryRef] = temporary
        temporaryKeyBinds += 1
        return .encode(true)
    }

    /// The permanent key a temporary key is bound to, for tests and the control API.
    public func permanentKeyID(boundTo temporaryKeyID: Int64, dc: Int32) -> Int64? {
        temporaryKeys[AuthKeyRef(dc: dc, keyID: temporaryKeyID)]?.boundTo
    }
}
