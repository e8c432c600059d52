import MTProtoCrypto

/// The server salts of one auth key over time, as a pure function of time: period 0 (from the
/// handshake) uses the handshake's server_salt, period k ≥ 1 uses the first 8 bytes of
/// SHA-256(seed ‖ k). Every copy made from the same seed agrees, so all the sessions and
/// connections of one auth key in the test DC accept and announce the same salts without sharing
/// state, and memory never grows with time.
///
/// Each salt is valid for its `period` plus `overlap` seconds into the next ("messages with the old
/// salt are still accepted for a further 1800 seconds", mtproto/description).
public struct ServerSaltSchedule: Sendable, Hashable {
    public let initialSalt: Int64
    public let start: Int64
    public let period: Int64
    public let overlap: Int64
    /// Secret of the server: whoever knows it can predict every future salt.
    private let seed: [UInt8]

    /// `initialSalt` is the handshake's server_salt (new_nonce[0..8] XOR server_nonce[0..8]), valid
    /// from `validSince`; `seed` (kept per auth key by the server, 32 random bytes) derives the rest.
    public init(initialSalt: Int64, validSince: UnixTime, seed: [UInt8], period: Int64 = 3600, overlap: Int64 = 1800) {
        precondition(period > 0 && overlap >= 0, "salt periods must be positive")
        self.initialSalt = initialSalt
        self.start = validSince.seconds.isFinite ? Int64(max(min(validSince.seconds, 1e15), -1e15).rounded(.down)) : 0
        self.period = period
        self.overlap = overlap
        self.seed = seed
    }

    /// A schedule whose seed is drawn from `entropy`.
    public init(initialSalt: Int64, validSince: UnixTime, entropy: inout some EntropySource, period: Int64 = 3600, overlap: Int64 = 1800) {
        self.init(initialSalt: initialSalt, validSince: validSince, seed: entropy.bytes(32), period: period, overlap: overlap)
    }

    public func accepts(_ salt: Int64, at now: UnixTime) -> Bool {
        guard let index = periodIndex(at: now) else { return false }
        if self.salt(ofPeriod: index) == salt { return true }
        // The previous period's salt during the overlap.
        if index > 0, Double(start + index * period + overlap) > now.seconds, self.salt(ofPeriod: index - 1) == salt { return true }
        return false
    }

    /// The salt of the period `now` falls in (before the schedule starts: the initial salt).
    public func current(at now: UnixTime) -> Int64 {
        salt(ofPeriod: periodIndex(at: now) ?? 0)
    }

    /// `count` salts (clamped to 1...64) from the current period on, as get_future_salts returns them.
    public func upcoming(_ count: Int, at now: UnixTime) -> [FutureSalt] {
        let first = periodIndex(at: now) ?? 0
        return (0..<Int64(min(max(count, 1), 64))).map { offset in
            let index = first + offset
            let since = start + index * period
            return FutureSalt(
                validSince: Int32(clamping: since), validUntil: Int32(clamping: since + period + overlap), salt: salt(ofPeriod: index))
        }
    }

    private func periodIndex(at now: UnixTime) -> Int64? {
        guard now.seconds.isFinite else { return nil }
        let elapsed = now.seconds - Double(start)
        guard elapsed >= 0 else { return nil }
        return Int64(min(elapsed / Double(period), 1e12).rounded(.down))
    }

    private func salt(ofPeriod index: Int64) -> Int64 {
        guard index > 0 else { return initialSalt }
        var counter = [UInt8](repeating: 0, count: 8)
        for byte in 0..<8 { counter[byte] = UInt8(truncatingIfNeeded: index >> (8 * Int64(byte))) }
        let digest = Hashing.sha256(parts: [seed, counter])
        var value: Int64 = 0
        for byte in 0..<8 { value |= Int64(digest[byte]) << (8 * Int64(byte)) }
        return value
    }
}

extension ServerSaltSchedule: CustomStringConvertible, CustomReflectable {
    /// `dump` and debuggers see no seed either.
    public var customMirror: Mirror { Mirror(self, children: ["start": start, "period": period, "overlap": overlap]) }

    /// Never the seed: it predicts every future salt.
    public var description: String { "ServerSaltSchedule(start: \(start), period: \(period) s, overlap: \(overlap) s)" }
}
