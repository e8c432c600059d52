/// Reads TL values from a contiguous byte buffer.
///
/// Every read checks bounds first and throws `TLDecodingError` (naming the offset and what was
/// expected) instead of trapping, so hostile or truncated input is always safe to hand over.
/// Loads are unaligned reads straight from the array's storage; nothing is allocated per
/// primitive, only per `bytes`/`string`/vector/object that outlives the call.
public struct TLReader: Sendable {
    /// Bounds on what a single message may make the reader allocate or recurse into.
    public struct Limits: Sendable, Equatable {
        /// Longest `bytes`/`string` accepted (the TL long form can announce up to 16 MiB).
        public var maxBytesLength: Int
        /// Most elements accepted in one vector.
        public var maxVectorCount: Int
        /// Deepest nesting of boxed objects (recursive types such as `RichText` or `JSONValue`).
        public var maxDepth: Int
        /// Largest inflated `gzip_packed` payload accepted.
        public var maxInflatedLength: Int

        public init(
            maxBytesLength: Int = 16 * 1024 * 1024,
            maxVectorCount: Int = 1 << 20,
            maxDepth: Int = 64,
            maxInflatedLength: Int = 32 * 1024 * 1024
        ) {
            self.maxBytesLength = maxBytesLength
            self.maxVectorCount = maxVectorCount
            self.maxDepth = maxDepth
            self.maxInflatedLength = maxInflatedLength
        }
    }

    public let limits: Limits
    /// Called when `gzip_packed` stands where a boxed object is expected; `nil` makes that an error.
    public let inflater: (any TLInflater)?

    @usableFromInline let storage: [UInt8]
    @usableFromInline let start: Int
    @usableFromInline let end: Int
    @usableFromInline var position_: Int
    @usableFromInline var depth: Int

    /// A reader over all of `bytes`.
    public init(_ bytes: [UInt8], limits: Limits = Limits(), inflater: (any TLInflater)? = nil) {
        self.storage = bytes
        self.start = 0
        self.end = bytes.count
        self.position_ = 0
        self.depth = 0
        self.limits = limits
        self.inflater = inflater
    }

    /// A reader over `bytes[range]`; offsets in errors and `position` count from the start of `bytes`.
    public init(_ bytes: [UInt8], range: Range<Int>, limits: Limits = Limits(), inflater: (any TLInflater)? = nil) {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "TLReader range \(range) is outside the buffer")
        self.storage = bytes
        self.start = range.lowerBound
        self.end = range.upperBound
        self.position_ = range.lowerBound
        self.depth = 0
        self.limits = limits
        self.inflater = inflater
    }

    /// Offset of the next byte to read.
    @inlinable public var position: Int { position_ }

    /// Moves the read position (for hand-parsed framing); `offset` must lie within the reader's range.
    public mutating func seek(to offset: Int) {
        precondition(offset >= start && offset <= end, "TLReader.seek(to: \(offset)) is outside \(start)..<\(end)")
        position_ = offset
    }

    /// Bytes left to read.
    @inlinable public var remaining: Int { end - position_ }
    @inlinable public var isAtEnd: Bool { position_ >= end }

    // MARK: Errors

    @usableFromInline
    func error(_ kind: TLDecodingError.Kind, at offset: Int, _ expected: String) -> TLDecodingError {
        TLDecodingError(kind: kind, offset: offset, expected: expected)
    }

    @inlinable
    func require(_ count: Int, _ expected: @autoclosure () -> String) throws {
        guard end - position_ >= count else {
            throw error(.truncated(needed: count, available: end - position_), at: position_, expected())
        }
    }

    /// The error for a constructor number a type does not have; `id` was read just before.
    public func unknownConstructor(_ id: UInt32, expected: String) -> TLDecodingError {
        error(.unknownConstructor(id), at: position_ - 4, expected)
    }

    /// Builds an `invalidValue` error at the current position_.
    public func invalidValue(_ reason: String, expected: String) -> TLDecodingError {
        error(.invalidValue(reason: reason), at: position_, expected)
    }

    // MARK: Fixed-size primitives

    @inlinable
    mutating func load<T: FixedWidthInteger>(_: T.Type, _ expected: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        guard end - position_ >= size else {
            throw error(.truncated(needed: size, available: end - position_), at: position_, expected())
        }
        let offset = position_
        let raw = storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        position_ = offset + size
        return T(littleEndian: raw)
    }

    /// The next constructor number without consuming it (to dispatch on it).
    @inlinable public func peekConstructorID() throws -> UInt32 {
        var copy = self
        return try copy.load(UInt32.self, "constructor number")
    }

    /// A constructor number (the first word of every boxed value).
    @inlinable public mutating func readConstructorID() throws -> UInt32 {
        try load(UInt32.self, "constructor number")
    }

    @inlinable public mutating func readUInt32() throws -> UInt32 { try load(UInt32.self, "int") }
    /// TL `int`.
    @inlinable public mutating func readInt32() throws -> Int32 { try load(Int32.self, "int") }
    /// TL `long`.
    @inlinable public mutating func readInt64() throws -> Int64 { try load(Int64.self, "long") }
    @inlinable public mutating func readUInt64() throws -> UInt64 { try load(UInt64.self, "long") }

    /// TL `double`: IEEE 754 binary64, little-endian.
    @inlinable public mutating func readDouble() throws -> Double {
        Double(bitPattern: try load(UInt64.self, "double"))
    }

    /// TL `int128`.
    @inlinable public mutating func readInt128() throws -> TLInt128 {
        try require(16, "int128")
        let low = try load(UInt64.self, "int128")
        let high = try load(UInt64.self, "int128")
        return TLInt128(low: low, high: high)
    }

    /// TL `int256`.
    @inlinable public mutating func readInt256() throws -> TLInt256 {
        try require(32, "int256")
        let first = try readInt128()
        let second = try readInt128()
        return TLInt256(first: first, second: second)
    }

    /// Boxed TL `Bool` (`boolTrue`/`boolFalse`), also when sent inside `gzip_packed`.
    @inlinable public mutating func readBool() throws -> Bool {
        let id = try load(UInt32.self, "Bool")
        switch id {
        case TLBuiltinID.boolTrue: return true
        case TLBuiltinID.boolFalse: return false
        default: return try decodeFallback(id, as: Bool.self, expected: "Bool")
        }
    }

    /// `count` raw bytes with no length prefix or padding (for hand-parsed MTProto framing).
    public mutating func readRawBytes(_ count: Int, expected: String = "raw bytes") throws -> [UInt8] {
        precondition(count >= 0, "negative raw byte count")
        try require(count, expected)
        let start = position_
        position_ += count
        return Array(storage[start..<start + count])
    }

    // MARK: bytes and string

    /// Reads a length prefix and checks the data plus zero padding fit; returns the data's range.
    @inlinable
    mutating func readByteRange(_ expected: @autoclosure () -> String) throws -> Range<Int> {
        let start = position_
        guard end - position_ >= 1 else {
            throw error(.truncated(needed: 1, available: 0), at: start, expected())
        }
        let first = storage.withUnsafeBytes { $0[start] }
        var length: Int
        var header: Int
        if first < 254 {
            length = Int(first)
            header = 1
        } else if first == 254 {
            guard end - position_ >= 4 else {
                throw error(.truncated(needed: 4, available: end - position_), at: start, expected())
            }
            let word = storage.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: start, as: UInt32.self) }
            length = Int(UInt32(littleEndian: word) >> 8)
            header = 4
        } else {
            throw error(.invalidValue(reason: "length byte 255 is reserved in TL bytes/string"), at: start, expected())
        }
        if length > limits.maxBytesLength {
            throw error(.lengthOverLimit(length: length, limit: limits.maxBytesLength), at: start, expected())
        }
        let padding = (4 - (header + length) & 3) & 3
        let available = end - start - header
        guard available >= length + padding else {
            throw error(.lengthBeyondBuffer(length: length, available: available), at: start, expected())
        }
        let dataStart = start + header
        let dataEnd = dataStart + length
        if padding != 0 {
            let paddingIsZero = storage.withUnsafeBytes { raw in
                var accumulator: UInt8 = 0
                for index in dataEnd..<dataEnd + padding { accumulator |= raw[index] }
                return accumulator == 0
            }
            guard paddingIsZero else {
                throw error(.nonZeroPadding, at: start, expected())
            }
        }
        position_ = dataEnd + padding
        return dataStart..<dataEnd
    }

    /// TL `bytes`.
    @inlinable public mutating func readBytes() throws -> [UInt8] {
        let range = try readByteRange("bytes")
        return Array(storage[range])
    }

    /// TL `string`: UTF-8 text. Invalid sequences become U+FFFD (as Telethon does) rather than
    /// failing, because a stray byte in a name must not make a whole update unreadable.
    /// Valid text (nearly all of it) is checked once, by `UTF8Validation`, and copied unchecked;
    /// the standard library's own check of it was 42% of decoding a history of mixed-width text.
    @inlinable public mutating func readString() throws -> String {
        let range = try readByteRange("string")
        let valid = storage.withUnsafeBytes { UTF8Validation.isValid(UnsafeRawBufferPointer(rebasing: $0[range])) }
        if valid { return String(copying: UTF8Span(unchecked: storage.span.extracting(range))) }
        return storage.withUnsafeBytes { raw in
            String(decoding: UnsafeRawBufferPointer(rebasing: raw[range]), as: UTF8.self)
        }
    }

    // MARK: Vectors

    /// Checks a vector's element count against the limit and the bytes that remain.
    @inlinable
    mutating func checkedCount(_ minimumElementSize: Int, at start: Int, _ expected: @autoclosure () -> String) throws -> Int {
        let count = Int(try load(Int32.self, expected()))
        guard count >= 0, count <= limits.maxVectorCount else {
            throw error(.vectorCountOverLimit(count: count, limit: limits.maxVectorCount), at: start, expected())
        }
        guard count * minimumElementSize <= end - position_ else {
            throw error(.vectorCountBeyondBuffer(count: count, available: end - position_), at: start, expected())
        }
        return count
    }

    /// The header of a boxed `Vector t` (constructor and count); returns the count.
    /// `minimumElementSize` is the fewest bytes one element can take, so a count that cannot fit
    /// in the remaining bytes is refused before anything is allocated.
    @inlinable
    public mutating func readVectorHeader(minimumElementSize: Int = 4, expected: @autoclosure () -> String = "Vector") throws -> Int {
        let start = position_
        let id = try load(UInt32.self, expected())
        guard id == TLBuiltinID.vector else {
            throw error(.unknownConstructor(id), at: start, expected())
        }
        return try checkedCount(minimumElementSize, at: start, expected())
    }

    /// The count of a bare `vector t` (no constructor number).
    @inlinable
    public mutating func readBareVectorCount(minimumElementSize: Int = 4, expected: @autoclosure () -> String = "vector") throws -> Int {
        try checkedCount(minimumElementSize, at: position_, expected())
    }

    /// A boxed `Vector t` whose elements `element` reads (bare or boxed, as the schema says).
    @inlinable
    public mutating func readVector<Element>(
        minimumElementSize: Int = 4,
        _ element: (inout TLReader) throws -> Element
    ) throws -> [Element] {
        let start = position_
        let id = try load(UInt32.self, "Vector")
        guard id == TLBuiltinID.vector else {
            if id == TLBuiltinID.gzipPacked {
                return try inflated(at: start, expected: "Vector") { reader in
                    try reader.readVector(minimumElementSize: minimumElementSize, element)
                }
            }
            throw error(.unknownConstructor(id), at: start, "Vector")
        }
        let count = try checkedCount(minimumElementSize, at: start, "Vector")
        var result: [Element] = []
        result.reserveCapacity(count)
        for _ in 0..<count { result.append(try element(&self)) }
        return result
    }

    /// A bare `vector t` (`%Vector t`): a count and the elements, no constructor number.
    @inlinable
    public mutating func readBareVector<Element>(
        minimumElementSize: Int = 4,
        _ element: (inout TLReader) throws -> Element
    ) throws -> [Element] {
        let count = try checkedCount(minimumElementSize, at: position_, "vector")
        var result: [Element] = []
        result.reserveCapacity(count)
        for _ in 0..<count { result.append(try element(&self)) }
        return result
    }

    /// A boxed `Vector<bytes>`.
    @inlinable public mutating func readBytesVector() throws -> [[UInt8]] {
        try readVector { try $0.readBytes() }
    }

    // MARK: Objects

    /// Counts one level of object nesting; pair with `leaveObject()` (the generated code does).
    @inlinable public mutating func enterObject() throws {
        guard depth < limits.maxDepth else {
            throw error(.nestingTooDeep(limit: limits.maxDepth), at: position_, "object")
        }
        depth += 1
    }

    @inlinable public mutating func leaveObject() {
        depth -= 1
    }

    /// What a boxed type does with a constructor number none of its cases has: `gzip_packed`
    /// is inflated and decoded as `T`; anything else is an unknown constructor.
    public mutating func decodeFallback<T: TLDecodable>(_ id: UInt32, as _: T.Type, expected: String) throws -> T {
        guard id == TLBuiltinID.gzipPacked else {
            throw unknownConstructor(id, expected: expected)
        }
        return try inflated(at: position_ - 4, expected: expected) { reader in try T(from: &reader) }
    }

    /// Reads `gzip_packed`'s `packed_data` (the constructor number already read at `start`),
    /// inflates it and runs `body` on a reader over the inflated bytes.
    @usableFromInline
    mutating func inflated<T>(at start: Int, expected: String, _ body: (inout TLReader) throws -> T) throws -> T {
        guard let inflater else {
            throw error(.gzipWithoutInflater, at: start, expected)
        }
        let range = try readByteRange("gzip_packed packed_data")
        let plain: [UInt8]
        do {
            plain = try inflater.inflate(Array(storage[range]), maxOutputCount: limits.maxInflatedLength)
        } catch {
            throw self.error(.inflateFailed(reason: String(describing: error)), at: start, expected)
        }
        guard plain.count <= limits.maxInflatedLength else {
            throw error(.inflateFailed(reason: "inflated to \(plain.count) bytes, over the limit of \(limits.maxInflatedLength)"), at: start, expected)
        }
        var inner = TLReader(plain, limits: limits, inflater: inflater)
        inner.depth = depth
        return try body(&inner)
    }
}
