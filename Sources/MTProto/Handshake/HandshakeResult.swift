import MTProtoCrypto

/// Whether a key lives until revoked or expires by itself (a PFS temporary key).
public enum AuthKeyLifetime: Sendable, Hashable, CustomStringConvertible {
    case permanent
    /// `expiresAt` is when the server may forget the key: the exchange's time plus `expires_in`.
    case temporary(expiresAt: UnixTime)

    public var description: String {
        switch self {
        case .permanent: "permanent"
        case .temporary(let expiresAt): "temporary until \(expiresAt)"
        }
    }
}

/// What a finished key exchange leaves both sides with.
public struct HandshakeResult: Sendable, CustomStringConvertible {
    /// The 2048-bit key (its id is `authKey.id`). Secret.
    public let authKey: AuthKey
    /// The first server_salt: substr(new_nonce, 0, 8) XOR substr(server_nonce, 0, 8), as a TL long.
    public let serverSalt: Int64
    /// Server time minus local time, in seconds, from server_DH_inner_data's server_time (client side;
    /// 0 on the server). Add it to the local clock to make msg_ids the server accepts.
    public let serverTimeOffset: Double
    public let lifetime: AuthKeyLifetime
    /// The DC id the client addressed in p_q_inner_data (with 10000 added for test DCs, negative for
    /// media DCs); nil when the client used a form without it.
    public let dcID: Int32?
    /// How many dh_gen_retry rounds it took (0 when the first g_b was accepted).
    public let retryCount: Int

    public var description: String {
        var text = "HandshakeResult(\(authKey), \(lifetime), retries: \(retryCount)"
        if let dcID { text += ", dc: \(dcID)" }
        return text + ")"
    }
}
