import Foundation
import TL
import TLGen
import SeededRandom

/// A schema file, parsed by TLGen's parser, located from this source file.
struct SchemaFile {
    let schema: ParsedSchema
    let constructorsByType: [String: [TLDeclaration]]
    let constructorsByName: [String: TLDeclaration]

    init(_ name: String, filePath: String = #filePath) throws {
        let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.appendingPathComponent("Schema").appendingPathComponent(name)
        let text = try String(contentsOf: url, encoding: .utf8)
        schema = try TLParser(fileName: "Schema/\(name)").parse(text)
        var byType: [String: [TLDeclaration]] = [:]
        var byName: [String: TLDeclaration] = [:]
        for constructor in schema.constructors {
            if case let .name(type) = constructor.result { byType[type, default: []].append(constructor) }
            byName[constructor.name] = constructor
        }
        constructorsByType = byType
        constructorsByName = byName
    }
}

/// Produces random valid serializations straight from the schema text, independently of the
/// generated Swift: flags set at random (so optional fields come and go), vectors of 0 to 3
/// elements, bytes and strings at the lengths where the TL framing changes.
struct SchemaDrivenBytes {
    let file: SchemaFile
    var random: SplitMix64
    /// Below this depth choices are random; from it on the generator heads for the leaves.
    let depthLimit: Int
    /// For each type, a constructor that leads to the leaves fastest (all flags off, vectors empty).
    private let leafConstructor: [String: TLDeclaration]

    static let interestingLengths = [0, 1, 2, 3, 4, 5, 7, 8, 253, 254, 255, 256, 1000]

    init(file: SchemaFile, seed: UInt64, depthLimit: Int = 3) {
        self.file = file
        self.random = SplitMix64(seed: seed)
        self.depthLimit = depthLimit
        // Rank types by how many levels of required boxed fields they need before the leaves.
        var rank: [String: Int] = [:]
        var leaf: [String: TLDeclaration] = [:]
        var changed = true
        while changed {
            changed = false
            for (type, constructors) in file.constructorsByType where rank[type] == nil {
                for constructor in constructors {
                    var worst = 0
                    var resolvable = true
                    for field in constructor.fields {
                        guard case let .plain(fieldType) = field.type else { continue }
                        guard let needed = Self.rank(of: fieldType, ranks: rank, file: file) else { resolvable = false; break }
                        worst = max(worst, needed)
                    }
                    if resolvable, rank[type].map({ worst + 1 < $0 }) ?? true {
                        rank[type] = worst + 1
                        leaf[type] = constructor
                        changed = true
                    }
                }
            }
        }
        leafConstructor = leaf
    }

    private static func rank(of type: TLTypeExpression, ranks: [String: Int], file: SchemaFile) -> Int? {
        switch type {
        case let .name(name):
            if file.constructorsByType[name] != nil { return ranks[name] }
            if let constructor = file.constructorsByName[name], case let .name(owner) = constructor.result { return ranks[owner] }
            return 0
        case .generic: return 0  // empty at the limit
        case let .bare(inner): return rank(of: inner, ranks: ranks, file: file)
        case .bang: return nil
        }
    }

    // MARK: Values

    mutating func boxed(_ typeName: String, depth: Int, into writer: inout TLWriter) {
        guard let constructors = file.constructorsByType[typeName], !constructors.isEmpty else {
            preconditionFailure("schema type \(typeName) has no constructors")
        }
        let constructor = depth >= depthLimit
            ? (leafConstructor[typeName] ?? constructors[0])
            : constructors[Int(random.next() % UInt64(constructors.count))]
        writer.writeConstructorID(constructor.id)
        fields(of: constructor, depth: depth, into: &writer)
    }

    /// The fields of `combinator` (its bare form).
    mutating func fields(of combinator: TLDeclaration, depth: Int, into writer: inout TLWriter) {
        // Decide every flag bit first: fields sharing a bit are present together.
        var flagValues: [String: UInt32] = [:]
        for field in combinator.fields {
            guard case let .conditional(flagsField, bit, _) = field.type else { continue }
            if depth < depthLimit, random.next() & 1 == 1 {
                flagValues[flagsField, default: 0] |= 1 << UInt32(bit)
            }
        }
        for field in combinator.fields {
            switch field.type {
            case .flags:
                writer.writeUInt32(flagValues[field.name] ?? 0)
            case let .plain(type):
                value(type, depth: depth, into: &writer)
            case let .conditional(flagsField, bit, type):
                guard (flagValues[flagsField] ?? 0) & (1 << UInt32(bit)) != 0 else { continue }
                if type != .name("true") { value(type, depth: depth, into: &writer) }
            }
        }
    }

    mutating func value(_ type: TLTypeExpression, depth: Int, into writer: inout TLWriter) {
        switch type {
        case let .name(name):
            switch name {
            case "int": writer.writeUInt32(UInt32(truncatingIfNeeded: random.next()))
            case "long": writer.writeUInt64(random.next())
            case "double":
                var number = Double(bitPattern: random.next())
                if number.isNaN { number = 0.5 }  // NaN != NaN would defeat the equality check
                writer.writeDouble(number)
            case "int128": writer.writeUInt64(random.next()); writer.writeUInt64(random.next())
            case "int256": for _ in 0..<4 { writer.writeUInt64(random.next()) }
            case "Bool": writer.writeBool(random.next() & 1 == 1)
            case "bytes": writer.writeBytes(randomBytes(count: length()))
            case "string": writer.writeString(randomText(byteCount: length()))
            default:
                if file.constructorsByType[name] != nil {
                    boxed(name, depth: depth + 1, into: &writer)
                } else if let constructor = file.constructorsByName[name] {
                    fields(of: constructor, depth: depth + 1, into: &writer)
                } else {
                    preconditionFailure("schema refers to unknown type \(name)")
                }
            }
        case let .generic(name, arguments):
            let count = depth >= depthLimit ? 0 : Int(random.next() % 4)
            if name == "Vector" { writer.writeConstructorID(TLBuiltinID.vector) }
            writer.writeBareVectorCount(count)
            for _ in 0..<count { value(arguments[0], depth: depth, into: &writer) }
        case let .bare(inner):
            guard case let .name(typeName) = inner, let constructor = file.constructorsByType[typeName]?.first else {
                preconditionFailure("unsupported bare type \(inner)")
            }
            fields(of: constructor, depth: depth + 1, into: &writer)
        case .bang:
            preconditionFailure("generic wrappers are covered by fixtures, not by the random generator")
        }
    }

    private mutating func length() -> Int {
        if random.next() % 3 == 0 {
            return Self.interestingLengths[Int(random.next() % UInt64(Self.interestingLengths.count))]
        }
        return Int(random.next() % 24)
    }

    private mutating func randomBytes(count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// Valid UTF-8 of exactly `byteCount` bytes, with 1-, 2-, 3- and 4-byte characters.
    private mutating func randomText(byteCount: Int) -> String {
        let samples: [String] = ["a", "Z", "0", " ", "é", "ж", "世", "€", "👋"]
        var text = ""
        var remaining = byteCount
        while remaining > 0 {
            let candidate = samples[Int(random.next() % UInt64(samples.count))]
            let size = candidate.utf8.count
            if size <= remaining {
                text += candidate
                remaining -= size
            }
        }
        return text
    }
}
