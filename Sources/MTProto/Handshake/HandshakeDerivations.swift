import MTProtoCrypto
import TL

/// The values both sides derive from the nonces and the key, over `HandshakeCrypto`, typed with the
/// TL nonces so the sizes it checks are guaranteed here by construction.
enum HandshakeDerivations {
    static func temporaryAESKeyAndIV(_ nonces: ExchangeNonces) -> (key: [UInt8], iv: [UInt8]) {
        do {
            return try HandshakeCrypto.temporaryKeyAndIV(newNonce: nonces.newNonce.bytes, serverNonce: nonces.serverNonce.bytes)
        } catch {
            preconditionFailure("TL nonces have the sizes HandshakeCrypto expects: \(error)")
        }
    }

    /// new_nonce_hash1/2/3 of dh_gen_ok/retry/fail.
    static func newNonceHash(_ nonces: ExchangeNonces, verdict: DHGenVerdict, authKey: AuthKey) -> TLInt128 {
        do {
            let bytes = try HandshakeCrypto.newNonceHash(newNonce: nonces.newNonce.bytes, number: verdict.rawValue, authKey: authKey)
            return int128(bytes)
        } catch {
            preconditionFailure("TL nonces have the sizes HandshakeCrypto expects: \(error)")
        }
    }

    /// new_nonce_hash of server_DH_params_fail: the 128 lower-order bits of SHA1(new_nonce).
    static func dhParamsFailHash(_ nonces: ExchangeNonces) -> TLInt128 {
        int128(Array(Hashing.sha1(nonces.newNonce.bytes)[4..<20]))
    }

    static func firstServerSalt(_ nonces: ExchangeNonces) -> Int64 {
        do {
            return try HandshakeCrypto.initialServerSalt(newNonce: nonces.newNonce.bytes, serverNonce: nonces.serverNonce.bytes)
        } catch {
            preconditionFailure("TL nonces have the sizes HandshakeCrypto expects: \(error)")
        }
    }

    /// retry_id after dh_gen_retry: auth_key_aux_hash of the rejected key, read as a TL long.
    static func retryID(after authKey: AuthKey) -> Int64 {
        var value: UInt64 = 0
        for (index, byte) in authKey.auxHash.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
        return Int64(bitPattern: value)
    }

    /// Constant time: these hashes prove knowledge of new_nonce, so where they differ must not leak.
    static func hashesMatch(_ lhs: TLInt128, _ rhs: TLInt128) -> Bool {
        ConstantTime.equals(lhs.bytes, rhs.bytes)
    }

    private static func int128(_ bytes: [UInt8]) -> TLInt128 {
        guard let value = TLInt128(bytes: bytes) else { preconditionFailure("a new_nonce hash is 16 bytes") }
        return value
    }
}
