import Foundation
import GRDB
import Synchronization

/// Another program holding an SQLite file locked, as a backup tool or a `sqlite3` shell left in a
/// transaction does: one exclusive transaction on a thread of its own, from `init` until `release`.
/// Every writer of the file waits out its busy timeout meanwhile (readers of a WAL file go on).
public final class SQLiteFileLock: Sendable {
    /// The lock was not taken: the file stayed busy past `timeout`, or SQLite refused it.
    public struct NotTaken: Error, CustomStringConvertible {
        public let description: String
    }

    private enum Outcome: Sendable, Equatable {
        case locked
        case failed(String)
    }

    private let released = DispatchSemaphore(value: 0)

    /// Returns once the lock is held. The code under test may be writing the file at that moment
    /// (a lease renewal, a job's commit): the lock waits for that transaction, up to `timeout`.
    /// Before, `BEGIN EXCLUSIVE` failed at once with SQLITE_BUSY, the error was dropped and `init`
    /// waited for a lock that never came, holding a thread of the cooperative pool: no time limit
    /// could end the test, and the whole run hung (stop 37's CI run, by the look of it).
    public init(path: String, timeout: TimeInterval = 60) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(timeout)
        let holder = try DatabaseQueue(path: path, configuration: configuration)
        let outcome = Mutex<Outcome?>(nil)
        let settled = DispatchSemaphore(value: 0)
        let released = released
        Thread.detachNewThread {
            do {
                // GRDB ends a transaction left open by its closures, so the transaction lives inside one.
                try holder.inDatabase { db in
                    try db.execute(sql: "BEGIN EXCLUSIVE")
                    outcome.withLock { $0 = .locked }
                    settled.signal()
                    released.wait()
                    try db.execute(sql: "COMMIT")
                }
            } catch {
                let first = outcome.withLock { outcome in
                    guard outcome == nil else { return false }
                    outcome = .failed("\(error)")
                    return true
                }
                if first { settled.signal() }
            }
        }
        // Bounded even so: a wait here holds a thread no cancellation reaches.
        guard settled.wait(timeout: .now() + timeout + 5) == .success else {
            // Should the lock come after all, it is let go at once: nobody is left to release it.
            released.signal()
            throw NotTaken(description: "no exclusive lock on \(path) within \(Int(timeout)) s")
        }
        if case .failed(let reason)? = outcome.withLock({ $0 }) {
            throw NotTaken(description: "no exclusive lock on \(path): \(reason)")
        }
    }

    public func release() { released.signal() }
}
