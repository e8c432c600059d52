import Foundation
import MTProto
import SessionManager

/// The durable job queue, independent of the database engine: SQLite (`SQLiteJobQueue`) now,
/// PostgreSQL (claims with `FOR UPDATE SKIP LOCKED`, wake-ups with LISTEN/NOTIFY) later. Every
/// method is one transaction. Time is always passed in (`now`), so the queue never reads a clock
/// and tests drive it exactly.
///
/// Guarantees every implementation keeps:
/// - a job is stored before `enqueue` returns, and is never lost: it ends `completed`, `dead` or
///   `cancelled`, whatever crashes in between;
/// - `claim` is atomic: a job is held by at most one claim at a time, and a claim whose lease ran
///   out (its worker died) is rescued by the next `claim`, spending the attempt it was on;
/// - writes about a running job (`heartbeat`, `complete`, `retry`, `deferJob`, `release`,
///   `checkpoint`) are fenced by the claim's token: a stale claim changes nothing and gets
///   `JobQueueError.claimLost`;
/// - idempotency keys are unique over the whole queue and kept as long as the job is (a finished
///   job is kept until it is purged: `JobRetention`).
public protocol JobQueue: Sendable {
    /// Stores a job, or answers the existing job with the same idempotency key.
    func enqueue(_ job: NewJob, now: UnixTime) async throws(JobQueueError) -> EnqueueOutcome

    /// Claims up to `request.limit` due jobs (state queued, runAt ≤ now), highest priority first,
    /// then oldest runAt, then oldest id, respecting the per-account limit over every worker.
    /// Expired claims are rescued first. Each claimed job has spent one more attempt.
    func claim(_ request: ClaimRequest, now: UnixTime) async throws(JobQueueError) -> [ClaimedJob]

    /// Extends a claim's lease to now + leaseSeconds.
    func heartbeat(_ claim: JobClaim, leaseSeconds: Double, now: UnixTime) async throws(JobQueueError) -> UnixTime

    /// Records mid-job progress (kept across attempts, visible as `Job.progress`).
    func checkpoint(_ claim: JobClaim, progress: Data, now: UnixTime) async throws(JobQueueError)

    /// The job succeeded.
    func complete(_ claim: JobClaim, result: Data?, now: UnixTime) async throws(JobQueueError)

    /// The job succeeded, and the worker's slot claims its next job (`next.limit` at most) in the
    /// same step: one write instead of two for a worker that stays busy. The completion holds even
    /// when nothing could be claimed; a claim-lost completion claims nothing.
    func complete(_ claim: JobClaim, result: Data?, now: UnixTime, thenClaim next: ClaimRequest) async throws(JobQueueError) -> [ClaimedJob]

    /// The attempt failed. With `retryAt` and attempts left, the job is queued again for then;
    /// otherwise (or with nil) it goes to the dead letters. Either way `error` is kept.
    /// Answers the state the job is left in.
    @discardableResult
    func retry(_ claim: JobClaim, error: String, retryAt: UnixTime?, now: UnixTime) async throws(JobQueueError) -> JobState

    /// Queues the job again for `until` without spending the attempt (a flood wait met mid-job).
    func deferJob(_ claim: JobClaim, until: UnixTime, reason: String, now: UnixTime) async throws(JobQueueError)

    /// Gives the job back, due now, without spending the attempt (shutdown, account stopped).
    func release(_ claim: JobClaim, reason: String, now: UnixTime) async throws(JobQueueError)

    /// The job, if it exists.
    func job(_ id: JobID) async throws(JobQueueError) -> Job?

    /// Jobs in a state (all states with nil), for one account or all, newest first.
    func jobs(state: JobState?, account: AccountID?, limit: Int) async throws(JobQueueError) -> [Job]

    /// Counts by state (for one account or all).
    func counts(account: AccountID?) async throws(JobQueueError) -> JobCounts

    /// The earliest runAt among queued jobs of these accounts (and kinds), or the earliest lease
    /// expiry of running ones, whichever is sooner: when a worker with nothing to do should look again.
    func nextWakeup(accounts: Set<AccountID>, kinds: Set<JobKind>?) async throws(JobQueueError) -> UnixTime?

    /// Puts a dead or cancelled job back in the queue with its attempts reset, due now, or at its
    /// run-at if that is still ahead (a scheduled job cancelled by mistake and retried must not run
    /// early: a send would go out hours before its time).
    func requeue(_ id: JobID, now: UnixTime) async throws(JobQueueError)

    /// Ends now the claims that `owner` (a `WorkerConfiguration.owner`) holds on `account`'s
    /// running jobs, for an owner known dead (its pid is gone on this host): the next claim rescues
    /// them as it rescues expired claims (queued again, or dead on their last attempt) instead of
    /// after their lease. Returns how many claims were ended.
    func abandonClaims(ownedBy owner: String, account: AccountID, now: UnixTime) async throws(JobQueueError) -> Int

    /// Cancels a queued or dead job; a running job is left alone (`JobQueueError.invalidTransition`).
    func cancel(_ id: JobID, now: UnixTime) async throws(JobQueueError)

    /// Deletes up to `limit` of the finished jobs `purge` names, those that finished first first;
    /// answers how many. Their idempotency keys are free again; their `job_history` rows stay.
    func purge(_ purge: JobPurge, limit: Int) async throws(JobQueueError) -> Int

    /// How many jobs `purge` names (what it would delete, all batches together).
    func countPurgeable(_ purge: JobPurge) async throws(JobQueueError) -> Int

    /// A stream that yields when a job is enqueued or becomes due early (a requeue), in this
    /// process at least (PostgreSQL: across processes through NOTIFY). Workers also poll, so a
    /// missed signal delays work by at most the poll interval.
    func enqueueSignals() -> AsyncStream<AccountID>
}

extension JobQueue {
    /// Two steps, for engines without a combined one.
    public func complete(_ claim: JobClaim, result: Data?, now: UnixTime, thenClaim next: ClaimRequest) async throws(JobQueueError) -> [ClaimedJob] {
        try await complete(claim, result: result, now: now)
        // The completion holds whatever the claim does (the contract above): a claim that failed
        // claims nothing, and the worker's loop claims again at its next round. Thrown, the
        // completed job would be taken for one whose completion was not recorded.
        do { return try await self.claim(next, now: now) } catch { return [] }
    }
}

/// Everything the queue can fail with.
public enum JobQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The claim is no longer the job's current one: its lease expired and the job was rescued,
    /// or it was already completed/failed/released.
    case claimLost(JobClaim)
    /// No such job.
    case notFound(JobID)
    /// The job is not in a state that allows this change.
    case invalidTransition(JobID, from: JobState, action: String)
    /// The job as given cannot be stored.
    case invalidJob(String)
    /// The database failed.
    case storage(String)
    /// The database did not answer whether the change was made (its commit was sent, no answer came).
    case storageInDoubt(String)
    /// The queue's file cannot be opened as a database at all (damaged, or not a database): its
    /// jobs cannot be read until it is repaired or set aside.
    case unreadable(path: String, reason: String)
    /// A salvage (`SQLiteJobQueue.salvage`) was not done, and nothing was changed.
    case salvageRefused(path: String, reason: String)

    /// What a person can do about a job in `state` that a change was refused for.
    private static func whatToDo(_ state: JobState) -> String {
        switch state {
        case .running: "wait until it is no longer running (it ends, or is released at a worker's shutdown)"
        case .queued: "it is waiting to run already"
        case .completed: "it has finished (enqueue a new job to run it again)"
        case .dead, .cancelled: "it has ended (`tgsm jobs retry` queues it again)"
        }
    }

    public var description: String {
        switch self {
        case .claimLost(let claim):
            "\(claim) is no longer held: its lease expired and the job was rescued by another worker, or it was "
                + "already finished; this worker must drop the job without writing its result"
        case .notFound(let id):
            "\(id) does not exist (a finished job is removed after its retention, 7 days by default); list jobs to find the right id"
        case .invalidTransition(let id, let from, let action):
            "\(id) is \(from.rawValue), so it cannot be \(action); " + Self.whatToDo(from)
        case .invalidJob(let reason):
            "the job cannot be stored: \(reason)"
        case .storage(let reason):
            "the job queue's database failed (\(reason)); no job was lost, the operation did not happen. If this repeats: on "
                + "SQLite, check the queue file (jobs.sqlite beside the store), its permissions and free disk space; on PostgreSQL, "
                + "that the server is up and reachable"
        case .unreadable(let path, let reason):
            "the job queue's file \(path) is damaged (\(reason)): its jobs cannot all be read. Stop the processes using it and run "
                + "`tgsm jobs salvage`: it builds a new queue from what still reads (each job as it was; ids are never given out again), "
                + "keeps the file aside as found, and names the job ids that may be lost. Do not just move the file aside: a new "
                + "empty queue would forget every job"
        case .salvageRefused(let path, let reason):
            "the job queue \(path) was not salvaged: \(reason). Nothing was changed"
        case .storageInDoubt(let reason):
            "the job queue's database did not confirm the change (\(reason)); no job was lost, but the operation may have "
                + "happened: look at the job (`tgsm jobs list`) before repeating it, and check the database's health"
        }
    }
}
