/// Decodes requests known only by their constructor number, as a server receives them.
///
/// Built from a generated registry (`Api.functionTypes`, `MT.functionTypes`). The generic
/// wrappers (`invokeWithLayer`, `initConnection`, ...) are not in those registries because
/// their type depends on the wrapped call: read their own fields by hand, then decode the
/// wrapped call with this decoder.
public struct TLFunctionDecoder: Sendable {
    private let types: [UInt32: any TLFunction.Type]

    /// `functionTypes` must not repeat a constructor number.
    public init(_ functionTypes: [any TLFunction.Type]) {
        var types: [UInt32: any TLFunction.Type] = [:]
        for type in functionTypes {
            precondition(types[type.constructorID] == nil, "two function types share constructor 0x\(hex32(type.constructorID))")
            types[type.constructorID] = type
        }
        self.types = types
    }

    /// The function type with this constructor number, if registered.
    public func type(for constructorID: UInt32) -> (any TLFunction.Type)? {
        types[constructorID]
    }

    /// Reads one boxed function call; an unregistered number is `unknownConstructor`.
    public func decode(from reader: inout TLReader) throws -> any TLFunction {
        let id = try reader.peekConstructorID()
        guard let type = types[id] else {
            _ = try reader.readConstructorID()
            throw reader.unknownConstructor(id, expected: "function")
        }
        return try Self.decode(type, from: &reader)
    }

    private static func decode<Function: TLFunction>(_: Function.Type, from reader: inout TLReader) throws -> any TLFunction {
        try Function(from: &reader)
    }
}
