import Foundation
import Logging
import MTProto
import MTProtoClient
import SessionManager
import Synchronization

/// The code behind one job kind. Register it with the workers (`WorkerPool(handlers:)`); the queue
/// then gives every job of that kind the same guarantees as the built-in kinds: stored before
/// enqueue returns, run under a lease with heartbeat, rescued after a crash, retried with backoff,
/// deferred without spending an attempt on a flood wait, dead-lettered with its last error, and
/// its account stopped cleanly on a terminal session error.
///
/// A job may run more than once (a crash after the work but before `complete` reaches the
/// database; a lost lease): make `run` idempotent, or put its one irreversible call inside
/// `JobContext.atMostOnce`.
public protocol JobHandler: Sendable {
    /// The kind this handler runs.
    var kind: JobKind { get }

    /// Runs one attempt. The returned bytes are stored as the job's result. Throw `JobFailure`
    /// to choose the outcome; any other error is classified (`JobErrorClassifier`).
    func run(_ context: JobContext) async throws -> Data?
}

/// What a handler throws to decide a failed attempt's fate itself.
public enum JobFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// Repeating will not help (bad payload, refused request): straight to the dead letters.
    case permanent(String)
    /// Try again after the backoff, spending an attempt.
    case retry(String)
    /// Try again at `until` without spending an attempt.
    case deferred(until: UnixTime, reason: String)
    /// A step that must run at most once was started by an earlier attempt that did not finish:
    /// it may or may not have happened, so it is not repeated (dead letter, with guidance).
    case inDoubt(step: String, job: JobID)

    public var description: String {
        switch self {
        case .permanent(let reason): reason
        case .retry(let reason): reason
        case .deferred(let until, let reason): "deferred until \(until): \(reason)"
        case .inDoubt(let step, let job):
            "the step '\(step)' of \(job) was started by an earlier attempt that did not finish (crash, timeout or lost "
                + "connection), so it may already have happened; it is not repeated, to keep it at most once: check "
                + "whether it happened (for a send, look at the chat) and enqueue a new job with a new key if it did not"
        }
    }
}

/// An error a middleware throws when it refuses a call before sending it because a rate limit is
/// active (the flood ledger's gate). Conform the ledger's error to this protocol and a job that
/// meets it is deferred to `retryNotBefore` without spending an attempt.
public protocol RateLimitRefusal: Error {
    /// The TL name of the method refused.
    var method: String { get }
    /// The first instant the call may be made.
    var retryNotBefore: UnixTime { get }
}

/// Everything a handler gets for one attempt.
public final class JobContext: Sendable {
    /// The job as claimed (its `attempts` counts this attempt).
    public let job: Job
    public let claim: JobClaim
    /// The account's invoker (the session manager's middlewares around its client).
    public let invoker: any TelegramInvoking
    public let clock: any TelegramClock
    public let random: any RandomSource
    public let logger: Logger
    private let queue: any JobQueue
    private let progressState: Mutex<JobProgress>

    init(job: Job, claim: JobClaim, invoker: any TelegramInvoking, queue: any JobQueue, clock: any TelegramClock, random: any RandomSource, logger: Logger) {
        self.job = job
        self.claim = claim
        self.invoker = invoker
        self.queue = queue
        self.clock = clock
        self.random = random
        var logger = logger
        logger[metadataKey: "job"] = "\(job.id.rawValue)"
        logger[metadataKey: "kind"] = "\(job.kind)"
        self.logger = logger
        self.progressState = Mutex(JobProgress.decode(job.progress))
    }

    public var account: AccountID { job.account }

    /// The payload decoded from JSON; a payload that does not decode is a permanent failure.
    public func payload<Payload: Decodable>(as type: Payload.Type = Payload.self) throws(JobFailure) -> Payload {
        do {
            return try JSONDecoder().decode(Payload.self, from: job.payload)
        } catch {
            throw .permanent("the payload of \(job.id) (\(job.kind)) is not a valid \(Payload.self): \(Self.describe(error)); "
                + "cancel the job and enqueue it again with a corrected payload (docs/WORKERS.md lists each kind's fields)")
        }
    }

    /// A decoding error as a person reads it: the field and what was wrong with it, not the
    /// decoder's debug description.
    static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        func at(_ keys: [any CodingKey]) -> String { keys.isEmpty ? "" : " in `\(path(keys))`" }
        func kind(_ type: Any.Type) -> String {
            switch "\(type)" {
            case let name where name.hasPrefix("Int") || name.hasPrefix("UInt") || name == "Double" || name == "Float": "a number"
            case "String": "a string"
            case "Bool": "true or false"
            case let name where name.hasPrefix("Array"): "a list"
            case let name where name.hasPrefix("Dictionary"): "an object"
            case let name: "a \(name) (an object)"
            }
        }
        guard let decoding = error as? DecodingError else { return "\(error)" }
        switch decoding {
        case .keyNotFound(let key, let context):
            return "it needs `\(path(context.codingPath + [key]))`"
        case .valueNotFound(let type, let context):
            return "`\(path(context.codingPath))` is null, but must be \(kind(type))"
        case .typeMismatch(let type, let context):
            return "`\(path(context.codingPath))` must be \(kind(type))"
        case .dataCorrupted(let context):
            return context.debugDescription + at(context.codingPath)
        @unknown default:
            return "\(error)"
        }
    }

    /// Whether an earlier attempt started `step` under `atMostOnce` and did not finish it, and what
    /// it noted with its mark (nil: no note, or a mark written before notes existed).
    public func mark(of step: String) -> (started: Bool, note: String?) {
        progressState.withLock { ($0.started.contains(step), $0.notes?[step]) }
    }

    /// What this job's earlier attempts saved with `checkpoint`.
    public var savedProgress: Data? { progressState.withLock { $0.data } }

    /// Saves progress durably (under this attempt's claim) for the next attempt to resume from.
    public func checkpoint(_ data: Data) async throws(JobQueueError) {
        let progress = progressState.withLock { state -> JobProgress in
            state.data = data
            return state
        }
        try await queue.checkpoint(claim, progress: progress.encoded(), now: clock.now())
    }

    /// Runs `body` at most once for this job across all its attempts: a durable mark is written
    /// before `body` starts. When a later attempt finds the mark (the earlier one crashed or lost
    /// its answer mid-step), it throws `JobFailure.inDoubt` instead of running `body` again. When
    /// `body` fails in a way that proves nothing happened (Telegram answered with an error, or a
    /// gate refused to send), the mark is removed so the step may be tried again.
    public func atMostOnce<T: Sendable>(_ step: String, _ body: () async throws -> T) async throws -> T {
        try await atMostOnce(step, body, resolvingDoubtWithin: 0) { throw JobFailure.inDoubt(step: step, job: job.id) }
    }

    /// `atMostOnce` for a step the server itself refuses to repeat (a send with the same
    /// random_id is answered RANDOM_ID_DUPLICATE): a later attempt that finds the mark, within
    /// `window` seconds of the mark, runs `resolve` instead of giving up. `resolve` repeats the step
    /// in the form the server deduplicates and tells from the answer whether the first one
    /// happened. The mark stays until the job completes. Past the window (the server may have
    /// forgotten the first one) the doubt is the operator's: `JobFailure.inDoubt`.
    public func atMostOnce<T: Sendable>(
        _ step: String, note: String? = nil, _ body: () async throws -> T, resolvingDoubtWithin window: Double, _ resolve: () async throws -> T
    ) async throws -> T {
        let now = clock.now()
        let mark = progressState.withLock { state -> (started: Bool, at: Double?) in
            (state.started.contains(step), state.startedAt?[step])
        }
        if mark.started {
            guard let at = mark.at, now.seconds - at <= window else { throw JobFailure.inDoubt(step: step, job: job.id) }
            return try await resolve()
        }
        let marked = progressState.withLock { state -> JobProgress in
            state.started.append(step)
            state.startedAt = (state.startedAt ?? [:]).merging([step: now.seconds]) { _, new in new }
            if let note { state.notes = (state.notes ?? [:]).merging([step: note]) { _, new in new } }
            return state
        }
        try await queue.checkpoint(claim, progress: marked.encoded(), now: now)
        do {
            return try await body()
        } catch {
            if JobErrorClassifier.provesNotPerformed(error) {
                let cleared = progressState.withLock { state -> JobProgress in
                    state.started.removeAll { $0 == step }
                    state.startedAt?[step] = nil
                    state.notes?[step] = nil
                    return state
                }
                try await queue.checkpoint(claim, progress: cleared.encoded(), now: clock.now())
            }
            throw error
        }
    }
}

/// The progress column's content: the handler's own checkpoint and the at-most-once marks.
struct JobProgress: Codable, Sendable, Hashable {
    var started: [String] = []
    /// When each mark was written (Unix seconds); absent in progress written before it existed.
    var startedAt: [String: Double]?
    /// What each marked step noted with its mark (`atMostOnce(note:)`), e.g. the random_id a send
    /// used; absent in progress written before it existed.
    var notes: [String: String]?
    var data: Data?

    static func decode(_ bytes: Data?) -> JobProgress {
        guard let bytes, let progress = try? JSONDecoder().decode(JobProgress.self, from: bytes) else { return JobProgress() }
        return progress
    }

    func encoded() -> Data {
        (try? JSONEncoder.jobs.encode(self)) ?? Data()
    }
}
