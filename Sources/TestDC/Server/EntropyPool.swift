import MTProtoCrypto
import Synchronization

/// The test DC's one source of randomness (the entropy its configuration injects), shared by every
/// consumer: handshakes, sessions, salts, login codes. Each consumer holds a `PooledEntropy`
/// drawing from the same stream under a lock; handing each a copy of a seeded source instead would
/// give every connection the same nonces and DH exponents.
final class EntropyPool: Sendable {
    private let source: Mutex<any EntropySource>

    init(_ source: any EntropySource) {
        self.source = Mutex(source)
    }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        source.withLock { $0.fill(buffer) }
    }

    /// A source for one consumer, drawing from the pool.
    var entropy: PooledEntropy { PooledEntropy(pool: self) }
}

struct PooledEntropy: EntropySource {
    let pool: EntropyPool

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) { pool.fill(buffer) }
}
