/// Serializes TL values into one growing byte buffer.
///
/// The storage is zero-filled ahead of the write position and grows by doubling, so writing an
/// integer is a bounds check and one unaligned store: `Array.append(contentsOf:)` of an integer's
/// bytes went through the generic sequence path and took a third of encoding time (perf,
/// scripts/bench-tl). Reserve roughly the expected size up front (`init(capacity:)`) and a
/// request is written with a single allocation.
public struct TLWriter: Sendable {
    /// Bytes `0..<used` are the output; the rest is zeroed room to grow into.
    @usableFromInline var storage: [UInt8]
    @usableFromInline var used: Int

    public init(capacity: Int = 256) {
        storage = [UInt8](repeating: 0, count: Swift.max(capacity, 16))
        used = 0
    }

    /// Everything written so far (a copy; `takeBytes()` hands the storage over instead).
    public var bytes: [UInt8] { used == storage.count ? storage : Array(storage[..<used]) }

    /// Everything written so far, without copying it; the writer is empty afterwards.
    public mutating func takeBytes() -> [UInt8] {
        var result: [UInt8] = []
        swap(&result, &storage)
        result.removeSubrange(used...)
        used = 0
        return result
    }

    /// Number of bytes written so far.
    @inlinable public var count: Int { used }

    /// Makes room for `extra` more bytes past the write position.
    @inlinable @inline(__always)
    mutating func reserve(_ extra: Int) {
        if _slowPath(storage.count - used < extra) { grow(toAtLeast: used + extra) }
    }

    @usableFromInline @inline(never)
    mutating func grow(toAtLeast minimum: Int) {
        let target = Swift.max(minimum, storage.count &* 2)
        storage.append(contentsOf: repeatElement(0, count: target - storage.count))
    }

    @inlinable @inline(__always)
    mutating func store<T: FixedWidthInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        reserve(size)
        let offset = used
        storage.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
        used = offset &+ size
    }

    /// Copies `count` bytes from `source` at the write position (room already reserved).
    @inlinable @inline(__always)
    mutating func copy(_ source: UnsafeRawPointer, count: Int) {
        let offset = used
        storage.withUnsafeMutableBytes { target in
            if let base = target.baseAddress { (base + offset).copyMemory(from: source, byteCount: count) }
        }
        used = offset &+ count
    }

    /// A constructor number.
    @inlinable public mutating func writeConstructorID(_ id: UInt32) { store(id) }
    @inlinable public mutating func writeUInt32(_ value: UInt32) { store(value) }
    /// TL `int`.
    @inlinable public mutating func writeInt32(_ value: Int32) { store(value) }
    /// TL `long`.
    @inlinable public mutating func writeInt64(_ value: Int64) { store(value) }
    @inlinable public mutating func writeUInt64(_ value: UInt64) { store(value) }
    /// TL `double`.
    @inlinable public mutating func writeDouble(_ value: Double) { store(value.bitPattern) }

    /// TL `int128`.
    @inlinable public mutating func writeInt128(_ value: TLInt128) {
        store(value.low)
        store(value.high)
    }

    /// TL `int256`.
    @inlinable public mutating func writeInt256(_ value: TLInt256) {
        writeInt128(value.first)
        writeInt128(value.second)
    }

    /// Boxed TL `Bool`.
    @inlinable public mutating func writeBool(_ value: Bool) {
        store(value ? TLBuiltinID.boolTrue : TLBuiltinID.boolFalse)
    }

    /// Bytes as they are, with no length prefix or padding (for hand-built MTProto framing).
    public mutating func writeRawBytes(_ raw: some Sequence<UInt8>) {
        let copied: Void? = raw.withContiguousStorageIfAvailable { contiguous in
            reserve(contiguous.count)
            if let base = contiguous.baseAddress { copy(base, count: contiguous.count) }
        }
        if copied == nil {
            for byte in raw { store(byte) }
        }
    }

    /// TL `bytes`: the short form (1-byte length) below 254 bytes, else 0xfe and a 3-byte length;
    /// zero padding to a multiple of 4. TL cannot express 16 MiB or more: passing that is a bug.
    public mutating func writeBytes(_ data: UnsafeRawBufferPointer) {
        let length = data.count
        precondition(length < 1 << 24, "TL bytes/string cannot hold \(length) bytes (16 MiB or more)")
        // Header, data and up to 3 bytes of padding; the padding is the zeroed room past `used`,
        // written explicitly all the same (4 bytes of zeros, the surplus overwritten later).
        reserve(length &+ 8)
        let header: Int
        if length < 254 {
            let offset = used
            storage.withUnsafeMutableBytes { $0[offset] = UInt8(truncatingIfNeeded: length) }
            used = offset &+ 1
            header = 1
        } else {
            store(UInt32(254) | UInt32(length) << 8)
            header = 4
        }
        if let base = data.baseAddress { copy(base, count: length) }
        let padding = (4 &- (header &+ length) & 3) & 3
        let offset = used
        storage.withUnsafeMutableBytes { $0.storeBytes(of: UInt32(0), toByteOffset: offset, as: UInt32.self) }
        used = offset &+ padding
    }

    /// TL `bytes`.
    public mutating func writeBytes(_ data: [UInt8]) {
        data.withUnsafeBytes { writeBytes($0) }
    }

    /// TL `string`: the UTF-8 bytes of `text`, framed like `bytes`.
    public mutating func writeString(_ text: String) {
        var text = text
        text.withUTF8 { writeBytes(UnsafeRawBufferPointer($0)) }
    }

    /// The header of a boxed `Vector t`: its constructor number and the count.
    @inlinable public mutating func writeVectorHeader(count: Int) {
        store(TLBuiltinID.vector)
        writeBareVectorCount(count)
    }

    /// The count of a bare `vector t`.
    @inlinable public mutating func writeBareVectorCount(_ count: Int) {
        precondition(count <= Int32.max, "a TL vector cannot hold \(count) elements")
        store(Int32(count))
    }

    /// A boxed `Vector t` whose elements `element` writes.
    @inlinable
    public mutating func writeVector<Element>(_ elements: [Element], _ element: (inout TLWriter, Element) -> Void) {
        writeVectorHeader(count: elements.count)
        for value in elements { element(&self, value) }
    }

    /// A bare `vector t`.
    @inlinable
    public mutating func writeBareVector<Element>(_ elements: [Element], _ element: (inout TLWriter, Element) -> Void) {
        writeBareVectorCount(elements.count)
        for value in elements { element(&self, value) }
    }

    /// A boxed `Vector<bytes>`.
    public mutating func writeBytesVector(_ elements: [[UInt8]]) {
        writeVector(elements) { $0.writeBytes($1) }
    }

    /// `gzip_packed#3072cfa1 packed_data:string`: `value`'s boxed serialization, deflated.
    /// The reader accepts it wherever a boxed object is expected.
    public mutating func writeGzipPacked(_ value: some TLEncodable, using deflater: some TLDeflater) throws {
        var plain = TLWriter()
        value.encode(to: &plain)
        try writeGzipPacked(serialized: plain.bytes, using: deflater)
    }

    /// `gzip_packed` around bytes that already hold a boxed serialization.
    public mutating func writeGzipPacked(serialized: [UInt8], using deflater: some TLDeflater) throws {
        let packed = try deflater.deflate(serialized)
        store(TLBuiltinID.gzipPacked)
        writeBytes(packed)
    }
}
