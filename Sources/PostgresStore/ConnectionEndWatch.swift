import PostgresNIO
import Synchronization

/// The connections that work is waiting on, so that the end of one ends that wait (see
/// `PostgresDatabase.guarded`). One close callback per connection, registered the first time it is
/// used: a callback per transaction would pile up on a connection that lives for hours. Keyed by
/// the pool's connection id, never reused within a pool (an object's address may be, and a late
/// callback of a closed connection must not end work on its successor).
final class ConnectionEndWatch: Sendable {
    private struct Entry {
        var end: (@Sendable () -> Void)?
    }

    private let entries = Mutex<[PostgresConnection.ID: Entry]>([:])

    /// Calls `end` once if `connection` closes before `stopWatching`; at once if it has closed already.
    func watch(_ connection: PostgresConnection, end: @escaping @Sendable () -> Void) {
        let key = connection.id
        let isNew = entries.withLock { entries in
            let isNew = entries[key] == nil
            entries[key, default: Entry()].end = end
            return isNew
        }
        if isNew { connection.closeFuture.whenComplete { [weak self] _ in self?.closed(key) } }
        // The callback runs only after the channel stopped being active: a close that came before
        // `end` was stored shows here instead.
        if connection.isClosed { takeEnd(key)?() }
    }

    func stopWatching(_ connection: PostgresConnection) {
        entries.withLock { $0[connection.id]?.end = nil }
    }

    private func closed(_ key: PostgresConnection.ID) {
        let end = entries.withLock { $0.removeValue(forKey: key)?.end }
        end?()
    }

    private func takeEnd(_ key: PostgresConnection.ID) -> (@Sendable () -> Void)? {
        entries.withLock { entries in
            defer { entries[key]?.end = nil }
            return entries[key]?.end
        }
    }
}
