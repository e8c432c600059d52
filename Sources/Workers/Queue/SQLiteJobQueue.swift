import Foundation
import GRDB
import MTProto
import SessionManager
import Synchronization

/// The job queue on SQLite through GRDB. It shares the session store's database (give it the
/// store's `DatabaseWriter`) or opens its own file (`SQLiteJobQueue.open(path:)`).
///
/// SQLite serializes writers, so a claim (one write transaction: rescue, count, select, update)
/// is atomic across threads and processes on the same file; the busy timeout makes concurrent
/// processes wait for each other instead of failing.
public final class SQLiteJobQueue: JobQueue, JobHistoryReading {
    /// How long `job_history` keeps a row.
    public static let historyRetentionSeconds = 7 * 24 * 3600

    public let writer: any DatabaseWriter
    private let signals = Broadcaster<AccountID>()
    /// Claims, completions, heartbeats and the other fenced writes: batched, see `GroupCommit`.
    private let commits: GroupCommit

    /// Uses `writer` (typically the session store's), applying the queue's migrations ("jobs.*")
    /// with a migrator of its own: the store's migrations are left alone.
    public init(writer: any DatabaseWriter) throws(JobQueueError) {
        self.writer = writer
        commits = GroupCommit(writer: writer, isOwnError: { $0 is JobQueueError })
        var migrator = DatabaseMigrator()
        Self.registerMigrations(in: &migrator)
        do {
            try migrator.migrateAlongsideOtherProcesses(writer)
        } catch {
            throw .storage("the job queue's schema could not be created or upgraded (\(error))")
        }
    }

    /// A queue over a database that is already current (no migration).
    private init(current writer: any DatabaseWriter) {
        self.writer = writer
        commits = GroupCommit(writer: writer, isOwnError: { $0 is JobQueueError })
    }

    /// Opens an existing queue file for reading only (counts, lists): no migration, no write, so
    /// no fsync. nil when the file is missing, cannot be read, or its schema needs an upgrade:
    /// then `open(path:)` it.
    public static func openForReading(path: String, busyTimeout: Double = 10) -> SQLiteJobQueue? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(busyTimeout)
        var migrator = DatabaseMigrator()
        registerMigrations(in: &migrator)
        guard let pool = try? DatabasePool(path: path, configuration: configuration),
              (try? pool.read({ db in try migrator.hasCompletedMigrations(db) })) == true else { return nil }
        return SQLiteJobQueue(current: pool)
    }

    /// Opens (or creates, mode 0600) a database file of the queue's own.
    public static func open(path: String, busyTimeout: Double = 10) throws(JobQueueError) -> SQLiteJobQueue {
        try SQLiteJobQueue(writer: SQLiteDatabase.open(path: path, busyTimeout: busyTimeout))
    }

    /// The queue's migrations, for a caller that prefers one migrator for the whole database.
    public static func registerMigrations(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("jobs.v1") { db in
            try db.execute(sql: """
                CREATE TABLE jobs (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    account TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    priority INTEGER NOT NULL DEFAULT 0,
                    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'dead', 'cancelled')),
                    run_at REAL NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
                    idempotency_key TEXT UNIQUE,
                    lease_owner TEXT,
                    lease_token INTEGER NOT NULL DEFAULT 0,
                    lease_until REAL,
                    progress BLOB,
                    result BLOB,
                    last_error TEXT,
                    deferrals INTEGER NOT NULL DEFAULT 0,
                    created_at REAL NOT NULL,
                    updated_at REAL NOT NULL,
                    finished_at REAL
                );
                CREATE INDEX jobs_due ON jobs(state, account, priority DESC, run_at, id);
                CREATE INDEX jobs_lease ON jobs(state, lease_until);
                """)
        }
        // Every state change leaves a row in job_history (outcomes over time, recent errors). The
        // time is the job's updated_at, i.e. the `now` the caller passed: no clock in the database.
        // A row older than seven days is dropped whenever one is written (indexed: cheap).
        migrator.registerMigration("jobs.v2.history") { db in
            try db.execute(sql: """
                CREATE TABLE job_history (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at REAL NOT NULL,
                    job INTEGER NOT NULL,
                    account TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    event TEXT NOT NULL,
                    depth_delta INTEGER NOT NULL,
                    error TEXT
                );
                CREATE INDEX job_history_at ON job_history(at);
                CREATE TRIGGER jobs_history_insert AFTER INSERT ON jobs
                BEGIN
                    INSERT INTO job_history (at, job, account, kind, event, depth_delta)
                    VALUES (NEW.created_at, NEW.id, NEW.account, NEW.kind, 'enqueued', 1);
                    DELETE FROM job_history WHERE at < NEW.created_at - \(historyRetentionSeconds);
                END;
                CREATE TRIGGER jobs_history_update AFTER UPDATE OF state ON jobs
                WHEN OLD.state <> NEW.state AND NOT (OLD.state = 'queued' AND NEW.state = 'running')
                BEGIN
                    INSERT INTO job_history (at, job, account, kind, event, depth_delta, error)
                    VALUES (
                        NEW.updated_at, NEW.id, NEW.account, NEW.kind,
                        CASE
                            WHEN NEW.state = 'completed' THEN 'completed'
                            WHEN NEW.state = 'dead' THEN 'dead'
                            WHEN NEW.state = 'cancelled' THEN 'cancelled'
                            WHEN OLD.state IN ('dead', 'cancelled') THEN 'requeued'
                            WHEN NEW.deferrals > OLD.deferrals AND NEW.run_at > NEW.updated_at THEN 'deferred'
                            WHEN NEW.deferrals > OLD.deferrals THEN 'released'
                            WHEN NEW.attempts = OLD.attempts AND NEW.last_error LIKE 'rescued:%' THEN 'rescued'
                            ELSE 'retried'
                        END,
                        CASE
                            WHEN OLD.state IN ('queued', 'running') AND NEW.state IN ('completed', 'dead', 'cancelled') THEN -1
                            WHEN OLD.state IN ('dead', 'cancelled') AND NEW.state IN ('queued', 'running') THEN 1
                            ELSE 0
                        END,
                        CASE WHEN NEW.state IN ('completed', 'cancelled') OR OLD.state IN ('dead', 'cancelled') THEN NULL ELSE NEW.last_error END);
                    DELETE FROM job_history WHERE at < NEW.updated_at - \(historyRetentionSeconds);
                END;
                """)
        }
        // Finished jobs are purged by the time they finished (`JobRetention`): without this index
        // each hourly purge would scan the whole table.
        migrator.registerMigration("jobs.v3.finished") { db in
            try db.execute(sql: "CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL")
        }
    }

    public func enqueue(_ job: NewJob, now: UnixTime) async throws(JobQueueError) -> EnqueueOutcome {
        guard job.maxAttempts >= 1 else { throw .invalidJob("maxAttempts must be at least 1 (it is \(job.maxAttempts))") }
        guard !job.kind.rawValue.isEmpty else { throw .invalidJob("the kind is empty") }
        let outcome = try await write { db -> EnqueueOutcome in
            if let key = job.idempotencyKey,
                let existing = try Int64.fetchOne(db, sql: "SELECT id FROM jobs WHERE idempotency_key = ?", arguments: [key])
            {
                return .duplicate(JobID(existing))
            }
            try db.execute(
                sql: """
                    INSERT INTO jobs (kind, account, payload, priority, state, run_at, max_attempts, idempotency_key, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    job.kind.rawValue, job.account.rawValue, job.payload, job.priority, (job.runAt ?? now).seconds,
                    job.maxAttempts, job.idempotencyKey, now.seconds, now.seconds,
                ])
            return .created(JobID(db.lastInsertedRowID))
        }
        if case .created = outcome { signals.yield(job.account) }
        return outcome
    }

    public func claim(_ request: ClaimRequest, now: UnixTime) async throws(JobQueueError) -> [ClaimedJob] {
        guard request.limit > 0, !request.accounts.isEmpty else { return [] }
        let plan = ClaimPlan(request, now: now)
        return try await batched { db in try plan.run(db) }
    }

    public func complete(_ claim: JobClaim, result: Data?, now: UnixTime, thenClaim next: ClaimRequest) async throws(JobQueueError) -> [ClaimedJob] {
        let plan = next.limit > 0 && !next.accounts.isEmpty ? ClaimPlan(next, now: now) : nil
        return try await batched { db -> [ClaimedJob] in
            // Fenced first: a lost claim throws before anything changed (GroupCommit's rule).
            try db.cachedStatement(sql: Self.completeSQL).execute(arguments: [result, now.seconds, now.seconds, claim.job.rawValue, claim.token])
            if db.changesCount == 0 { throw JobQueueError.claimLost(claim) }
            return try plan?.run(db) ?? []
        }
    }

    /// One claim's statements and arguments, prepared outside the writer; `run` executes them in
    /// the caller's transaction: rescue, count running per account, pick, mark.
    private struct ClaimPlan: Sendable {
        let request: ClaimRequest
        let now: UnixTime
        let accounts: [String]
        let countSQL: String
        let pickSQL: String
        let pickArguments: StatementArguments
        let claimsNothing: Bool

        init(_ request: ClaimRequest, now: UnixTime) {
            self.request = request
            self.now = now
            accounts = request.accounts.map(\.rawValue).sorted()
            let kinds = request.kinds.map { $0.map(\.rawValue).sorted() }
            let inAccounts = SQLiteJobQueue.placeholders(accounts.count)
            countSQL = "SELECT account, COUNT(*) AS n FROM jobs WHERE state = 'running' AND account IN \(inAccounts) GROUP BY account"
            var candidateSQL = "SELECT id, account FROM jobs WHERE state = 'queued' AND run_at <= ? AND account IN \(inAccounts)"
            var candidateArguments = StatementArguments([now.seconds]) + StatementArguments(accounts)
            // No kind at all claims nothing, but still rescues (as any claim does).
            claimsNothing = kinds?.isEmpty == true
            if let kinds, !kinds.isEmpty {
                candidateSQL += " AND kind IN \(SQLiteJobQueue.placeholders(kinds.count))"
                candidateArguments += StatementArguments(kinds)
            }
            candidateSQL += " ORDER BY priority DESC, run_at, id"
            pickSQL = candidateSQL
            pickArguments = candidateArguments
        }

        func run(_ db: Database) throws -> [ClaimedJob] {
            try SQLiteJobQueue.rescueExpired(db, now: now)
            if claimsNothing { return [] }

            var running: [String: Int] = [:]
            for row in try Row.fetchAll(db.cachedStatement(sql: countSQL), arguments: StatementArguments(accounts)) {
                running[try row.decode(String.self, atIndex: 0)] = try row.decode(Int.self, atIndex: 1)
            }

            var chosen: [Int64] = []
            let candidates = try Row.fetchCursor(db.cachedStatement(sql: pickSQL), arguments: pickArguments)
            while chosen.count < request.limit, let row = try candidates.next() {
                let account = try row.decode(String.self, atIndex: 1)
                guard running[account, default: 0] < request.perAccountLimit else { continue }
                running[account, default: 0] += 1
                chosen.append(try row.decode(Int64.self, atIndex: 0))
            }

            // One statement per job: the update hands back the row it wrote (RETURNING), the
            // new lease token included, so nothing is read twice.
            let update = try db.cachedStatement(sql: """
                UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_token = lease_token + 1,
                lease_until = ?, updated_at = ? WHERE id = ? AND state = 'queued' RETURNING *
                """)
            let leaseUntil = now + request.leaseSeconds
            var claimed: [ClaimedJob] = []
            claimed.reserveCapacity(chosen.count)
            for id in chosen {
                guard let row = try Row.fetchOne(update, arguments: [request.owner, leaseUntil.seconds, now.seconds, id]) else { continue }
                let job = try SQLiteJobQueue.decodeJob(row)
                let token = try row.decode(Int64.self, forColumn: "lease_token")
                claimed.append(ClaimedJob(job: job, claim: JobClaim(job: job.id, token: token, owner: request.owner), leaseUntil: leaseUntil))
            }
            return claimed
        }
    }

    public func heartbeat(_ claim: JobClaim, leaseSeconds: Double, now: UnixTime) async throws(JobQueueError) -> UnixTime {
        let until = now + leaseSeconds
        try await fenced(claim, sql: "lease_until = ?, updated_at = ?", arguments: [until.seconds, now.seconds])
        return until
    }

    public func checkpoint(_ claim: JobClaim, progress: Data, now: UnixTime) async throws(JobQueueError) {
        try await fenced(claim, sql: "progress = ?, updated_at = ?", arguments: [progress, now.seconds])
    }

    public func complete(_ claim: JobClaim, result: Data?, now: UnixTime) async throws(JobQueueError) {
        try await batched { db in
            try db.cachedStatement(sql: Self.completeSQL).execute(arguments: [result, now.seconds, now.seconds, claim.job.rawValue, claim.token])
            if db.changesCount == 0 { throw JobQueueError.claimLost(claim) }
        }
    }

    private static let completeSQL = """
        UPDATE jobs SET state = 'completed', result = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?, finished_at = ?
        WHERE id = ? AND lease_token = ? AND state = 'running'
        """

    @discardableResult
    public func retry(_ claim: JobClaim, error: String, retryAt: UnixTime?, now: UnixTime) async throws(JobQueueError) -> JobState {
        try await batched { db -> JobState in
            guard let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT attempts, max_attempts FROM jobs WHERE id = ? AND lease_token = ? AND state = 'running'"),
                arguments: [claim.job.rawValue, claim.token])
            else { throw JobQueueError.claimLost(claim) }
            let attempts = try row.decode(Int.self, atIndex: 0)
            let maxAttempts = try row.decode(Int.self, atIndex: 1)
            if let retryAt, attempts < maxAttempts {
                try db.cachedStatement(
                    sql: "UPDATE jobs SET state = 'queued', run_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?"
                ).execute(arguments: [retryAt.seconds, error, now.seconds, claim.job.rawValue])
                return .queued
            }
            try db.cachedStatement(
                sql: """
                    UPDATE jobs SET state = 'dead', last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?, finished_at = ?
                    WHERE id = ?
                    """
            ).execute(arguments: [error, now.seconds, now.seconds, claim.job.rawValue])
            return .dead
        }
    }

    public func deferJob(_ claim: JobClaim, until: UnixTime, reason: String, now: UnixTime) async throws(JobQueueError) {
        try await fenced(
            claim,
            sql: """
                state = 'queued', run_at = ?, attempts = MAX(attempts - 1, 0), deferrals = deferrals + 1, last_error = ?,
                lease_owner = NULL, lease_until = NULL, updated_at = ?
                """,
            arguments: [until.seconds, reason, now.seconds])
    }

    public func release(_ claim: JobClaim, reason: String, now: UnixTime) async throws(JobQueueError) {
        try await fenced(
            claim,
            sql: """
                state = 'queued', run_at = ?, attempts = MAX(attempts - 1, 0), deferrals = deferrals + 1, last_error = ?,
                lease_owner = NULL, lease_until = NULL, updated_at = ?
                """,
            arguments: [now.seconds, reason, now.seconds])
    }

    public func job(_ id: JobID) async throws(JobQueueError) -> Job? {
        try await read { db in try Self.fetchJob(db, id: id) }
    }

    public func jobs(state: JobState?, account: AccountID?, limit: Int) async throws(JobQueueError) -> [Job] {
        try await read { db -> [Job] in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let state {
                conditions.append("state = ?")
                arguments += [state.rawValue]
            }
            if let account {
                conditions.append("account = ?")
                arguments += [account.rawValue]
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments += [limit]
            return try Row.fetchAll(db, sql: "SELECT * FROM jobs \(whereClause) ORDER BY id DESC LIMIT ?", arguments: arguments)
                .map(Self.decodeJob)
        }
    }

    public func counts(account: AccountID?) async throws(JobQueueError) -> JobCounts {
        try await read { db -> JobCounts in
            let rows =
                if let account {
                    try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM jobs WHERE account = ? GROUP BY state", arguments: [account.rawValue])
                } else {
                    try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
                }
            var counts: [JobState: Int] = [:]
            for row in rows {
                guard let state = JobState(rawValue: try row.decode(String.self, forColumn: "state")) else { continue }
                counts[state] = try row.decode(Int.self, forColumn: "n")
            }
            return JobCounts(byState: counts)
        }
    }

    public func nextWakeup(accounts: Set<AccountID>, kinds: Set<JobKind>?) async throws(JobQueueError) -> UnixTime? {
        guard !accounts.isEmpty else { return nil }
        let accountList = accounts.map(\.rawValue).sorted()
        let kindList = kinds.map { $0.map(\.rawValue).sorted() }
        return try await read { db -> UnixTime? in
            let inAccounts = Self.placeholders(accountList.count)
            var kindClause = ""
            var kindArguments = StatementArguments()
            if let kindList {
                guard !kindList.isEmpty else { return nil }
                kindClause = " AND kind IN \(Self.placeholders(kindList.count))"
                kindArguments = StatementArguments(kindList)
            }
            let due = try Double.fetchOne(
                db, sql: "SELECT MIN(run_at) FROM jobs WHERE state = 'queued' AND account IN \(inAccounts)\(kindClause)",
                arguments: StatementArguments(accountList) + kindArguments)
            let expiry = try Double.fetchOne(
                db, sql: "SELECT MIN(lease_until) FROM jobs WHERE state = 'running' AND account IN \(inAccounts)\(kindClause)",
                arguments: StatementArguments(accountList) + kindArguments)
            return [due, expiry].compactMap { $0 }.min().map(UnixTime.init(seconds:))
        }
    }

    public func requeue(_ id: JobID, now: UnixTime) async throws(JobQueueError) {
        let account = try await transition(id, from: [.dead, .cancelled], action: "requeued") { db in
            try db.execute(
                sql: "UPDATE jobs SET state = 'queued', attempts = 0, run_at = MAX(run_at, ?), updated_at = ?, finished_at = NULL WHERE id = ?",
                arguments: [now.seconds, now.seconds, id.rawValue])
        }
        signals.yield(account)
    }

    public func abandonClaims(ownedBy owner: String, account: AccountID, now: UnixTime) async throws(JobQueueError) -> Int {
        let ended = try await write { db -> Int in
            try db.execute(
                sql: "UPDATE jobs SET lease_until = ? WHERE state = 'running' AND account = ? AND lease_owner = ? AND lease_until > ?",
                arguments: [now.seconds, account.rawValue, owner, now.seconds])
            return db.changesCount
        }
        if ended > 0 { signals.yield(account) }
        return ended
    }

    public func cancel(_ id: JobID, now: UnixTime) async throws(JobQueueError) {
        _ = try await transition(id, from: [.queued, .dead], action: "cancelled") { db in
            try db.execute(
                sql: "UPDATE jobs SET state = 'cancelled', updated_at = ?, finished_at = ? WHERE id = ?",
                arguments: [now.seconds, now.seconds, id.rawValue])
        }
    }

    public func purge(_ purge: JobPurge, limit: Int) async throws(JobQueueError) -> Int {
        guard limit > 0 else { return 0 }
        // `+state`: without ANALYZE statistics SQLite would pick an index on state (all completed
        // jobs, then a sort) over jobs_finished (only those past the cutoff, already in order).
        let sql = """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND +state IN (\(purge.stateList))
                ORDER BY finished_at LIMIT ?)
            """
        return try await write { db -> Int in
            try db.execute(sql: sql, arguments: [purge.finishedBefore.seconds, limit])
            return db.changesCount
        }
    }

    public func countPurgeable(_ purge: JobPurge) async throws(JobQueueError) -> Int {
        let sql = "SELECT COUNT(*) FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND +state IN (\(purge.stateList))"
        return try await read { db -> Int in try Int.fetchOne(db, sql: sql, arguments: [purge.finishedBefore.seconds]) ?? 0 }
    }

    public func history(since: UnixTime, limit: Int, events: Set<JobHistoryEntry.Event>?) async throws(JobQueueError) -> [JobHistoryEntry] {
        let only = events.map { " AND event IN (\($0.sqlList))" } ?? ""
        return try await read { db -> [JobHistoryEntry] in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM job_history WHERE at >= ?\(only) ORDER BY id DESC LIMIT ?", arguments: [since.seconds, max(0, limit)])
            return try rows.reversed().map(Self.historyEntry)
        }
    }

    public func history(of job: JobID) async throws(JobQueueError) -> [JobHistoryEntry] {
        // No index on job: the history holds a week at most, and one person's look scans it once.
        try await read { db -> [JobHistoryEntry] in
            try Row.fetchAll(db, sql: "SELECT * FROM job_history WHERE job = ? ORDER BY id", arguments: [job.rawValue]).map(Self.historyEntry)
        }
    }

    private static func historyEntry(_ row: Row) throws -> JobHistoryEntry {
        let name = try row.decode(String.self, forColumn: "event")
        guard let event = JobHistoryEntry.Event(rawValue: name) else {
            throw JobQueueError.storage("a job history row has the unknown event '\(name)'; was the file written by a newer version?")
        }
        return JobHistoryEntry(
            at: UnixTime(seconds: try row.decode(Double.self, forColumn: "at")),
            job: JobID(try row.decode(Int64.self, forColumn: "job")),
            account: AccountID(try row.decode(String.self, forColumn: "account")),
            kind: JobKind(try row.decode(String.self, forColumn: "kind")),
            event: event,
            depthDelta: try row.decode(Int.self, forColumn: "depth_delta"),
            error: try row.decode(String?.self, forColumn: "error"))
    }

    public func enqueueSignals() -> AsyncStream<AccountID> {
        signals.subscribe()
    }

    // MARK: - Internals

    /// Claims whose worker stopped heartbeating go back to the queue (or, with no attempt left,
    /// to the dead letters): the attempt they were on stays spent, so a job that kills its worker
    /// every time ends dead instead of taking every worker down in turn.
    fileprivate static func rescueExpired(_ db: Database, now: UnixTime) throws {
        try rescue(
            db, "lease_until IS NOT NULL AND lease_until <= ?", [now.seconds], now: now,
            lastAttempt: "'the worker ' || COALESCE(lease_owner, '?') || ' stopped renewing its lease (it crashed, was killed or '"
                + " || 'lost the database) on the last allowed attempt; fix what kills the worker, then requeue the job'",
            again: "'rescued: the worker ' || COALESCE(lease_owner, '?') || ' stopped renewing its claim (crashed, killed, frozen or cut off from the store mid-job)'")
    }

    /// Every claim given back at once, as a rescue would at its lease's end: for a salvaged file,
    /// whose workers stopped with the damaged one (none may have it open) and would otherwise hold
    /// their accounts' slots until their leases ran out. Returns how many jobs it rescued.
    static func rescueEveryClaim(_ db: Database, now: UnixTime) throws -> Int {
        try rescue(
            db, "1", [], now: now,
            lastAttempt: "'the worker ' || COALESCE(lease_owner, '?') || ' held it on its last allowed attempt when the queue''s file was '"
                + " || 'found damaged; if it did not run, requeue it (`tgsm jobs retry`)'",
            again: "'rescued: the worker ' || COALESCE(lease_owner, '?') || ' held it when the queue''s file was found damaged (salvaged); '"
                + " || 'it runs again, and may have run already'")
    }

    /// Running jobs matching `condition` back to the queue, or dead on their last attempt; each
    /// reason is an SQL expression (it may name the lease's owner).
    @discardableResult
    private static func rescue(_ db: Database, _ condition: String, _ arguments: StatementArguments, now: UnixTime,
                               lastAttempt: String, again: String) throws -> Int {
        let matching = "state = 'running' AND \(condition)"
        try db.cachedStatement(
            sql: """
                UPDATE jobs SET state = 'dead', finished_at = ?, updated_at = ?, last_error = \(lastAttempt),
                lease_owner = NULL, lease_until = NULL
                WHERE \(matching) AND attempts >= max_attempts
                """
        ).execute(arguments: [now.seconds, now.seconds] + arguments)
        let dead = db.changesCount
        try db.cachedStatement(
            sql: """
                UPDATE jobs SET state = 'queued', run_at = ?, updated_at = ?, last_error = \(again),
                lease_owner = NULL, lease_until = NULL
                WHERE \(matching)
                """
        ).execute(arguments: [now.seconds, now.seconds] + arguments)
        return dead + db.changesCount
    }

    private func fenced(_ claim: JobClaim, sql: String, arguments: StatementArguments) async throws(JobQueueError) {
        let statementSQL = "UPDATE jobs SET \(sql) WHERE id = ? AND lease_token = ? AND state = 'running'"
        try await batched { db in
            try db.cachedStatement(sql: statementSQL).execute(arguments: arguments + [claim.job.rawValue, claim.token])
            if db.changesCount == 0 { throw JobQueueError.claimLost(claim) }
        }
    }

    private func transition(
        _ id: JobID, from allowed: Set<JobState>, action: String, _ update: @escaping @Sendable (Database) throws -> Void
    ) async throws(JobQueueError) -> AccountID {
        try await write { db -> AccountID in
            guard let row = try Row.fetchOne(db, sql: "SELECT state, account FROM jobs WHERE id = ?", arguments: [id.rawValue]) else {
                throw JobQueueError.notFound(id)
            }
            let stateName = try row.decode(String.self, forColumn: "state")
            guard let state = JobState(rawValue: stateName) else { throw JobQueueError.storage("\(id) has an unknown state '\(stateName)'") }
            guard allowed.contains(state) else { throw JobQueueError.invalidTransition(id, from: state, action: action) }
            try update(db)
            return AccountID(try row.decode(String.self, forColumn: "account"))
        }
    }

    fileprivate static func placeholders(_ count: Int) -> String {
        "(" + Array(repeating: "?", count: count).joined(separator: ", ") + ")"
    }

    static func fetchJob(_ db: Database, id: JobID) throws -> Job? {
        try Row.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id.rawValue]).map(decodeJob)
    }

    static func decodeJob(_ row: Row) throws -> Job {
        let stateName = try row.decode(String.self, forColumn: "state")
        guard let state = JobState(rawValue: stateName) else {
            throw JobQueueError.storage("a job row has the unknown state '\(stateName)'; was the file written by a newer version?")
        }
        return Job(
            id: JobID(try row.decode(Int64.self, forColumn: "id")),
            kind: JobKind(try row.decode(String.self, forColumn: "kind")),
            account: AccountID(try row.decode(String.self, forColumn: "account")),
            payload: try row.decode(Data.self, forColumn: "payload"),
            priority: try row.decode(Int.self, forColumn: "priority"),
            state: state,
            runAt: UnixTime(seconds: try row.decode(Double.self, forColumn: "run_at")),
            attempts: try row.decode(Int.self, forColumn: "attempts"),
            maxAttempts: try row.decode(Int.self, forColumn: "max_attempts"),
            idempotencyKey: try row.decode(String?.self, forColumn: "idempotency_key"),
            leaseOwner: try row.decode(String?.self, forColumn: "lease_owner"),
            leaseUntil: try row.decode(Double?.self, forColumn: "lease_until").map(UnixTime.init(seconds:)),
            progress: try row.decode(Data?.self, forColumn: "progress"),
            result: try row.decode(Data?.self, forColumn: "result"),
            lastError: try row.decode(String?.self, forColumn: "last_error"),
            deferrals: try row.decode(Int.self, forColumn: "deferrals"),
            createdAt: UnixTime(seconds: try row.decode(Double.self, forColumn: "created_at")),
            updatedAt: UnixTime(seconds: try row.decode(Double.self, forColumn: "updated_at")),
            finishedAt: try row.decode(Double?.self, forColumn: "finished_at").map(UnixTime.init(seconds:)))
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(JobQueueError) -> T {
        do {
            return try await writer.write(body)
        } catch let error as JobQueueError {
            throw error
        } catch {
            throw failure(error)
        }
    }

    /// A write that shares its transaction with the claims and fenced writes submitted meanwhile
    /// (`GroupCommit`); it returns once that transaction committed. Only for bodies that throw a
    /// `JobQueueError` before they change anything.
    private func batched<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(JobQueueError) -> T {
        do {
            return try await commits.perform(body)
        } catch let error as JobQueueError {
            throw error
        } catch {
            throw failure(error)
        }
    }

    /// What SQLite's `integrity_check` finds wrong with the queue's file (its first few findings),
    /// or nil when the file is intact. Reads every page: for `tgsm check`, not for a hot path.
    public func integrityProblem() async -> String? {
        do {
            let findings = try await writer.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check(3)") }
            return findings == ["ok"] ? nil : findings.joined(separator: "; ")
        } catch {
            return (error as? DatabaseError)?.message ?? "\(error)"
        }
    }

    /// A damaged file (a page SQLite finds malformed) is its own error: it does not pass, and its
    /// remedy is a salvage, not a retry.
    private func failure(_ error: any Error) -> JobQueueError {
        if let error = error as? DatabaseError, [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode.primaryResultCode) {
            return .unreadable(path: writer.path, reason: error.message ?? "\(error.resultCode)")
        }
        return .storage("\(error)")
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(JobQueueError) -> T {
        do {
            return try await writer.read(body)
        } catch let error as JobQueueError {
            throw error
        } catch {
            throw failure(error)
        }
    }
}

/// Fans one event out to every subscriber's stream (the workers' wake-ups, worker events; public
/// for the other queue implementations, e.g. PostgreSQL's, which feed it from LISTEN).
public final class Broadcaster<Element: Sendable>: Sendable {
    private let continuations = Mutex<[Int: AsyncStream<Element>.Continuation]>([:])
    private let nextID = Atomic<Int>(0)

    public init() {}

    public func subscribe() -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream<Element>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        continuations.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            self?.continuations.withLock { _ = $0.removeValue(forKey: id) }
        }
        return stream
    }

    public func yield(_ element: Element) {
        let all = continuations.withLock { Array($0.values) }
        for continuation in all { continuation.yield(element) }
    }
}
