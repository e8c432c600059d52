import MTProtoCrypto
import MTProtoSchema
import TL

// Steps 1-3 of `mtproto/auth_key`: req_pq_multi -> resPQ, and the client's proof of work.

extension ServerHandshake {
    /// resPQ: a fresh server_nonce, a fresh pq challenge, and the fingerprints of our keys.
    /// A req_pq arriving in any state lands here and starts the exchange over.
    mutating func answerReqPQ(nonce: TLInt128) -> MT.ResPQ {
        let serverNonce = HandshakeRandom.int128(&entropy)
        let challenge = IssuedChallenge(nonce: nonce, serverNonce: serverNonce, pq: PQFactorization.generate(entropy: &entropy))
        state = .awaitingReqDHParams(challenge)
        return .resPQ(.init(
            nonce: nonce,
            serverNonce: serverNonce,
            pq: PQFactorization.bigEndianBytes(challenge.pq.pq),
            serverPublicKeyFingerprints: configuration.keys.map(\.publicKey.fingerprint)
        ))
    }
}

extension ClientHandshake {
    /// Checks resPQ, factors pq, and builds req_DH_params with p_q_inner_data encrypted to the first
    /// offered key we trust.
    mutating func answerResPQ(_ resPQ: MT.ResPQ.ResPQ, nonce: TLInt128) throws(HandshakeError) -> MT.functions.ReqDHParams {
        guard resPQ.nonce == nonce else { throw .nonceMismatch(.resPQ) }
        let factors: (p: [UInt8], q: [UInt8])
        do {
            factors = try PQFactorization.factor(bigEndian: resPQ.pq)
        } catch {
            switch error {
            case .invalidEncoding(let count): throw .pqOutOfRange(byteCount: count)
            default: throw .pqNotFactorable
            }
        }
        let offered = resPQ.serverPublicKeyFingerprints
        let trusted = configuration.serverKeys
        guard let key = offered.lazy.compactMap({ fingerprint in trusted.first { $0.fingerprint == fingerprint } }).first else {
            throw .noKnownServerKey(offered: offered.map { UInt64(bitPattern: $0) })
        }
        let nonces = ExchangeNonces(nonce: nonce, serverNonce: resPQ.serverNonce, newNonce: HandshakeRandom.int256(&entropy))
        var inner = PQInnerData(
            pq: resPQ.pq,
            p: factors.p,
            q: factors.q,
            nonce: nonces.nonce,
            serverNonce: nonces.serverNonce,
            newNonce: nonces.newNonce
        )
        if case .temporary(let expiresIn) = configuration.keyType { inner.expiresIn = expiresIn }
        let encryptedData: [UInt8]
        do {
            switch configuration.innerDataEncryption {
            case .rsaPad:
                inner.dc = configuration.dcID
                encryptedData = try key.encryptWithRSAPad(inner.boxed.serialized(), entropy: &entropy)
            case .legacy:
                encryptedData = try key.encryptWithOldScheme(inner.boxed.serialized(), entropy: &entropy)
            }
        } catch {
            // p_q_inner_data is at most 112 bytes and a trusted key is one we configured, so only a
            // key of the wrong size gets here: our configuration, not the server, is at fault.
            preconditionFailure("cannot encrypt p_q_inner_data to server key \(key): \(error)")
        }
        state = .awaitingServerDHParams(nonces)
        return MT.functions.ReqDHParams(
            nonce: nonces.nonce,
            serverNonce: nonces.serverNonce,
            p: factors.p,
            q: factors.q,
            publicKeyFingerprint: key.fingerprint,
            encryptedData: encryptedData
        )
    }
}

/// What the server remembers between resPQ and req_DH_params.
struct IssuedChallenge: Sendable {
    var nonce: TLInt128
    var serverNonce: TLInt128
    var pq: (pq: UInt64, p: UInt64, q: UInt64)
}
