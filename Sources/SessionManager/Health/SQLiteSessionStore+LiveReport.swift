import GRDB
import MTProto

/// Running processes' reports (`LiveReportStore`) on SQLite.
extension SQLiteSessionStore: LiveReportStore {
    public func recordLiveReport(_ report: LiveReport) async throws(SessionStoreError) -> Bool {
        try await write("keep what this process sees of \(report.account)") { db in
            // In the same transaction as the lease check: a process that lost the account between
            // its look and this write cannot overwrite the new holder's report.
            try db.execute(sql: """
                INSERT INTO live_report(account, holder_host, holder_pid, ready, health, reasons, since, reported_at)
                SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
                WHERE EXISTS (SELECT 1 FROM lease WHERE account = ?1 AND holder_host = ?2 AND holder_pid = ?3 AND released = 0)
                ON CONFLICT(account) DO UPDATE SET holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,
                    ready = excluded.ready, health = excluded.health, reasons = excluded.reasons,
                    since = excluded.since, reported_at = excluded.reported_at
                """, arguments: [report.account.rawValue, report.holder.host, Int64(report.holder.pid), report.ready, report.health,
                                 LiveReport.encodedReasons(report.reasons), report.since.seconds, report.reportedAt.seconds])
            return db.changesCount > 0
        }
    }

    public func liveReports() async throws(SessionStoreError) -> [LiveReport] {
        let rows = try await read("read what running processes see") { db in
            try Row.fetchAll(db, sql: """
                SELECT account, holder_host, holder_pid, ready, health, reasons, since, reported_at FROM live_report ORDER BY account
                """)
                .map { row in
                    (account: row.string("account"), host: row.string("holder_host"), pid: row.int64("holder_pid"), ready: row.int64("ready"),
                     health: row.string("health"), reasons: row.string("reasons"),
                     since: row.double("since"), reportedAt: row.double("reported_at"))
                }
        }
        return rows.compactMap { row in
            guard let account = row.account, let host = row.host, let pid = row.pid, let ready = row.ready, let health = row.health,
                  let text = row.reasons, let reasons = LiveReport.decodedReasons(text),
                  let since = row.since, let reportedAt = row.reportedAt
            else {
                // A report is a hint the next look rewrites: one that does not read back is left out, not an error.
                options.logger.warning("a running process's report does not read back; it is left out", metadata: ["account": "\(row.account ?? "?")"])
                return nil
            }
            return LiveReport(account: AccountID(account), holder: LeaseHolder(host: host, pid: Int32(truncatingIfNeeded: pid)), ready: ready != 0,
                              health: health, reasons: reasons, since: UnixTime(seconds: since),
                              reportedAt: UnixTime(seconds: reportedAt))
        }
    }
}
