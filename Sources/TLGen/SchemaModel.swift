/// The checked schema, resolved to Swift names and codecs, ready to emit.
public struct SchemaModel: Sendable {
    public struct Field: Sendable {
        public var tlName: String
        /// Swift property name, unescaped.
        public var swiftName: String
        public var kind: Kind

        public enum Kind: Sendable {
            /// `#`: computed from the conditional fields on encode, not stored.
            case flags
            case plain(Codec)
            /// `flags.N?true`: a `Bool` that only sets a bit.
            case flagOnly(flagsField: String, bit: Int)
            case optional(flagsField: String, bit: Int, Codec)
        }
    }

    public struct Combinator: Sendable {
        public var tl: TLDeclaration
        public var id: UInt32
        /// Struct name (last component).
        public var structName: String
        /// Full Swift path of the struct.
        public var swiftPath: String
        /// Enum case name (constructors only), unescaped.
        public var caseName: String
        public var fields: [Field]
        /// Result codec (functions only).
        public var result: Codec?
        public var typeParameters: [String]
    }

    public struct BoxedType: Sendable {
        public var tlName: String
        public var swiftPath: String
        public var constructors: [Combinator]
    }

    public var options: GeneratorOptions
    public var types: [BoxedType]
    public var functions: [Combinator]
    /// Hand-parsed combinators: verified, emitted as constants only.
    public var handParsed: [TLDeclaration]
    /// TL namespaces of types and of functions.
    public var typeNamespaces: [String]
    public var functionNamespaces: [String]
    public var layer: Int?
}

/// How a TL type is read and written, and its Swift spelling.
public indirect enum Codec: Sendable, Equatable {
    case int32, int64, double, string, bytes, int128, int256, bool
    /// A boxed type (an enum) or a type variable's value: `init(from:)` / `encode(to:)`.
    case boxed(String)
    /// A constructor used as a bare type: `init(bareFrom:)` / `encodeBare(to:)`.
    case bareConstructor(String)
    /// A type variable bound to a function (`!X`).
    case typeVariable(String)
    case vector(Codec, boxed: Bool)

    public var swiftType: String {
        switch self {
        case .int32: return "Swift.Int32"
        case .int64: return "Swift.Int64"
        case .double: return "Swift.Double"
        case .string: return "Swift.String"
        case .bytes: return "[Swift.UInt8]"
        case .int128: return "TLInt128"
        case .int256: return "TLInt256"
        case .bool: return "Swift.Bool"
        case let .boxed(path), let .bareConstructor(path), let .typeVariable(path): return path
        case let .vector(element, _): return "[\(element.swiftType)]"
        }
    }

    /// Whether `Swift type (from:)`/`encode(to:)` do the right thing through the runtime's conformances.
    var usesConformance: Bool {
        switch self {
        case .int32, .int64, .double, .string, .int128, .int256, .bool, .boxed, .typeVariable: return true
        case .bytes, .bareConstructor: return false
        case let .vector(element, boxed): return boxed && element.usesConformance
        }
    }

    func decode(_ reader: String) -> String {
        switch self {
        case .int32: return "try \(reader).readInt32()"
        case .int64: return "try \(reader).readInt64()"
        case .double: return "try \(reader).readDouble()"
        case .string: return "try \(reader).readString()"
        case .bytes: return "try \(reader).readBytes()"
        case .int128: return "try \(reader).readInt128()"
        case .int256: return "try \(reader).readInt256()"
        case .bool: return "try \(reader).readBool()"
        case let .boxed(path), let .typeVariable(path): return "try \(path)(from: &\(reader))"
        case let .bareConstructor(path): return "try \(path)(bareFrom: &\(reader))"
        case let .vector(element, boxed):
            if boxed && element == .bytes { return "try \(reader).readBytesVector()" }
            if usesConformance { return "try \(swiftType)(from: &\(reader))" }
            let method = boxed ? "readVector" : "readBareVector"
            return "try \(reader).\(method) { \(element.decode("$0")) }"
        }
    }

    func encode(_ value: String, _ writer: String) -> String {
        switch self {
        case .int32: return "\(writer).writeInt32(\(value))"
        case .int64: return "\(writer).writeInt64(\(value))"
        case .double: return "\(writer).writeDouble(\(value))"
        case .string: return "\(writer).writeString(\(value))"
        case .bytes: return "\(writer).writeBytes(\(value))"
        case .int128: return "\(writer).writeInt128(\(value))"
        case .int256: return "\(writer).writeInt256(\(value))"
        case .bool: return "\(writer).writeBool(\(value))"
        case .boxed, .typeVariable: return "\(value).encode(to: &\(writer))"
        case .bareConstructor: return "\(value).encodeBare(to: &\(writer))"
        case let .vector(element, boxed):
            if boxed && element == .bytes { return "\(writer).writeBytesVector(\(value))" }
            if usesConformance { return "\(value).encode(to: &\(writer))" }
            let method = boxed ? "writeVector" : "writeBareVector"
            return "\(writer).\(method)(\(value)) { \(element.encode("$1", "$0")) }"
        }
    }

    /// A number or a Bool: a value with no reference inside.
    var holdsNoReference: Bool {
        switch self {
        case .int32, .int64, .double, .int128, .int256, .bool: return true
        case .string, .bytes, .boxed, .bareConstructor, .typeVariable, .vector: return false
        }
    }

    /// One reference to storage holding no TL object: a string, bytes, or a vector of numbers,
    /// strings or bytes.
    var isLeafReference: Bool {
        switch self {
        case .string, .bytes: return true
        case let .vector(element, _): return element.holdsNoReference || element == .string || element == .bytes
        default: return false
        }
    }

    /// Nesting of closures the codec needs: nested `$0` closures would shadow each other.
    var closureDepth: Int {
        switch self {
        case let .vector(element, boxed):
            if boxed && element == .bytes { return 0 }
            return usesConformance ? 0 : 1 + element.closureDepth
        default: return 0
        }
    }
}

extension SchemaModel {
    /// Primitive TL types the runtime reads itself.
    static let primitives: [String: Codec] = [
        "int": .int32, "long": .int64, "double": .double, "string": .string, "bytes": .bytes,
        "int128": .int128, "int256": .int256, "Bool": .bool,
    ]

    /// Built-in types whose constructors the runtime owns; a schema declaring them is not emitted.
    static let builtinTypes: Set<String> = ["Bool", "True", "Vector", "Null", "Error"]

    /// Checks `schema` (every number against its CRC32, every type reference) and resolves it.
    public init(schema: ParsedSchema, fileName: String, options: GeneratorOptions, layer: Int? = nil) throws {
        func fail(_ combinator: TLDeclaration, _ message: String) -> TLSchemaError {
            TLSchemaError(file: fileName, line: combinator.line, message: "\(combinator.name): \(message)")
        }

        // 1. Numbers.
        var seenIDs: [UInt32: String] = [:]
        for combinator in schema.combinators {
            let computed = combinator.computedID
            if let exception = options.idExceptions[combinator.name] {
                guard combinator.declaredID == exception.id else {
                    throw fail(combinator, "expected the documented exception number #\(hex(exception.id)), found #\(combinator.declaredID.map(hex) ?? "none")")
                }
            } else if let declared = combinator.declaredID, declared != computed {
                throw fail(combinator, "constructor number #\(hex(declared)) does not match CRC32 #\(hex(computed)) of '\(combinator.canonicalText)'")
            }
            if let other = seenIDs[combinator.id] {
                throw fail(combinator, "number #\(hex(combinator.id)) is also used by \(other)")
            }
            seenIDs[combinator.id] = combinator.name
        }
        for name in options.idExceptions.keys where !schema.combinators.contains(where: { $0.name == name }) {
            throw TLSchemaError(file: fileName, line: 0, message: "the documented number exception '\(name)' is not in the schema; remove it from GeneratorOptions")
        }

        // 2. Partition.
        var handParsed: [TLDeclaration] = []
        var constructorsByType: [String: [TLDeclaration]] = [:]
        var constructorsByName: [String: TLDeclaration] = [:]
        var functions: [TLDeclaration] = []
        for combinator in schema.combinators {
            if options.handParsed[combinator.name] != nil {
                handParsed.append(combinator)
                continue
            }
            switch combinator.kind {
            case .function:
                functions.append(combinator)
            case .constructor:
                guard case let .name(typeName) = combinator.result, combinator.typeParameters.isEmpty else {
                    throw fail(combinator, "a constructor's result must be a plain type name, not '\(combinator.result)'")
                }
                if Self.builtinTypes.contains(typeName) || Self.primitives[typeName] != nil {
                    throw fail(combinator, "declares the built-in type \(typeName), which the TL runtime implements; comment it out in the schema")
                }
                constructorsByType[typeName, default: []].append(combinator)
                constructorsByName[combinator.name] = combinator
            }
        }
        for name in options.handParsed.keys where !handParsed.contains(where: { $0.name == name }) {
            throw TLSchemaError(file: fileName, line: 0, message: "the hand-parsed combinator '\(name)' is not in the schema; remove it from GeneratorOptions")
        }

        for (name, fieldNames) in options.bytesFields {
            guard let combinator = schema.combinators.first(where: { $0.name == name }) else {
                throw TLSchemaError(file: fileName, line: 0, message: "the bytes-field exception '\(name)' is not in the schema; remove it from GeneratorOptions")
            }
            for fieldName in fieldNames.keys where !combinator.fields.contains(where: { $0.name == fieldName }) {
                throw fail(combinator, "has no field \(fieldName), listed in GeneratorOptions.bytesFields")
            }
        }

        let root = options.root
        func typePath(_ tlType: String) -> String {
            var components = tlType.split(separator: ".").map(String.init)
            let last = SwiftNaming.typeName(components.removeLast())
            return ([root] + components + [last]).joined(separator: ".")
        }
        func constructorPath(_ combinator: TLDeclaration) -> String {
            guard case let .name(typeName) = combinator.result else { return "" }
            return typePath(typeName) + "." + SwiftNaming.upperCamel(combinator.localName)
        }

        func codec(_ type: TLTypeExpression, in combinator: TLDeclaration, elementOfBareVector: Bool = false) throws -> Codec {
            switch type {
            case let .name(name):
                if let primitive = Self.primitives[name] { return primitive }
                if combinator.typeParameters.contains(name) {
                    throw fail(combinator, "type variable \(name) may only be used as '!\(name)' or as the result")
                }
                if name == "Object" {
                    throw fail(combinator, "has an Object field, which the schema cannot size; list it in GeneratorOptions.handParsed")
                }
                if constructorsByType[name] != nil { return .boxed(typePath(name)) }
                if let constructor = constructorsByName[name] { return .bareConstructor(constructorPath(constructor)) }
                if let hand = handParsed.first(where: { $0.name == name || $0.result == .name(name) }) {
                    throw fail(combinator, "refers to \(name), which is hand-parsed (\(hand.name)); list \(combinator.name) in GeneratorOptions.handParsed too")
                }
                throw fail(combinator, "refers to the unknown type '\(name)'")
            case let .generic(name, arguments):
                guard arguments.count == 1, name == "Vector" || name == "vector" else {
                    throw fail(combinator, "only Vector<t> and vector<t> are supported generics, not '\(type)'")
                }
                let element = try codec(arguments[0], in: combinator)
                return .vector(element, boxed: name == "Vector")
            case let .bare(inner):
                guard case let .name(name) = inner, let constructors = constructorsByType[name] else {
                    throw fail(combinator, "'%' applies to a boxed type name, not '\(inner)'")
                }
                guard constructors.count == 1 else {
                    throw fail(combinator, "'%\(name)' needs exactly one constructor, \(name) has \(constructors.count)")
                }
                return .bareConstructor(constructorPath(constructors[0]))
            case let .bang(name):
                guard combinator.kind == .function, combinator.typeParameters.contains(name) else {
                    throw fail(combinator, "'!\(name)' is only allowed in a function with {\(name):Type}")
                }
                return .typeVariable(name)
            }
        }

        func fields(of combinator: TLDeclaration) throws -> [Field] {
            var result: [Field] = []
            var swiftNames: Set<String> = []
            for field in combinator.fields {
                let swiftName = SwiftNaming.fieldName(field.name)
                let kind: Field.Kind
                switch field.type {
                case .flags:
                    kind = .flags
                case let .plain(type):
                    if type == .name("true") { throw fail(combinator, "field \(field.name) is an unconditional 'true'") }
                    if options.bytesFields[combinator.name]?[field.name] != nil {
                        guard type == .name("string") else {
                            throw fail(combinator, "field \(field.name) is listed in GeneratorOptions.bytesFields but is not a plain string")
                        }
                        kind = .plain(.bytes)
                    } else {
                        kind = .plain(try codec(type, in: combinator))
                    }
                case let .conditional(flagsField, bit, type):
                    if type == .name("true") {
                        kind = .flagOnly(flagsField: flagsField, bit: bit)
                    } else {
                        kind = .optional(flagsField: flagsField, bit: bit, try codec(type, in: combinator))
                    }
                }
                if case .flags = kind {} else {
                    guard swiftNames.insert(swiftName).inserted else {
                        throw fail(combinator, "two fields map to the Swift name \(swiftName)")
                    }
                }
                if case let .plain(codec) = kind, codec.closureDepth > 1 { throw fail(combinator, "vector nesting too deep to emit") }
                if case let .optional(_, _, codec) = kind, codec.closureDepth > 1 { throw fail(combinator, "vector nesting too deep to emit") }
                result.append(Field(tlName: field.name, swiftName: swiftName, kind: kind))
            }
            // Flag words are locals named after the TL field in the generated code.
            for field in result {
                if case .flags = field.kind { continue }
                if combinator.fields.contains(where: { $0.type == .flags && $0.name == field.swiftName }) {
                    throw fail(combinator, "field \(field.tlName) collides with a flags word")
                }
            }
            return result
        }

        // 3. Types.
        var types: [BoxedType] = []
        for (typeName, constructors) in constructorsByType.sorted(by: { $0.key < $1.key }) {
            var seenCases: Set<String> = []
            var resolved: [Combinator] = []
            for constructor in constructors {
                let caseName = SwiftNaming.lowerCamel(constructor.localName)
                guard seenCases.insert(caseName).inserted else {
                    throw fail(constructor, "another constructor of \(typeName) maps to the case \(caseName)")
                }
                resolved.append(Combinator(
                    tl: constructor, id: constructor.id, structName: SwiftNaming.upperCamel(constructor.localName),
                    swiftPath: constructorPath(constructor), caseName: caseName, fields: try fields(of: constructor),
                    result: nil, typeParameters: []))
            }
            types.append(BoxedType(tlName: typeName, swiftPath: typePath(typeName), constructors: resolved))
        }

        // 4. Functions.
        var resolvedFunctions: [Combinator] = []
        var functionPaths: Set<String> = []
        for function in functions.sorted(by: { $0.name < $1.name }) {
            let namespace = function.namespace.map { ".\($0)" } ?? ""
            let structName = SwiftNaming.upperCamel(function.localName)
            let path = "\(root).functions\(namespace).\(structName)"
            guard functionPaths.insert(path).inserted else { throw fail(function, "another function maps to \(path)") }
            let result: Codec
            if case let .name(name) = function.result, function.typeParameters.contains(name) {
                result = .boxed("\(name).Result")
            } else {
                result = try codec(function.result, in: function)
                if case .bareConstructor = result { throw fail(function, "a function cannot return a bare type") }
            }
            if function.typeParameters.count > 1 { throw fail(function, "only one type parameter is supported") }
            resolvedFunctions.append(Combinator(
                tl: function, id: function.id, structName: structName, swiftPath: path, caseName: "",
                fields: try fields(of: function), result: result, typeParameters: function.typeParameters))
        }

        self.options = options
        self.types = types
        self.functions = resolvedFunctions
        self.handParsed = handParsed
        self.typeNamespaces = Array(Set(constructorsByType.keys.compactMap { name -> String? in
            guard let dot = name.lastIndex(of: ".") else { return nil }
            return String(name[..<dot])
        })).sorted()
        self.functionNamespaces = Array(Set(functions.compactMap(\.namespace))).sorted()
        self.layer = layer
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
