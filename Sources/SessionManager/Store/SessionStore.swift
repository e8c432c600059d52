import MTProto
import MTProtoClient

/// Everything the session manager keeps per account, behind one engine-neutral contract: the
/// embedded SQLite store implements it today, a PostgreSQL store later. Nothing here names a file,
/// a pragma or a connection; engine-specific operations (file backups, recovery) live on the
/// implementation.
///
/// Every method is one transaction: a crash at any instant leaves either the state before the call
/// or the state after it. Writes scoped to one account take the writer's lease token (`fence`):
/// when the account's lease has since been taken over by another process (a newer token), the write
/// is rejected with `SessionStoreError.fenced` in the same transaction, so a paused or partitioned
/// old owner can never overwrite what the new owner wrote. `nil` skips the check (imports, tools
/// that run while no client does).
public protocol SessionStore: FloodLedgerStore, AccountStatusStore, PeerDirectory {
    // MARK: Accounts
    /// Every account with a row in the store, sorted.
    func accounts() async throws -> [AccountID]
    /// Deletes the account and everything kept for it (keys, peers, ledger, lease, identity), but
    /// its send-code deadlines: they are the phone number's (Telegram counts per number).
    func deleteAccount(_ account: AccountID) async throws

    // MARK: Telegram's notices
    /// Keeps a service notification, the newest `StoredServiceNotification.limit` per account.
    func recordServiceNotification(_ notification: StoredServiceNotification) async throws
    /// The notices received at or after `since`, newest first; every account's when `account` is nil.
    func serviceNotifications(account: AccountID?, since: UnixTime) async throws -> [StoredServiceNotification]

    // MARK: Freezes
    /// Keeps what is known of the account's freeze, replacing what was kept (an earlier `since` and
    /// known details stay when the new record lacks them).
    func recordFreeze(_ freeze: StoredAccountFreeze) async throws
    /// Forgets the account's freeze: Telegram no longer reports one.
    func clearFreeze(account: AccountID) async throws
    /// The freezes kept, every account's when `account` is nil.
    func freezes(account: AccountID?) async throws -> [StoredAccountFreeze]

    // MARK: The client's session (DCs, keys, salts, time offsets, home DC, user)
    func loadSession(account: AccountID) async throws -> SessionState?
    /// Replaces the account's session; returns whether a permanent auth key was added or changed.
    @discardableResult
    func saveSession(_ state: SessionState, account: AccountID, fence: LeaseToken?) async throws -> Bool
    /// The fine-grained writes the connection machine issues most often.
    func updateServerSalt(_ salt: Int64, dc: Int, account: AccountID, fence: LeaseToken?) async throws
    func updateTimeOffset(_ offset: Double, dc: Int, account: AccountID, fence: LeaseToken?) async throws
    /// Salts fetched ahead with get_future_salts, replacing those stored for the DC.
    func saveFutureSalts(_ salts: [FutureSalt], dc: Int, account: AccountID, fence: LeaseToken?) async throws
    func futureSalts(dc: Int, account: AccountID) async throws -> [FutureSalt]
    /// The PFS temporary key bound to the DC's permanent key, or nil to drop it.
    func saveTemporaryKey(_ key: TemporaryAuthKey?, dc: Int, account: AccountID, fence: LeaseToken?) async throws
    func temporaryKey(dc: Int, account: AccountID) async throws -> TemporaryAuthKey?

    // MARK: Update state
    func updateState(account: AccountID) async throws -> UpdateState?
    func saveUpdateState(_ state: UpdateState, account: AccountID, fence: LeaseToken?) async throws
    func channelPts(account: AccountID) async throws -> [Int64: Int32]
    func saveChannelPts(_ pts: Int32, channel: Int64, account: AccountID, fence: LeaseToken?) async throws

    // MARK: Peer cache
    /// Remembers peers seen in answers. A known access hash is never replaced by a missing one.
    func rememberPeers(_ peers: [PeerRecord], account: AccountID, fence: LeaseToken?) async throws
    /// Adds peers another library cached (a session import): a peer the store saw at or after the
    /// record's `seenAt` keeps what the store has, and a known access hash is never replaced by a
    /// missing one.
    func importPeers(_ peers: [PeerRecord], account: AccountID) async throws
    /// Every peer kept for the account, most recently seen first (a session export).
    func peers(account: AccountID) async throws -> [PeerRecord]
    /// Forgets the account's peers: its session now belongs to another Telegram user (or one not
    /// known), whose access hashes differ.
    func forgetPeers(account: AccountID) async throws

    // MARK: Identity and proxy
    func identity(account: AccountID) async throws -> DeviceIdentity?
    /// Stores `proposed` unless an identity is already stored; returns the stored one either way,
    /// so every caller converges on the identity chosen first.
    func chooseIdentity(_ proposed: DeviceIdentity, account: AccountID) async throws -> DeviceIdentity
    func proxy(account: AccountID) async throws -> ProxySetting?
    func setProxy(_ proxy: ProxySetting?, account: AccountID) async throws

    // MARK: Ownership lease
    /// Takes the account's lease for `holder`, or throws `SessionStoreError.leaseHeld` naming the
    /// live holder. A lease whose heartbeat expired, or whose holder `holderIsDead` reports dead,
    /// is taken over with the next fencing token.
    func acquireLease(account: AccountID, holder: LeaseHolder, now: UnixTime, ttl: Double,
                      holderIsDead: @escaping @Sendable (LeaseHolder) -> Bool) async throws -> Lease
    /// Extends the lease; throws `SessionStoreError.fenced` when it was taken over.
    func renewLease(_ lease: Lease, now: UnixTime, ttl: Double) async throws -> Lease
    /// Gives the lease up (keeping its token, so the next owner's is higher).
    func releaseLease(_ lease: Lease) async throws
    func currentLease(account: AccountID) async throws -> Lease?

    // MARK: Backups
    /// The backups recorded in the store, newest first.
    func recordedBackups() async throws -> [BackupRecord]
}
