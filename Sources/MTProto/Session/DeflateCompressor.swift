import CLibdeflate
import Synchronization

/// A libdeflate level-1 compressor kept for reuse. Allocating and freeing one costs about 2 µs, as much as compressing a 1 KiB body; a few are kept per process (`kept`), so
/// the cost is paid once. (A decompressor costs about 0.1 µs to allocate: GzipPacked makes one per
/// call.) libdeflate's objects are not thread-safe, hence the take-and-give-back.
final class DeflateCompressor: @unchecked Sendable {
    // @unchecked: the compressor behind `pointer` is used only by the one caller that took this
    // object out of its pool (`take`) until it gives it back (`giveBack`), and the pool hands it
    // out under a lock: never two threads at once.
    let pointer: OpaquePointer

    private static let pool = Mutex<[DeflateCompressor]>([])
    private static let kept = 4

    private init?() {
        guard let pointer = tgsm_libdeflate_alloc_compressor(1) else { return nil }
        self.pointer = pointer
    }

    deinit { tgsm_libdeflate_free_compressor(pointer) }

    /// A compressor: a kept one when there is one, else a new one (nil when out of memory, or when
    /// libdeflate is not on this machine: the caller then uses zlib).
    static func take() -> DeflateCompressor? {
        pool.withLock { $0.popLast() } ?? DeflateCompressor()
    }

    /// Keeps the compressor for the next message (libdeflate keeps no state between calls).
    func giveBack() {
        Self.pool.withLock { if $0.count < Self.kept { $0.append(self) } }
    }
}
