/// How TL names become Swift names. The rules are mechanical so a name can be predicted from
/// the schema (the interop tests compare fields with Telethon's `to_dict()` by these rules):
/// - TL field `snake_case` → `lowerCamelCase`: split at `_`, uppercase the first letter of
///   every part after the first (`new_nonce_hash1` → `newNonceHash1`, `g_a` → `gA`); `self`
///   becomes `isSelf` (Telethon's `is_self`), Swift keywords are escaped with backticks.
/// - Constructor `inputPeerUser` → case `inputPeerUser`, struct `InputPeerUser` (first letter
///   uppercased, `_` removed the same way: `p_q_inner_data` → `PQInnerData`).
/// - Type `messages.Messages` → `Root.messages.Messages` (the TL namespace kept lowercase as a
///   Swift namespace enum, so it can never collide with a type such as `Updates`).
/// - Function `messages.getHistory` → `Root.functions.messages.GetHistory`.
public enum SwiftNaming {
    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "fileprivate", "func", "import", "init", "inout",
        "internal", "let", "open", "operator", "private", "precedencegroup", "protocol", "public", "rethrows",
        "static", "struct", "subscript", "typealias", "var", "break", "case", "catch", "continue", "default",
        "defer", "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "throw", "switch",
        "where", "while", "as", "Any", "false", "is", "nil", "super", "self", "Self", "throws", "true", "try",
        "await", "async", "some", "any", "consume", "copy", "borrowing", "consuming", "_",
    ]

    /// Type names that cannot be nested member names even with backticks (`T.Type` is a metatype).
    static let reservedTypeNames: Set<String> = ["Type", "Protocol", "Self", "Any", "Sendable"]

    static func parts(_ name: String) -> [String] {
        name.split(separator: "_").map(String.init)
    }

    static func capitalized(_ text: String) -> String {
        guard let first = text.first else { return text }
        return first.uppercased() + text.dropFirst()
    }

    /// `new_nonce_hash1` → `newNonceHash1` (unescaped).
    public static func lowerCamel(_ name: String) -> String {
        let pieces = parts(name)
        guard let first = pieces.first else { return name }
        return first + pieces.dropFirst().map(capitalized).joined()
    }

    /// `p_q_inner_data` → `PQInnerData`.
    public static func upperCamel(_ name: String) -> String {
        let result = parts(name).map(capitalized).joined()
        return reservedTypeNames.contains(result) ? result + "_" : result
    }

    /// The Swift property name of a TL field, unescaped.
    public static func fieldName(_ tlName: String) -> String {
        tlName == "self" ? "isSelf" : lowerCamel(tlName)
    }

    /// `name`, in backticks when it is a Swift keyword.
    public static func escaped(_ name: String) -> String {
        keywords.contains(name) ? "`\(name)`" : name
    }

    /// A type name as written in the schema, made safe as a nested Swift type name.
    public static func typeName(_ tlLocalName: String) -> String {
        reservedTypeNames.contains(tlLocalName) ? tlLocalName + "_" : tlLocalName
    }
}
