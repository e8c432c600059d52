/// Decodes boxed objects known only by their constructor number: a raw update stored for later,
/// a dump read by a tool. The counterpart of `TLFunctionDecoder` for types.
///
/// Built from a generated registry (`Api.constructorTypes`, `MT.constructorTypes`). A
/// `gzip_packed` object is inflated (with the reader's inflater) and the object inside decoded.
public struct TLObjectDecoder: Sendable {
    private let types: [UInt32: any TLBoxedType.Type]

    /// `constructorTypes` must not repeat a constructor number.
    public init(_ constructorTypes: [(id: UInt32, type: any TLBoxedType.Type)]) {
        var types: [UInt32: any TLBoxedType.Type] = [:]
        for (id, type) in constructorTypes {
            precondition(types[id] == nil, "two constructors share the number 0x\(hex32(id))")
            types[id] = type
        }
        self.types = types
    }

    /// The boxed type a constructor number belongs to, if registered.
    public func type(for constructorID: UInt32) -> (any TLBoxedType.Type)? {
        types[constructorID]
    }

    /// Reads one boxed object; a number no registered type has is `unknownConstructor`.
    public func decode(from reader: inout TLReader) throws -> any TLBoxedType {
        let id = try reader.peekConstructorID()
        if id == TLBuiltinID.gzipPacked {
            _ = try reader.readConstructorID()
            return try reader.inflated(at: reader.position - 4, expected: "boxed object") { inner in
                let object = try decode(from: &inner)
                guard inner.isAtEnd else { throw inner.invalidValue("\(inner.remaining) bytes follow the object", expected: "end of gzip_packed") }
                return object
            }
        }
        guard let type = types[id] else {
            _ = try reader.readConstructorID()
            throw reader.unknownConstructor(id, expected: "boxed object")
        }
        return try Self.decode(type, from: &reader)
    }

    /// Decodes `bytes`, which must hold exactly one boxed object.
    public func decode(_ bytes: [UInt8], limits: TLReader.Limits = TLReader.Limits(), inflater: (any TLInflater)? = nil) throws -> any TLBoxedType {
        var reader = TLReader(bytes, limits: limits, inflater: inflater)
        let object = try decode(from: &reader)
        guard reader.isAtEnd else { throw reader.invalidValue("\(reader.remaining) bytes follow the object", expected: "end of the boxed object") }
        return object
    }

    private static func decode<Object: TLBoxedType>(_: Object.Type, from reader: inout TLReader) throws -> any TLBoxedType {
        try Object(from: &reader)
    }
}
