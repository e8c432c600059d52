import Foundation
import Logging
import MTProto
import PostgresNIO
import SessionManager
import Synchronization
import Workers

/// The job queue on PostgreSQL, shared by worker processes on many hosts: the `JobQueue` contract
/// of `SQLiteJobQueue` (docs/WORKERS.md, "PostgreSQL").
///
/// - **claim**: one transaction. It takes a transaction-scoped advisory lock per requested account
///   (in one global order, so claimers never deadlock), which makes the per-account limit exact
///   across processes: claimers of the same account take turns for the few milliseconds of the
///   count and the pick. Rows are picked and locked with `FOR UPDATE SKIP LOCKED`, so a claim never
///   waits on a job another transaction holds (a worker's heartbeat, an operator's cancel).
/// - **rescue**: expired claims of the requested accounts are rescued at the start of each claim.
/// - **wake-ups**: `enqueue` and `requeue` send `NOTIFY tgsm_jobs, '<account>'` in their
///   transaction (delivered at commit), and so does every change that frees one of the account's
///   slots (complete, retry, defer, release, ended claims): a process whose claim found the slots
///   held by other processes is woken at once, not at its next poll. Every queue LISTENs on one
///   pooled connection and feeds `enqueueSignals()`. While that connection is down, workers still poll (`WorkerConfiguration`).
/// - **idempotency keys**: a unique index over the whole table, so unique across the cluster.
/// - **enqueue tokens**: each enqueue writes a random token under a unique index of its own, so an
///   enqueue whose COMMIT went unanswered can run again and tell its own row from another's.
public final class PostgresJobQueue: JobQueue, JobHistoryReading {
    public static let notificationChannel = "tgsm_jobs"

    public let database: PostgresDatabase
    private let logger: Logger
    private let signals = Broadcaster<AccountID>()
    private let listener = Mutex<Task<Void, Never>?>(nil)
    private let ownsDatabase: Bool

    /// Connects to `url`, applies the queue's migrations and starts listening for wake-ups.
    public static func connect(url: String, logger: Logger = Logger(label: "tgsm.jobs")) async throws(JobQueueError) -> PostgresJobQueue {
        let database: PostgresDatabase
        do { database = try await PostgresDatabase.connect(url: url, logger: logger) } catch { throw .storage(error.description) }
        do {
            return try await open(database: database, logger: logger, ownsDatabase: true)
        } catch {
            await database.close()
            throw error
        }
    }

    /// Connects to `url` for a view that only reads (`tgsm status`, `check`): the schema is checked,
    /// not migrated, and no wake-up listener runs. Nil when the database holds no queue yet.
    public static func connectForReading(url: String, logger: Logger = Logger(label: "tgsm.jobs")) async throws(JobQueueError) -> PostgresJobQueue? {
        let database: PostgresDatabase
        do { database = try await PostgresDatabase.connect(url: url, logger: logger) } catch { throw .storage(error.description) }
        let found: Bool
        do { found = try await hasSchema(database) } catch {
            await database.close()
            throw error
        }
        guard found else {
            await database.close()
            return nil
        }
        return PostgresJobQueue(database: database, logger: logger, ownsDatabase: true)
    }

    /// `connectForReading` on an open database (a `PostgresSessionStore`'s, so that a reading
    /// command holds one pool, not two): verified, never migrated; `close()` leaves it open.
    public static func openForReading(database: PostgresDatabase, logger: Logger = Logger(label: "tgsm.jobs")) async throws(JobQueueError) -> PostgresJobQueue? {
        guard try await hasSchema(database) else { return nil }
        return PostgresJobQueue(database: database, logger: logger, ownsDatabase: false)
    }

    /// Whether the queue's tables exist at a version this tgsm reads (throws for one it does not).
    private static func hasSchema(_ database: PostgresDatabase) async throws(JobQueueError) -> Bool {
        do { return try await PostgresMigrator.verify(database, prefix: "jobs.", migrations: migrations) } catch { throw .storage(error.description) }
    }

    /// Uses an open database (shared with a `PostgresSessionStore`, say); `close()` leaves it open.
    public static func open(database: PostgresDatabase, logger: Logger = Logger(label: "tgsm.jobs")) async throws(JobQueueError) -> PostgresJobQueue {
        try await open(database: database, logger: logger, ownsDatabase: false)
    }

    private static func open(database: PostgresDatabase, logger: Logger, ownsDatabase: Bool) async throws(JobQueueError) -> PostgresJobQueue {
        do {
            try await PostgresMigrator.migrate(database, prefix: "jobs.", migrations: migrations)
        } catch {
            throw .storage(error.description)
        }
        let queue = PostgresJobQueue(database: database, logger: logger, ownsDatabase: ownsDatabase)
        await queue.startListening()
        return queue
    }

    private init(database: PostgresDatabase, logger: Logger, ownsDatabase: Bool) {
        self.database = database
        self.logger = logger
        self.ownsDatabase = ownsDatabase
    }

    /// Stops listening and, when the queue opened the database itself, closes it.
    public func close() async {
        let task = listener.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await PostgresDatabase.stopListening(task)
        if ownsDatabase { await database.close() }
    }

    static let migrations: [PostgresMigration] = [
        PostgresMigration(id: "jobs.v1", statements: [
            """
            CREATE TABLE jobs (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                kind text NOT NULL,
                account text NOT NULL,
                payload bytea NOT NULL,
                priority bigint NOT NULL DEFAULT 0,
                state text NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'dead', 'cancelled')),
                run_at double precision NOT NULL,
                attempts bigint NOT NULL DEFAULT 0,
                max_attempts bigint NOT NULL CHECK (max_attempts >= 1),
                idempotency_key text UNIQUE,
                lease_owner text,
                lease_token bigint NOT NULL DEFAULT 0,
                lease_until double precision,
                progress bytea,
                result bytea,
                last_error text,
                deferrals bigint NOT NULL DEFAULT 0,
                created_at double precision NOT NULL,
                updated_at double precision NOT NULL,
                finished_at double precision
            )
            """,
            "CREATE INDEX jobs_due ON jobs(account, priority DESC, run_at, id) WHERE state = 'queued'",
            "CREATE INDEX jobs_running ON jobs(account, lease_until) WHERE state = 'running'",
            "CREATE INDEX jobs_by_state ON jobs(state, account, id)",
        ]),
        // Finished jobs are purged by the time they finished (`JobRetention`).
        PostgresMigration(id: "jobs.v2.finished", statements: [
            "CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL",
        ]),
        historyMigration,
        // An enqueue in doubt inserts again with the same token: ON CONFLICT finds the first
        // attempt's row if it was stored (waiting for it if its COMMIT is still in flight).
        PostgresMigration(id: "jobs.v4.enqueue-token", statements: [
            "ALTER TABLE jobs ADD COLUMN enqueue_token text",
            "CREATE UNIQUE INDEX jobs_enqueue_token ON jobs(enqueue_token)",
        ]),
    ]

    /// Every state change leaves a row in job_history, as on SQLite (the same events, depth changes
    /// and errors: `SQLiteJobQueue`'s `jobs.v2.history`): written by a trigger in the transaction of
    /// the change, stamped with the caller's `now`. Rows older than `SQLiteJobQueue.historyRetentionSeconds`
    /// go as rows are written, at most 16 per write and skipping rows another transaction is
    /// deleting: workers of many processes never wait on each other for the clean-up, and since
    /// each write adds one row, 16 keep the table from growing.
    static let historyMigration = PostgresMigration(id: "jobs.v3.history", statements: [
        """
        CREATE TABLE job_history (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at double precision NOT NULL,
            job bigint NOT NULL,
            account text NOT NULL,
            kind text NOT NULL,
            event text NOT NULL,
            depth_delta integer NOT NULL,
            error text
        )
        """,
        "CREATE INDEX job_history_at ON job_history(at)",
        """
        CREATE FUNCTION tgsm_job_history() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            change_at double precision;
            change_event text;
            change_delta integer;
            change_error text;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                change_at := NEW.created_at;
                change_event := 'enqueued';
                change_delta := 1;
            ELSE
                change_at := NEW.updated_at;
                change_event := CASE
                    WHEN NEW.state = 'completed' THEN 'completed'
                    WHEN NEW.state = 'dead' THEN 'dead'
                    WHEN NEW.state = 'cancelled' THEN 'cancelled'
                    WHEN OLD.state IN ('dead', 'cancelled') THEN 'requeued'
                    WHEN NEW.deferrals > OLD.deferrals AND NEW.run_at > NEW.updated_at THEN 'deferred'
                    WHEN NEW.deferrals > OLD.deferrals THEN 'released'
                    WHEN NEW.attempts = OLD.attempts AND NEW.last_error LIKE 'rescued:%' THEN 'rescued'
                    ELSE 'retried'
                END;
                change_delta := CASE
                    WHEN OLD.state IN ('queued', 'running') AND NEW.state IN ('completed', 'dead', 'cancelled') THEN -1
                    WHEN OLD.state IN ('dead', 'cancelled') AND NEW.state IN ('queued', 'running') THEN 1
                    ELSE 0
                END;
                change_error := CASE
                    WHEN NEW.state IN ('completed', 'cancelled') OR OLD.state IN ('dead', 'cancelled') THEN NULL
                    ELSE NEW.last_error
                END;
            END IF;
            INSERT INTO job_history (at, job, account, kind, event, depth_delta, error)
                VALUES (change_at, NEW.id, NEW.account, NEW.kind, change_event, change_delta, change_error);
            DELETE FROM job_history WHERE id IN (
                SELECT id FROM job_history WHERE at < change_at - \(SQLiteJobQueue.historyRetentionSeconds)
                ORDER BY at LIMIT 16 FOR UPDATE SKIP LOCKED);
            RETURN NULL;
        END
        $$
        """,
        "CREATE TRIGGER jobs_history_insert AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION tgsm_job_history()",
        """
        CREATE TRIGGER jobs_history_update AFTER UPDATE OF state ON jobs FOR EACH ROW
            WHEN (OLD.state <> NEW.state AND NOT (OLD.state = 'queued' AND NEW.state = 'running'))
            EXECUTE FUNCTION tgsm_job_history()
        """,
    ])

    // MARK: Wake-ups

    /// Keeps one pooled connection LISTENing; returns once the first LISTEN is in place (or failed:
    /// then workers poll until a later attempt succeeds).
    private func startListening() async {
        let signals = self.signals
        let task = await database.keepListening(
            on: Self.notificationChannel, logger: logger, lost: "workers poll", received: { signals.yield(AccountID($0)) })
        listener.withLock { $0 = task }
    }

    public func enqueueSignals() -> AsyncStream<AccountID> {
        signals.subscribe()
    }

    // MARK: Writes

    public func enqueue(_ job: NewJob, now: UnixTime) async throws(JobQueueError) -> EnqueueOutcome {
        guard job.maxAttempts >= 1 else { throw .invalidJob("maxAttempts must be at least 1 (it is \(job.maxAttempts))") }
        guard !job.kind.rawValue.isEmpty else { throw .invalidJob("the kind is empty") }
        let token = UUID().uuidString
        let outcome: EnqueueOutcome
        do throws(JobQueueError) {
            outcome = try await insert(job, token: token, now: now)
        } catch .storageInDoubt(let reason) {
            // The token makes the insert safe to run again: had the first COMMIT taken effect, ON
            // CONFLICT finds its row and nothing is stored twice. The caller gets an answer instead
            // of a doubt to resolve by hand.
            logger.notice("an enqueue's COMMIT went unanswered; inserting again under its token", metadata: ["reason": "\(reason)"])
            do throws(JobQueueError) {
                outcome = try await insert(job, token: token, now: now)
            } catch .storageInDoubt(let again) {
                throw .storageInDoubt("\(reason); inserted again, and that COMMIT went unanswered too (\(again))")
            }
        }
        if case .created = outcome { signals.yield(job.account) }
        return outcome
    }

    /// One INSERT of `job` under `token`, a conflict on the token or the idempotency key doing
    /// nothing: a row holding `token` is this enqueue's own (`created`, a first attempt's whose
    /// COMMIT went unanswered), another under the key is `duplicate`.
    private func insert(_ job: NewJob, token: String, now: UnixTime) async throws(JobQueueError) -> EnqueueOutcome {
        let logger = self.logger
        return try await write { connection -> EnqueueOutcome in
            let inserted = try await connection.rows("""
                INSERT INTO jobs (kind, account, payload, priority, state, run_at, max_attempts, idempotency_key, enqueue_token, created_at, updated_at)
                VALUES (\(job.kind.rawValue), \(job.account.rawValue), \(job.payload), \(Int64(job.priority)), 'queued', \((job.runAt ?? now).seconds),
                        \(Int64(job.maxAttempts)), \(job.idempotencyKey), \(token), \(now.seconds), \(now.seconds))
                ON CONFLICT DO NOTHING
                RETURNING id
                """, logger: logger)
            if let row = inserted.first {
                try await connection.query("SELECT pg_notify(\(Self.notificationChannel), \(job.account.rawValue))", logger: logger)
                return .created(JobID(try row.decode(Int64.self)))
            }
            // ON CONFLICT waited for a concurrent insert of the key or the token to commit: this statement sees it.
            guard let existing = try await connection.rows(
                "SELECT id, enqueue_token FROM jobs WHERE enqueue_token = \(token) OR idempotency_key = \(job.idempotencyKey)", logger: logger).first
            else {
                let which = job.idempotencyKey.map { "the job with idempotency key \($0)" } ?? "the job an earlier attempt of this enqueue stored"
                throw JobQueueError.storage("\(which) vanished while enqueueing")
            }
            let (id, existingToken) = try existing.decode((Int64, String?).self)
            return existingToken == token ? .created(JobID(id)) : .duplicate(JobID(id))
        }
    }

    public func claim(_ request: ClaimRequest, now: UnixTime) async throws(JobQueueError) -> [ClaimedJob] {
        guard request.limit > 0, !request.accounts.isEmpty else { return [] }
        if let kinds = request.kinds, kinds.isEmpty { return [] }
        let accounts = request.accounts.map(\.rawValue).sorted()
        let anyKind = request.kinds == nil
        let kinds = (request.kinds ?? []).map(\.rawValue).sorted()
        let leaseUntil = now + request.leaseSeconds
        let logger = self.logger
        return try await write { connection -> [ClaimedJob] in
            // One global order (the lock keys, sorted): two claimers never wait on each other in a cycle.
            try await connection.query("""
                SELECT pg_advisory_xact_lock(k) FROM (
                    SELECT DISTINCT hashtextextended('tgsm.jobs|' || a, 0) AS k FROM unnest(\(accounts)::text[]) AS a ORDER BY k
                ) AS keys
                """, logger: logger)
            try await Self.rescueExpired(connection, accounts: accounts, now: now, logger: logger)

            // Count, pick and mark in one statement (round trips are most of a claim's cost): each
            // account gets (limit - running) slots, filled by priority with rows locked SKIP LOCKED.
            var claimed: [ClaimedJob] = []
            for row in try await connection.rows("""
                WITH running AS (
                    SELECT account, count(*) AS n FROM jobs WHERE state = 'running' AND account = ANY(\(accounts)::text[]) GROUP BY account
                ), open AS (
                    SELECT a.account, LEAST(\(Int64(request.limit)), \(Int64(request.perAccountLimit)) - COALESCE(r.n, 0)) AS slots
                    FROM unnest(\(accounts)::text[]) AS a(account) LEFT JOIN running r ON r.account = a.account
                ), chosen AS (
                    SELECT j.id FROM open AS a
                    CROSS JOIN LATERAL (
                        SELECT id, priority, run_at FROM jobs
                        WHERE state = 'queued' AND account = a.account AND run_at <= \(now.seconds)
                          AND (\(anyKind) OR kind = ANY(\(kinds)::text[]))
                        ORDER BY priority DESC, run_at, id
                        LIMIT GREATEST(a.slots, 0)
                        FOR UPDATE SKIP LOCKED
                    ) AS j
                    ORDER BY j.priority DESC, j.run_at, j.id
                    LIMIT \(Int64(request.limit))
                )
                UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = \(request.owner), lease_token = lease_token + 1,
                    lease_until = \(leaseUntil.seconds), updated_at = \(now.seconds)
                FROM chosen WHERE jobs.id = chosen.id
                RETURNING \(unescaped: Self.returnedColumns)
                """, logger: logger)
            {
                let (job, token) = try Self.decodeJob(row)
                claimed.append(ClaimedJob(job: job, claim: JobClaim(job: job.id, token: token, owner: request.owner), leaseUntil: leaseUntil))
            }
            // RETURNING has no order: the contract's is priority, then run-at, then id.
            return claimed.sorted { lhs, rhs in
                if lhs.job.priority != rhs.job.priority { return lhs.job.priority > rhs.job.priority }
                if lhs.job.runAt != rhs.job.runAt { return lhs.job.runAt < rhs.job.runAt }
                return lhs.job.id < rhs.job.id
            }
        }
    }

    /// Claims whose worker stopped heartbeating go back to the queue (or, with no attempt left, to
    /// the dead letters), keeping the attempt spent, as on SQLite.
    private static func rescueExpired(_ connection: PostgresConnection, accounts: [String], now: UnixTime, logger: Logger) async throws {
        try await connection.query("""
            UPDATE jobs SET
                state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END,
                finished_at = CASE WHEN attempts >= max_attempts THEN \(now.seconds) ELSE finished_at END,
                run_at = CASE WHEN attempts >= max_attempts THEN run_at ELSE \(now.seconds) END,
                updated_at = \(now.seconds),
                last_error = CASE WHEN attempts >= max_attempts
                    THEN 'the worker ' || COALESCE(lease_owner, '?') || ' stopped renewing its lease (it crashed, was killed or '
                        || 'lost the database) on the last allowed attempt; fix what kills the worker, then requeue the job'
                    ELSE 'rescued: the worker ' || COALESCE(lease_owner, '?') || ' stopped renewing its claim (crashed, killed, frozen or cut off from the store mid-job)' END,
                lease_owner = NULL, lease_until = NULL
            WHERE id IN (
                SELECT id FROM jobs WHERE state = 'running' AND account = ANY(\(accounts)::text[]) AND lease_until <= \(now.seconds)
                FOR UPDATE SKIP LOCKED)
            """, logger: logger)
    }

    public func heartbeat(_ claim: JobClaim, leaseSeconds: Double, now: UnixTime) async throws(JobQueueError) -> UnixTime {
        let until = now + leaseSeconds
        try await fenced(claim, """
            UPDATE jobs SET lease_until = \(until.seconds), updated_at = \(now.seconds)
            WHERE id = \(claim.job.rawValue) AND lease_token = \(claim.token) AND state = 'running' RETURNING id
            """)
        return until
    }

    public func checkpoint(_ claim: JobClaim, progress: Data, now: UnixTime) async throws(JobQueueError) {
        // Binding bytes can throw (in postgres-nio's signature, never for Data): kept out of the typed path.
        let query: PostgresQuery
        do {
            query = try """
                UPDATE jobs SET progress = \(progress), updated_at = \(now.seconds)
                WHERE id = \(claim.job.rawValue) AND lease_token = \(claim.token) AND state = 'running' RETURNING id
                """
        } catch { throw .storage(PostgresDatabase.describe(error)) }
        try await fenced(claim, query)
    }

    public func complete(_ claim: JobClaim, result: Data?, now: UnixTime) async throws(JobQueueError) {
        let query: PostgresQuery
        do {
            query = try """
                UPDATE jobs SET state = 'completed', result = \(result), lease_owner = NULL, lease_until = NULL, updated_at = \(now.seconds),
                    finished_at = \(now.seconds)
                WHERE id = \(claim.job.rawValue) AND lease_token = \(claim.token) AND state = 'running' RETURNING account
                """
        } catch { throw .storage(PostgresDatabase.describe(error)) }
        try await fenced(claim, query, freesSlot: true)
    }

    @discardableResult
    public func retry(_ claim: JobClaim, error: String, retryAt: UnixTime?, now: UnixTime) async throws(JobQueueError) -> JobState {
        let logger = self.logger
        return try await write { connection -> JobState in
            guard let row = try await connection.rows("""
                SELECT attempts, max_attempts, account FROM jobs WHERE id = \(claim.job.rawValue) AND lease_token = \(claim.token) AND state = 'running'
                FOR UPDATE
                """, logger: logger).first
            else { throw JobQueueError.claimLost(claim) }
            let (attempts, maxAttempts, account) = try row.decode((Int64, Int64, String).self)
            // Either way the job leaves `running`: waiters for the account's slots are woken.
            try await connection.query("SELECT pg_notify(\(Self.notificationChannel), \(account))", logger: logger)
            if let retryAt, attempts < maxAttempts {
                try await connection.query("""
                    UPDATE jobs SET state = 'queued', run_at = \(retryAt.seconds), last_error = \(error), lease_owner = NULL, lease_until = NULL,
                        updated_at = \(now.seconds)
                    WHERE id = \(claim.job.rawValue)
                    """, logger: logger)
                return .queued
            }
            try await connection.query("""
                UPDATE jobs SET state = 'dead', last_error = \(error), lease_owner = NULL, lease_until = NULL, updated_at = \(now.seconds),
                    finished_at = \(now.seconds)
                WHERE id = \(claim.job.rawValue)
                """, logger: logger)
            return .dead
        }
    }

    public func deferJob(_ claim: JobClaim, until: UnixTime, reason: String, now: UnixTime) async throws(JobQueueError) {
        try await fenced(claim, """
            UPDATE jobs SET state = 'queued', run_at = \(until.seconds), attempts = GREATEST(attempts - 1, 0), deferrals = deferrals + 1,
                last_error = \(reason), lease_owner = NULL, lease_until = NULL, updated_at = \(now.seconds)
            WHERE id = \(claim.job.rawValue) AND lease_token = \(claim.token) AND state = 'running' RETURNING account
            """, freesSlot: true)
    }

    public func release(_ claim: JobClaim, reason: String, now: UnixTime) async throws(JobQueueError) {
        try await fenced(claim, """
            UPDATE jobs SET state = 'queued', run_at = \(now.seconds), attempts = GREATEST(attempts - 1, 0), deferrals = deferrals + 1,
                last_error = \(reason), lease_owner = NULL, lease_until = NULL, updated_at = \(now.seconds)
            WHERE id = \(claim.job.rawValue) AND lease_token = \(claim.token) AND state = 'running' RETURNING account
            """, freesSlot: true)
    }

    public func requeue(_ id: JobID, now: UnixTime) async throws(JobQueueError) {
        let account = try await transition(id, from: [.dead, .cancelled], action: "requeued", """
            UPDATE jobs SET state = 'queued', attempts = 0, run_at = GREATEST(run_at, \(now.seconds)), updated_at = \(now.seconds), finished_at = NULL
            WHERE id = \(id.rawValue)
            """, notify: true)
        signals.yield(account)
    }

    public func abandonClaims(ownedBy owner: String, account: AccountID, now: UnixTime) async throws(JobQueueError) -> Int {
        let logger = self.logger
        let ended = try await write { connection -> Int in
            let rows = try await connection.rows("""
                UPDATE jobs SET lease_until = \(now.seconds)
                WHERE state = 'running' AND account = \(account.rawValue) AND lease_owner = \(owner) AND lease_until > \(now.seconds)
                RETURNING id
                """, logger: logger)
            if !rows.isEmpty {
                try await connection.query("SELECT pg_notify(\(Self.notificationChannel), \(account.rawValue))", logger: logger)
            }
            return rows.count
        }
        if ended > 0 { signals.yield(account) }
        return ended
    }

    public func cancel(_ id: JobID, now: UnixTime) async throws(JobQueueError) {
        _ = try await transition(id, from: [.queued, .dead], action: "cancelled", """
            UPDATE jobs SET state = 'cancelled', updated_at = \(now.seconds), finished_at = \(now.seconds) WHERE id = \(id.rawValue)
            """, notify: false)
    }

    public func purge(_ purge: JobPurge, limit: Int) async throws(JobQueueError) -> Int {
        guard limit > 0 else { return 0 }
        let states = purge.states.map(\.rawValue).sorted()
        let logger = self.logger
        return try await write { connection -> Int in
            // SKIP LOCKED: processes of a cluster purging at the same moment split the rows
            // instead of waiting on each other's locks.
            try await connection.rows("""
                DELETE FROM jobs WHERE id IN (
                    SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < \(purge.finishedBefore.seconds)
                        AND state = ANY(\(states)::text[])
                    ORDER BY finished_at LIMIT \(Int64(limit)) FOR UPDATE SKIP LOCKED)
                RETURNING id
                """, logger: logger).count
        }
    }

    public func countPurgeable(_ purge: JobPurge) async throws(JobQueueError) -> Int {
        let states = purge.states.map(\.rawValue).sorted()
        let logger = self.logger
        return try await read { connection -> Int in
            guard let row = try await connection.rows("""
                SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL AND finished_at < \(purge.finishedBefore.seconds)
                    AND state = ANY(\(states)::text[])
                """, logger: logger).first
            else { return 0 }
            return Int(try row.decode(Int64.self))
        }
    }

    // MARK: Reads

    public func history(since: UnixTime, limit: Int, events: Set<JobHistoryEntry.Event>?) async throws(JobQueueError) -> [JobHistoryEntry] {
        let logger = self.logger
        let only = (events ?? Set(JobHistoryEntry.Event.allCases)).map(\.rawValue).sorted()
        return try await read { connection -> [JobHistoryEntry] in
            let rows = try await connection.rows("""
                SELECT at, job, account, kind, event, depth_delta, error FROM job_history
                WHERE at >= \(since.seconds) AND event = ANY(\(only)::text[])
                ORDER BY id DESC LIMIT \(Int64(max(0, limit)))
                """, logger: logger)
            return try rows.reversed().map(Self.historyEntry)
        }
    }

    public func history(of job: JobID) async throws(JobQueueError) -> [JobHistoryEntry] {
        let logger = self.logger
        // No index on job: the history holds a week at most, and one person's look scans it once.
        return try await read { connection -> [JobHistoryEntry] in
            try await connection.rows("""
                SELECT at, job, account, kind, event, depth_delta, error FROM job_history WHERE job = \(job.rawValue) ORDER BY id
                """, logger: logger).map(Self.historyEntry)
        }
    }

    private static func historyEntry(_ row: PostgresRow) throws -> JobHistoryEntry {
        let (at, job, account, kind, name, depthDelta, error) = try row.decode((Double, Int64, String, String, String, Int32, String?).self)
        guard let event = JobHistoryEntry.Event(rawValue: name) else {
            throw JobQueueError.storage("a job history row has the unknown event '\(name)'; was it written by a newer version?")
        }
        return JobHistoryEntry(at: UnixTime(seconds: at), job: JobID(job), account: AccountID(account), kind: JobKind(kind),
                               event: event, depthDelta: Int(depthDelta), error: error)
    }

    public func job(_ id: JobID) async throws(JobQueueError) -> Job? {
        let logger = self.logger
        return try await read { connection in
            try await connection.rows("SELECT \(unescaped: Self.columns) FROM jobs WHERE id = \(id.rawValue)", logger: logger)
                .first.map { try Self.decodeJob($0).job }
        }
    }

    public func jobs(state: JobState?, account: AccountID?, limit: Int) async throws(JobQueueError) -> [Job] {
        let logger = self.logger
        return try await read { connection in
            try await connection.rows("""
                SELECT \(unescaped: Self.columns) FROM jobs
                WHERE (\(state == nil) OR state = \(state?.rawValue ?? "")) AND (\(account == nil) OR account = \(account?.rawValue ?? ""))
                ORDER BY id DESC LIMIT \(Int64(max(0, limit)))
                """, logger: logger).map { try Self.decodeJob($0).job }
        }
    }

    public func counts(account: AccountID?) async throws(JobQueueError) -> JobCounts {
        let logger = self.logger
        return try await read { connection in
            var counts: [JobState: Int] = [:]
            for row in try await connection.rows("""
                SELECT state, count(*) FROM jobs WHERE (\(account == nil) OR account = \(account?.rawValue ?? "")) GROUP BY state
                """, logger: logger)
            {
                let (name, count) = try row.decode((String, Int64).self)
                if let state = JobState(rawValue: name) { counts[state] = Int(count) }
            }
            return JobCounts(byState: counts)
        }
    }

    public func nextWakeup(accounts: Set<AccountID>, kinds: Set<JobKind>?) async throws(JobQueueError) -> UnixTime? {
        guard !accounts.isEmpty else { return nil }
        if let kinds, kinds.isEmpty { return nil }
        let accountList = accounts.map(\.rawValue).sorted()
        let anyKind = kinds == nil
        let kindList = (kinds ?? []).map(\.rawValue).sorted()
        let logger = self.logger
        return try await read { connection in
            guard let row = try await connection.rows("""
                SELECT min(run_at) FILTER (WHERE state = 'queued'), min(lease_until) FILTER (WHERE state = 'running') FROM jobs
                WHERE state IN ('queued', 'running') AND account = ANY(\(accountList)::text[]) AND (\(anyKind) OR kind = ANY(\(kindList)::text[]))
                """, logger: logger).first
            else { return nil }
            let (due, expiry) = try row.decode((Double?, Double?).self)
            return [due, expiry].compactMap { $0 }.min().map(UnixTime.init(seconds:))
        }
    }

    // MARK: Internals

    /// The same columns, qualified, for an UPDATE ... FROM whose other relation has an `id` too.
    static let returnedColumns = columns.split(separator: ",").map { "jobs." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        .joined(separator: ", ")

    static let columns = """
        id, kind, account, payload, priority, state, run_at, attempts, max_attempts, idempotency_key, lease_owner, lease_token, lease_until, \
        progress, result, last_error, deferrals, created_at, updated_at, finished_at
        """

    static func decodeJob(_ row: PostgresRow) throws -> (job: Job, token: Int64) {
        let cells = row.makeRandomAccess()
        let stateName = try cells["state"].decode(String.self)
        guard let state = JobState(rawValue: stateName) else {
            throw JobQueueError.storage("a job row has the unknown state '\(stateName)'; was it written by a newer version?")
        }
        let job = Job(
            id: JobID(try cells["id"].decode(Int64.self)),
            kind: JobKind(try cells["kind"].decode(String.self)),
            account: AccountID(try cells["account"].decode(String.self)),
            payload: try cells["payload"].decode(Data.self),
            priority: Int(try cells["priority"].decode(Int64.self)),
            state: state,
            runAt: UnixTime(seconds: try cells["run_at"].decode(Double.self)),
            attempts: Int(try cells["attempts"].decode(Int64.self)),
            maxAttempts: Int(try cells["max_attempts"].decode(Int64.self)),
            idempotencyKey: try cells["idempotency_key"].decode(String?.self),
            leaseOwner: try cells["lease_owner"].decode(String?.self),
            leaseUntil: try cells["lease_until"].decode(Double?.self).map(UnixTime.init(seconds:)),
            progress: try cells["progress"].decode(Data?.self),
            result: try cells["result"].decode(Data?.self),
            lastError: try cells["last_error"].decode(String?.self),
            deferrals: Int(try cells["deferrals"].decode(Int64.self)),
            createdAt: UnixTime(seconds: try cells["created_at"].decode(Double.self)),
            updatedAt: UnixTime(seconds: try cells["updated_at"].decode(Double.self)),
            finishedAt: try cells["finished_at"].decode(Double?.self).map(UnixTime.init(seconds:)))
        return (job, try cells["lease_token"].decode(Int64.self))
    }

    /// Runs a claim-fenced UPDATE ... RETURNING: no row means the claim is no longer the job's.
    /// `freesSlot`: the job leaves `running` (the query returns its account), so processes whose
    /// claims found the account's slots full are woken through NOTIFY instead of their poll.
    private func fenced(_ claim: JobClaim, _ query: PostgresQuery, freesSlot: Bool = false) async throws(JobQueueError) {
        let logger = self.logger
        try await write { connection in
            guard let row = try await connection.rows(query, logger: logger).first else { throw JobQueueError.claimLost(claim) }
            if freesSlot {
                let account = try row.decode(String.self)
                try await connection.query("SELECT pg_notify(\(Self.notificationChannel), \(account))", logger: logger)
            }
        }
    }

    private func transition(_ id: JobID, from allowed: Set<JobState>, action: String, _ update: PostgresQuery, notify: Bool)
        async throws(JobQueueError) -> AccountID
    {
        let logger = self.logger
        return try await write { connection -> AccountID in
            guard let row = try await connection.rows("SELECT state, account FROM jobs WHERE id = \(id.rawValue) FOR UPDATE", logger: logger).first
            else { throw JobQueueError.notFound(id) }
            let (stateName, account) = try row.decode((String, String).self)
            guard let state = JobState(rawValue: stateName) else { throw JobQueueError.storage("\(id) has an unknown state '\(stateName)'") }
            guard allowed.contains(state) else { throw JobQueueError.invalidTransition(id, from: state, action: action) }
            try await connection.query(update, logger: logger)
            if notify { try await connection.query("SELECT pg_notify(\(Self.notificationChannel), \(account))", logger: logger) }
            return AccountID(account)
        }
    }

    @discardableResult
    private func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(JobQueueError) -> T {
        try await database.jobsTransaction(nil, body)
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(JobQueueError) -> T {
        try await database.jobsRead(nil, body)
    }
}
