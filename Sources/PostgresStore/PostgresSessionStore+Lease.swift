import Logging
import MTProto
import PostgresNIO
import SessionManager

/// The ownership lease across hosts. Taking it runs under a transaction-scoped advisory lock per
/// account, so two processes racing for a free or stale lease (even one without a row yet) are
/// serialized by the database and exactly one gets the next token. Expiry is judged with the
/// caller's `now`: hosts must keep their clocks in step (NTP); a skew of S seconds moves the
/// takeover by up to S.
extension PostgresSessionStore {
    static let leaseColumns = "holder_host, holder_pid, started_at, heartbeat_at, expires_at, token, released"

    public func acquireLease(account: AccountID, holder: LeaseHolder, now: UnixTime, ttl: Double,
                             holderIsDead: @escaping @Sendable (LeaseHolder) -> Bool) async throws(SessionStoreError) -> Lease {
        let logger = self.logger
        let (lease, previous) = try await write("take the lease of \(account)") { connection -> (Lease, (lease: Lease, released: Bool)?) in
            try await connection.query(
                "SELECT pg_advisory_xact_lock(hashtextextended(\("tgsm.lease|" + account.rawValue), 0))", logger: logger)
            let found = try await Self.leaseRow(
                connection, "SELECT \(unescaped: Self.leaseColumns) FROM lease WHERE account = \(account.rawValue) FOR UPDATE",
                account: account, logger: logger)
            if let found, !found.released, !found.lease.isExpired(at: now), !holderIsDead(found.lease.holder) {
                throw SessionStoreError.leaseHeld(found.lease)
            }
            let token = LeaseToken((found?.lease.token.rawValue ?? 0) + 1)
            let lease = Lease(account: account, holder: holder, startedAt: now, heartbeatAt: now, expiresAt: now + ttl, token: token)
            try await connection.query("""
                INSERT INTO lease(account, holder_host, holder_pid, started_at, heartbeat_at, expires_at, token, released)
                VALUES (\(account.rawValue), \(holder.host), \(Int64(holder.pid)), \(now.seconds), \(now.seconds), \(lease.expiresAt.seconds),
                        \(token.rawValue), false)
                ON CONFLICT (account) DO UPDATE SET holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at,
                    token = excluded.token, released = false
                """, logger: logger)
            return (lease, found)
        }
        if let previous, !previous.released {
            logger.warning("took over a stale lease", metadata: [
                "account": "\(account)", "previous_holder": "\(previous.lease.holder)", "previous_token": "\(previous.lease.token)",
                "previous_expired": "\(previous.lease.isExpired(at: now))", "token": "\(lease.token)",
            ])
        } else {
            logger.info("lease taken", metadata: ["account": "\(account)", "token": "\(lease.token)"])
        }
        return lease
    }

    public func renewLease(_ lease: Lease, now: UnixTime, ttl: Double) async throws(SessionStoreError) -> Lease {
        let logger = self.logger
        return try await write("renew the lease of \(lease.account)") { connection in
            try await Self.checkFence(connection, account: lease.account, fence: lease.token, logger: logger, forUpdate: true)
            var renewed = lease
            renewed.heartbeatAt = now
            renewed.expiresAt = now + ttl
            try await connection.query("""
                UPDATE lease SET heartbeat_at = \(now.seconds), expires_at = \(renewed.expiresAt.seconds)
                WHERE account = \(lease.account.rawValue) AND token = \(lease.token.rawValue)
                """, logger: logger)
            return renewed
        }
    }

    public func releaseLease(_ lease: Lease) async throws(SessionStoreError) {
        let logger = self.logger
        try await write("release the lease of \(lease.account)") { connection in
            // Releasing a lease that was already taken over is a no-op: it is not ours to release.
            try await connection.query(
                "UPDATE lease SET released = true WHERE account = \(lease.account.rawValue) AND token = \(lease.token.rawValue)", logger: logger)
        }
    }

    public func currentLease(account: AccountID) async throws(SessionStoreError) -> Lease? {
        let logger = self.logger
        return try await read("read the lease of \(account)") { connection in
            let found = try await Self.leaseRow(
                connection, "SELECT \(unescaped: Self.leaseColumns) FROM lease WHERE account = \(account.rawValue)", account: account, logger: logger)
            guard let found, !found.released else { return nil }
            return found.lease
        }
    }

    /// The lease row (released or not) that `query` selects with `leaseColumns`.
    static func leaseRow(_ connection: PostgresConnection, _ query: PostgresQuery, account: AccountID, logger: Logger)
        async throws -> (lease: Lease, released: Bool)?
    {
        guard let row = try await connection.rows(query, logger: logger).first else { return nil }
        let (host, pid, started, heartbeat, expires, token, released) = try row.decode((String, Int64, Double, Double, Double, Int64, Bool).self)
        let lease = Lease(account: account, holder: LeaseHolder(host: host, pid: Int32(truncatingIfNeeded: pid)), startedAt: UnixTime(seconds: started),
                          heartbeatAt: UnixTime(seconds: heartbeat), expiresAt: UnixTime(seconds: expires), token: LeaseToken(token))
        return (lease, released)
    }
}
