import GRDB
import MTProto

/// Accounts' terminal marks (`AccountStatusStore`) on SQLite. Not fenced, like the flood ledger: a
/// revoked session seen by an old owner is still revoked, and an operator clears marks with no lease.
extension SQLiteSessionStore {
    private struct StatusRow: Sendable {
        var state: String?
        var since: Double?
        var cause: String?
        var code: String?
    }

    public func status(of account: AccountID) async throws(SessionStoreError) -> AccountStatus? {
        let found = try await read("read the status of \(account)") { db -> StatusRow? in
            try Row.fetchOne(db, sql: "SELECT state, since, cause, code FROM account_status WHERE account = ?", arguments: [account.rawValue])
                .map { StatusRow(state: $0.string("state"), since: $0.double("since"), cause: $0.string("cause"), code: $0.string("code")) }
        }
        guard let found else { return nil }
        guard let stateName = found.state, let since = found.since, let cause = found.cause, let code = found.code else {
            throw .unreadableAccountStatus(account: account, detail: "a column is missing or of the wrong type")
        }
        guard let state = AccountStatus.State(rawValue: stateName) else {
            // Written by a newer version, or damaged: refuse to guess whether the account may run.
            throw .unreadableAccountStatus(account: account, detail: "unknown state \"\(stateName)\"")
        }
        return AccountStatus(state: state, since: UnixTime(seconds: since), cause: cause, code: code)
    }

    public func setStatus(_ status: AccountStatus, for account: AccountID) async throws(SessionStoreError) {
        // What a reader makes of a row it cannot read, never a state: the row stays as it is.
        guard status.state != .unreadable else { return }
        try await write("set the status of \(account)") { db in
            try db.execute(sql: """
                INSERT INTO account_status(account, state, since, cause, code) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(account) DO UPDATE SET state = excluded.state, since = excluded.since, cause = excluded.cause, code = excluded.code
                """, arguments: [account.rawValue, status.state.rawValue, status.since.seconds, status.cause, status.code])
        }
    }
}

/// Telegram's service notifications to the accounts, on SQLite.
extension SQLiteSessionStore {
    public func recordServiceNotification(_ notification: StoredServiceNotification) async throws(SessionStoreError) {
        try await write("keep a service notification of \(notification.account)") { db in
            try db.execute(sql: "INSERT INTO service_notification(account, received_at, type, message, popup) VALUES (?, ?, ?, ?, ?)",
                           arguments: [notification.account.rawValue, notification.receivedAt.seconds, notification.type, notification.message,
                                       notification.popup ? 1 : 0])
            try db.execute(sql: """
                DELETE FROM service_notification WHERE account = ? AND rowid NOT IN (
                    SELECT rowid FROM service_notification WHERE account = ? ORDER BY received_at DESC, rowid DESC LIMIT ?)
                """, arguments: [notification.account.rawValue, notification.account.rawValue, StoredServiceNotification.limit])
        }
    }

    public func serviceNotifications(account: AccountID?, since: UnixTime) async throws(SessionStoreError) -> [StoredServiceNotification] {
        let rows = try await read("read the service notifications") { db in
            try Row.fetchAll(db, sql: """
                SELECT account, received_at, type, message, popup FROM service_notification
                WHERE (?1 IS NULL OR account = ?1) AND received_at >= ?2 ORDER BY received_at DESC, rowid DESC
                """, arguments: [account?.rawValue, since.seconds])
                .map { (account: $0.string("account"), receivedAt: $0.double("received_at"), type: $0.string("type"),
                        message: $0.string("message"), popup: $0.int64("popup")) }
        }
        return rows.compactMap { row in
            guard let account = row.account, let receivedAt = row.receivedAt, let type = row.type, let message = row.message, let popup = row.popup else {
                options.logger.warning("a stored service notification does not read back; it is left out", metadata: ["account": "\(row.account ?? "?")"])
                return nil
            }
            return StoredServiceNotification(account: AccountID(account), type: type, message: message, popup: popup != 0,
                                             receivedAt: UnixTime(seconds: receivedAt))
        }
    }
}

/// Accounts Telegram froze, on SQLite.
extension SQLiteSessionStore {
    public func recordFreeze(_ freeze: StoredAccountFreeze) async throws(SessionStoreError) {
        try await write("keep the freeze of \(freeze.account)") { db in
            try db.execute(sql: """
                INSERT INTO account_freeze(account, since, deleted_after, appeal_url, confirmed_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(account) DO UPDATE SET since = min(since, excluded.since),
                    deleted_after = coalesce(excluded.deleted_after, deleted_after), appeal_url = coalesce(excluded.appeal_url, appeal_url),
                    confirmed_at = max(confirmed_at, excluded.confirmed_at)
                """, arguments: [freeze.account.rawValue, freeze.since.seconds, freeze.deletedAfter?.seconds, freeze.appealURL, freeze.confirmedAt.seconds])
        }
    }

    public func clearFreeze(account: AccountID) async throws(SessionStoreError) {
        try await write("forget the freeze of \(account)") { db in
            try db.execute(sql: "DELETE FROM account_freeze WHERE account = ?", arguments: [account.rawValue])
        }
    }

    public func freezes(account: AccountID?) async throws(SessionStoreError) -> [StoredAccountFreeze] {
        let rows = try await read("read the frozen accounts") { db in
            try Row.fetchAll(db, sql: """
                SELECT account, since, deleted_after, appeal_url, confirmed_at FROM account_freeze WHERE (?1 IS NULL OR account = ?1) ORDER BY account
                """, arguments: [account?.rawValue])
                .map { (account: $0.string("account"), since: $0.double("since"), deletedAfter: $0.double("deleted_after"),
                        appealURL: $0.string("appeal_url"), confirmedAt: $0.double("confirmed_at")) }
        }
        return try rows.map { row throws(SessionStoreError) in
            guard let account = row.account, let since = row.since, let confirmedAt = row.confirmedAt else {
                throw .corruptRecord(account: AccountID(row.account ?? "?"), what: "account freeze (a column is missing or of the wrong type)")
            }
            return StoredAccountFreeze(account: AccountID(account), since: UnixTime(seconds: since), deletedAfter: row.deletedAfter.map(UnixTime.init(seconds:)),
                                       appealURL: row.appealURL, confirmedAt: UnixTime(seconds: confirmedAt))
        }
    }
}
