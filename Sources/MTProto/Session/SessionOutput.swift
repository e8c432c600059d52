import MTProtoCrypto

/// What both roles do alike before a packet leaves: the acknowledgements waiting for a ride, and
/// sealing a message into the encrypted envelope with the session's key and randomness. One value
/// so the client and the server cannot drift apart on either.
struct SessionOutput: Sendable {
    let authKey: AuthKey
    let direction: Direction
    private var entropy: any EntropySource
    /// msg_ids of content-related messages received and not yet acknowledged, oldest first.
    private(set) var pendingAcks: [Int64] = []
    private var oldestPendingAck: UnixTime?

    init(authKey: AuthKey, direction: Direction, entropy: any EntropySource) {
        self.authKey = authKey
        self.direction = direction
        self.entropy = entropy
    }

    mutating func acknowledge(_ messageID: Int64, now: UnixTime) {
        if oldestPendingAck == nil { oldestPendingAck = now }
        pendingAcks.append(messageID)
    }

    /// Puts acknowledgements back (their packet must be sent again), keeping their original age.
    mutating func requeueAcks(_ ids: [Int64], since: UnixTime) {
        if oldestPendingAck.map({ since < $0 }) ?? true { oldestPendingAck = since }
        pendingAcks.append(contentsOf: ids)
    }

    /// Whether the oldest waiting acknowledgement has waited `delay` seconds.
    func acksDue(now: UnixTime, delay: Double) -> Bool {
        oldestPendingAck.map { now - $0 >= delay } ?? false
    }

    /// When the waiting acknowledgements fall due, for the owner's timer.
    func acksDueAt(delay: Double) -> UnixTime? { oldestPendingAck.map { $0 + delay } }

    /// The waiting acknowledgements as msgs_ack messages (at most `ServiceMessage.maxIDs` ids each); the queue empties.
    mutating func takeAcks() -> [Outbound] {
        guard !pendingAcks.isEmpty else { return [] }
        defer {
            pendingAcks.removeAll(keepingCapacity: true)
            oldestPendingAck = nil
        }
        return pendingAcks.chunked(ServiceMessage.maxIDs).map {
            Outbound(purpose: .acks($0), body: ServiceMessage.msgsAck($0).serialized, contentRelated: false)
        }
    }

    /// Withdraws one waiting acknowledgement (its message is treated as never received).
    mutating func withdrawAck(_ messageID: Int64) {
        pendingAcks.removeAll { $0 == messageID }
        if pendingAcks.isEmpty { oldestPendingAck = nil }
    }

    /// Forgets the waiting acknowledgements (their session is gone).
    mutating func dropAcks() {
        pendingAcks.removeAll()
        oldestPendingAck = nil
    }

    mutating func seal(_ message: SessionMessage, salt: Int64, sessionID: Int64, maxExtraPaddingBlocks: Int) -> [UInt8] {
        Envelope.seal(
            message, salt: salt, sessionID: sessionID, authKey: authKey, direction: direction,
            entropy: &entropy, maxExtraPaddingBlocks: maxExtraPaddingBlocks)
    }

    /// Eight random bytes (session ids, unique ids) from the session's own source.
    mutating func randomInt64() -> Int64 {
        entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
    }
}
