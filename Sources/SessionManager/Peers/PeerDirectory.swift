/// Where an account's known peers are looked up: the peer cache's records in the session store.
/// The workers read it before spending contacts.resolveUsername's small daily budget, and to find
/// the access hash of a peer they are given by id alone.
public protocol PeerDirectory: Sendable {
    /// The peer of that kind and id, as last seen.
    func peer(kind: PeerRecord.Kind, id: Int64, account: AccountID) async throws -> PeerRecord?
    /// The peer last seen with this username (case-insensitive, a leading "@" ignored).
    func peer(username: String, account: AccountID) async throws -> PeerRecord?
}
