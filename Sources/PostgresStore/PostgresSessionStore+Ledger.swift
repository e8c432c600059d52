import Foundation
import Logging
import MTProto
import PostgresNIO
import SessionManager

/// The flood ledger and the send-code deadlines (`FloodLedgerStore`), and the accounts' terminal
/// marks (`AccountStatusStore`). Not fenced, as on SQLite: a wait or a revocation seen by an old
/// owner is still true. One table for the whole cluster, and a recorded wait is announced
/// (`NOTIFY tgsm_flood, '<account>'`, sent at commit): every process's ledgers of the account read
/// the table again at once, so no process makes the call after the wait is recorded but the few
/// milliseconds the notification takes. While a process's listening connection is down, its
/// ledgers fall back to their refresh (`FloodLedger.Policy.refreshInterval`, 1 s).
extension PostgresSessionStore {
    public static let floodNotificationChannel = "tgsm_flood"

    public func recordFloodWait(_ wait: FloodWait) async throws(SessionStoreError) {
        let logger = self.logger
        try await write("record a flood wait for \(wait.account) \(wait.method)") { connection in
            // The later `until` wins, and with it the rest of the record; an earlier one changes nothing.
            let changed = try await connection.rows("""
                INSERT INTO flood_wait(account, method, peer, kind, recorded_at, until, dc)
                VALUES (\(wait.account.rawValue), \(wait.method), \(wait.peer ?? ""), \(wait.kind.rawValue), \(wait.recordedAt.seconds),
                        \(wait.until.seconds), \(wait.dc.map(Int64.init)))
                ON CONFLICT (account, method, peer) DO UPDATE SET kind = excluded.kind, recorded_at = excluded.recorded_at,
                    until = excluded.until, dc = excluded.dc
                WHERE excluded.until > flood_wait.until
                RETURNING 1
                """, logger: logger)
            if !changed.isEmpty {
                try await connection.query("SELECT pg_notify(\(Self.floodNotificationChannel), \(wait.account.rawValue))", logger: logger)
            }
        }
    }

    public func floodWaitChanges() -> AsyncStream<AccountID?>? {
        floodSignals.subscribe()
    }

    /// Keeps one pooled connection LISTENing on `tgsm_flood` (the job queue's pattern); returns
    /// once the first LISTEN is in place, or failed (the ledgers then poll until a later attempt
    /// succeeds). Each LISTEN after the first announces "anything may have changed" (nil): waits
    /// recorded while it was down were not announced.
    func startFloodListener() async {
        let signals = floodSignals
        let task = await database.keepListening(
            on: Self.floodNotificationChannel, logger: logger, lost: "ledgers see other processes' waits at their refresh",
            relistened: { signals.yield(nil) }, received: { signals.yield(AccountID($0)) })
        floodListener.withLock { $0 = task }
    }

    public func activeFloodWaits(account: AccountID?, at now: UnixTime) async throws(SessionStoreError) -> [FloodWait] {
        let logger = self.logger
        return try await read("read flood waits") { connection in
            let query: PostgresQuery = if let account {
                """
                SELECT account, method, peer, kind, recorded_at, until, dc FROM flood_wait
                WHERE account = \(account.rawValue) AND until > \(now.seconds) ORDER BY until, account, method, peer
                """
            } else {
                """
                SELECT account, method, peer, kind, recorded_at, until, dc FROM flood_wait
                WHERE until > \(now.seconds) ORDER BY until, account, method, peer
                """
            }
            return try await connection.rows(query, logger: logger).compactMap { row -> FloodWait? in
                let (account, method, peer, kindName, recordedAt, until, dc) = try row.decode((String, String, String, String, Double, Double, Int64?).self)
                guard let kind = FloodWait.Kind(rawValue: kindName) else { return nil }
                return FloodWait(account: AccountID(account), method: method, peer: peer.isEmpty ? nil : peer, kind: kind,
                                 recordedAt: UnixTime(seconds: recordedAt), until: UnixTime(seconds: until), dc: dc.map { Int($0) })
            }
        }
    }

    @discardableResult
    public func purgeFloodWaits(endedBefore now: UnixTime) async throws(SessionStoreError) -> Int {
        let logger = self.logger
        return try await write("purge ended flood waits") { connection in
            try await connection.rows("DELETE FROM flood_wait WHERE until <= \(now.seconds) RETURNING 1", logger: logger).count
        }
    }

    public func sendCodeDeadline(account: AccountID, phoneKey: String) async throws(SessionStoreError) -> UnixTime? {
        let logger = self.logger
        return try await read("read the send-code deadline") { connection in
            try await connection.rows(
                "SELECT deadline FROM send_code_deadline WHERE account = \(account.rawValue) AND phone_key = \(phoneKey)", logger: logger)
                .first.map { UnixTime(seconds: try $0.decode(Double.self)) }
        }
    }

    public func latestSendCodeDeadline(phoneKey: String) async throws(SessionStoreError) -> SendCodeDeadline? {
        let logger = self.logger
        return try await read("read the send-code deadlines") { connection in
            try await connection.rows(
                "SELECT account, deadline FROM send_code_deadline WHERE phone_key = \(phoneKey) ORDER BY deadline DESC LIMIT 1", logger: logger)
                .first.map { row in
                    let (account, deadline) = try row.decode((String, Double).self)
                    return SendCodeDeadline(account: AccountID(account), deadline: UnixTime(seconds: deadline))
                }
        }
    }

    public func setSendCodeDeadline(_ deadline: UnixTime?, account: AccountID, phoneKey: String) async throws(SessionStoreError) {
        let logger = self.logger
        try await write("set the send-code deadline") { connection in
            if let deadline {
                try await connection.query("""
                    INSERT INTO send_code_deadline(account, phone_key, deadline) VALUES (\(account.rawValue), \(phoneKey), \(deadline.seconds))
                    ON CONFLICT (account, phone_key) DO UPDATE SET deadline = excluded.deadline
                    """, logger: logger)
            } else {
                try await connection.query(
                    "DELETE FROM send_code_deadline WHERE account = \(account.rawValue) AND phone_key = \(phoneKey)", logger: logger)
            }
        }
    }

    // The hash is sealed like the auth keys when the store is encrypted.
    public func pendingLoginCode(account: AccountID, phoneKey: String) async throws(SessionStoreError) -> PendingLoginCode? {
        let logger = self.logger
        let sealer = self.sealer
        return try await read("read the pending login code") { connection in
            guard let row = try await connection.rows("""
                SELECT phone_code_hash, code_type, sent_at, offered_until FROM pending_login_code
                WHERE account = \(account.rawValue) AND phone_key = \(phoneKey)
                """, logger: logger).first
            else { return nil }
            let (stored, codeType, sentAt, offeredUntil) = try row.decode((Data, Data, Double, Double).self)
            guard let opened = StoredSecret.opened(stored, sealer: sealer, context: SecretContext.phoneCodeHash(account.rawValue, phoneKey)) else {
                throw SessionStoreError.corruptRecord(account: account, what: "pending login code (it does not decrypt)")
            }
            guard let hash = String(validating: opened, as: UTF8.self) else {
                throw SessionStoreError.corruptRecord(account: account, what: "pending login code (its hash is not text)")
            }
            return PendingLoginCode(phoneCodeHash: hash, codeType: Array(codeType), sentAt: UnixTime(seconds: sentAt),
                                    offeredUntil: UnixTime(seconds: offeredUntil))
        }
    }

    public func setPendingLoginCode(_ code: PendingLoginCode?, account: AccountID, phoneKey: String) async throws(SessionStoreError) {
        let logger = self.logger
        let (sealer, location, opened) = (self.sealer, database.location, encryptionHeader)
        try await write("record the pending login code") { connection in
            if let code {
                try await Self.refuseStaleKey(connection, opened: opened, location: location, logger: logger)
                let hash = try StoredSecret.stored(Array(code.phoneCodeHash.utf8), sealer: sealer,
                                                   context: SecretContext.phoneCodeHash(account.rawValue, phoneKey))
                try await connection.query("""
                    INSERT INTO pending_login_code(account, phone_key, phone_code_hash, code_type, sent_at, offered_until)
                    VALUES (\(account.rawValue), \(phoneKey), \(hash), \(Data(code.codeType)), \(code.sentAt.seconds),
                            \(code.offeredUntil.seconds))
                    ON CONFLICT (account, phone_key) DO UPDATE SET phone_code_hash = excluded.phone_code_hash,
                        code_type = excluded.code_type, sent_at = excluded.sent_at, offered_until = excluded.offered_until
                    """, logger: logger)
            } else {
                try await connection.query(
                    "DELETE FROM pending_login_code WHERE account = \(account.rawValue) AND phone_key = \(phoneKey)", logger: logger)
            }
        }
    }

    /// A row that does not read back (sealed under another key, or damaged) is left out and
    /// logged: it costs that token, not the others.
    public func futureAuthTokens(phoneKey: String) async throws(SessionStoreError) -> [FutureAuthToken] {
        let logger = self.logger
        let sealer = self.sealer
        let rows = try await read("read the future auth tokens") { connection in
            try await connection.rows("""
                SELECT token_digest, account, token, received_at FROM future_auth_token WHERE phone_key = \(phoneKey)
                ORDER BY received_at DESC, token_digest LIMIT \(FutureAuthToken.limit)
                """, logger: logger).map { row in try row.decode((String, String, Data, Double).self) }
        }
        return rows.compactMap { digest, account, stored, receivedAt in
            guard let bytes = StoredSecret.opened(stored, sealer: sealer, context: SecretContext.futureAuthToken(phoneKey, digest)) else {
                logger.warning("a future auth token does not read back; it is left out", metadata: ["account": "\(account)"])
                return nil
            }
            return FutureAuthToken(bytes: bytes, receivedAt: UnixTime(seconds: receivedAt))
        }
    }

    public func addFutureAuthToken(_ token: FutureAuthToken, account: AccountID, phoneKey: String) async throws(SessionStoreError) {
        let logger = self.logger
        let digest = token.digest
        let (sealer, location, opened) = (self.sealer, database.location, encryptionHeader)
        try await write("keep a future auth token") { connection in
            try await Self.refuseStaleKey(connection, opened: opened, location: location, logger: logger)
            let stored = try StoredSecret.stored(token.bytes, sealer: sealer, context: SecretContext.futureAuthToken(phoneKey, digest))
            try await connection.query("""
                INSERT INTO future_auth_token(phone_key, token_digest, account, token, received_at)
                VALUES (\(phoneKey), \(digest), \(account.rawValue), \(stored), \(token.receivedAt.seconds))
                ON CONFLICT (phone_key, token_digest) DO NOTHING
                """, logger: logger)
            try await connection.query("""
                DELETE FROM future_auth_token WHERE phone_key = \(phoneKey) AND token_digest NOT IN (
                    SELECT token_digest FROM future_auth_token WHERE phone_key = \(phoneKey)
                    ORDER BY received_at DESC, token_digest LIMIT \(FutureAuthToken.limit))
                """, logger: logger)
        }
    }

    @discardableResult
    public func removeFutureAuthTokens(phoneKey: String) async throws(SessionStoreError) -> Int {
        let logger = self.logger
        return try await write("drop the future auth tokens of a phone") { connection in
            try await connection.rows("DELETE FROM future_auth_token WHERE phone_key = \(phoneKey) RETURNING 1", logger: logger).count
        }
    }

    public func futureAuthTokenPhoneKey(account: AccountID) async throws(SessionStoreError) -> String? {
        let logger = self.logger
        return try await read("read the phone key of the account's future auth tokens") { connection in
            try await connection.rows("""
                SELECT phone_key FROM future_auth_token WHERE account = \(account.rawValue) ORDER BY received_at DESC LIMIT 1
                """, logger: logger).first.map { try $0.decode(String.self) }
        }
    }

    public func recordServiceNotification(_ notification: StoredServiceNotification) async throws(SessionStoreError) {
        let logger = self.logger
        let account = notification.account.rawValue
        try await write("keep a service notification of \(notification.account)") { connection in
            try await connection.query("""
                INSERT INTO service_notification(account, received_at, type, message, popup)
                VALUES (\(account), \(notification.receivedAt.seconds), \(notification.type), \(notification.message), \(notification.popup))
                """, logger: logger)
            try await connection.query("""
                DELETE FROM service_notification WHERE account = \(account) AND id NOT IN (
                    SELECT id FROM service_notification WHERE account = \(account) ORDER BY received_at DESC, id DESC LIMIT \(StoredServiceNotification.limit))
                """, logger: logger)
        }
    }

    public func serviceNotifications(account: AccountID?, since: UnixTime) async throws(SessionStoreError) -> [StoredServiceNotification] {
        let logger = self.logger
        return try await read("read the service notifications") { connection in
            try await connection.rows("""
                SELECT account, received_at, type, message, popup FROM service_notification
                WHERE (\(account?.rawValue)::text IS NULL OR account = \(account?.rawValue)) AND received_at >= \(since.seconds)
                ORDER BY received_at DESC, id DESC
                """, logger: logger).map { row in
                let (account, receivedAt, type, message, popup) = try row.decode((String, Double, String, String, Bool).self)
                return StoredServiceNotification(account: AccountID(account), type: type, message: message, popup: popup, receivedAt: UnixTime(seconds: receivedAt))
            }
        }
    }

    public func recordFreeze(_ freeze: StoredAccountFreeze) async throws(SessionStoreError) {
        let logger = self.logger
        try await write("keep the freeze of \(freeze.account)") { connection in
            try await connection.query("""
                INSERT INTO account_freeze(account, since, deleted_after, appeal_url, confirmed_at)
                VALUES (\(freeze.account.rawValue), \(freeze.since.seconds), \(freeze.deletedAfter?.seconds), \(freeze.appealURL), \(freeze.confirmedAt.seconds))
                ON CONFLICT (account) DO UPDATE SET since = LEAST(account_freeze.since, excluded.since),
                    deleted_after = COALESCE(excluded.deleted_after, account_freeze.deleted_after),
                    appeal_url = COALESCE(excluded.appeal_url, account_freeze.appeal_url),
                    confirmed_at = GREATEST(account_freeze.confirmed_at, excluded.confirmed_at)
                """, logger: logger)
        }
    }

    public func clearFreeze(account: AccountID) async throws(SessionStoreError) {
        let logger = self.logger
        try await write("forget the freeze of \(account)") { connection in
            try await connection.query("DELETE FROM account_freeze WHERE account = \(account.rawValue)", logger: logger)
        }
    }

    public func freezes(account: AccountID?) async throws(SessionStoreError) -> [StoredAccountFreeze] {
        let logger = self.logger
        return try await read("read the frozen accounts") { connection in
            try await connection.rows("""
                SELECT account, since, deleted_after, appeal_url, confirmed_at FROM account_freeze
                WHERE (\(account?.rawValue)::text IS NULL OR account = \(account?.rawValue)) ORDER BY account
                """, logger: logger).map { row in
                let (account, since, deletedAfter, appealURL, confirmedAt) = try row.decode((String, Double, Double?, String?, Double).self)
                return StoredAccountFreeze(account: AccountID(account), since: UnixTime(seconds: since), deletedAfter: deletedAfter.map(UnixTime.init(seconds:)),
                                           appealURL: appealURL, confirmedAt: UnixTime(seconds: confirmedAt))
            }
        }
    }

    public func status(of account: AccountID) async throws(SessionStoreError) -> AccountStatus? {
        let logger = self.logger
        let found = try await read("read the status of \(account)") { connection -> (String, Double, String, String)? in
            guard let row = try await connection.rows(
                "SELECT state, since, cause, code FROM account_status WHERE account = \(account.rawValue)", logger: logger).first
            else { return nil }
            return try row.decode((String, Double, String, String).self)
        }
        guard let found else { return nil }
        let (stateName, since, cause, code) = found
        guard let state = AccountStatus.State(rawValue: stateName) else {
            // Written by a newer version, or damaged: refuse to guess whether the account may run.
            throw .unreadableAccountStatus(account: account, detail: "unknown state \"\(stateName)\"")
        }
        return AccountStatus(state: state, since: UnixTime(seconds: since), cause: cause, code: code)
    }

    public func setStatus(_ status: AccountStatus, for account: AccountID) async throws(SessionStoreError) {
        // What a reader makes of a row it cannot read, never a state: the row stays as it is.
        guard status.state != .unreadable else { return }
        let logger = self.logger
        try await write("set the status of \(account)") { connection in
            try await connection.query("""
                INSERT INTO account_status(account, state, since, cause, code)
                VALUES (\(account.rawValue), \(status.state.rawValue), \(status.since.seconds), \(status.cause), \(status.code))
                ON CONFLICT (account) DO UPDATE SET state = excluded.state, since = excluded.since, cause = excluded.cause, code = excluded.code
                """, logger: logger)
        }
    }
}
