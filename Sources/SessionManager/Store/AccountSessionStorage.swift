import MTProto
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
            state.dcs[dc]?.futureSalts = try await store.futureSalts(dc: dc, account: account).map(Self.wireForm)
        }
        return state
    }

    public func save(_ state: SessionState) async throws {
        try await store.saveSession(state, account: account, fence: fence)
        for (dc, dcState) in state.dcs {
            let wanted = dcState.temporaryKey.map { TemporaryAuthKey(key: $0.key, expiresAt: $0.expiresAt) }
            // A read is far cheaper than a write: most saves (salts, logins) leave the key alone.
            if try await store.temporaryKey(dc: dc, account: account) != wanted {
                try await store.saveTemporaryKey(wanted, dc: dc, account: account, fence: fence)
            }
            let salts = dcState.futureSalts.map(Self.storedForm)
            if try await store.futureSalts(dc: dc, account: account) != salts {
                try await store.saveFutureSalts(salts, dc: dc, account: account, fence: fence)
            }
        }
    }

    /// The store keeps times as `UnixTime`; the wire (and the client) as the DC's Int32 seconds.
    static func storedForm(_ salt: MTProto.FutureSalt) -> FutureSalt {
        FutureSalt(validSince: UnixTime(seconds: Double(salt.validSince)), validUntil: UnixTime(seconds: Double(salt.validUntil)), salt: salt.salt)
    }

    /// A time read from the file that is not a finite Int32 becomes 0 (a salt already over: dropped
    /// by the session), never a crash.
    static func wireForm(_ salt: FutureSalt) -> MTProto.FutureSalt {
        func seconds(_ time: UnixTime) -> Int32 {
            let value = time.seconds.rounded(.down)
            guard value.isFinite, value >= Double(Int32.min), value <= Double(Int32.max) else { return 0 }
            return Int32(value)
        }
        return MTProto.FutureSalt(validSince: seconds(salt.validSince), validUntil: seconds(salt.validUntil), salt: salt.salt)
    }
}
