import OffThePool
import Testing
import TL
import TLGen
import TLSchema
import MTProtoSchema
import SeededRandom

/// Property: for every constructor and function of both schemas, random valid bytes made from
/// the schema text decode with the generated code, re-encode to the same bytes, decode again to
/// an equal value, and every strict prefix of them is refused with a TLDecodingError.
@Suite struct RoundTripTests {
    static let iterations = 24
    /// gzip_packed and friends are not generated (see MT.HandParsed).
    static let handParsed: Set<String> = ["message", "msg_container", "msg_copy", "rpc_result", "gzip_packed"]

    struct Outcome {
        var checked = 0
        var failures: [String] = []
    }

    private static func roundTrip<T: TLDecodable & TLEncodable & Equatable>(_: T.Type, _ bytes: [UInt8], prefixCut: Int) -> String? {
        do {
            var reader = TLReader(bytes)
            let value = try T(from: &reader)
            guard reader.isAtEnd else { return "left \(reader.remaining) bytes unread" }
            let again = value.serialized(capacity: bytes.count)
            guard again == bytes else { return "re-encoded \(again.count) bytes differ from the \(bytes.count) decoded" }
            let decodedAgain = try T(serialized: again)
            guard decodedAgain == value else { return "decoding the re-encoded bytes gave a different value" }
        } catch {
            return "decoding failed: \(error)"
        }
        // Every strict prefix must be refused (never a crash, never a success).
        var truncated = TLReader(Array(bytes.prefix(prefixCut)))
        do {
            _ = try T(from: &truncated)
            return "a \(prefixCut)-byte prefix of \(bytes.count) bytes decoded"
        } catch is TLDecodingError {
            return nil
        } catch {
            return "a prefix failed with a foreign error \(error)"
        }
    }

    private static func run(schemaName: String, handParsed: Set<String> = [], boxedTypes: [any TLBoxedType.Type], functionTypes: [any TLFunction.Type], seed: UInt64) throws -> Outcome {
        let file = try SchemaFile(schemaName)
        let swiftTypes = Dictionary(uniqueKeysWithValues: boxedTypes.map { ($0.tlTypeName, $0) })
        let swiftFunctions = Dictionary(uniqueKeysWithValues: functionTypes.map { ($0.tlName, $0) })
        var generator = SchemaDrivenBytes(file: file, seed: seed)
        var outcome = Outcome()

        for constructor in file.schema.constructors where !handParsed.contains(constructor.name) {
            guard case let .name(typeName) = constructor.result, let swiftType = swiftTypes[typeName] else {
                outcome.failures.append("\(constructor.name): no generated type for \(constructor.result)")
                continue
            }
            for iteration in 0..<Self.iterations {
                var writer = TLWriter()
                writer.writeConstructorID(constructor.id)
                generator.fields(of: constructor, depth: iteration % 2 == 0 ? 0 : 1, into: &writer)
                let bytes = writer.bytes
                let cut = Int(generator.random.next() % UInt64(bytes.count))
                if let failure = roundTrip(swiftType, bytes, prefixCut: cut) {
                    outcome.failures.append("\(constructor.name) (line \(constructor.line), iteration \(iteration), seed \(seed)): \(failure)")
                    break
                }
                outcome.checked += 1
            }
        }
        for function in file.schema.functions where function.typeParameters.isEmpty {
            guard let swiftType = swiftFunctions[function.name] else {
                outcome.failures.append("\(function.name): no generated function")
                continue
            }
            for iteration in 0..<Self.iterations {
                var writer = TLWriter()
                writer.writeConstructorID(function.id)
                generator.fields(of: function, depth: 0, into: &writer)
                let bytes = writer.bytes
                let cut = Int(generator.random.next() % UInt64(bytes.count))
                if let failure = roundTrip(swiftType, bytes, prefixCut: cut) {
                    outcome.failures.append("\(function.name) (line \(function.line), iteration \(iteration), seed \(seed)): \(failure)")
                    break
                }
                outcome.checked += 1
            }
        }
        return outcome
    }

    @Test func everyMTProtoCombinatorRoundTrips() throws {
        let outcome = try Self.run(schemaName: "mtproto.tl", handParsed: Self.handParsed, boxedTypes: MT.boxedTypes, functionTypes: MT.functionTypes, seed: 0x6d74_7072)
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(20).joined(separator: "\n"))")
        // 57 combinators, 5 hand-parsed.
        #expect(outcome.checked == (57 - 5) * Self.iterations)
    }

    /// Off the cooperative pool: 2-3 s of CPU in one piece in a debug build, which held one of the
    /// pool's two threads (2-core CI) from every other test meanwhile.
    @Test func everyAPICombinatorRoundTrips() async throws {
        let outcome = try await offThePool { try Self.run(schemaName: "api.tl", boxedTypes: Api.boxedTypes, functionTypes: Api.functionTypes, seed: 0x0229) }
        #expect(outcome.failures.isEmpty, "\(outcome.failures.prefix(20).joined(separator: "\n"))")
        // 1652 constructors and 813 functions, of which the 11 generic wrappers (invokeWith*, initConnection) are checked by fixtures.
        #expect(outcome.checked == (1652 + 813 - 11) * Self.iterations)
    }

    @Test func registriesCoverEveryTypeAndFunction() throws {
        let api = try SchemaFile("api.tl")
        #expect(Set(Api.boxedTypes.map { $0.tlTypeName }) == Set(api.constructorsByType.keys))
        #expect(Set(Api.functionTypes.map { $0.tlName }) == Set(api.schema.functions.filter(\.typeParameters.isEmpty).map(\.name)))
        let mtproto = try SchemaFile("mtproto.tl")
        let generatedTypes = Set(mtproto.schema.constructors.filter { !Self.handParsed.contains($0.name) }.compactMap { constructor -> String? in
            guard case let .name(type) = constructor.result else { return nil }
            return type
        })
        #expect(Set(MT.boxedTypes.map { $0.tlTypeName }) == generatedTypes)
    }

    /// Random garbage after a valid constructor number never traps: it decodes or throws TLDecodingError.
    @Test func garbageAfterAValidNumberIsRefusedWithoutTrapping() throws {
        let file = try SchemaFile("api.tl")
        var random = SplitMix64(seed: 0x6761_7262)
        var refused = 0
        for type in Api.boxedTypes {
            for constructor in file.constructorsByType[type.tlTypeName] ?? [] {
                for _ in 0..<4 {
                    var bytes = withUnsafeBytes(of: constructor.id.littleEndian) { Array($0) }
                    let length = Int(random.next() % 64)
                    bytes += (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                    if !decodes(type, bytes) { refused += 1 }
                }
            }
        }
        #expect(refused > 0)
    }

    private func decodes<T: TLBoxedType>(_: T.Type, _ bytes: [UInt8]) -> Bool {
        var reader = TLReader(bytes)
        do {
            _ = try T(from: &reader)
            return true
        } catch is TLDecodingError {
            return false
        } catch {
            Issue.record("foreign error \(error)")
            return false
        }
    }
}
