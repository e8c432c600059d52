import Synchronization

/// Where the workers' randomness (backoff jitter, random_id of sends without a key) comes from.
/// Tests inject a seeded source so every delay is known in advance.
public protocol RandomSource: Sendable {
    /// A uniformly distributed 64-bit value.
    func next() -> UInt64
}

extension RandomSource {
    /// Uniform in [0, 1).
    public func unitInterval() -> Double {
        Double(next() >> 11) / Double(UInt64(1) << 53)
    }
}

/// The system's generator.
public struct SystemRandomSource: RandomSource {
    public init() {}
    public func next() -> UInt64 {
        var generator = SystemRandomNumberGenerator()
        return generator.next()
    }
}

/// SplitMix64: reproducible sequences for tests and benchmarks.
public final class SeededRandomSource: RandomSource {
    private let state: Mutex<UInt64>

    public init(seed: UInt64) { state = Mutex(seed) }

    public func next() -> UInt64 {
        state.withLock { state in
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
