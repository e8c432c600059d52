import MTProtoSchema
import TL
import TLSchema

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes fuzzer input as a boxed object of the generated schemas, picking the decoder by the
/// constructor number in the first four bytes (as a peer's message would), so the Telethon
/// vectors are useful seeds as they are. A number no constructor has still reaches a decoder
/// (chosen by its value) and exercises its refusal path.
enum SchemaFuzz {
    /// What decodes and re-encodes one value of a type, without the caller naming the type.
    typealias Decoder = @Sendable (inout TLReader) throws -> any Checkable

    static func run(_ input: [UInt8], limits: TLReader.Limits) {
        guard input.count >= 4 else { return }
        let id = UInt32(input[0]) | UInt32(input[1]) << 8 | UInt32(input[2]) << 16 | UInt32(input[3]) << 24
        let decoders = index.byConstructor[id] ?? [index.all[Int(id % UInt32(index.all.count))]]
        for decode in decoders {
            var reader = TLReader(input, limits: limits, inflater: IdentityInflater())
            guard let value = try? decode(&reader) else { continue }
            value.checkRoundTrip()
        }
    }

    struct Index: Sendable {
        var byConstructor: [UInt32: [Decoder]] = [:]
        var all: [Decoder] = []
    }

    static let index: Index = {
        var index = Index()
        let typesByName = Dictionary(
            (Api.boxedTypes.map { ("api " + $0.tlTypeName, $0) }) + (MT.boxedTypes.map { ("mtproto " + $0.tlTypeName, $0) }),
            uniquingKeysWith: { first, _ in first }
        )
        for (schema, path) in [("api", "Schema/api.tl"), ("mtproto", "Schema/mtproto.tl")] {
            for (id, result) in constructors(inSchemaAt: path) {
                guard let type = typesByName["\(schema) \(result)"] else { continue }
                index.byConstructor[id, default: []].append(decoder(for: type))
            }
        }
        for function in Api.functionTypes + MT.functionTypes {
            index.byConstructor[function.constructorID, default: []].append(decoder(for: function))
        }
        // Generic functions are not in `functionTypes`: the wrapper every client sends first.
        typealias Hello = Api.functions.InvokeWithLayer<Api.functions.InitConnection<Api.functions.help.GetConfig>>
        index.byConstructor[Hello.constructorID, default: []].append(decoder(for: Hello.self))
        index.all = Api.boxedTypes.map { decoder(for: $0) } + MT.boxedTypes.map { decoder(for: $0) }
        precondition(index.byConstructor.count > 2000, "the schema index is incomplete: \(index.byConstructor.count) numbers")
        return index
    }()

    static func decoder<Value: TLDecodable & TLEncodable & Equatable>(for _: Value.Type) -> Decoder {
        { reader in Checked(value: try Value(from: &reader)) }
    }

    /// (constructor number, result type) of every type constructor in a schema file, read at start-up
    /// because the generated code lists boxed types, not the numbers of their constructors.
    static func constructors(inSchemaAt relativePath: String) -> [(UInt32, String)] {
        // #filePath is <root>/Fuzz/Sources/TLDecoderFuzz/SchemaFuzz.swift.
        let root = String(#filePath).split(separator: "/", omittingEmptySubsequences: false).dropLast(4).joined(separator: "/")
        guard let file = fopen("\(root)/\(relativePath)", "r") else {
            preconditionFailure("cannot open \(root)/\(relativePath)")
        }
        defer { fclose(file) }
        var result: [(UInt32, String)] = []
        var inFunctions = false
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        while getline(&line, &capacity, file) > 0 {
            guard let line else { break }
            let text = String(cString: line).trimmingWhitespace
            if text.hasPrefix("---functions---") { inFunctions = true }
            if text.hasPrefix("---types---") { inFunctions = false }
            guard !inFunctions, !text.hasPrefix("//"), let hash = text.firstIndex(of: "#"),
                  let equals = text.lastIndex(of: "="), let semicolon = text.lastIndex(of: ";"), equals < semicolon
            else { continue }
            let digits = text[text.index(after: hash)...].prefix { $0.isHexDigit }
            guard let id = UInt32(digits, radix: 16) else { continue }
            let type = text[text.index(after: equals)..<semicolon].trimmingWhitespace
            result.append((id, type))
        }
        free(line)
        return result
    }
}

/// A decoded value that can check its own round trip.
protocol Checkable {
    func checkRoundTrip()
}

struct Checked<Value: TLDecodable & TLEncodable & Equatable>: Checkable {
    let value: Value

    /// The encoding of a decoded value must decode (under default limits: our own output is trusted,
    /// and may legitimately be longer than the input, e.g. U+FFFD for invalid UTF-8) to an equal
    /// value whose encoding is the same bytes.
    func checkRoundTrip() {
        let bytes = value.serialized()
        precondition(bytes.count % 4 == 0, "\(Value.self) encoded to \(bytes.count) bytes, not a multiple of 4")
        let again: Value
        do {
            again = try Value(serialized: bytes)
        } catch {
            preconditionFailure("\(Value.self) cannot decode its own encoding: \(error)")
        }
        precondition(again.serialized() == bytes, "\(Value.self) re-encodes differently after a round trip")
        // NaN != NaN, so a value holding a NaN double is checked by its bytes alone.
        precondition(again == value || containsNaN(value), "\(Value.self) decodes its own encoding to a different value")
    }
}

func containsNaN(_ value: Any) -> Bool {
    if let double = value as? Double { return double.isNaN }
    return Mirror(reflecting: value).children.contains { containsNaN($0.value) }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
