/// Everything a peer can do wrong during the key exchange, client side and server side.
///
/// Each case names one failed check. None of them carries a secret (new_nonce, DH exponents, the key);
/// the values they do carry (constructor ids, fingerprints, dc ids) are public on the wire anyway.
/// The remedy is the same for almost all of them and the spec says so: discard the exchange, close
/// the connection, and start a new key exchange on a new connection.
public enum HandshakeError: Error, Sendable, Hashable, CustomStringConvertible {
    // Framing and decoding.
    case malformedEnvelope(PlainMessageError)
    case invalidMessageID(Int64)
    case unexpectedMessage(constructor: UInt32, expected: HandshakeStep)
    case malformedMessage(HandshakeStep)

    // Checks both sides make.
    case nonceMismatch(HandshakeStep)
    case serverNonceMismatch(HandshakeStep)
    case newNonceHashMismatch(HandshakeStep)
    case encryptedDataNotBlockAligned(HandshakeStep, byteCount: Int)
    case innerHashMismatch(HandshakeStep)
    case innerPaddingTooLong(HandshakeStep, byteCount: Int)

    // Client-side checks of the server.
    case noKnownServerKey(offered: [UInt64])
    case pqOutOfRange(byteCount: Int)
    case pqNotFactorable
    case dhGeneratorInvalid(Int32)
    case dhPrimeUnsafe
    case dhGeneratorNotQuadraticResidue(Int32)
    case gAOutOfRange
    case serverRejectedDHParams
    case serverRejectedKey
    case tooManyRetries(limit: Int)

    // Server-side checks of the client.
    case unknownFingerprint(UInt64)
    case proofOfWorkMismatch
    case rsaDecryptionFailed
    case dcMismatch(accepted: [Int32], received: Int32)
    case temporaryKeyLifetimeInvalid(Int32)
    case gBOutOfRange
    case retryIDMismatch
    case tooManyAttempts(limit: Int)

    public var description: String {
        let restart = "Close the connection and start a new key exchange."
        switch self {
        case .malformedEnvelope(let error):
            return error.description
        case .invalidMessageID(let id):
            return "The peer's msg_id \(id) breaks the parity rule (client ids are divisible by 4, server ids are odd): "
                + "it is not a conforming MTProto peer. \(restart)"
        case .unexpectedMessage(let constructor, let expected):
            return "Received constructor 0x\(String(constructor, radix: 16)) while waiting for \(expected): the peer "
                + "is out of step with the key exchange. \(restart)"
        case .malformedMessage(let step):
            return "The \(step) message does not decode as its TL type (truncated or garbage bytes). \(restart)"
        case .nonceMismatch(let step):
            return "The nonce in \(step) differs from the one this exchange started with: the message belongs to "
                + "another exchange or was forged. \(restart)"
        case .serverNonceMismatch(let step):
            return "The server_nonce in \(step) differs from the one chosen in resPQ: the message belongs to another "
                + "exchange or was forged. \(restart)"
        case .newNonceHashMismatch(let step):
            return "The new_nonce hash in \(step) is wrong: whoever sent it does not know new_nonce, so it is not the "
                + "server we encrypted to (or the keys disagree). \(restart)"
        case .encryptedDataNotBlockAligned(let step, let count):
            return "The encrypted part of \(step) is \(count) bytes, not a multiple of the 16-byte AES block. \(restart)"
        case .innerHashMismatch(let step):
            return "After decryption, the SHA-1 at the start of \(step) does not match its content: the data was "
                + "encrypted with other nonces or corrupted. \(restart)"
        case .innerPaddingTooLong(let step, let count):
            return "After decryption, \(step) ends in \(count) bytes of padding where 0 to 15 are allowed. \(restart)"
        case .noKnownServerKey(let offered):
            let list = offered.map { "0x" + String($0, radix: 16) }.joined(separator: ", ")
            return "The server offers RSA keys [\(list)], none of which this client trusts: it is not the server we "
                + "meant to reach, or our key list is outdated. Check the configured server keys."
        case .pqOutOfRange(let count):
            return "The server's pq is \(count) bytes long; a product of two 32-bit primes (at most 8 bytes) is expected. "
                + restart
        case .pqNotFactorable:
            return "The server's pq is not the product of two distinct odd primes. \(restart)"
        case .dhGeneratorInvalid(let g):
            return "The server proposes DH generator g = \(g); only 2 to 7 are allowed. \(restart)"
        case .dhPrimeUnsafe:
            return "The server's dh_prime is not a 2048-bit safe prime, so the key would be weak. \(restart)"
        case .dhGeneratorNotQuadraticResidue(let g):
            return "The server's g = \(g) does not generate the prime-order subgroup of its dh_prime. \(restart)"
        case .gAOutOfRange:
            return "The server's g_a lies outside (2^1984, dh_prime - 2^1984), so the key would be weak. \(restart)"
        case .serverRejectedDHParams:
            return "The server answered server_DH_params_fail (authentic: its new_nonce hash is right): it refused "
                + "our proof of work or inner data. \(restart)"
        case .serverRejectedKey:
            return "The server answered dh_gen_fail (authentic: its new_nonce_hash3 is right) and will not accept a key "
                + "from this exchange. \(restart)"
        case .tooManyRetries(let limit):
            return "The server asked for a new g_b more than \(limit) times (dh_gen_retry). Wait, then start a new key "
                + "exchange on a new connection."
        case .unknownFingerprint(let fingerprint):
            return "The client encrypted to RSA key 0x\(String(UInt64(fingerprint), radix: 16)), which this server did "
                + "not offer. The client's key list does not match ours: configure the client with our public key."
        case .proofOfWorkMismatch:
            return "The client's pq, p or q differ from the pq this server issued (or p >= q): its proof of work is "
                + "wrong. \(restart)"
        case .rsaDecryptionFailed:
            return "The client's encrypted_data decrypts to nothing valid under RSA_PAD or the older SHA-1 scheme: it "
                + "was encrypted to another key or corrupted. \(restart)"
        case .dcMismatch(let accepted, let received):
            let list = accepted.map(String.init).joined(separator: ", ")
            return "The client addressed DC \(received) in p_q_inner_data, but this server answers as DC [\(list)] "
                + "(test DCs add 10000, media DCs are negative). Point the client at the right DC."
        case .temporaryKeyLifetimeInvalid(let seconds):
            return "The client asked for a temporary key living \(seconds) s; a positive lifetime is required. \(restart)"
        case .gBOutOfRange:
            return "The client's g_b lies outside (2^1984, dh_prime - 2^1984), so the key would be weak. \(restart)"
        case .retryIDMismatch:
            return "The client's retry_id is neither 0 (first attempt) nor the auth_key_aux_hash of its previous "
                + "attempt. \(restart)"
        case .tooManyAttempts(let limit):
            return "The client restarted the key exchange more than \(limit) times on one connection. Close it; the "
                + "client may reconnect."
        }
    }
}

/// The messages of the key exchange, named for error reports and for `unexpectedMessage`.
public enum HandshakeStep: String, Sendable, Hashable, CustomStringConvertible {
    case reqPQ = "req_pq/req_pq_multi"
    case resPQ = "resPQ"
    case reqDHParams = "req_DH_params"
    case pqInnerData = "p_q_inner_data"
    case serverDHParams = "server_DH_params"
    case serverDHInnerData = "server_DH_inner_data"
    case setClientDHParams = "set_client_DH_params"
    case clientDHInnerData = "client_DH_inner_data"
    case dhGen = "dh_gen_ok/retry/fail"
    case dhGenOK = "dh_gen_ok"
    case dhGenRetry = "dh_gen_retry"
    case dhGenFail = "dh_gen_fail"
    case serverDHParamsFail = "server_DH_params_fail"

    public var description: String { rawValue }
}
