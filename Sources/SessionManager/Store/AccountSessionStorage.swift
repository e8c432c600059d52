import MTProto
import MTProtoClient
import Synchronization

/// The client's `SessionStorage` for one account of a `SessionStore`: what `TelegramClient` loads
/// its keys from and saves them to. Every save carries the lease token, so a process that lost
/// the account's lease can no longer overwrite the new owner's keys.
public struct AccountSessionStorage: SessionStorage {
    public let store: any SessionStore
    public let account: AccountID
    public let fence: LeaseToken?
    /// What this adapter last read or wrote of each DC's temporary key and future salts: a save
    /// compares with it instead of reading them back (the lease makes this the account's only writer).
    private let known = KnownColumns()
    /// Told each save's outcome (nil: saved; else the error): the account's health shows saves failing.
    public let saves = SaveOutcomes()

    /// Where a save's outcome goes, once the runtime has the account's health.
    public final class SaveOutcomes: Sendable {
        private let observer = Mutex<(@Sendable (String?) -> Void)?>(nil)

        public func report(to observer: @escaping @Sendable (String?) -> Void) { self.observer.withLock { $0 = observer } }

        func saved(failure: String?) { observer.withLock { $0 }?(failure) }
    }

    public init(store: any SessionStore, account: AccountID, lease: Lease?) {
        self.store = store
        self.account = account
        self.fence = lease?.token
    }

    private final class KnownColumns: Sendable {
        struct Columns: Sendable {
            var temporaryKey: TemporaryAuthKey?
            var futureSalts: [FutureSalt]
        }

        let byDC = Mutex<[Int: Columns]>([:])
    }

    public func load() async throws -> SessionState? {
        // A load reads everything anew (another writer, e.g. a restore, may have been at work).
        known.byDC.withLock { $0 = [:] }
        guard var state = try await store.loadSession(account: account) else { return nil }
        // PFS: the temporary keys live in their own columns (the store's temporary-key API).
        for dc in state.dcs.keys {
            let stored = try await columns(dc: dc)
            if let key = stored.temporaryKey {
                state.dcs[dc]?.temporaryKey = BoundTemporaryKey(key: key.key, expiresAt: key.expiresAt)
            }
            state.dcs[dc]?.futureSalts = stored.futureSalts.map(Self.wireForm)
        }
        return state
    }

    /// Most saves (salts, update state, logins) leave both columns alone: they are written only
    /// when they differ from what is known to be stored.
    public func save(_ state: SessionState) async throws {
        do {
            try await saveColumns(state)
            saves.saved(failure: nil)
        } catch {
            saves.saved(failure: "\((error as? SessionStoreError).map { "\($0) [\($0.code)]" } ?? "\(error)")")
            throw error
        }
    }

    private func saveColumns(_ state: SessionState) async throws {
        try await store.saveSession(state, account: account, fence: fence)
        // saveSession drops the rows of DCs the state no longer has, and with them their columns.
        known.byDC.withLock { $0 = $0.filter { state.dcs[$0.key] != nil } }
        for (dc, dcState) in state.dcs {
            let stored = try await columns(dc: dc)
            let wanted = KnownColumns.Columns(
                temporaryKey: dcState.temporaryKey.map { TemporaryAuthKey(key: $0.key, expiresAt: $0.expiresAt) },
                futureSalts: dcState.futureSalts.map(Self.storedForm))
            if stored.temporaryKey != wanted.temporaryKey {
                // Remembered only once both are written: a failed write leaves it to be read again.
                known.byDC.withLock { _ = $0.removeValue(forKey: dc) }
                try await store.saveTemporaryKey(wanted.temporaryKey, dc: dc, account: account, fence: fence)
            }
            if stored.futureSalts != wanted.futureSalts {
                known.byDC.withLock { _ = $0.removeValue(forKey: dc) }
                try await store.saveFutureSalts(wanted.futureSalts, dc: dc, account: account, fence: fence)
            }
            known.byDC.withLock { $0[dc] = wanted }
        }
    }

    /// The DC's temporary key and future salts as stored: remembered, or read once.
    private func columns(dc: Int) async throws -> KnownColumns.Columns {
        if let remembered = known.byDC.withLock({ $0[dc] }) { return remembered }
        let read = KnownColumns.Columns(
            temporaryKey: try await store.temporaryKey(dc: dc, account: account), futureSalts: try await store.futureSalts(dc: dc, account: account))
        known.byDC.withLock { $0[dc] = read }
        return read
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
