import MTProtoCrypto
import MTProtoNIO
@testable import TestDC

/// SplitMix64: a reproducible entropy source so every test run draws the same bytes.
struct SeededEntropy: EntropySource {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in buffer.indices {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            buffer[index] = UInt8(truncatingIfNeeded: z ^ (z >> 31))
        }
    }
}

extension DCState {
    static func forTests(world: World = .default, dcCount: Int32 = 3) -> DCState {
        DCState(
            world: world, dcs: Dictionary(uniqueKeysWithValues: (1...dcCount).map { ($0, DCAddress(host: "127.0.0.1", port: 20000 + Int($0))) }),
            entropy: SeededEntropy(seed: 42))
    }
}
