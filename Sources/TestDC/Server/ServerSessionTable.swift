import MTProto

/// The test DC's server sessions, one per (DC, auth key id, client session id), as Telegram keeps
/// them: a session outlives the connection it started on, so a client that reconnects with the
/// same session id finds its received messages and its answers there. A query it sends again is
/// answered from the session (never run twice), and answers that were ready while it was away are
/// resent on the new connection.
///
/// Memory is bounded: a session unused (no packet, no answer) for `idleLifetime` seconds of the DC
/// clock is dropped, and the table never holds more than `capacity` sessions (the least recently
/// used goes first; `TestDCCore` splits the limit over its shards). Each session itself keeps at most 1,024 unacknowledged messages and as many
/// answer ids (`ServerSession`), and a receive window of `SessionConfiguration.receivedWindowCapacity`
/// ids, so the whole is at most `capacity` times that. A client whose session was dropped gets
/// new_session_created on its next packet, as after a server restart.
struct ServerSessionTable: Sendable {
    struct Key: Hashable, Sendable {
        var dc: Int32
        var keyID: Int64
        var sessionID: Int64
    }

    struct Entry: Sendable {
        var session: ServerSession
        /// The connection the session's last packet came on: where its output goes.
        var connectionID: Int
        var lastUsed: Double
    }

    static let defaultCapacity = 4096
    static let defaultIdleLifetime: Double = 900

    let capacity: Int
    let idleLifetime: Double
    private(set) var entries: [Key: Entry] = [:]
    private var lastSweep: Double = -.infinity

    init(capacity: Int = defaultCapacity, idleLifetime: Double = defaultIdleLifetime) {
        precondition(capacity >= 1 && idleLifetime > 0, "a session table needs room and a positive idle lifetime")
        self.capacity = capacity
        self.idleLifetime = idleLifetime
    }

    var count: Int { entries.count }

    /// Runs `body` on the session of `key` for a packet that arrived on `connection`, making the
    /// session with `make` when there is none. `moved` is true when the session's previous packet
    /// came on another connection (the client reconnected).
    mutating func receiving<R>(
        _ key: Key, on connection: Int, now: Double, make: () -> ServerSession,
        _ body: (inout ServerSession, _ moved: Bool) -> R
    ) -> R {
        var index = entries.index(forKey: key)
        if sweep(now: now, making: index == nil) { index = entries.index(forKey: key) }
        guard let index else {
            var entry = Entry(session: make(), connectionID: connection, lastUsed: now)
            let result = body(&entry.session, false)
            entries[key] = consume entry
            return result
        }
        // In place through the index: one lookup per packet, where taking the entry out and
        // putting it back hashed the key twice more.
        return Self.inPlace(&entries.values[index]) { entry in
            let moved = entry.connectionID != connection
            entry.connectionID = connection
            entry.lastUsed = max(entry.lastUsed, now)
            return body(&entry.session, moved)
        }
    }

    /// Runs `body` on an existing session (an answer that became ready) and says which connection
    /// its output goes to; nil when the session is gone (expired or evicted).
    mutating func answering<R>(_ key: Key, now: Double, _ body: (inout ServerSession) -> R) -> (result: R, connectionID: Int)? {
        guard let index = entries.index(forKey: key) else { return nil }
        return Self.inPlace(&entries.values[index]) { entry in
            entry.lastUsed = max(entry.lastUsed, now)
            return (body(&entry.session), entry.connectionID)
        }
    }

    /// Runs `body` on an entry passed `inout`, which reaches it in place: reading a field through
    /// `entries.values[index]` instead copies the whole entry, the session's every table retained
    /// and released (perf: 6% of the test DC at 64 calls in flight).
    private static func inPlace<R>(_ entry: inout Entry, _ body: (inout Entry) -> R) -> R { body(&entry) }

    /// Drops every session of an auth key (a dropped key, AUTH_KEY_DUPLICATED).
    mutating func removeSessions(dc: Int32, keyID: Int64) {
        entries = entries.filter { $0.key.dc != dc || $0.key.keyID != keyID }
    }

    mutating func removeSessions(dc: Int32) {
        entries = entries.filter { $0.key.dc != dc }
    }

    /// Expired sessions go at most once a minute (a scan of the table); when a new session would
    /// not fit, the least recently used ones go at once.
    /// Returns whether it touched the table: indices into `entries` are then stale (a filtered
    /// dictionary is new storage even when nothing went).
    private mutating func sweep(now: Double, making: Bool) -> Bool {
        var touched = false
        if now - lastSweep >= 60 || now < lastSweep {
            lastSweep = now
            entries = entries.filter { now - $0.value.lastUsed < idleLifetime }
            touched = true
        }
        if making, entries.count >= capacity {
            let excess = entries.count - capacity + 1
            for key in entries.sorted(by: { $0.value.lastUsed < $1.value.lastUsed }).prefix(excess).map(\.key) {
                entries.removeValue(forKey: key)
            }
            touched = true
        }
        return touched
    }
}
