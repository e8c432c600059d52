import GRDB
import MTProto

/// The ownership lease on SQLite. Every step is one IMMEDIATE transaction, so two processes racing
/// for a free or stale lease are serialized by the database: exactly one gets the next token.
extension SQLiteSessionStore {
    public func acquireLease(account: AccountID, holder: LeaseHolder, now: UnixTime, ttl: Double,
                             holderIsDead: @escaping @Sendable (LeaseHolder) -> Bool) async throws(SessionStoreError) -> Lease {
        let lease = try await write("take the lease of \(account)") { db in
            let current = try Self.currentLease(db, account: account)
            let released = try Bool.fetchOne(db, sql: "SELECT released = 1 FROM lease WHERE account = ?", arguments: [account.rawValue]) ?? true
            if let current, !released, !current.isExpired(at: now), !holderIsDead(current.holder) {
                throw SessionStoreError.leaseHeld(current)
            }
            let token = LeaseToken((current?.token.rawValue ?? 0) + 1)
            let lease = Lease(account: account, holder: holder, startedAt: now, heartbeatAt: now, expiresAt: now + ttl, token: token)
            try db.execute(sql: """
                INSERT INTO lease(account, holder_host, holder_pid, started_at, heartbeat_at, expires_at, token, released)
                VALUES (?, ?, ?, ?, ?, ?, ?, 0)
                ON CONFLICT(account) DO UPDATE SET holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at,
                    token = excluded.token, released = 0
                """, arguments: [account.rawValue, holder.host, holder.pid, now.seconds, now.seconds, lease.expiresAt.seconds, token.rawValue])
            return (lease, current, released)
        }
        if let previous = lease.1, !lease.2 {
            logger.warning("took over a stale lease", metadata: [
                "account": "\(account)", "previous_holder": "\(previous.holder)", "previous_token": "\(previous.token)",
                "previous_expired": "\(previous.isExpired(at: now))", "token": "\(lease.0.token)",
            ])
        } else {
            logger.info("lease taken", metadata: ["account": "\(account)", "token": "\(lease.0.token)"])
        }
        return lease.0
    }

    public func renewLease(_ lease: Lease, now: UnixTime, ttl: Double) async throws(SessionStoreError) -> Lease {
        try await write("renew the lease of \(lease.account)") { db in
            try Self.checkFence(db, account: lease.account, fence: lease.token)
            var renewed = lease
            renewed.heartbeatAt = now
            renewed.expiresAt = now + ttl
            try db.execute(sql: "UPDATE lease SET heartbeat_at = ?, expires_at = ? WHERE account = ? AND token = ?",
                           arguments: [now.seconds, renewed.expiresAt.seconds, lease.account.rawValue, lease.token.rawValue])
            return renewed
        }
    }

    public func releaseLease(_ lease: Lease) async throws(SessionStoreError) {
        try await write("release the lease of \(lease.account)") { db in
            // Releasing a lease that was already taken over is a no-op: it is not ours to release.
            try db.execute(sql: "UPDATE lease SET released = 1 WHERE account = ? AND token = ?",
                           arguments: [lease.account.rawValue, lease.token.rawValue])
        }
    }

    public func currentLease(account: AccountID) async throws(SessionStoreError) -> Lease? {
        try await read("read the lease of \(account)") { db in
            guard try Bool.fetchOne(db, sql: "SELECT released = 0 FROM lease WHERE account = ?", arguments: [account.rawValue]) == true else { return nil }
            return try Self.currentLease(db, account: account)
        }
    }

    /// The lease row, released or not.
    static func currentLease(_ db: Database, account: AccountID) throws -> Lease? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT holder_host, holder_pid, started_at, heartbeat_at, expires_at, token FROM lease WHERE account = ?"),
                                         arguments: [account.rawValue]),
              let host = row.string("holder_host"), let pid = row.int64("holder_pid"), let started = row.double("started_at"),
              let heartbeat = row.double("heartbeat_at"), let expires = row.double("expires_at"), let token = row.int64("token")
        else { return nil }
        return Lease(account: account, holder: LeaseHolder(host: host, pid: Int32(truncatingIfNeeded: pid)), startedAt: UnixTime(seconds: started),
                     heartbeatAt: UnixTime(seconds: heartbeat), expiresAt: UnixTime(seconds: expires), token: LeaseToken(token))
    }
}
