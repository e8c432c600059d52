import Logging
import MTProto
import PostgresNIO
import SessionManager

/// Running processes' reports (`LiveReportStore`) on PostgreSQL: every host's `tgsm status` reads
/// what the process serving an account sees, wherever it runs.
extension PostgresSessionStore: LiveReportStore {
    public func recordLiveReport(_ report: LiveReport) async throws(SessionStoreError) -> Bool {
        let logger = self.logger
        let account = report.account.rawValue, host = report.holder.host, pid = Int64(report.holder.pid)
        let reasons = LiveReport.encodedReasons(report.reasons)
        return try await write("keep what this process sees of \(report.account)") { connection in
            // One statement with the lease check: a process that lost the account between its look
            // and this write cannot overwrite the new holder's report.
            try await !connection.rows("""
                INSERT INTO live_report(account, holder_host, holder_pid, ready, health, reasons, since, reported_at)
                SELECT \(account), \(host), \(pid), \(report.ready), \(report.health), \(reasons),
                       \(report.since.seconds), \(report.reportedAt.seconds)
                WHERE EXISTS (SELECT 1 FROM lease WHERE account = \(account) AND holder_host = \(host) AND holder_pid = \(pid) AND NOT released)
                ON CONFLICT (account) DO UPDATE SET holder_host = excluded.holder_host, holder_pid = excluded.holder_pid,
                    ready = excluded.ready, health = excluded.health, reasons = excluded.reasons,
                    since = excluded.since, reported_at = excluded.reported_at
                RETURNING account
                """, logger: logger).isEmpty
        }
    }

    public func liveReports() async throws(SessionStoreError) -> [LiveReport] {
        let logger = self.logger
        let rows = try await read("read what running processes see") { connection in
            try await connection.rows("""
                SELECT account, holder_host, holder_pid, ready, health, reasons, since, reported_at FROM live_report ORDER BY account
                """, logger: logger).map { row in
                try row.decode((String, String, Int64, Bool, String, String, Double, Double).self)
            }
        }
        return rows.compactMap { account, host, pid, ready, health, text, since, reportedAt in
            guard let reasons = LiveReport.decodedReasons(text) else {
                // A report is a hint the next look rewrites: one that does not read back is left out, not an error.
                logger.warning("a running process's report does not read back; it is left out", metadata: ["account": "\(account)"])
                return nil
            }
            return LiveReport(account: AccountID(account), holder: LeaseHolder(host: host, pid: Int32(truncatingIfNeeded: pid)), ready: ready,
                              health: health, reasons: reasons, since: UnixTime(seconds: since),
                              reportedAt: UnixTime(seconds: reportedAt))
        }
    }
}
