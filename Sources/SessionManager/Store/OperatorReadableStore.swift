import MTProto

/// What an operator's views (`tgsm status`, the dashboard, /metrics) read beyond the client's
/// contract, on every engine: an account's row without its keys, and the send-code deadlines
/// without their phone keys; and what running processes report of the accounts they serve.
public protocol OperatorReadableStore: SessionStore, LiveReportStore {
    /// The account's row as stored (home DC, user id, DCs with a logged-in key); nil: no such account.
    func accountSummary(_ account: AccountID) async throws -> AccountSummary?
    /// The send-code deadlines still ahead of `now`, soonest first.
    func activeSendCodeDeadlines(at now: UnixTime) async throws -> [(account: AccountID, deadline: UnixTime)]
}

extension SQLiteSessionStore: OperatorReadableStore {}
