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
            throw .corruptRecord(account: account, what: "account status (a column is missing or of the wrong type)")
        }
        guard let state = AccountStatus.State(rawValue: stateName) else {
            // Written by a newer version, or damaged: refuse to guess whether the account may run.
            throw .corruptRecord(account: account, what: "account status (unknown state \"\(stateName)\")")
        }
        return AccountStatus(state: state, since: UnixTime(seconds: since), cause: cause, code: code)
    }

    public func setStatus(_ status: AccountStatus, for account: AccountID) async throws(SessionStoreError) {
        try await write("set the status of \(account)") { db in
            try db.execute(sql: """
                INSERT INTO account_status(account, state, since, cause, code) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(account) DO UPDATE SET state = excluded.state, since = excluded.since, cause = excluded.cause, code = excluded.code
                """, arguments: [account.rawValue, status.state.rawValue, status.since.seconds, status.cause, status.code])
        }
    }
}
