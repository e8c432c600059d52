import Logging
import MTProto
import PostgresNIO
import SessionManager

/// The operator's reads (`tgsm run`'s dashboard and /metrics on a PostgreSQL store).
extension PostgresSessionStore: OperatorReadableStore {
    public func accountSummary(_ account: AccountID) async throws(SessionStoreError) -> AccountSummary? {
        let logger = self.logger
        return try await read("read the account \(account)") { connection -> AccountSummary? in
            guard let row = try await connection.rows(
                "SELECT created_at, home_dc, user_id, is_bot FROM account WHERE id = \(account.rawValue)", logger: logger).first
            else { return nil }
            let (createdAt, homeDC, userID, isBot) = try row.decode((Double, Int64?, Int64?, Bool).self)
            let authorized = try await connection.rows("""
                SELECT dc_id FROM dc WHERE account = \(account.rawValue) AND is_authorized AND auth_key IS NOT NULL ORDER BY dc_id
                """, logger: logger).map { Int(try $0.decode(Int64.self)) }
            return AccountSummary(account: account, createdAt: UnixTime(seconds: createdAt), homeDC: homeDC.map(Int.init),
                                  userID: userID, isBot: isBot, authorizedDCs: authorized)
        }
    }

    public func activeSendCodeDeadlines(at now: UnixTime) async throws(SessionStoreError) -> [(account: AccountID, deadline: UnixTime)] {
        let logger = self.logger
        let rows = try await read("list send-code deadlines") { connection -> [SendCodeDeadlineRow] in
            try await connection.rows(
                "SELECT account, deadline FROM send_code_deadline WHERE deadline > \(now.seconds) ORDER BY deadline", logger: logger)
                .map { row in
                    let (account, deadline) = try row.decode((String, Double).self)
                    return SendCodeDeadlineRow(account: account, deadline: deadline)
                }
        }
        return rows.map { (AccountID($0.account), UnixTime(seconds: $0.deadline)) }
    }
}

private struct SendCodeDeadlineRow: Sendable {
    var account: String
    var deadline: Double
}

extension PostgresSessionStore: AlertMemory {
    public func alertsSent(since: UnixTime) async throws(SessionStoreError) -> [String: UnixTime] {
        let logger = self.logger
        return try await read("read the alerts sent") { connection in
            var sent: [String: UnixTime] = [:]
            for row in try await connection.rows("SELECT key, sent_at FROM alert_sent WHERE sent_at >= \(since.seconds)", logger: logger) {
                let (key, at) = try row.decode((String, Double).self)
                sent[key] = UnixTime(seconds: at)
            }
            return sent
        }
    }

    public func recordAlertsSent(_ keys: [String], at: UnixTime, forgetBefore: UnixTime) async throws(SessionStoreError) {
        guard !keys.isEmpty else { return }
        let logger = self.logger
        try await write("record the alerts sent") { connection in
            for key in keys {
                try await connection.query("""
                    INSERT INTO alert_sent(key, sent_at) VALUES (\(key), \(at.seconds))
                    ON CONFLICT (key) DO UPDATE SET sent_at = excluded.sent_at
                    """, logger: logger)
            }
            try await connection.query("DELETE FROM alert_sent WHERE sent_at < \(forgetBefore.seconds)", logger: logger)
        }
    }
}
