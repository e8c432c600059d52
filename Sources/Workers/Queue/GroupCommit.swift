import GRDB
import Synchronization

/// Group commit for a SQLite writer: the operations submitted while a transaction is running are
/// run together, in the order they were submitted, in the next one, and each caller resumes only
/// once that transaction has committed (or failed).
///
/// Why: a worker pool's claims, completions and heartbeats are each a tiny write, and on SQLite
/// the fixed cost of a write transaction (the hop to the writer's queue, BEGIN, COMMIT and its WAL
/// append, waking the caller) is most of the cost of such a write. Gathering the writes that queue
/// up behind a running commit spends that cost once per batch. Durability is unchanged: nobody is
/// told their write happened before the transaction holding it has committed.
///
/// Rules for an operation:
/// - it may throw an error of its own (`JobQueueError`: claim lost, not found) only *before* it
///   changed anything: the others of its batch go on and commit;
/// - any other error (SQLite's) rolls the whole batch back, and every operation in it fails with
///   that error: none of them happened, exactly as if each had been its own failed transaction.
final class GroupCommit: Sendable {
    private let writer: any DatabaseWriter
    private let state = Mutex(State())

    private struct State {
        var pending: [Entry] = []
        var draining = false
    }

    /// One submitted operation: `run` executes it inside the batch's transaction and keeps its own
    /// outcome; `finish` hands that outcome (or the batch's failure) to the caller after the commit.
    private struct Entry: Sendable {
        var run: @Sendable (Database) throws -> Void
        var finish: @Sendable ((any Error)?) -> Void
    }

    /// Whether an error thrown by an operation leaves the batch intact (it wrote nothing).
    private let isOwnError: @Sendable (any Error) -> Bool

    init(writer: any DatabaseWriter, isOwnError: @escaping @Sendable (any Error) -> Bool) {
        self.writer = writer
        self.isOwnError = isOwnError
    }

    /// Writes waiting for the next transaction (tests).
    var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Runs `body` in a write transaction shared with the other operations submitted meanwhile;
    /// returns its result once that transaction committed.
    func perform<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        // A cancelled caller's write is refused, as GRDB's own `write` refuses it: the worker pool
        // records outcomes from tasks of their own for that reason.
        try Task.checkCancellation()
        let isOwnError = self.isOwnError
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let outcome = OutcomeBox<T>()
            let entry = Entry(
                run: { db in
                    do {
                        let value = try body(db)
                        outcome.value.withLock { $0 = .success(value) }
                    } catch where isOwnError(error) {
                        outcome.value.withLock { $0 = .failure(error) }
                    }
                },
                finish: { batchError in
                    if let batchError {
                        continuation.resume(throwing: batchError)
                        return
                    }
                    // Every entry of a committed batch ran (a throw other than its own would
                    // have failed the batch), so its outcome is set.
                    switch outcome.value.withLock({ $0 }) {
                    case .success(let value)?: continuation.resume(returning: value)
                    case .failure(let error)?: continuation.resume(throwing: error)
                    case nil: continuation.resume(throwing: GroupCommitError.notRun)
                    }
                })
            let startsDrain = state.withLock { state -> Bool in
                state.pending.append(entry)
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            // A task of its own, not the first caller's: under steady load draining never ends,
            // and the caller whose write started it must get its answer after its own batch.
            if startsDrain { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch = state.withLock { state -> [Entry] in
                guard !state.pending.isEmpty else {
                    state.draining = false
                    return []
                }
                defer { state.pending = [] }
                return state.pending
            }
            guard !batch.isEmpty else { return }
            do {
                try await writer.write { db in
                    for entry in batch { try entry.run(db) }
                }
                for entry in batch { entry.finish(nil) }
            } catch {
                for entry in batch { entry.finish(error) }
            }
        }
    }
}

/// One operation's outcome, written on the writer's queue and read after the commit.
private final class OutcomeBox<T: Sendable>: Sendable {
    let value = Mutex<Result<T, any Error>?>(nil)
}

enum GroupCommitError: Error, CustomStringConvertible {
    case notRun

    var description: String {
        "the write was committed without running (an internal error of the queue's group commit); retry the operation"
    }
}
