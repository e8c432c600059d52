/// Serializes TL values by appending to one growing byte array.
///
/// Reserve roughly the expected size up front (`init(capacity:)`) and a request is written
/// with a single allocation.
public struct TLWriter: Sendable {
    @usableFromInline var buffer: [UInt8]

    /// Everything written so far.
    @inlinable public var bytes: [UInt8] { buffer }

    public init(capacity: Int = 256) {
        buffer = []
        buffer.reserveCapacity(capacity)
    }

    /// Number of bytes written so far.
    @inlinable public var count: Int { buffer.count }

    @inlinable
    mutating func store<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
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
    @inlinable public mutating func writeRawBytes(_ raw: some Sequence<UInt8>) {
        buffer.append(contentsOf: raw)
    }

    /// TL `bytes`: the short form (1-byte length) below 254 bytes, else 0xfe and a 3-byte length;
    /// zero padding to a multiple of 4. TL cannot express 16 MiB or more: passing that is a bug.
    public mutating func writeBytes(_ data: UnsafeRawBufferPointer) {
        let length = data.count
        let header: Int
        if length < 254 {
            buffer.append(UInt8(length))
            header = 1
        } else {
            precondition(length < 1 << 24, "TL bytes/string cannot hold \(length) bytes (16 MiB or more)")
            store(UInt32(254) | UInt32(length) << 8)
            header = 4
        }
        buffer.append(contentsOf: data)
        let padding = (4 - (header + length) & 3) & 3
        for _ in 0..<padding { buffer.append(0) }
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
