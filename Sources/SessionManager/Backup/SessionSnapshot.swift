import Foundation
import GRDB
import MTProto
import MTProtoClient

/// Everything the store keeps of one account's session, read out of one store to be written into
/// another: a snapshot of a PostgreSQL store is a SQLite store file, so it is checked, checksummed
/// and restored with the SQLite store's own backup code. Left out on purpose: the lease (the
/// fencing token of the store written to must only grow), flood waits, send-code deadlines, rate
/// buckets and account marks (facts about Telegram now, which an old copy must not roll back).
///
/// The future auth tokens of the account's phone come along under the phone key of the store they
/// were read from (a key only that store's secret makes): put back into that store they let a lost
/// session log in again without a code, as before the loss. A restore adds them to what the store
/// has; tokens Telegram has spent since are refused by it harmlessly.
public struct AccountSnapshot: Sendable {
    public var account: AccountID
    public var session: SessionState?
    public var futureSalts: [Int: [FutureSalt]]
    public var temporaryKeys: [Int: TemporaryAuthKey]
    public var peers: [PeerRecord]
    public var identity: DeviceIdentity?
    public var proxy: ProxySetting?
    /// The phone's tokens and the key they are kept under; nil when the account has none.
    public var futureAuthTokens: (phoneKey: String, tokens: [FutureAuthToken])?

    public init(account: AccountID, session: SessionState?, futureSalts: [Int: [FutureSalt]], temporaryKeys: [Int: TemporaryAuthKey],
                peers: [PeerRecord], identity: DeviceIdentity?, proxy: ProxySetting?,
                futureAuthTokens: (phoneKey: String, tokens: [FutureAuthToken])? = nil) {
        self.account = account
        self.session = session
        self.futureSalts = futureSalts
        self.temporaryKeys = temporaryKeys
        self.peers = peers
        self.identity = identity
        self.proxy = proxy
        self.futureAuthTokens = futureAuthTokens
    }

    /// Reads the account through the store contract; `peers` are the account's peers (the contract
    /// has lookups, not a listing: each engine lists its own).
    public static func read(_ account: AccountID, from store: any SessionStore, peers: [PeerRecord]) async throws -> AccountSnapshot {
        let session = try await store.loadSession(account: account)
        var salts: [Int: [FutureSalt]] = [:]
        var temporary: [Int: TemporaryAuthKey] = [:]
        for dc in (session?.dcs.keys).map(Array.init) ?? [] {
            let stored = try await store.futureSalts(dc: dc, account: account)
            if !stored.isEmpty { salts[dc] = stored }
            if let key = try await store.temporaryKey(dc: dc, account: account) { temporary[dc] = key }
        }
        var tokens: (phoneKey: String, tokens: [FutureAuthToken])?
        if let phoneKey = try await store.futureAuthTokenPhoneKey(account: account) {
            let kept = try await store.futureAuthTokens(phoneKey: phoneKey)
            if !kept.isEmpty { tokens = (phoneKey, kept) }
        }
        return AccountSnapshot(account: account, session: session, futureSalts: salts, temporaryKeys: temporary, peers: peers,
                               identity: try await store.identity(account: account), proxy: try await store.proxy(account: account),
                               futureAuthTokens: tokens)
    }

    /// Adds the snapshot's future auth tokens to `store` (oldest first, so the store's limit keeps
    /// the newest of its own and the snapshot's).
    public func addFutureAuthTokens(to store: any SessionStore) async throws {
        guard let (phoneKey, tokens) = futureAuthTokens else { return }
        for token in tokens.sorted(by: { $0.receivedAt < $1.receivedAt }) {
            try await store.addFutureAuthToken(token, account: account, phoneKey: phoneKey)
        }
    }

    /// Writes the account into a store that does not hold it yet (a fresh snapshot file), unfenced.
    public func write(into store: any SessionStore) async throws {
        if let session { try await store.saveSession(session, account: account, fence: nil) }
        for (dc, salts) in futureSalts.sorted(by: { $0.key < $1.key }) {
            try await store.saveFutureSalts(salts, dc: dc, account: account, fence: nil)
        }
        for (dc, key) in temporaryKeys.sorted(by: { $0.key < $1.key }) {
            try await store.saveTemporaryKey(key, dc: dc, account: account, fence: nil)
        }
        try await store.rememberPeers(peers, account: account, fence: nil)
        if let identity { _ = try await store.chooseIdentity(identity, account: account) }
        if let proxy { try await store.setProxy(proxy, account: account) }
        try await addFutureAuthTokens(to: store)
    }
}

/// Snapshots of a store kept outside it (a PostgreSQL store's): SQLite store files with the same
/// sidecars (SHA-256, size, commit counter) as the SQLite store's own backups, in a directory of
/// their own that holds nothing else. Never the `backups/` of a SQLite store directory: that
/// store's recovery would take a snapshot for one of its own backups.
public enum SnapshotDirectory {
    /// Makes a verified snapshot in `directory` (created 0700): a SQLite store is filled by `fill`
    /// in a staging folder inside `directory`, backed up with the SQLite store's backup (copy,
    /// `integrity_check`, row checks, SHA-256 sidecar), and the backup moved up into `directory`
    /// (file 0600). Its commit counter is its creation time in milliseconds, so newest-first
    /// holds across snapshots of any size. Prunes to `options.backupGenerations`; returns the
    /// record and the names of the pruned snapshots.
    public static func make(in directory: String, options: SQLiteStoreOptions, reason: BackupRecord.Reason,
                            fill: (SQLiteSessionStore) async throws -> Void) async throws(SessionStoreError) -> (BackupRecord, pruned: [String]) {
        // A SQLite store's own backups/ would be pruned by snapshot counters (creation times in ms,
        // newer than any of its backups) and read by that store's recovery as its own: refused.
        let parent = (directory as NSString).deletingLastPathComponent
        if (directory as NSString).lastPathComponent == "backups", FileManager.default.fileExists(atPath: parent + "/" + options.fileName) {
            throw .backupFailed(reason: "\(directory) is inside the SQLite store directory \(parent); snapshots of a PostgreSQL store need a directory of their own (--backup-dir), or that store's backups would be pruned and taken for its own")
        }
        // The default place (~/.local/share/tgsm/postgres-backups) may be the first thing made there.
        try? FileManager.default.createDirectory(atPath: (directory as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        try FileSystem.ensureDirectory(directory)
        let milliseconds = (options.clock.now().seconds * 1000).rounded(.down)
        // After the newest snapshot whatever the clock says: one taken while the clock was ahead
        // (before NTP stepped it back) would otherwise outrank every later one, which pruning
        // would then drop at once and a restore would pass over.
        let newest = BackupCatalog(directory: directory).entries().map(\.commitSequence).max() ?? 0
        let next = newest < Int64.max ? newest + 1 : newest  // a sidecar's number is read from a file
        let stamp = max(milliseconds.isFinite && abs(milliseconds) < 1e15 ? Int64(milliseconds) : 0, next)
        let staging = directory + "/.snapshot-\(getpid())-\(stamp)-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        // The staging store takes no backups of its own: the snapshot is its one backup (with the
        // default, every account's new key would back the growing file up again).
        var stagingOptions = options
        stagingOptions.backsUpOnAuthKeyChange = false
        let store = try SQLiteSessionStore.open(directory: staging, options: stagingOptions)
        let record: BackupRecord
        do throws(SessionStoreError) {
            do { try await fill(store) } catch let error as SessionStoreError { throw error } catch {
                throw SessionStoreError.backupFailed(reason: "the snapshot could not be filled: \(error)")
            }
            try await store.write("order the snapshot by time") { db in
                try db.execute(sql: "UPDATE store_meta SET value = MAX(value, ?) WHERE key = 'commit_seq'", arguments: [stamp])
            }
            record = try store.backup(reason: reason)
            try store.close()
        } catch {
            try? store.close()
            throw error
        }
        let from = store.backupDirectory + "/" + record.file
        try FileSystem.moveFile(from + ".json", directory + "/" + record.file + ".json.part")
        try FileSystem.moveFile(from, directory + "/" + record.file)
        // The sidecar last: a snapshot is listed only once its file is in place.
        try FileSystem.moveFile(directory + "/" + record.file + ".json.part", directory + "/" + record.file + ".json")
        FileSystem.syncFile(directory)
        let pruned = BackupCatalog(directory: directory).prune(keep: options.backupGenerations, now: record.createdAt)
        return (record, pruned)
    }

    /// The snapshots in `directory`, newest first, read from their sidecars.
    public static func list(_ directory: String) -> [BackupRecord] {
        BackupCatalog(directory: directory).entries().map(\.record)
    }

    /// Verifies one snapshot as a restore would (size, SHA-256, store checks on a copy); returns
    /// why it is not usable, or nil when it is. Changes nothing.
    public static func verify(_ file: String, in directory: String, options: SQLiteStoreOptions) -> String? {
        let catalog = BackupCatalog(directory: directory)
        guard let entry = catalog.entries().first(where: { $0.file == file }) else {
            return "no snapshot named \(file) with a readable sidecar in \(directory)"
        }
        let staging = directory + "/.verify-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).sqlite"
        defer { FileSystem.removeFile(staging) }
        return catalog.verifiedCopy(entry, to: staging, busyTimeout: options.busyTimeout)
    }

    /// Opens a verified copy of the snapshot `file` (nil: the newest that verifies) read from
    /// `directory`, runs `body` on it, then removes the copy. The snapshot itself is never opened or
    /// changed; one that fails verification is reported, not set aside (it may be another host's).
    public static func withVerifiedCopy<T>(of file: String?, in directory: String, options: SQLiteStoreOptions,
                                           _ body: (SQLiteSessionStore, BackupRecord) async throws -> T) async throws -> T {
        let catalog = BackupCatalog(directory: directory)
        var entries = catalog.entries()
        if let file { entries = entries.filter { $0.file == file } }
        guard !entries.isEmpty else {
            throw SessionStoreError.backupFailed(reason: file.map { "there is no snapshot named \($0) (with its sidecar) in \(directory)" }
                ?? "\(directory) holds no snapshot; take one first")
        }
        let staging = directory + "/.restore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: staging) }
        try FileSystem.ensureDirectory(staging)
        var problems: [String] = []
        for entry in entries {
            if let problem = catalog.verifiedCopy(entry, to: staging + "/" + options.fileName, busyTimeout: options.busyTimeout) {
                problems.append("\(entry.file): \(problem)")
                FileSystem.removeFile(staging + "/" + options.fileName)
                continue
            }
            let store = try SQLiteSessionStore.open(directory: staging, options: options)
            do {
                let result = try await body(store, entry.record)
                try store.close()
                return result
            } catch {
                try? store.close()
                throw error
            }
        }
        throw SessionStoreError.backupFailed(reason: "no snapshot passed verification (\(problems.joined(separator: "; "))); nothing was changed")
    }
}

extension SQLiteSessionStore {
    /// Every peer cached for the account (a snapshot carries the whole cache).
    public func allPeers(account: AccountID) async throws(SessionStoreError) -> [PeerRecord] {
        try await read("list the peers of \(account)") { db in
            try Row.fetchAll(db, sql: "SELECT kind, peer_id, access_hash, username, seen_at FROM peer WHERE account = ? ORDER BY kind, peer_id",
                             arguments: [account.rawValue]).compactMap { row -> PeerRecord? in
                guard let kind = row.string("kind").flatMap(PeerRecord.Kind.init(rawValue:)), let id = row.int64("peer_id"),
                      let seen = row.double("seen_at")
                else { return nil }
                return PeerRecord(kind: kind, id: id, accessHash: row.int64("access_hash"), username: row.string("username"),
                                  seenAt: UnixTime(seconds: seen))
            }
        }
    }
}
