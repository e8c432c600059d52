/// A value that has a TL serialization.
///
/// `encode(to:)` writes the form the value takes where the schema names its type: boxed
/// (constructor number first) for objects, `Bool` and `Vector`; the plain value for `int`,
/// `long`, `double`, `int128`, `int256` and `string`.
public protocol TLEncodable: Sendable {
    func encode(to writer: inout TLWriter)
}

/// A value that can be read back from its TL serialization (the form `encode(to:)` writes).
public protocol TLDecodable: Sendable {
    init(from reader: inout TLReader) throws
    /// The fewest bytes one value takes on the wire, used to refuse vector counts that cannot fit.
    static var tlMinimumSize: Int { get }
}

extension TLDecodable {
    public static var tlMinimumSize: Int { 4 }
}

extension TLEncodable {
    /// The serialization as a fresh byte array.
    public func serialized(capacity: Int = 256) -> [UInt8] {
        var writer = TLWriter(capacity: capacity)
        encode(to: &writer)
        return writer.takeBytes()
    }
}

extension TLDecodable {
    /// Decodes one value from `bytes`, which must hold exactly that value.
    public init(serialized bytes: [UInt8], limits: TLReader.Limits = TLReader.Limits(), inflater: (any TLInflater)? = nil) throws {
        var reader = TLReader(bytes, limits: limits, inflater: inflater)
        self = try Self(from: &reader)
        guard reader.isAtEnd else {
            throw reader.invalidValue("\(reader.remaining) bytes follow the value", expected: "end of \(Self.self)")
        }
    }
}

/// One TL combinator (a constructor or a function): its number, name and bare serialization.
/// Boxed encoding and decoding come for free: the number, then the bare fields.
public protocol TLCombinator: TLEncodable, TLDecodable, Equatable {
    /// The 32-bit combinator number, checked by the generator against the CRC32 of its definition.
    static var constructorID: UInt32 { get }
    /// The name as written in the schema, e.g. `"messages.messages"`.
    static var tlName: String { get }
    /// Writes the fields only (the bare form `%T`).
    func encodeBare(to writer: inout TLWriter)
    /// Reads the fields only; the constructor number was read (or is implied) by the caller.
    init(bareFrom reader: inout TLReader) throws
}

extension TLCombinator {
    /// Inlinable so each boxed type's `encode(to:)` specializes it: called through the protocol,
    /// every payload was copied field by field (a retain per field) before being written.
    @inlinable public func encode(to writer: inout TLWriter) {
        writer.writeConstructorID(Self.constructorID)
        encodeBare(to: &writer)
    }

    /// Reads the constructor number, which must be this combinator's, then the fields.
    public init(from reader: inout TLReader) throws {
        try reader.enterObject()
        defer { reader.leaveObject() }
        let id = try reader.readConstructorID()
        if id == Self.constructorID {
            self = try Self(bareFrom: &reader)
        } else {
            self = try reader.decodeFallback(id, as: Self.self, expected: Self.tlName)
        }
    }
}

/// A constructor generated as a struct: one whose fields are numbers and flags with at most one
/// string, bytes or vector of those (`peerUser`, `messageEntityTextUrl`, `inputPeerSelf`). As a class
/// each decoded one was a heap object, made and freed again: on a history page, two of a message's
/// four allocations were its peers. Copying one retains at most once, as copying a reference does.
/// Its `==` comes from here, for the reason `TLCombinatorObject` gives.
public protocol TLCombinatorValue: TLCombinator {
    static func haveEqualFields(_ lhs: Self, _ rhs: Self) -> Bool
}

extension TLCombinatorValue {
    @inlinable public static func == (lhs: Self, rhs: Self) -> Bool {
        haveEqualFields(lhs, rhs)
    }
}

/// A constructor generated as a class: equal when it is the same object or its fields are equal.
///
/// The generated classes implement `haveEqualFields` and get `==` from here rather than each
/// declaring its own: a schema's worth of `static func ==` is an overload set that every `==` in the
/// module and its importers must be checked against, which made a debug build of the API schema
/// seven times slower.
public protocol TLCombinatorObject: TLCombinator, AnyObject {
    static func haveEqualFields(_ lhs: Self, _ rhs: Self) -> Bool
}

extension TLCombinatorObject {
    @inlinable public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs === rhs || haveEqualFields(lhs, rhs)
    }
}

/// A boxed TL type: one Swift enum with one case per constructor.
public protocol TLBoxedType: TLEncodable, TLDecodable, Equatable {
    /// The type's name as written in the schema, e.g. `"messages.Messages"`.
    static var tlTypeName: String { get }
}

/// An RPC function: its serialization is the request, `Result` is what the peer answers.
public protocol TLFunction: TLCombinator {
    associatedtype Result: TLDecodable
}
