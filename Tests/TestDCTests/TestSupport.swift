import MTProtoCrypto
import MTProtoNIO
@testable import TestDC
import SeededRandom

/// SplitMix64: a reproducible entropy source so every test run draws the same bytes.
struct SeededEntropy: EntropySource {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: generator.next()) }
    }
}

extension DCState {
    static func forTests(world: World = .default, dcCount: Int32 = 3) -> DCState {
        DCState(
            world: world, dcs: Dictionary(uniqueKeysWithValues: (1...dcCount).map { ($0, DCAddress(host: "127.0.0.1", port: 20000 + Int($0))) }),
            entropy: SeededEntropy(seed: 42))
    }
}
