/// What differs between the schemas we generate: the Swift root namespace and the documented
/// exceptions of each schema. Nothing is skipped or accepted silently: every exception is here.
public struct GeneratorOptions: Sendable {
    /// The root namespace enum, e.g. `Api`.
    public var root: String
    /// Combinators whose published number is not the CRC32 of their canonical text, with the
    /// number they must carry (a different number is still an error) and why.
    public var idExceptions: [String: (id: UInt32, reason: String)]
    /// Combinators with fields the schema cannot size (`Object`), parsed by hand elsewhere: their
    /// numbers are verified and emitted as constants, not as types. Name → why.
    public var handParsed: [String: String]
    /// `string` fields that carry arbitrary bytes, not text: typed `[UInt8]` in Swift (the wire
    /// form of `string` and `bytes` is the same). Combinator → field → why.
    public var bytesFields: [String: [String: String]]
    /// How many files the types and the functions are spread over (the compile time of one
    /// huge file grows faster than linearly; ~40 files keep both cores busy).
    public var typeFileCount: Int
    public var functionFileCount: Int
    /// The command that regenerates the output, written into every file's header.
    public var command: String

    public init(root: String, idExceptions: [String: (id: UInt32, reason: String)] = [:], handParsed: [String: String] = [:],
                bytesFields: [String: [String: String]] = [:], typeFileCount: Int = 1, functionFileCount: Int = 1, command: String) {
        self.root = root
        self.idExceptions = idExceptions
        self.handParsed = handParsed
        self.bytesFields = bytesFields
        self.typeFileCount = typeFileCount
        self.functionFileCount = functionFileCount
        self.command = command
    }

    /// `Schema/api.tl` → `Api` in module ParsedSchema.
    public static func api(command: String) -> GeneratorOptions {
        GeneratorOptions(root: "Api", typeFileCount: 28, functionFileCount: 12, command: command)
    }

    /// `Schema/mtproto.tl` → `MT` in module MTProtoSchema.
    public static func mtproto(command: String) -> GeneratorOptions {
        GeneratorOptions(
            root: "MT",
            idExceptions: [
                // Hashed with `bytes` spelled as is, unlike every other combinator of both schemas.
                "ipPortSecret": (0x3798_2646, "its number is the CRC32 of the text with 'bytes' not respelled as 'string'"),
                // The two numbers are those Telegram publishes (and its clients use) for the
                // DNS-delivered simple config; no spelling of the text we tried hashes to them.
                "accessPointRule": (0x4679_b65f, "number published by Telegram; its text does not hash to it"),
                "help.configSimple": (0x5a59_2a6c, "number published by Telegram; its text does not hash to it"),
            ],
            handParsed: [
                "message": "body:Object has no length the schema can give; the MTProto layer frames it by its bytes field",
                "msg_container": "a bare vector of message, which carries Object bodies",
                "msg_copy": "wraps a message (Object body)",
                "rpc_result": "result:Object is typed by the request it answers, which only the session knows",
                "gzip_packed": "stands in for any object; TLReader inflates it wherever a boxed value is expected",
            ],
            bytesFields: [
                // mtproto/service_messages_about_messages: "info is a string that contains exactly
                // one byte of message status for each message from the incoming msg_ids list";
                // statuses such as 0x84 are not UTF-8, so a Swift String would mangle them.
                "msgs_state_info": ["info": "one status byte per requested msg_id, not text"],
                "msgs_all_info": ["info": "one status byte per listed msg_id, not text"],
            ],
            command: command
        )
    }
}
