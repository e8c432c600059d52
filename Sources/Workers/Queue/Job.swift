import Foundation
import MTProto
import SessionManager

/// A job's identity in its queue: assigned at enqueue, never reused.
public struct JobID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int64
    public init(_ rawValue: Int64) { self.rawValue = rawValue }
    public var description: String { "job \(rawValue)" }
    public static func < (lhs: JobID, rhs: JobID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What a job does, as registered by a `JobHandler` ("history", "send", "myapp.export"...).
public struct JobKind: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }
}

/// Where a job is in its life. `queued` → `running` → `completed`, or back to `queued` (retry,
/// flood-wait deferral, release, rescue of an expired lease), or `dead` (attempts exhausted or a
/// permanent failure; keeps the last error). `cancelled` only by an operator.
public enum JobState: String, Sendable, Hashable, Codable, CaseIterable {
    case queued
    case running
    case completed
    case dead
    case cancelled
}

/// What a caller asks to run.
public struct NewJob: Sendable, Hashable {
    public var kind: JobKind
    public var account: AccountID
    /// Opaque to the queue: the handler decodes it (JSON for the built-in kinds).
    public var payload: Data
    /// Higher runs first among jobs that are due.
    public var priority: Int
    /// Not before this time; nil means now.
    public var runAt: UnixTime?
    /// When set, a second enqueue with the same key (any kind, any account, any state, forever)
    /// creates nothing and answers the first job's id: the way to make "send this once" safe to
    /// repeat after a crash of the enqueuer.
    public var idempotencyKey: String?
    /// How many attempts (claims that ended in a crash, a retryable error or a lost lease) before
    /// the job goes to the dead letters. Flood-wait deferrals and releases do not count.
    public var maxAttempts: Int

    public init(
        kind: JobKind, account: AccountID, payload: Data = Data(), priority: Int = 0, runAt: UnixTime? = nil,
        idempotencyKey: String? = nil, maxAttempts: Int = 5
    ) {
        self.kind = kind
        self.account = account
        self.payload = payload
        self.priority = priority
        self.runAt = runAt
        self.idempotencyKey = idempotencyKey
        self.maxAttempts = maxAttempts
    }

    /// A job whose payload is `payload` as JSON.
    public init<Payload: Encodable>(
        kind: JobKind, account: AccountID, json payload: Payload, priority: Int = 0, runAt: UnixTime? = nil,
        idempotencyKey: String? = nil, maxAttempts: Int = 5
    ) throws(JobQueueError) {
        let data: Data
        do {
            data = try JSONEncoder.jobs.encode(payload)
        } catch {
            throw .invalidJob("the payload of a \(kind) job could not be encoded as JSON (\(error)); check the payload type")
        }
        self.init(kind: kind, account: account, payload: data, priority: priority, runAt: runAt, idempotencyKey: idempotencyKey, maxAttempts: maxAttempts)
    }
}

/// The answer to an enqueue.
public enum EnqueueOutcome: Sendable, Hashable {
    /// A new job was stored.
    case created(JobID)
    /// A job with this idempotency key already existed; nothing was stored.
    case duplicate(JobID)

    public var id: JobID {
        switch self {
        case .created(let id), .duplicate(let id): id
        }
    }
}

/// A job as stored.
public struct Job: Sendable, Hashable {
    public var id: JobID
    public var kind: JobKind
    public var account: AccountID
    public var payload: Data
    public var priority: Int
    public var state: JobState
    public var runAt: UnixTime
    /// Attempts spent so far (a claim spends one; a deferral or a release gives it back).
    public var attempts: Int
    public var maxAttempts: Int
    public var idempotencyKey: String?
    /// Who holds the claim while `running`.
    public var leaseOwner: String?
    public var leaseUntil: UnixTime?
    /// What the handler recorded mid-job (`JobContext.checkpoint`), kept across attempts.
    public var progress: Data?
    /// What the handler returned, once `completed`.
    public var result: Data?
    /// The error of the last failed attempt (kept by the dead letters), or why it was deferred.
    public var lastError: String?
    /// How often a flood wait or a release moved it without spending an attempt.
    public var deferrals: Int
    public var createdAt: UnixTime
    public var updatedAt: UnixTime
    public var finishedAt: UnixTime?

    public init(
        id: JobID, kind: JobKind, account: AccountID, payload: Data, priority: Int, state: JobState, runAt: UnixTime,
        attempts: Int, maxAttempts: Int, idempotencyKey: String?, leaseOwner: String?, leaseUntil: UnixTime?,
        progress: Data?, result: Data?, lastError: String?, deferrals: Int, createdAt: UnixTime, updatedAt: UnixTime,
        finishedAt: UnixTime?
    ) {
        self.id = id
        self.kind = kind
        self.account = account
        self.payload = payload
        self.priority = priority
        self.state = state
        self.runAt = runAt
        self.attempts = attempts
        self.maxAttempts = maxAttempts
        self.idempotencyKey = idempotencyKey
        self.leaseOwner = leaseOwner
        self.leaseUntil = leaseUntil
        self.progress = progress
        self.result = result
        self.lastError = lastError
        self.deferrals = deferrals
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finishedAt = finishedAt
    }
}

/// Proof of a claim: every write about a running job names it, and the queue accepts the write only
/// while this claim is the job's current one. A worker whose lease expired and whose job was
/// rescued by another worker can therefore neither complete nor fail it (a fencing token).
public struct JobClaim: Sendable, Hashable, CustomStringConvertible {
    public var job: JobID
    /// Increases at every claim of the job.
    public var token: Int64
    public var owner: String

    public init(job: JobID, token: Int64, owner: String) {
        self.job = job
        self.token = token
        self.owner = owner
    }

    public var description: String { "\(job) claim \(token) by \(owner)" }
}

/// A job handed to a worker, with its claim.
public struct ClaimedJob: Sendable, Hashable {
    public var job: Job
    public var claim: JobClaim
    public var leaseUntil: UnixTime

    public init(job: Job, claim: JobClaim, leaseUntil: UnixTime) {
        self.job = job
        self.claim = claim
        self.leaseUntil = leaseUntil
    }
}

/// What `claim` selects.
public struct ClaimRequest: Sendable, Hashable {
    /// Whose jobs; the worker serves these accounts.
    public var accounts: Set<AccountID>
    /// Only these kinds (nil: any): a worker claims only what it has handlers for.
    public var kinds: Set<JobKind>?
    /// At most this many jobs in this claim.
    public var limit: Int
    /// At most this many jobs of one account running at once, counted over every worker on the
    /// queue (every process, for a shared database).
    public var perAccountLimit: Int
    /// Who claims (a process and worker name, for diagnostics and `leaseOwner`).
    public var owner: String
    /// How long the claim holds without a heartbeat.
    public var leaseSeconds: Double

    public init(accounts: Set<AccountID>, kinds: Set<JobKind>? = nil, limit: Int, perAccountLimit: Int, owner: String, leaseSeconds: Double) {
        self.accounts = accounts
        self.kinds = kinds
        self.limit = limit
        self.perAccountLimit = perAccountLimit
        self.owner = owner
        self.leaseSeconds = leaseSeconds
    }
}

/// Counts of jobs by state, for `status` and metrics.
public struct JobCounts: Sendable, Hashable {
    public var byState: [JobState: Int]
    public init(byState: [JobState: Int]) { self.byState = byState }
    public subscript(state: JobState) -> Int { byState[state] ?? 0 }
}

extension JSONEncoder {
    /// Sorted keys: the same payload always encodes to the same bytes.
    static var jobs: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
