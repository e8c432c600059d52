/// Perfect forward secrecy (spec `api/pfs`): every connection of the client runs on a temporary
/// key the DC forgets after `expiresIn` seconds, bound to the permanent key with
/// auth.bindTempAuthKey, so a permanent key stolen later cannot decrypt recorded traffic.
public struct PFSConfiguration: Sendable, Hashable {
    /// The temporary key's lifetime, asked for in p_q_inner_data_temp_dc and expires_at.
    public var expiresIn: Int32
    /// How long before expiry a new temporary key replaces it: new calls wait for the new key from
    /// then on, and the switch happens as soon as the calls in flight on the old key are answered.
    public var renewBefore: Double

    /// `renewBefore` defaults to a tenth of the lifetime, at most 5 minutes.
    public init(expiresIn: Int32 = 86_400, renewBefore: Double? = nil) {
        precondition(expiresIn > 0, "a temporary key needs a positive lifetime")
        self.expiresIn = expiresIn
        let margin = renewBefore ?? min(Double(expiresIn) / 10, 300)
        precondition(margin >= 0 && margin < Double(expiresIn), "renewal must start within the key's lifetime")
        self.renewBefore = margin
    }
}
