import MTProtoCrypto
import MTProtoSchema
import TL

// Steps 7-9 of `mtproto/auth_key`: set_client_DH_params (client_DH_inner_data under tmp_aes_key)
// -> dh_gen_ok, dh_gen_retry (the client sends a new g_b) or dh_gen_fail.

extension ClientHandshake {
    /// A fresh b and g_b for this attempt, and the set_client_DH_params carrying them.
    mutating func sendClientDHParams(_ attempt: ClientKeyAttempt) throws(HandshakeError) -> MT.functions.SetClientDHParams {
        var attempt = attempt
        let (secret, gB) = attempt.group.generateKeyPair(entropy: &entropy)
        do {
            attempt.authKey = try AuthKey(attempt.group.sharedKey(peerPublicValue: attempt.gA, secret: secret))
        } catch let error as DHError {
            throw HandshakeError(error)
        } catch {
            preconditionFailure("a DH shared key is 256 bytes: \(error)")
        }
        let inner = MT.Client_DH_Inner_Data.clientDHInnerData(.init(
            nonce: attempt.nonces.nonce,
            serverNonce: attempt.nonces.serverNonce,
            retryId: attempt.retryID,
            gB: gB
        ))
        state = .awaitingDHGen(attempt)
        return MT.functions.SetClientDHParams(
            nonce: attempt.nonces.nonce,
            serverNonce: attempt.nonces.serverNonce,
            encryptedData: InnerDataCipher.seal(inner.serialized(), key: attempt.aesKey, iv: attempt.aesIV, entropy: &entropy)
        )
    }

    enum DHGenOutcome {
        case retry(MT.functions.SetClientDHParams)
        case done(HandshakeResult)
    }

    /// Checks dh_gen_ok/retry/fail against the key we computed: only a server that knows new_nonce
    /// and derived the same key produces the right new_nonce_hash1/2/3.
    mutating func answerDHGen(
        _ answer: MT.Set_client_DH_params_answer,
        attempt: ClientKeyAttempt,
        now: UnixTime
    ) throws(HandshakeError) -> DHGenOutcome {
        let step = answer.verdict.step
        guard answer.nonce == attempt.nonces.nonce else { throw .nonceMismatch(step) }
        guard answer.serverNonce == attempt.nonces.serverNonce else { throw .serverNonceMismatch(step) }
        guard let authKey = attempt.authKey else { preconditionFailure("awaitingDHGen always holds the attempt's key") }
        let expected = HandshakeDerivations.newNonceHash(attempt.nonces, verdict: answer.verdict, authKey: authKey)
        guard HandshakeDerivations.hashesMatch(answer.newNonceHash, expected) else { throw .newNonceHashMismatch(step) }
        switch answer.verdict {
        case .ok:
            state = .completed
            let lifetime: AuthKeyLifetime = switch configuration.keyType {
            case .permanent: .permanent
            case .temporary(let expiresIn): .temporary(expiresAt: now + Double(expiresIn))
            }
            return .done(HandshakeResult(
                authKey: authKey,
                serverSalt: HandshakeDerivations.firstServerSalt(attempt.nonces),
                serverTimeOffset: serverTimeOffset,
                lifetime: lifetime,
                dcID: configuration.innerDataEncryption == .rsaPad ? configuration.dcID : nil,
                retryCount: attempt.retryCount
            ))
        case .retry:
            guard attempt.retryCount < configuration.maxRetries else { throw .tooManyRetries(limit: configuration.maxRetries) }
            var next = attempt
            next.retryCount += 1
            next.retryID = HandshakeDerivations.retryID(after: authKey)
            next.authKey = nil
            return .retry(try sendClientDHParams(next))
        case .fail:
            throw .serverRejectedKey
        }
    }
}

extension ServerHandshake {
    /// Checks client_DH_inner_data and g_b, computes the key, and decides ok, retry or fail.
    mutating func answerSetClientDHParams(
        _ request: MT.functions.SetClientDHParams,
        attempt: ServerKeyAttempt,
        now: UnixTime
    ) throws(HandshakeError) -> (MT.Set_client_DH_params_answer, HandshakeResult?) {
        let nonces = attempt.nonces
        guard request.nonce == nonces.nonce else { throw .nonceMismatch(.setClientDHParams) }
        guard request.serverNonce == nonces.serverNonce else { throw .serverNonceMismatch(.setClientDHParams) }
        let boxed = try InnerDataCipher.open(request.encryptedData, key: attempt.aesKey, iv: attempt.aesIV, step: .clientDHInnerData) {
            (bytes) throws(HandshakeError) in
            try HandshakeCodec.decodePrefix(MT.Client_DH_Inner_Data.self, of: bytes, step: .clientDHInnerData)
        }
        let inner: MT.Client_DH_Inner_Data.ClientDHInnerData = switch boxed {
        case .clientDHInnerData(let value): value
        }
        guard inner.nonce == nonces.nonce else { throw .nonceMismatch(.clientDHInnerData) }
        guard inner.serverNonce == nonces.serverNonce else { throw .serverNonceMismatch(.clientDHInnerData) }
        let expectedRetryID = attempt.rejectedKey.map(HandshakeDerivations.retryID(after:)) ?? 0
        guard inner.retryId == expectedRetryID else { throw .retryIDMismatch }
        let authKey: AuthKey
        do {
            authKey = try AuthKey(configuration.group.sharedKey(peerPublicValue: inner.gB, secret: attempt.secret))
        } catch is DHError {
            throw .gBOutOfRange
        } catch {
            preconditionFailure("a DH shared key is 256 bytes: \(error)")
        }

        let policy = configuration.retryPolicy
        var verdict = DHGenVerdict.ok
        if attempt.retryCount < policy.forcedRetries
            || (policy.retryKeysWithLeadingZeroByte && authKey.bytes[0] == 0) {
            verdict = attempt.retryCount < policy.maxRetries ? .retry : .fail
        }
        let answer = verdict.answer(
            nonce: nonces.nonce,
            serverNonce: nonces.serverNonce,
            newNonceHash: HandshakeDerivations.newNonceHash(nonces, verdict: verdict, authKey: authKey)
        )
        switch verdict {
        case .ok:
            state = .completed
            let result = HandshakeResult(
                authKey: authKey,
                serverSalt: HandshakeDerivations.firstServerSalt(nonces),
                serverTimeOffset: 0,
                lifetime: attempt.lifetime,
                dcID: attempt.dcID,
                retryCount: attempt.retryCount
            )
            return (answer, result)
        case .retry:
            var next = attempt
            next.retryCount += 1
            next.rejectedKey = authKey
            state = .awaitingSetClientDHParams(next)
            return (answer, nil)
        case .fail:
            // The client may start over on this connection (bounded by maxAttempts).
            state = .awaitingReqPQ
            return (answer, nil)
        }
    }
}

/// What the client holds between server_DH_params_ok and dh_gen_*: one attempt at a key.
struct ClientKeyAttempt: Sendable {
    var nonces: ExchangeNonces
    var aesKey: [UInt8]
    var aesIV: [UInt8]
    var group: DHGroup
    var gA: [UInt8]
    var retryCount: Int
    var retryID: Int64
    /// g_a^b of this attempt; nil only while it is being built.
    var authKey: AuthKey?
}

/// What the server holds between server_DH_params_ok and the end: its secret a and the attempt count.
struct ServerKeyAttempt: Sendable {
    var nonces: ExchangeNonces
    var aesKey: [UInt8]
    var aesIV: [UInt8]
    /// a. Secret.
    var secret: [UInt8]
    var lifetime: AuthKeyLifetime
    var dcID: Int32?
    var retryCount: Int
    /// The key the previous attempt produced and we answered dh_gen_retry to; its aux hash is the
    /// retry_id the client must send next.
    var rejectedKey: AuthKey?
}
