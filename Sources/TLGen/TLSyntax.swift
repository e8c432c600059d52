/// A type expression as written in a TL schema.
public indirect enum TLTypeExpression: Sendable, Equatable, CustomStringConvertible {
    /// A bare name: a primitive (`int`, `bytes`), a boxed type (`InputPeer`, `messages.Messages`),
    /// a constructor used as a bare type (`future_salt`), a type variable (`X`) or `true`.
    case name(String)
    /// `Vector<t>` (boxed) or `vector<t>` (bare), as written.
    case generic(String, [TLTypeExpression])
    /// `%T`: the bare form of a single-constructor type.
    case bare(TLTypeExpression)
    /// `!X`: a whole function call whose result type is the type variable `X`.
    case bang(String)

    /// The text as it would be written in the schema.
    public var description: String {
        switch self {
        case let .name(name): return name
        case let .generic(name, arguments): return "\(name)<\(arguments.map(\.description).joined(separator: ","))>"
        case let .bare(inner): return "%\(inner)"
        case let .bang(name): return "!\(name)"
        }
    }
}

/// The type of one field of a combinator.
public enum TLFieldType: Sendable, Equatable {
    /// `#`: a 32-bit word of flags other fields refer to.
    case flags
    /// An unconditional field.
    case plain(TLTypeExpression)
    /// `flags.N?T` (or `flags2.N?T`): present only when bit `bit` of the flags field is set.
    case conditional(flagsField: String, bit: Int, type: TLTypeExpression)
}

public struct TLField: Sendable, Equatable {
    public var name: String
    public var type: TLFieldType

    public init(name: String, type: TLFieldType) {
        self.name = name
        self.type = type
    }
}

/// One combinator declaration: a constructor (in a `---types---` section) or a function.
public struct TLDeclaration: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case constructor
        case function
    }

    /// Full name with namespace, e.g. `messages.getHistory`.
    public var name: String
    /// The number written after `#`, if any.
    public var declaredID: UInt32?
    /// Type variables declared as `{X:Type}`, in order.
    public var typeParameters: [String]
    public var fields: [TLField]
    public var result: TLTypeExpression
    public var kind: Kind
    /// 1-based line of the declaration in its file.
    public var line: Int

    public init(name: String, declaredID: UInt32?, typeParameters: [String], fields: [TLField], result: TLTypeExpression, kind: Kind, line: Int) {
        self.name = name
        self.declaredID = declaredID
        self.typeParameters = typeParameters
        self.fields = fields
        self.result = result
        self.kind = kind
        self.line = line
    }

    /// The namespace before the last `.`, or `nil`.
    public var namespace: String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        return String(name[..<dot])
    }

    /// The name after the namespace.
    public var localName: String {
        guard let dot = name.lastIndex(of: ".") else { return name }
        return String(name[name.index(after: dot)...])
    }

    /// The constructor number: the declared one, else the CRC32 of the canonical text.
    public var id: UInt32 { declaredID ?? computedID }

    /// CRC32 of `canonicalText`: what the number must be unless the schema says otherwise.
    public var computedID: UInt32 { CRC32.checksum(Array(canonicalText.utf8)) }

    /// The declaration as the CRC32 is computed over it (the spec pages TL and
    /// TL-abstract-types): without the `#number`; `<...>` written as space-separated application
    /// (`Vector<long>` becomes `Vector long`, parentheses and braces removed); and, following
    /// the convention every published Telegram schema's numbers were computed with, `bytes`
    /// spelled `string` (the two share one serialization) and the flag-only `true` fields
    /// (`x:flags.N?true`, which occupy no bytes) left out.
    public var canonicalText: String {
        var parts = [name]
        for parameter in typeParameters { parts.append("\(parameter):Type") }
        for field in fields {
            switch field.type {
            case .flags:
                parts.append("\(field.name):#")
            case let .plain(type):
                parts.append("\(field.name):\(Self.canonical(type, topLevel: true))")
            case let .conditional(flagsField, bit, type):
                if type == .name("true") { continue }
                parts.append("\(field.name):\(flagsField).\(bit)?\(Self.canonical(type, topLevel: true))")
            }
        }
        parts.append("=")
        parts.append(Self.canonical(result, topLevel: true))
        return parts.joined(separator: " ")
    }

    private static func canonical(_ type: TLTypeExpression, topLevel: Bool) -> String {
        switch type {
        case let .name(name):
            // Only a field's own type is respelled: `Vector<bytes>` keeps `bytes` in every
            // published number.
            return topLevel && name == "bytes" ? "string" : name
        case let .generic(name, arguments):
            return ([name] + arguments.map { canonical($0, topLevel: false) }).joined(separator: " ")
        case let .bare(inner):
            return "%" + canonical(inner, topLevel: false)
        case let .bang(name):
            return "!" + name
        }
    }
}

/// A parsed schema file.
public struct ParsedSchema: Sendable, Equatable {
    public var combinators: [TLDeclaration]

    public init(combinators: [TLDeclaration]) {
        self.combinators = combinators
    }

    public var constructors: [TLDeclaration] { combinators.filter { $0.kind == .constructor } }
    public var functions: [TLDeclaration] { combinators.filter { $0.kind == .function } }
}
