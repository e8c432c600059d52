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
    private let connections = Mutex<[Int: LiveConnection]>([:])
    private let channels = Mutex<[Int: any Channel]>([:])
    private let nextConnectionID = Atomic<Int>(1)
    /// Unix time, before any fault clock offset.
    public let clock: @Sendable () -> Double
    /// Whether one key used by two live connections with different session ids answers AUTH_KEY_DUPLICATED.
    private let duplicateKeyDetection: Mutex<Bool>

    public init(state: DCState, clock: @escaping @Sendable () -> Double, duplicateKeyDetection: Bool = true) {
        self.state = Mutex(state)
        self.clock = clock
        self.duplicateKeyDetection = Mutex(duplicateKeyDetection)
    }

    /// Runs `body` under the lock; keys and logins it changed are saved before the lock is released.
    public func withState<R>(_ body: (inout DCState) throws -> R) rethrows -> R {
        try state.withLock { state in
            defer { state.saveAuthKeysIfChanged() }
            return try body(&state)
        }
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
        connections.withLock { $0[id] = LiveConnection(id: id, dc: dc, remote: remote) }
        channels.withLock { $0[id] = channel }
        return id
    }

    func closeConnection(_ id: Int) {
        _ = connections.withLock { $0.removeValue(forKey: id) }
        _ = channels.withLock { $0.removeValue(forKey: id) }
    }

    /// Closes every live connection of a DC (nil: of all DCs), as a restarting server would.
    public func disconnectAll(dc: Int32? = nil) {
        let ids = connections.withLock { table in table.values.filter { dc == nil || $0.dc == dc }.map(\.id) }
        let doomed = channels.withLock { table in ids.compactMap { table[$0] } }
        for channel in doomed { channel.close(promise: nil) }
    }

    func channel(ofConnection id: Int) -> (any Channel)? {
        channels.withLock { $0[id] }
    }

    func updateConnection(_ id: Int, _ change: (inout LiveConnection) -> Void) {
        connections.withLock { table in
            if var entry = table[id] {
                change(&entry)
                table[id] = entry
            }
        }
    }

    public var liveConnections: [LiveConnection] {
        let table = connections.withLock { $0 }
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
            table.values.contains { other in
                other.id != id && other.dc == dc && other.authKeyID == keyID && other.sessionID != nil && other.sessionID != sessionID
            }
        }
    }
}
