import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A per-thread reserve of DRBG output for `SystemEntropy`: 4 KiB drawn in one RAND_bytes call and
/// handed out in small pieces, each byte once (it is zeroed when taken). Per thread, so taking
/// needs no lock; a thread's reserve is freed when the thread ends. After fork(2) the child's
/// copy of the forking thread's reserve is discarded before use (a fork counter bumped by a
/// `pthread_atfork` handler), so parent and child never share random bytes.
enum EntropyReserve {
    /// Requests larger than this go straight to the DRBG.
    static let largestServed = 256
    private static let capacity = 4096
    /// Header before the bytes: the fork generation they were drawn in, and the next unused offset.
    private static let headerSize = 16

    private static let forks = Atomic<UInt64>(0)

    /// nil when the process has no thread-specific key left (or fork handlers cannot be
    /// registered): then every request goes straight to the DRBG.
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        guard pthread_key_create(&key, { reserve in reserve?.deallocate() }) == 0 else { return nil }
        guard pthread_atfork(nil, nil, { EntropyReserve.forks.add(1, ordering: .relaxed) }) == 0 else {
            pthread_key_delete(key)
            return nil
        }
        return key
    }()

    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let target = buffer.baseAddress, buffer.count > 0 else { return }
        guard buffer.count <= largestServed, let key else { return SystemEntropy.fillFromDRBG(buffer) }
        let reserve: UnsafeMutableRawPointer
        if let existing = pthread_getspecific(key) {
            reserve = existing
        } else {
            reserve = .allocate(byteCount: headerSize + capacity, alignment: 8)
            reserve.storeBytes(of: UInt64.max, as: UInt64.self)
            reserve.storeBytes(of: capacity, toByteOffset: 8, as: Int.self)
            guard pthread_setspecific(key, reserve) == 0 else {
                reserve.deallocate()
                SystemEntropy.fillFromDRBG(buffer)
                return
            }
        }
        let generation = forks.load(ordering: .relaxed)
        var next = reserve.load(fromByteOffset: 8, as: Int.self)
        let bytes = reserve + headerSize
        if reserve.load(as: UInt64.self) != generation || next + buffer.count > capacity {
            SystemEntropy.fillFromDRBG(UnsafeMutableRawBufferPointer(start: bytes, count: capacity))
            reserve.storeBytes(of: generation, as: UInt64.self)
            next = 0
        }
        target.copyMemory(from: bytes + next, byteCount: buffer.count)
        (bytes + next).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count)
        reserve.storeBytes(of: next + buffer.count, toByteOffset: 8, as: Int.self)
    }
}
