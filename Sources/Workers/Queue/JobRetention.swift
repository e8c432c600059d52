import Foundation
import Logging
import MTProto
import MTProtoClient
import SessionManager

/// Which finished jobs `JobQueue.purge` deletes: those in `states` that finished before
/// `finishedBefore`. Queued and running jobs are never purged (`init` refuses them), so a purge
/// can only remove what already ended.
public struct JobPurge: Sendable, Hashable {
    /// The states a purge may remove: jobs that ended.
    public static let finishedStates: Set<JobState> = [.completed, .cancelled, .dead]

    public let states: Set<JobState>
    public let finishedBefore: UnixTime

    /// nil when `states` is empty or names a live state (queued, running).
    public init?(states: Set<JobState>, finishedBefore: UnixTime) {
        guard !states.isEmpty, states.isSubset(of: Self.finishedStates) else { return nil }
        self.states = states
        self.finishedBefore = finishedBefore
    }

    /// The states as SQL literals, in a stable order (they come from the enum, never from a user).
    var stateList: String { states.map(\.rawValue).sorted().map { "'\($0)'" }.joined(separator: ", ") }
}

/// How long finished jobs stay in the queue. Without it the jobs table of a month-long run grows
/// with every job ever run: the file, every backup of it and the dashboard's counts with it.
///
/// Completed and cancelled jobs go after `finishedFor`; a dead letter stays until a person retries,
/// cancels or purges it (`tgsm jobs purge --state dead`), since deleting it unread would lose the job.
/// A purged job's idempotency key is free again: a key deduplicates for as long as its job is kept.
public struct JobRetention: Sendable, Hashable {
    /// Seven days, as long as `job_history` keeps its rows.
    public static let defaultFinishedFor: Double = 7 * 24 * 3600
    /// Jobs deleted per transaction: a purge of a large backlog never holds the database's write
    /// lock (SQLite) or many row locks (PostgreSQL) long enough to stall workers' claims.
    public static let batchSize = 1000

    /// Seconds a completed or cancelled job is kept after it finished.
    public var finishedFor: Double
    /// Seconds between purges while a run lasts.
    public var interval: Double

    public init(finishedFor: Double = Self.defaultFinishedFor, interval: Double = 3600) {
        self.finishedFor = finishedFor
        self.interval = interval
    }

    /// The purge due at `now`.
    public func purge(now: UnixTime) -> JobPurge? {
        JobPurge(states: [.completed, .cancelled], finishedBefore: UnixTime(seconds: now.seconds - finishedFor))
    }

    /// Purges now, then every `interval` until cancelled. A failed purge is logged and tried at
    /// the next interval: finished jobs are only disk space, never a reason to stop the workers.
    public func run(queue: any JobQueue, clock: any TelegramClock, logger: Logger) async {
        while !Task.isCancelled {
            if let purge = purge(now: clock.now()) {
                do {
                    let removed = try await queue.purgeAll(purge)
                    if removed > 0 {
                        logger.info("removed finished jobs past their retention", metadata: [
                            "jobs": "\(removed)", "finished-before": "\(purge.finishedBefore.seconds)", "states": "\(purge.stateList)",
                        ])
                    }
                } catch {
                    logger.warning("finished jobs could not be removed; tried again in an hour, nothing else is affected",
                                   metadata: ["error": "\(error)"])
                }
            }
            do { try await clock.sleep(for: interval) } catch { return }
        }
    }
}

extension JobQueue {
    /// Runs `purge` batch by batch until nothing is left to remove; returns how many were removed.
    public func purgeAll(_ purge: JobPurge, batchSize: Int = JobRetention.batchSize) async throws(JobQueueError) -> Int {
        var total = 0
        while true {
            let removed = try await self.purge(purge, limit: batchSize)
            total += removed
            if removed < batchSize || Task.isCancelled { return total }
            // Between batches: claims waiting for the write lock go first.
            await Task.yield()
        }
    }
}
