import Synchronization

/// Where jitter comes from. Injected so tests replay the same delays; production uses the system
/// generator. Jitter needs no cryptographic quality, only independence between processes.
public protocol RandomSource: Sendable {
    /// A uniformly distributed number in [0, 1).
    func nextUnit() -> Double
}

/// The system's random number generator.
public struct SystemRandomSource: RandomSource {
    public init() {}

    public func nextUnit() -> Double { Double.random(in: 0..<1) }
}

/// A deterministic sequence (SplitMix64) from a seed, for tests and for reproducible benchmarks.
public final class SeededRandomSource: RandomSource {
    private let state: Mutex<UInt64>

    public init(seed: UInt64) { state = Mutex(seed) }

    public func nextUnit() -> Double {
        let bits = state.withLock { value -> UInt64 in
            value &+= 0x9E37_79B9_7F4A_7C15
            var mixed = value
            mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
            return mixed ^ (mixed >> 31)
        }
        // The top 53 bits fill a Double's mantissa exactly.
        return Double(bits >> 11) / Double(UInt64(1) << 53)
    }
}
