import MTProto
import MTProtoCrypto
import NIOCore
import Synchronization

/// A connection the control endpoint can list: ids only, never key bytes.
public struct LiveConnection: Codable, Sendable, Equatable {
    public var id: Int
    public var dc: Int32
    public var remote: String
    public var transport: String?
    /// The auth key id (as a signed 64-bit number, as on the wire) once the client sent an encrypted packet.
    public var authKeyID: Int64?
    public var sessionID: Int64?
    public var userID: Int64?
}

/// The cluster's shared state behind a lock, plus the live connection table. Handlers on any event
/// loop call in; each call holds the lock only for the in-memory work.
public final class TestDCCore: Sendable {
    private let state: Mutex<DCState>
    private let connections = Mutex(ConnectionTable())
    private let channels = Mutex<[Int: any Channel]>([:])
    private let nextConnectionID = Atomic<Int>(1)
    /// Unix time, before any fault clock offset.
    public let clock: @Sendable () -> Double
    /// Whether one key used by two live connections with different session ids answers AUTH_KEY_DUPLICATED.
    private let duplicateKeyDetection: Mutex<Bool>
    /// Every server session of every DC, across connections (see `ServerSessionTable` for the
    /// bound), in shards by key: a session's work (sealing its answers) runs under its shard's
    /// lock, and one lock would serialize every connection of the cluster on it.
    private let sessionShards: [SessionShard]
    /// The state's injected entropy, shared by everything that needs randomness.
    let entropyPool: EntropyPool

    /// `state.entropy` becomes the source of all the cluster's randomness (handshakes, sessions,
    /// salts and the handlers'); `sessionLimit` and `sessionIdleLifetime` bound the server sessions.
    public init(
        state: DCState, clock: @escaping @Sendable () -> Double, duplicateKeyDetection: Bool = true,
        sessionLimit: Int = 4096, sessionIdleLifetime: Double = 900
    ) {
        var state = state
        let pool = EntropyPool(state.entropy)
        state.entropy = pool.entropy
        self.entropyPool = pool
        self.state = Mutex(state)
        self.clock = clock
        self.duplicateKeyDetection = Mutex(duplicateKeyDetection)
        let shardCount = min(16, max(1, sessionLimit))
        self.sessionShards = (0..<shardCount).map { _ in
            SessionShard(ServerSessionTable(capacity: max(1, sessionLimit / shardCount), idleLifetime: sessionIdleLifetime))
        }
    }

    private final class SessionShard: Sendable {
        let table: Mutex<ServerSessionTable>
        init(_ table: ServerSessionTable) { self.table = Mutex(table) }
    }

    /// A multiply-xorshift of the ids picks the shard: it runs twice per request, and SipHash (which
    /// the table inside still uses) is no defence here, a client that chose colliding session ids
    /// would only share a lock.
    private func shard(_ key: ServerSessionTable.Key) -> SessionShard {
        var mixed = UInt64(bitPattern: key.keyID) ^ UInt64(bitPattern: key.sessionID) ^ UInt64(UInt32(bitPattern: key.dc))
        mixed = (mixed ^ (mixed >> 31)) &* 0x9E37_79B9_7F4A_7C15
        mixed ^= mixed >> 29
        return sessionShards[Int(mixed % UInt64(sessionShards.count))]
    }

    /// A source of randomness drawing from the cluster's one injected source.
    var entropy: PooledEntropy { entropyPool.entropy }

    // MARK: - Server sessions

    /// Runs `body` on the session a packet is for (made by `make` when new); see `ServerSessionTable.receiving`.
    func receiving<R: Sendable>(
        _ key: ServerSessionTable.Key, on connection: Int, now: Double, make: () -> ServerSession,
        _ body: (inout ServerSession, _ moved: Bool) -> R
    ) -> R {
        shard(key).table.withLock { $0.receiving(key, on: connection, now: now, make: make, body) }
    }

    /// Runs `body` on an existing session; nil when it expired. Also says where its output goes.
    func answering<R: Sendable>(_ key: ServerSessionTable.Key, now: Double, _ body: (inout ServerSession) -> R) -> (result: R, connectionID: Int)? {
        shard(key).table.withLock { $0.answering(key, now: now, body) }
    }

    func removeSessions(dc: Int32, keyID: Int64) {
        for shard in sessionShards { shard.table.withLock { $0.removeSessions(dc: dc, keyID: keyID) } }
    }

    /// How many server sessions are kept (live or waiting for their client to come back).
    public var sessionCount: Int { sessionShards.reduce(0) { $0 + $1.table.withLock { $0.count } } }

    /// The channel of a live connection, to write a session's output that became ready while its
    /// client had moved to another connection.
    func channel(of connection: Int) -> (any Channel)? {
        channels.withLock { $0[connection] }
    }

    /// Runs `body` under the lock; keys and logins it changed are saved before the lock is released.
    /// Message boxes are copied then (at most once a second) and written after it, by the store's
    /// writer; `RunningTestDC.shutdown` writes the rest (`flushBoxes`).
    public func withState<R>(_ body: (inout DCState) throws -> R) rethrows -> R {
        var boxes: (capture: BoxesCapture, writer: MessageBoxWriter)?
        defer { if let boxes { boxes.writer.submit(boxes.capture) } }
        return try state.withLock { state in
            defer {
                state.saveAuthKeysIfChanged()
                boxes = state.boxesToSave()
            }
            return try body(&state)
        }
    }

    /// Writes the message boxes as they are now, after any write under way, and returns once the
    /// file holds them: for a DC that stops.
    /// Writes keys and logins whose last save failed: for a DC that stops.
    func flushAuthKeys() {
        state.withLock { $0.saveAuthKeysIfChanged(force: true) }
    }

    func flushBoxes() {
        let (due, writer) = state.withLock { state in (state.boxesToSave(force: true), state.boxStore?.writer) }
        writer?.flush(due?.capture)
    }

    /// The DC's clock: the real one plus the fault engine's offset for that DC.
    public func now(dc: Int32) -> Double {
        clock() + Double(withState { $0.faults.clockOffset(dc: dc) })
    }

    public var detectsDuplicateKeys: Bool {
        get { duplicateKeyDetection.withLock { $0 } }
        set { duplicateKeyDetection.withLock { $0 = newValue } }
    }

    // MARK: - Connections

    func openConnection(dc: Int32, remote: String, channel: any Channel) -> Int {
        let id = nextConnectionID.add(1, ordering: .relaxed).oldValue
        connections.withLock { $0.insert(LiveConnection(id: id, dc: dc, remote: remote)) }
        channels.withLock { $0[id] = channel }
        return id
    }

    func closeConnection(_ id: Int) {
        connections.withLock { $0.remove(id) }
        _ = channels.withLock { $0.removeValue(forKey: id) }
    }

    /// Closes every live connection of a DC (nil: of all DCs), as a restarting server would.
    /// Skews DC `dc`'s clock by `seconds`. Its server sessions go with the old time: a session's
    /// msg_ids never go backwards, so after a jump back a kept session would stamp its answers
    /// with the old, later time, and a client that synchronized to the new time drops them as
    /// from the future (security_guidelines) until real time catches up: every call times out.
    /// Its live connections close too, so clients reconnect into the new time and get
    /// new_session_created, as after a restart.
    public func setClockOffset(_ seconds: Int, dc: Int32) {
        withState { $0.faults.setClockOffset(seconds, dc: dc) }
        for shard in sessionShards { shard.table.withLock { $0.removeSessions(dc: dc) } }
        disconnectAll(dc: dc)
    }

    public func disconnectAll(dc: Int32? = nil) {
        let ids = connections.withLock { table in table.byID.values.filter { dc == nil || $0.dc == dc }.map(\.id) }
        let doomed = channels.withLock { table in ids.compactMap { table[$0] } }
        for channel in doomed { channel.close(promise: nil) }
    }

    func channel(ofConnection id: Int) -> (any Channel)? {
        channels.withLock { $0[id] }
    }

    func updateConnection(_ id: Int, _ change: (inout LiveConnection) -> Void) {
        connections.withLock { $0.update(id, change) }
    }

    public var liveConnections: [LiveConnection] {
        let table = connections.withLock { $0.byID }
        return table.values.sorted { $0.id < $1.id }.map { connection in
            var connection = connection
            if let key = connection.authKeyID {
                connection.userID = withState { $0.userID(for: CallContext(dc: connection.dc, authKeyID: key)) }
            }
            return connection
        }
    }

    /// True when another live connection uses the same key with a different session id.
    func isDuplicated(connection id: Int, dc: Int32, keyID: Int64, sessionID: Int64) -> Bool {
        guard detectsDuplicateKeys else { return false }
        return connections.withLock { table in
            table.containsConnection(dc: dc, keyID: keyID) { other in
                other.id != id && other.sessionID != nil && other.sessionID != sessionID
            }
        }
    }
}
