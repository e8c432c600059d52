import GRDB
import MTProto

/// What alerts were sent, by key, kept in the store: a `tgsm run` that restarts (a deploy, a
/// restart loop) does not say again what it said before within the reminder interval.
public protocol AlertMemory: Sendable {
    /// The keys sent since `since`, each with when it was last sent.
    func alertsSent(since: UnixTime) async throws(SessionStoreError) -> [String: UnixTime]
    /// Records `keys` as sent at `at`; forgets what was sent before `forgetBefore`.
    func recordAlertsSent(_ keys: [String], at: UnixTime, forgetBefore: UnixTime) async throws(SessionStoreError)
}

extension AlertMemory {
    /// How long what was sent is remembered (and so how far a reminder interval can reach).
    public static var days: Double { 30 }

    /// What was sent in the last `days` before `now`.
    public func recentlySent(now: UnixTime) async throws(SessionStoreError) -> [String: UnixTime] {
        try await alertsSent(since: UnixTime(seconds: now.seconds - Self.days * 86_400))
    }

    /// Records `keys` as sent at `at`, forgetting what is older than `days`.
    public func remember(_ keys: [String], at: UnixTime) async throws(SessionStoreError) {
        try await recordAlertsSent(keys, at: at, forgetBefore: UnixTime(seconds: at.seconds - Self.days * 86_400))
    }
}

/// The alert keys that name an account (`AlertTracker` makes them), gone with the account.
public enum AlertKeys {
    public static func prefixes(of account: AccountID) -> [String] {
        ["account:\(account.rawValue):", "flood:\(account.rawValue):", "notice:\(account.rawValue):", "recovered:\(account.rawValue)"]
    }
}

extension SQLiteSessionStore: AlertMemory {
    public func alertsSent(since: UnixTime) async throws(SessionStoreError) -> [String: UnixTime] {
        try await read("read the alerts sent") { db in
            var sent: [String: UnixTime] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, sent_at FROM alert_sent WHERE sent_at >= ?", arguments: [since.seconds]) {
                if let key = row.string("key"), let at = row.double("sent_at") { sent[key] = UnixTime(seconds: at) }
            }
            return sent
        }
    }

    public func recordAlertsSent(_ keys: [String], at: UnixTime, forgetBefore: UnixTime) async throws(SessionStoreError) {
        guard !keys.isEmpty else { return }
        try await write("record the alerts sent") { db in
            for key in keys {
                try db.execute(sql: "INSERT INTO alert_sent(key, sent_at) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET sent_at = excluded.sent_at",
                               arguments: [key, at.seconds])
            }
            try db.execute(sql: "DELETE FROM alert_sent WHERE sent_at < ?", arguments: [forgetBefore.seconds])
        }
    }
}
