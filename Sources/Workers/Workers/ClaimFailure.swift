import MTProto

/// Why a `WorkerPool` cannot claim jobs now: no job of any account it serves runs until a claim
/// works again. The operator views (`/health`, the dashboard, `tgsm status` through each account's
/// live report) and the alerts say it; before, only the log did.
public struct ClaimFailure: Sendable, Hashable {
    /// The queue's error, which says what happened and what to do.
    public var error: String
    /// When the first claim of this spell failed.
    public var since: UnixTime
    /// Whether only a person ends it (a damaged queue file: `tgsm jobs salvage`), rather than the
    /// queue answering again by itself (a PostgreSQL server restarting, a disk that stalled).
    public var needsAPerson: Bool

    public init(error: String, since: UnixTime, needsAPerson: Bool) {
        self.error = error
        self.since = since
        self.needsAPerson = needsAPerson
    }

    /// A spell starting with `error` at `now`.
    init(_ error: any Error, at now: UnixTime) {
        let damaged = if case .unreadable = error as? JobQueueError { true } else { false }
        self.init(error: "\(error)", since: now, needsAPerson: damaged)
    }
}
