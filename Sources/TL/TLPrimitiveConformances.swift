// The primitives conform so that `Vector<int>`, `Vector<Bool>` and function results such as
// `Vector<long>` decode through the same generic paths as objects.

extension Int32: TLEncodable, TLDecodable {
    @inlinable public func encode(to writer: inout TLWriter) { writer.writeInt32(self) }
    @inlinable public init(from reader: inout TLReader) throws { self = try reader.readInt32() }
}

extension Int64: TLEncodable, TLDecodable {
    @inlinable public func encode(to writer: inout TLWriter) { writer.writeInt64(self) }
    @inlinable public init(from reader: inout TLReader) throws { self = try reader.readInt64() }
    public static var tlMinimumSize: Int { 8 }
}

extension Double: TLEncodable, TLDecodable {
    @inlinable public func encode(to writer: inout TLWriter) { writer.writeDouble(self) }
    @inlinable public init(from reader: inout TLReader) throws { self = try reader.readDouble() }
    public static var tlMinimumSize: Int { 8 }
}

extension String: TLEncodable, TLDecodable {
    @inlinable public func encode(to writer: inout TLWriter) { writer.writeString(self) }
    @inlinable public init(from reader: inout TLReader) throws { self = try reader.readString() }
}

extension Bool: TLEncodable, TLDecodable {
    @inlinable public func encode(to writer: inout TLWriter) { writer.writeBool(self) }
    @inlinable public init(from reader: inout TLReader) throws { self = try reader.readBool() }
}

extension TLInt128: TLEncodable, TLDecodable {
    @inlinable public func encode(to writer: inout TLWriter) { writer.writeInt128(self) }
    @inlinable public init(from reader: inout TLReader) throws { self = try reader.readInt128() }
    public static var tlMinimumSize: Int { 16 }
}

extension TLInt256: TLEncodable, TLDecodable {
    @inlinable public func encode(to writer: inout TLWriter) { writer.writeInt256(self) }
    @inlinable public init(from reader: inout TLReader) throws { self = try reader.readInt256() }
    public static var tlMinimumSize: Int { 32 }
}

/// A Swift array is a boxed TL `Vector t` of its elements' own forms. (`Vector<bytes>` has no
/// element type to dispatch on; it uses `TLReader.readBytesVector()` / `TLWriter.writeBytesVector`.)
extension Array: TLEncodable where Element: TLEncodable {
    @inlinable public func encode(to writer: inout TLWriter) {
        writer.writeVector(self) { element, value in value.encode(to: &element) }
    }
}

extension Array: TLDecodable where Element: TLDecodable {
    @inlinable public init(from reader: inout TLReader) throws {
        self = try reader.readVector(minimumElementSize: Element.tlMinimumSize) { try Element(from: &$0) }
    }

    public static var tlMinimumSize: Int { 8 }
}
