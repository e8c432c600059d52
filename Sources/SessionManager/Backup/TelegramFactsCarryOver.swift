import GRDB
import Logging

/// What a restore must not roll back: what Telegram said about the accounts since the backup was
/// taken. A backup brings the sessions back as they were, but a flood wait Telegram imposed after it
/// (the next process would call at once, and Telegram answers a repeat with a longer wait), a
/// send-code deadline (a second code request risks PHONE_NUMBER_FLOOD), a mark, a notice, a freeze,
/// an alert already sent, a future auth token spent, are facts about now. When the file set aside can still be read, these are
/// merged into the restored one, each keeping the later fact (the later until-time, deadline, mark);
/// a table that cannot be read (the file is damaged there) is skipped and logged. The PostgreSQL
/// restore keeps them in place for the same reason (`AccountSnapshot`).
enum TelegramFactsCarryOver {
    /// Each table and the statement that merges the old file's rows (attached as `old`) into it.
    static let merges: [(table: String, sql: String)] = [
        ("flood_wait", """
            INSERT INTO main.flood_wait(account, method, peer, kind, recorded_at, until, dc)
            SELECT account, method, peer, kind, recorded_at, until, dc FROM old.flood_wait WHERE true
            ON CONFLICT(account, method, peer) DO UPDATE SET kind = excluded.kind, recorded_at = excluded.recorded_at,
                until = excluded.until, dc = excluded.dc WHERE excluded.until > flood_wait.until
            """),
        ("send_code_deadline", """
            INSERT INTO main.send_code_deadline(account, phone_key, deadline)
            SELECT account, phone_key, deadline FROM old.send_code_deadline WHERE true
            ON CONFLICT(account, phone_key) DO UPDATE SET deadline = excluded.deadline WHERE excluded.deadline > send_code_deadline.deadline
            """),
        ("account_status", """
            INSERT INTO main.account_status(account, state, since, cause, code)
            SELECT account, state, since, cause, code FROM old.account_status WHERE true
            ON CONFLICT(account) DO UPDATE SET state = excluded.state, since = excluded.since, cause = excluded.cause, code = excluded.code
                WHERE excluded.since > account_status.since
            """),
        ("service_notification", """
            INSERT INTO main.service_notification(account, received_at, type, message, popup)
            SELECT o.account, o.received_at, o.type, o.message, o.popup FROM old.service_notification o
            WHERE NOT EXISTS (SELECT 1 FROM main.service_notification m
                              WHERE m.account = o.account AND m.received_at = o.received_at AND m.type = o.type)
            """),
        ("account_freeze", """
            INSERT INTO main.account_freeze(account, since, deleted_after, appeal_url, confirmed_at)
            SELECT account, since, deleted_after, appeal_url, confirmed_at FROM old.account_freeze WHERE true
            ON CONFLICT(account) DO UPDATE SET since = min(account_freeze.since, excluded.since),
                deleted_after = coalesce(excluded.deleted_after, account_freeze.deleted_after),
                appeal_url = coalesce(excluded.appeal_url, account_freeze.appeal_url),
                confirmed_at = max(account_freeze.confirmed_at, excluded.confirmed_at)
            """),
        // A future auth token is spent once Telegram accepts it (or dropped when it did not): the
        // backup's tokens that the newer file no longer holds, for accounts it still has, are gone.
        // Brought back, a re-login offered them, was let through before the phone's deadline, and
        // Telegram sent a second code. Tokens received since are not added: a rekey between the two
        // files would leave them sealed under another key.
        ("future_auth_token", """
            DELETE FROM main.future_auth_token
            WHERE EXISTS (SELECT 1 FROM old.account a WHERE a.id = main.future_auth_token.account)
              AND NOT EXISTS (SELECT 1 FROM old.future_auth_token o
                              WHERE o.phone_key = main.future_auth_token.phone_key AND o.token_digest = main.future_auth_token.token_digest)
            """),
        ("alert_sent", """
            INSERT INTO main.alert_sent(key, sent_at) SELECT key, sent_at FROM old.alert_sent WHERE true
            ON CONFLICT(key) DO UPDATE SET sent_at = excluded.sent_at WHERE excluded.sent_at > alert_sent.sent_at
            """),
    ]

    /// Merges the facts of `oldPath` into the store file at `path`; returns the rows each table took.
    /// The file set aside is read from a copy: it stays byte for byte as it was found (a person
    /// may need it), which even a read of a WAL-mode file in place would not promise.
    @discardableResult
    static func carry(from oldPath: String, into path: String, busyTimeout: Double, logger: Logger) -> [String: Int] {
        var taken: [String: Int] = [:]
        let copy = path + ".carry"
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { FileSystem.removeFile(copy + suffix) } }
        do {
            for suffix in ["", "-wal"] where FileSystem.exists(oldPath + suffix) { try FileSystem.copy(oldPath + suffix, copy + suffix) }
            var configuration = Configuration()
            configuration.busyMode = .timeout(busyTimeout)
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "ATTACH DATABASE ? AS old", arguments: [copy])
                defer { try? db.execute(sql: "DETACH DATABASE old") }
                for (table, sql) in merges {
                    let inBoth = try Bool.fetchOne(db, sql: """
                        SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1)
                           AND EXISTS (SELECT 1 FROM old.sqlite_master WHERE type = 'table' AND name = ?1)
                        """, arguments: [table]) ?? false
                    guard inBoth else { continue }
                    do {
                        try db.inTransaction {
                            try db.execute(sql: sql)
                            taken[table] = db.changesCount
                            return .commit
                        }
                    } catch {
                        logger.warning("what Telegram said since the backup could not be carried over for one table; the backup's rows stand",
                                       metadata: ["table": "\(table)", "error": "\(error)"])
                    }
                }
            }
        } catch {
            logger.warning("the file set aside could not be read; the restored store keeps the backup's flood waits, deadlines and marks",
                           metadata: ["set-aside": "\(oldPath)", "error": "\(error)"])
        }
        let carried = taken.filter { $0.value > 0 }
        if !carried.isEmpty {
            logger.notice("kept what Telegram said since the backup (flood waits, send-code deadlines, marks, notices)", metadata: [
                "rows": "\(carried.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
            ])
        }
        return taken
    }
}
