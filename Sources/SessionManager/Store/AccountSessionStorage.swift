import MTProtoClient

/// The client's `SessionStorage` for one account of a `SessionStore`: what `TelegramClient` loads
/// its keys from and saves them to. Every save carries the lease token, so a process that lost
/// the account's lease can no longer overwrite the new owner's keys.
public struct AccountSessionStorage: SessionStorage {
    public let store: any SessionStore
    public let account: AccountID
    public let fence: LeaseToken?

    public init(store: any SessionStore, account: AccountID, lease: Lease?) {
        self.store = store
        self.account = account
        self.fence = lease?.token
    }

    public func load() async throws -> SessionState? {
        guard var state = try await store.loadSession(account: account) else { return nil }
        // PFS: the temporary keys live in their own columns (the store's temporary-key API).
        for dc in state.dcs.keys {
            if let stored = try await store.temporaryKey(dc: dc, account: account) {
                state.dcs[dc]?.temporaryKey = BoundTemporaryKey(key: stored.key, expiresAt: stored.expiresAt)
            }
        }
        return state
    }

    public func save(_ state: SessionState) async throws {
        try await store.saveSession(state, account: account, fence: fence)
        for (dc, dcState) in state.dcs {
            let wanted = dcState.temporaryKey.map { TemporaryAuthKey(key: $0.key, expiresAt: $0.expiresAt) }
            // A read is far cheaper than a write: most saves (salts, logins) leave the key alone.
            guard try await store.temporaryKey(dc: dc, account: account) != wanted else { continue }
            try await store.saveTemporaryKey(wanted, dc: dc, account: account, fence: fence)
        }
    }
}
