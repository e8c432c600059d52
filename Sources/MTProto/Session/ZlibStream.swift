import CZlib
import Synchronization

/// A zlib stream kept for reuse. Setting one up allocates its window and tables (about 256 KiB for
/// deflate at gzip_packed's settings, 40 KiB for inflate); freed after every message, glibc gave
/// those pages back to the kernel and the next message faulted them in again: page faults and
/// zeroing were a tenth of the test DC's time serving 100-message histories. A reset stream keeps
/// its memory, and a few are kept per process (`kept`), so the cost is paid once.
final class ZlibStream: @unchecked Sendable {
    // @unchecked: the z_stream behind `stream` is used only by the one caller that took this
    // object out of its pool (`take`) until it gives it back (`giveBack`), and the pool hands it
    // out under a lock: never two threads at once.
    enum Kind { case deflate, inflate }

    let kind: Kind
    let stream: UnsafeMutablePointer<z_stream>

    private static let deflaters = Mutex<[ZlibStream]>([])
    private static let inflaters = Mutex<[ZlibStream]>([])
    private static let kept = 4

    private init?(_ kind: Kind) {
        self.kind = kind
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status: Int32 =
            switch kind {
            // windowBits 15 + 16: a gzip header and trailer, which is what the peers write and expect.
            // Level 1: most bodies tried are incompressible (media, random ids) and the attempt is
            // wasted, so it must be cheap; TL's repetitive text still shrinks well at this level.
            case .deflate:
                deflateInit2_(stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            // windowBits 15 + 32: accept gzip or zlib headers, as peers are lax about which they send.
            case .inflate:
                inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            }
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            return nil
        }
    }

    deinit {
        switch kind {
        case .deflate: deflateEnd(stream)
        case .inflate: inflateEnd(stream)
        }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// A stream ready for a new message: a kept one when there is one, else a new one (nil when
    /// zlib cannot set one up: out of memory).
    static func take(_ kind: Kind) -> ZlibStream? {
        let kept: ZlibStream? =
            switch kind {
            case .deflate: deflaters.withLock { $0.popLast() }
            case .inflate: inflaters.withLock { $0.popLast() }
            }
        return kept ?? ZlibStream(kind)
    }

    /// Resets the stream (whatever state the last message left it in) and keeps it for the next.
    func giveBack() {
        let status = kind == .deflate ? deflateReset(stream) : inflateReset(stream)
        guard status == Z_OK else { return }
        switch kind {
        case .deflate: Self.deflaters.withLock { if $0.count < Self.kept { $0.append(self) } }
        case .inflate: Self.inflaters.withLock { if $0.count < Self.kept { $0.append(self) } }
        }
    }
}
