import Logging
import MTProto
import PostgresNIO
import SessionManager

/// Cluster-wide proactive rate buckets (`RateBucketStore`): one row per (account, bucket). A
/// reservation locks the rows it draws from (in key order: no deadlock between two reservations),
/// so two processes can never both spend the same token.
extension PostgresSessionStore: RateBucketStore {
    public func reserveTokens(account: AccountID, buckets: [SharedBucket], now: UnixTime, maximumWait: Double)
        async throws(SessionStoreError) -> RateGate.Decision
    {
        guard !buckets.isEmpty else { return .go(after: 0) }
        let logger = self.logger
        let ordered = buckets.sorted { $0.key < $1.key }
        return try await write("reserve rate tokens of \(account)") { connection in
            var current: [TokenBucket] = []
            for bucket in ordered {
                // A new bucket starts full, as a process's own does.
                try await connection.query("""
                    INSERT INTO rate_bucket(account, bucket, tokens, updated_at)
                    VALUES (\(account.rawValue), \(bucket.key), \(bucket.rate.capacity), \(now.seconds))
                    ON CONFLICT (account, bucket) DO NOTHING
                    """, logger: logger)
                guard let row = try await connection.rows(
                    "SELECT tokens, updated_at FROM rate_bucket WHERE account = \(account.rawValue) AND bucket = \(bucket.key) FOR UPDATE",
                    logger: logger).first
                else { throw SessionStoreError.database(operation: "reserve rate tokens of \(account)", reason: "bucket \(bucket.key) vanished", failure: .postgres) }
                let (tokens, updatedAt) = try row.decode((Double, Double).self)
                current.append(TokenBucket(rate: bucket.rate, tokens: tokens, updatedAt: UnixTime(seconds: updatedAt)))
            }
            let decision = RateGate.decide(&current, now: now, maximumWait: maximumWait)
            for (bucket, state) in zip(ordered, current) {
                try await connection.query("""
                    UPDATE rate_bucket SET tokens = \(state.tokens), updated_at = \(state.updatedAt.seconds)
                    WHERE account = \(account.rawValue) AND bucket = \(bucket.key)
                    """, logger: logger)
            }
            return decision
        }
    }

    /// Deletes per-chat buckets (key "category|peer") untouched since `cutoff`: a row per chat an
    /// account ever wrote to would otherwise stay for good; one untouched that long has refilled,
    /// and a new row starts full just the same. Returns how many went.
    @discardableResult
    public func purgeIdleRateBuckets(untouchedSince cutoff: UnixTime) async throws(SessionStoreError) -> Int {
        let logger = self.logger
        return try await write("remove idle per-chat rate buckets") { connection in
            try await connection.rows("""
                DELETE FROM rate_bucket WHERE position('|' in bucket) > 0 AND updated_at < \(cutoff.seconds) RETURNING account
                """, logger: logger).count
        }
    }
}
