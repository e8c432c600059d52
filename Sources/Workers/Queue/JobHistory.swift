import MTProto
import SessionManager

/// One change of a job's state, as the queue wrote it: the outcomes over time the dashboard draws,
/// and the errors it lists. Written by the database itself (a trigger on the jobs table in SQLite),
/// in the same transaction as the change, so no code path of the queue can forget it.
public struct JobHistoryEntry: Sendable, Hashable {
    public enum Event: String, Sendable, Hashable, CaseIterable {
        case enqueued, completed, retried, deferred, released, rescued, dead, cancelled, requeued
    }

    public var at: UnixTime
    public var job: JobID
    public var account: AccountID
    public var kind: JobKind
    public var event: Event
    /// The change to the number of open jobs (queued or running): +1, -1 or 0.
    public var depthDelta: Int
    /// The job's last error after a retry, deferral, release, rescue or dead letter.
    public var error: String?

    public init(at: UnixTime, job: JobID, account: AccountID, kind: JobKind, event: Event, depthDelta: Int, error: String?) {
        self.at = at
        self.job = job
        self.account = account
        self.kind = kind
        self.event = event
        self.depthDelta = depthDelta
        self.error = error
    }
}

/// A queue that keeps its jobs' history (a separate protocol, so a `JobQueue` implementation that
/// has none still works everywhere else). History older than `retentionSeconds` is dropped by the
/// queue as it writes.
public protocol JobHistoryReading: Sendable {
    /// Entries at or after `since`, oldest first, at most `limit` (the newest ones when cut); only
    /// those of `events` when given (the alerts read the dead letters alone, however busy the queue).
    func history(since: UnixTime, limit: Int, events: Set<JobHistoryEntry.Event>?) async throws(JobQueueError) -> [JobHistoryEntry]
    /// One job's entries, oldest first (those within the retention: `tgsm jobs show`).
    func history(of job: JobID) async throws(JobQueueError) -> [JobHistoryEntry]
}

extension JobHistoryReading {
    /// Every event at or after `since`, oldest first, at most `limit` (the newest ones when cut).
    public func history(since: UnixTime, limit: Int) async throws(JobQueueError) -> [JobHistoryEntry] {
        try await history(since: since, limit: limit, events: nil)
    }
}

extension Set<JobHistoryEntry.Event> {
    /// The events as SQL literals, in a stable order (they come from the enum, never from a user).
    var sqlList: String { map(\.rawValue).sorted().map { "'\($0)'" }.joined(separator: ", ") }
}
