import MTProtoCrypto
import MTProtoSchema
import TL

// Steps 4-6 of `mtproto/auth_key`: req_DH_params (p_q_inner_data under RSA) -> server_DH_params_ok
// (server_DH_inner_data under tmp_aes_key) or server_DH_params_fail.

extension ServerHandshake {
    /// Checks the proof of work and the RSA-encrypted inner data, then sends our DH half.
    mutating func answerReqDHParams(
        _ request: MT.functions.ReqDHParams,
        challenge: IssuedChallenge,
        now: UnixTime
    ) throws(HandshakeError) -> MT.Server_DH_Params {
        guard request.nonce == challenge.nonce else { throw .nonceMismatch(.reqDHParams) }
        guard request.serverNonce == challenge.serverNonce else { throw .serverNonceMismatch(.reqDHParams) }
        guard Self.number(request.p) == challenge.pq.p, Self.number(request.q) == challenge.pq.q else {
            throw .proofOfWorkMismatch
        }
        guard let key = configuration.keys.first(where: { $0.publicKey.fingerprint == request.publicKeyFingerprint }) else {
            throw .unknownFingerprint(UInt64(bitPattern: request.publicKeyFingerprint))
        }
        let inner = try decryptInnerData(request.encryptedData, key: key)
        guard Self.number(inner.pq) == challenge.pq.pq,
              Self.number(inner.p) == challenge.pq.p,
              Self.number(inner.q) == challenge.pq.q
        else { throw .proofOfWorkMismatch }
        guard inner.nonce == challenge.nonce else { throw .nonceMismatch(.pqInnerData) }
        guard inner.serverNonce == challenge.serverNonce else { throw .serverNonceMismatch(.pqInnerData) }
        if let dc = inner.dc, !configuration.dcIDs.isEmpty, !configuration.dcIDs.contains(dc) {
            throw .dcMismatch(accepted: configuration.dcIDs.sorted(), received: dc)
        }
        if let expiresIn = inner.expiresIn, expiresIn <= 0 { throw .temporaryKeyLifetimeInvalid(expiresIn) }

        let nonces = ExchangeNonces(nonce: inner.nonce, serverNonce: inner.serverNonce, newNonce: inner.newNonce)
        let (key: aesKey, iv: aesIV) = HandshakeDerivations.temporaryAESKeyAndIV(nonces)
        let group = configuration.group
        let (secret, gA) = group.generateKeyPair(entropy: &entropy)
        let answer = MT.Server_DH_inner_data.serverDHInnerData(.init(
            nonce: nonces.nonce,
            serverNonce: nonces.serverNonce,
            g: group.generator,
            dhPrime: group.prime,
            gA: gA,
            serverTime: Self.serverTime(now)
        ))
        let lifetime: AuthKeyLifetime = inner.expiresIn.map { .temporary(expiresAt: now + Double($0)) } ?? .permanent
        state = .awaitingSetClientDHParams(ServerKeyAttempt(
            nonces: nonces,
            aesKey: aesKey,
            aesIV: aesIV,
            secret: secret,
            lifetime: lifetime,
            dcID: inner.dc,
            retryCount: 0,
            rejectedKey: nil
        ))
        return .serverDHParamsOk(.init(
            nonce: nonces.nonce,
            serverNonce: nonces.serverNonce,
            encryptedAnswer: InnerDataCipher.seal(answer.serialized(), key: aesKey, iv: aesIV, entropy: &entropy)
        ))
    }

    /// RSA_PAD first (the current protocol), then the older SHA-1 scheme if allowed. A ciphertext made
    /// for one scheme fails the other's hash check, so trying both cannot mistake one for the other.
    private func decryptInnerData(_ encryptedData: [UInt8], key: RSAPrivateKey) throws(HandshakeError) -> PQInnerData {
        guard encryptedData.count == key.publicKey.byteCount else { throw .rsaDecryptionFailed }
        if let dataWithPadding = try? key.decryptRSAPad(encryptedData) {
            return PQInnerData(try HandshakeCodec.decodePrefix(MT.P_Q_inner_data.self, of: dataWithPadding, step: .pqInnerData).0)
        }
        guard configuration.acceptsLegacyRSA, let plaintext = try? key.decryptOldScheme(encryptedData) else {
            throw .rsaDecryptionFailed
        }
        // A wrong key leaves garbage that rarely decodes; either way the SHA-1 settles it.
        guard let (inner, length) = try? HandshakeCodec.decodePrefix(MT.P_Q_inner_data.self, of: plaintext.dataWithPadding, step: .pqInnerData),
              (try? plaintext.data(length: length)) != nil
        else { throw .rsaDecryptionFailed }
        return PQInnerData(inner)
    }

    /// A big-endian TL string as a number; nil when it cannot be one of ours.
    static func number(_ bytes: [UInt8]) -> UInt64? {
        guard (1...8).contains(bytes.count) else { return nil }
        return bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    static func serverTime(_ now: UnixTime) -> Int32 {
        Int32(clamping: Int64(now.seconds.rounded(.down).clamped(to: 0...Double(Int32.max))))
    }
}

extension ClientHandshake {
    /// Checks server_DH_params_ok (or an authentic server_DH_params_fail), validates the DH group and
    /// g_a, and sends our g_b in set_client_DH_params.
    mutating func answerServerDHParams(
        _ answer: MT.Server_DH_Params,
        nonces: ExchangeNonces,
        now: UnixTime
    ) throws(HandshakeError) -> MT.functions.SetClientDHParams {
        switch answer {
        case .serverDHParamsFail(let fail):
            guard fail.nonce == nonces.nonce else { throw .nonceMismatch(.serverDHParamsFail) }
            guard fail.serverNonce == nonces.serverNonce else { throw .serverNonceMismatch(.serverDHParamsFail) }
            guard HandshakeDerivations.hashesMatch(fail.newNonceHash, HandshakeDerivations.dhParamsFailHash(nonces)) else {
                throw .newNonceHashMismatch(.serverDHParamsFail)
            }
            throw .serverRejectedDHParams
        case .serverDHParamsOk(let ok):
            guard ok.nonce == nonces.nonce else { throw .nonceMismatch(.serverDHParams) }
            guard ok.serverNonce == nonces.serverNonce else { throw .serverNonceMismatch(.serverDHParams) }
            let (key: aesKey, iv: aesIV) = HandshakeDerivations.temporaryAESKeyAndIV(nonces)
            let boxed = try InnerDataCipher.open(ok.encryptedAnswer, key: aesKey, iv: aesIV, step: .serverDHInnerData) { (bytes) throws(HandshakeError) in
                try HandshakeCodec.decodePrefix(MT.Server_DH_inner_data.self, of: bytes, step: .serverDHInnerData)
            }
            let inner: MT.Server_DH_inner_data.ServerDHInnerData = switch boxed {
            case .serverDHInnerData(let value): value
            }
            guard inner.nonce == nonces.nonce else { throw .nonceMismatch(.serverDHInnerData) }
            guard inner.serverNonce == nonces.serverNonce else { throw .serverNonceMismatch(.serverDHInnerData) }
            let group: DHGroup
            do {
                group = try DHGroup(prime: inner.dhPrime, generator: inner.g)
                try group.checkPublicValue(inner.gA)
            } catch {
                throw HandshakeError(error)
            }
            serverTimeOffset = Double(inner.serverTime) - now.seconds
            let attempt = ClientKeyAttempt(
                nonces: nonces,
                aesKey: aesKey,
                aesIV: aesIV,
                group: group,
                gA: inner.gA,
                retryCount: 0,
                retryID: 0,
                authKey: nil
            )
            return try sendClientDHParams(attempt)
        }
    }
}

extension HandshakeError {
    /// The DH checks of the crypto layer, as handshake errors.
    init(_ error: DHError) {
        switch error {
        case .primeWrongSize, .primeNotPrime, .primeNotSafe: self = .dhPrimeUnsafe
        case .generatorOutOfRange(let g): self = .dhGeneratorInvalid(g)
        case .generatorNotQuadraticResidue(let g): self = .dhGeneratorNotQuadraticResidue(g)
        case .publicValueOutOfRange, .publicValueTooCloseToBounds, .publicValueTooLong: self = .gAOutOfRange
        }
    }
}

extension Double {
    fileprivate func clamped(to range: ClosedRange<Double>) -> Double { Swift.min(Swift.max(self, range.lowerBound), range.upperBound) }
}
