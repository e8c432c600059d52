import MTProtoSchema
import TL
import TLSchema
import Testing

/// Byte-exact cross-check with Telethon 1.45.0: every object Tests/Interop/make_tl_vectors.py made
/// Telethon serialize must decode with our generated types to the same field tree, and re-encode to
/// the very same bytes. Regenerate the vectors with `scripts/check-tl-vectors --write`.
@Suite struct TelethonVectorsTests {
    static let vectors: [TelethonVector] = (try? TelethonVector.loadAll()) ?? []

    @Test func theVectorsFileIsThereAndVaried() throws {
        let vectors = try TelethonVector.loadAll()
        #expect(vectors.count >= 200, "Tests/Interop/tl-vectors.jsonl holds \(vectors.count) vectors")
        #expect(Set(vectors.map(\.name)).count >= 50, "too few distinct constructors")
        #expect(vectors.contains { $0.schema == "mtproto" } && vectors.contains { $0.kind == "function" })
    }

    @Test(arguments: vectors)
    func decodesToTelethonsFieldsAndReencodesToItsBytes(_ vector: TelethonVector) throws {
        let bytes = try vector.bytes
        let decoded = try Self.decode(vector, bytes)

        let ours = FieldTreeReflection.tree(of: decoded, expected: vector.tree)
        if let difference = ours.firstDifference(from: vector.tree) {
            Issue.record("\(vector.label): field \(difference)")
        }

        let reencoded = decoded.serialized(capacity: bytes.count)
        if reencoded != bytes {
            let common = min(reencoded.count, bytes.count)
            let offset = (0..<common).first { reencoded[$0] != bytes[$0] } ?? common
            Issue.record("""
                \(vector.label): re-encoding differs from Telethon's bytes at offset \(offset) \
                (ours \(reencoded.count) bytes, Telethon's \(bytes.count))
                """)
        }
    }

    /// The comparison itself must see a difference, or every vector would pass vacuously.
    @Test func aChangedFieldIsReportedWithItsPath() throws {
        let vector = try #require(Self.vectors.first { $0.label == "message-all-rich" })
        let decoded = try Self.decode(vector, try vector.bytes)
        guard case .object(var fields) = vector.tree, case .int(let id)? = fields["id"] else {
            Issue.record("message-all-rich has no integer id")
            return
        }
        fields["id"] = .int(id &+ 1)
        let difference = FieldTreeReflection.tree(of: decoded, expected: .object(fields)).firstDifference(from: .object(fields))
        #expect(difference?.hasPrefix("id:") == true, "got \(difference ?? "no difference")")
        fields["id"] = .int(id)
        fields["peer_id"] = .object(["_": .string("peerUser"), "user_id": .int(-42)])
        let nested = FieldTreeReflection.tree(of: decoded, expected: .object(fields)).firstDifference(from: .object(fields))
        #expect(nested?.hasPrefix("peer_id.") == true, "got \(nested ?? "no difference")")
    }

    // MARK: Decoding by TL name

    struct UnknownVectorType: Error, CustomStringConvertible {
        let vector: TelethonVector
        var description: String {
            "\(vector.label): no generated \(vector.kind) for \(vector.name) (type \(vector.type)) in schema \(vector.schema)"
        }
    }

    static func decode(_ vector: TelethonVector, _ bytes: [UInt8]) throws -> any TLEncodable {
        if vector.kind == "function" {
            if vector.name == "invokeWithLayer" { return try decodeInvokeWithLayer(vector, bytes) }
            let functions: [any TLFunction.Type] = vector.schema == "mtproto" ? MT.functionTypes : Api.functionTypes
            guard let function = functions.first(where: { $0.tlName == vector.name }) else {
                throw UnknownVectorType(vector: vector)
            }
            return try decodeValue(function, bytes)
        }
        let types: [any TLBoxedType.Type] = vector.schema == "mtproto" ? MT.boxedTypes : Api.boxedTypes
        guard let type = types.first(where: { $0.tlTypeName == vector.type }) else {
            throw UnknownVectorType(vector: vector)
        }
        return try decodeValue(type, bytes)
    }

    static func decodeValue<Value: TLDecodable & TLEncodable>(_: Value.Type, _ bytes: [UInt8]) throws -> any TLEncodable {
        try Value(serialized: bytes)
    }

    /// `invokeWithLayer` and `initConnection` are generic over the query they wrap, so the query's
    /// type must be named statically: these are the ones the vectors wrap.
    static func decodeInvokeWithLayer(_ vector: TelethonVector, _ bytes: [UInt8]) throws -> any TLEncodable {
        guard case .object(let outer) = vector.tree, case .object(let initConnection)? = outer["query"],
              case .object(let query)? = initConnection["query"], case .string(let name)? = query["_"]
        else { throw UnknownVectorType(vector: vector) }
        typealias Wrapped<Query: TLFunction> = Api.functions.InvokeWithLayer<Api.functions.InitConnection<Query>>
        switch name {
        case Api.functions.help.GetConfig.tlName: return try Wrapped<Api.functions.help.GetConfig>(serialized: bytes)
        case Api.functions.help.GetNearestDc.tlName: return try Wrapped<Api.functions.help.GetNearestDc>(serialized: bytes)
        case Api.functions.updates.GetState.tlName: return try Wrapped<Api.functions.updates.GetState>(serialized: bytes)
        case Api.functions.messages.GetHistory.tlName: return try Wrapped<Api.functions.messages.GetHistory>(serialized: bytes)
        default: throw UnknownVectorType(vector: vector)
        }
    }
}
