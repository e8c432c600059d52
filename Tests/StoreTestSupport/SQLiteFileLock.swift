import Foundation
import GRDB

/// Another program holding an SQLite file locked, as a backup tool or a `sqlite3` shell left in a
/// transaction does: one exclusive transaction on a thread of its own, from `init` until `release`.
/// Every writer of the file waits out its busy timeout meanwhile (readers of a WAL file go on).
public final class SQLiteFileLock: Sendable {
    private let released = DispatchSemaphore(value: 0)

    /// Returns once the lock is held.
    public init(path: String) throws {
        let holder = try DatabaseQueue(path: path)
        let locked = DispatchSemaphore(value: 0)
        let released = released
        Thread.detachNewThread {
            // GRDB ends a transaction left open by its closures, so the transaction lives inside one.
            try? holder.inDatabase { db in
                try db.execute(sql: "BEGIN EXCLUSIVE")
                locked.signal()
                released.wait()
                try db.execute(sql: "COMMIT")
            }
        }
        locked.wait()
    }

    public func release() { released.signal() }
}
