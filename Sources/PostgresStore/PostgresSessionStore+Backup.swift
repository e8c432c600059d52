import Foundation
import Logging
import MTProto
import MTProtoClient
import PostgresNIO
import SessionManager

/// Verified snapshots of a PostgreSQL store, and restoring one. A snapshot is every account's
/// session (keys, salts, offsets, update state, peers, identity, proxy) copied into a SQLite store
/// file, backed up with the SQLite store's own code (integrity check, row checks, SHA-256 sidecar)
/// into a directory on this host, and recorded in the `backups` table for every process to see.
/// PostgreSQL's own tools (pg_dump, base backups) still back up the whole database; a snapshot is
/// what tgsm can check and put back account by account.
extension PostgresSessionStore {
    /// Takes a snapshot into `directory` (0700, files 0600) and records it. Each account is read in
    /// its own transactions while clients may run: the snapshot holds every account as it was at
    /// one moment of the snapshot, not all at the same moment.
    public func snapshot(into directory: String, options: SQLiteStoreOptions, reason: BackupRecord.Reason = .manual)
        async throws(SessionStoreError) -> BackupRecord
    {
        let accounts = try await self.accounts()
        let (record, pruned) = try await SnapshotDirectory.make(in: directory, options: sealedLikeThisStore(options), reason: reason) { target in
            for account in accounts {
                let copy = try await AccountSnapshot.read(account, from: self, peers: try await self.allPeers(account: account))
                try await copy.write(into: target)
            }
        }
        let logger = self.logger
        let host = LeaseHolder.current().host
        do {
            try await write("record the snapshot \(record.file)") { connection in
                try await connection.query("""
                    INSERT INTO backups(file, created_at, size, sha256, commit_seq, reason, directory, host, accounts)
                    VALUES (\(record.file), \(record.createdAt.seconds), \(record.size), \(record.sha256), \(record.commitSequence),
                            \(record.reason.rawValue), \(directory), \(host), \(Int64(accounts.count)))
                    ON CONFLICT (file) DO NOTHING
                    """, logger: logger)
                for file in pruned {
                    try await connection.query("DELETE FROM backups WHERE file = \(file) AND host = \(host)", logger: logger)
                }
            }
        } catch {
            throw .backupFailed(reason: "the snapshot \(directory)/\(record.file) was made and verified but not recorded in the database: \(error)")
        }
        logger.info("PostgreSQL store snapshot taken", metadata: [
            "backup": "\(record.file)", "directory": "\(directory)", "accounts": "\(accounts.count)", "size": "\(record.size)",
        ])
        return record
    }

    /// The snapshots recorded by every process of the cluster (`snapshot(into:)`), newest first.
    public func recordedBackups() async throws(SessionStoreError) -> [BackupRecord] {
        let logger = self.logger
        return try await read("list the recorded snapshots") { connection in
            try await connection.rows("""
                SELECT file, created_at, size, sha256, commit_seq, reason FROM backups ORDER BY commit_seq DESC, created_at DESC
                """, logger: logger).map { row in
                let (file, created, size, sha, sequence, reason) = try row.decode((String, Double, Int64, String, Int64, String).self)
                return BackupRecord(file: file, createdAt: UnixTime(seconds: created), size: size, sha256: sha, commitSequence: sequence,
                                    reason: BackupRecord.Reason(rawValue: reason) ?? .manual)
            }
        }
    }

    /// What a restore did.
    public struct RestoreReport: Sendable, Equatable {
        /// The snapshot put back.
        public var backup: String
        /// The accounts it held, each now as the snapshot has it.
        public var accounts: [AccountID]
        /// Live leases that `force` took over (their holders' writes are fenced from now on).
        public var tookOverFrom: [Lease]
    }

    /// Puts the snapshot `file` (nil: the newest that verifies) from `directory` back: each account
    /// it holds gets exactly the snapshot's session, peers, identity and proxy. Accounts the
    /// snapshot does not hold are left alone, and so are flood waits, send-code deadlines, rate
    /// buckets and account marks (what Telegram said since still holds).
    ///
    /// Safe on a live cluster: before anything is written, the restore takes the lease of every
    /// account it restores (as `holder`), so no client writes meanwhile; a live holder makes it
    /// refuse (`leaseHeld`) with nothing changed, unless `force`, which takes the lease over (the
    /// old holder's writes are fenced from then on, and it stops the account). Each account is
    /// replaced in one transaction under that lease; the leases are released at the end, so the
    /// next process to take one loads the restored session.
    /// - Parameter waiting: told, before it waits, how long the restore keeps the leases it took
    ///   over from live processes (until theirs would have ended) and whose they were.
    public func restore(from directory: String, backup file: String?, options: SQLiteStoreOptions, holder: LeaseHolder,
                        force: Bool = false,
                        waiting: @escaping @Sendable (_ seconds: Double, _ from: [Lease]) -> Void = { _, _ in }) async throws(SessionStoreError) -> RestoreReport {
        do {
            return try await SnapshotDirectory.withVerifiedCopy(of: file, in: directory, options: sealedLikeThisStore(options)) { snapshot, record in
                try await self.restore(snapshot, record: record, holder: holder, force: force, waiting: waiting)
            }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .backupFailed(reason: "the restore failed: \(error)")
        }
    }

    private func restore(_ snapshot: SQLiteSessionStore, record: BackupRecord, holder: LeaseHolder, force: Bool,
                         waiting: @Sendable (_ seconds: Double, _ from: [Lease]) -> Void) async throws -> RestoreReport {
        var copies: [AccountSnapshot] = []
        for account in try await snapshot.accounts() {
            copies.append(try await AccountSnapshot.read(account, from: snapshot, peers: try await snapshot.allPeers(account: account)))
        }
        // Every lease first: a live holder stops the restore before anything changed.
        var leases: [Lease] = []
        var tookOver: [Lease] = []
        do {
            for copy in copies {
                let previous = try await currentLease(account: copy.account)
                let now = clock.now()
                let lease = try await acquireLease(account: copy.account, holder: holder, now: now, ttl: 600,
                                                   holderIsDead: { force || LeaseHolder.isDeadOnThisHost($0) })
                leases.append(lease)
                if let previous, !previous.isExpired(at: now) { tookOver.append(previous) }
            }
        } catch {
            for lease in leases { try? await releaseLease(lease) }
            throw error
        }
        do {
            for (copy, lease) in zip(copies, leases) {
                try await replaceAccount(with: copy, fence: lease.token)
                try await copy.addFutureAuthTokens(to: self)
            }
        } catch {
            // Accounts already replaced stay replaced (each in its own transaction); the rest are as they were.
            for lease in leases { try? await releaseLease(lease) }
            throw error
        }
        // A process whose lease was taken over learns it at its next renewal (a third of its TTL
        // later) and keeps its connections until then. Released at once, the leases went to a
        // standby within a second, which connected with the same keys: Telegram answered
        // AUTH_KEY_DUPLICATED and every account needed a new login. Kept until the old leases would
        // have ended, by which time their holders have stopped (fenced at a renewal, or at their end).
        if let end = tookOver.map(Self.fencedHolderStopsBy).max() {
            let seconds = min(Self.longestTakeoverWait, max(0, end - clock.now()) + 1)
            waiting(seconds, tookOver)
            logger.notice("keeping the leases taken over until the processes that held them have stopped", metadata: ["seconds": "\(seconds)"])
            try await clock.sleep(for: seconds)
        }
        for lease in leases { try await releaseLease(lease) }
        logger.warning("PostgreSQL store restored from a snapshot", metadata: [
            "backup": "\(record.file)", "accounts": "\(copies.count)", "leases_taken_over": "\(tookOver.count)",
        ])
        return RestoreReport(backup: record.file, accounts: copies.map(\.account), tookOverFrom: tookOver)
    }

    /// When a process whose lease was taken over has stopped at the latest: at its next renewal (a
    /// third of its TTL after its last one, as `tgsm run` renews; fenced, it stops there), with room
    /// for a slow renewal, or at its lease's end if that comes first.
    static func fencedHolderStopsBy(_ lease: Lease) -> UnixTime {
        let ttl = lease.expiresAt - lease.heartbeatAt
        return min(lease.expiresAt, lease.heartbeatAt + ttl / 3 + 5)
    }

    /// A holder with a long TTL renews rarely; past this the restore lets go of the accounts anyway.
    static let longestTakeoverWait: Double = 300

    /// The options of a snapshot file: given no key, an encrypted store's snapshots are sealed with
    /// its own key source, so no snapshot of it ever holds its secrets in clear.
    func sealedLikeThisStore(_ options: SQLiteStoreOptions) -> SQLiteStoreOptions {
        guard case .none = options.encryption, isEncrypted else { return options }
        var sealed = options
        sealed.encryption = encryption
        return sealed
    }

    /// Replaces the account's session rows with the snapshot's, in one transaction fenced by the lease.
    func replaceAccount(with copy: AccountSnapshot, fence: LeaseToken) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        let account = copy.account.rawValue
        let (sealer, location, opened) = (self.sealer, database.location, encryptionHeader)
        let proxy = try StoredProxyLink.stored(copy.proxy, account: copy.account, sealer: sealer)
        try await accountWrite("restore the session of \(copy.account)", account: copy.account, fence: fence, now: now) { connection in
            try await Self.refuseStaleKey(connection, opened: opened, location: location, logger: logger)
            for table in ["dc", "future_salt", "update_state", "channel_pts", "peer"] {
                try await connection.query("DELETE FROM \(unescaped: table) WHERE account = \(account)", logger: logger)
            }
            let session = copy.session
            let identity = copy.identity
            try await connection.query("""
                UPDATE account SET home_dc = \(session.map { Int64($0.homeDC) }), user_id = \(session?.userID), is_bot = \(session?.isBot ?? false),
                    device_model = \(identity?.deviceModel), system_version = \(identity?.systemVersion), app_version = \(identity?.appVersion),
                    system_lang_code = \(identity?.systemLangCode), lang_pack = \(identity?.langPack), lang_code = \(identity?.langCode),
                    identity_chosen_at = \(identity?.chosenAt.seconds), proxy = \(proxy)
                WHERE id = \(account)
                """, logger: logger)
            for peer in copy.peers {
                try await connection.query("""
                    INSERT INTO peer(account, kind, peer_id, access_hash, username, seen_at)
                    VALUES (\(account), \(peer.kind.rawValue), \(peer.id), \(peer.accessHash), \(peer.username), \(peer.seenAt.seconds))
                    """, logger: logger)
            }
            for (dc, state) in (session?.dcs ?? [:]).sorted(by: { $0.key < $1.key }) {
                let temporary = copy.temporaryKeys[dc]
                let key = try state.authKey.map { try StoredSecret.stored($0.bytes, sealer: sealer, context: SecretContext.authKey(account, dc)) }
                let temporaryKey = try temporary.map {
                    try StoredSecret.stored($0.key.bytes, sealer: sealer, context: SecretContext.tempKey(account, dc))
                }
                try await connection.query("""
                    INSERT INTO dc(account, dc_id, auth_key, auth_key_id, server_salt, time_offset, is_authorized,
                                   temp_key, temp_key_id, temp_key_expires_at, updated_at)
                    VALUES (\(account), \(Int64(dc)), \(key), \(state.authKey?.id), \(state.serverSalt),
                            \(state.timeOffset), \(state.isAuthorized), \(temporaryKey), \(temporary?.key.id),
                            \(temporary?.expiresAt.seconds), \(now.seconds))
                    """, logger: logger)
            }
            for (dc, salts) in copy.futureSalts.sorted(by: { $0.key < $1.key }) {
                for salt in salts {
                    try await connection.query("""
                        INSERT INTO future_salt(account, dc_id, valid_since, valid_until, salt)
                        VALUES (\(account), \(Int64(dc)), \(salt.validSince.seconds), \(salt.validUntil.seconds), \(salt.salt))
                        ON CONFLICT (account, dc_id, valid_since) DO UPDATE SET valid_until = excluded.valid_until, salt = excluded.salt
                        """, logger: logger)
                }
            }
            if let updates = session?.updates {
                try await Self.saveUpdatesState(connection, updates, account: copy.account, now: now, logger: logger)
            }
        }
    }

    /// Every peer cached for the account (a snapshot carries the whole cache).
    public func allPeers(account: AccountID) async throws(SessionStoreError) -> [PeerRecord] {
        let logger = self.logger
        return try await read("list the peers of \(account)") { connection in
            try await connection.rows("""
                SELECT kind, peer_id, access_hash, username, seen_at FROM peer WHERE account = \(account.rawValue) ORDER BY kind, peer_id
                """, logger: logger).compactMap { row -> PeerRecord? in
                let (kindName, id, hash, username, seen) = try row.decode((String, Int64, Int64?, String?, Double).self)
                guard let kind = PeerRecord.Kind(rawValue: kindName) else { return nil }
                return PeerRecord(kind: kind, id: id, accessHash: hash, username: username, seenAt: UnixTime(seconds: seen))
            }
        }
    }
}
