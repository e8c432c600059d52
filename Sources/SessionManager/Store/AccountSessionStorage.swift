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
        try await store.loadSession(account: account)
    }

    public func save(_ state: SessionState) async throws {
        try await store.saveSession(state, account: account, fence: fence)
    }
}
