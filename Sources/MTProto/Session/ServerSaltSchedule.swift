import MTProtoCrypto

/// The server salts of one auth key over time. Each salt is valid for `period` seconds from its
/// start plus `overlap` seconds after the next one starts ("messages with the old salt are still
/// accepted for a further 1800 seconds", mtproto/description). New salts are drawn from entropy as
/// time advances; get_future_salts answers from the same list.
public struct ServerSaltSchedule: Sendable, Hashable {
    public private(set) var salts: [FutureSalt]
    public let period: Int32
    public let overlap: Int32

    /// `initialSalt` is the handshake's server_salt (new_nonce[0..8] XOR server_nonce[0..8]).
    public init(initialSalt: Int64, validSince: UnixTime, period: Int32 = 3600, overlap: Int32 = 1800) {
        precondition(period > 0 && overlap >= 0, "salt periods must be positive")
        self.period = period
        self.overlap = overlap
        let since = Self.clampedSeconds(validSince.seconds)
        salts = [FutureSalt(validSince: since, validUntil: since &+ period &+ overlap, salt: initialSalt)]
    }

    public func accepts(_ salt: Int64, at now: UnixTime) -> Bool {
        salts.contains { $0.salt == salt && $0.isValid(at: now.seconds) }
    }

    /// The newest salt valid at `now`, extending the schedule first if it ran out.
    public mutating func current(at now: UnixTime, entropy: inout any EntropySource) -> Int64 {
        extend(through: now.seconds, entropy: &entropy)
        let valid = salts.filter { $0.isValid(at: now.seconds) }
        return (valid.max { $0.validSince < $1.validSince } ?? salts[salts.count - 1]).salt
    }

    /// Up to `count` salts (1...64) still valid at or after `now`, oldest first.
    public mutating func upcoming(_ count: Int, at now: UnixTime, entropy: inout any EntropySource) -> [FutureSalt] {
        let wanted = min(max(count, 1), 64)
        extend(through: now.seconds + Double(period) * Double(wanted), entropy: &entropy)
        salts.removeAll { Double($0.validUntil) <= now.seconds }
        return Array(salts.prefix(wanted))
    }

    private mutating func extend(through time: Double, entropy: inout any EntropySource) {
        let target = Self.clampedSeconds(time)
        // Bounded: a clock jump of years must not generate millions of salts.
        var added = 0
        while let last = salts.last, last.validSince &+ period <= target, added < 128 {
            let since = last.validSince &+ period
            let salt = entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
            salts.append(FutureSalt(validSince: since, validUntil: since &+ period &+ overlap, salt: salt))
            added += 1
        }
        if let last = salts.last, last.validSince &+ period <= target {
            // Far behind: restart the schedule at `time` instead of walking every period.
            let salt = entropy.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: Int64.self) }
            salts.append(FutureSalt(validSince: target, validUntil: target &+ period &+ overlap, salt: salt))
        }
        if salts.count > 256 { salts.removeFirst(salts.count - 256) }
    }

    private static func clampedSeconds(_ seconds: Double) -> Int32 {
        guard seconds.isFinite else { return 0 }
        return Int32(min(max(seconds, 0), Double(Int32.max - (1 << 20))))
    }
}
