import TL

/// Turns a decoded Swift value into the normalized field tree of Tests/Interop/tlschema.py, so it
/// can be compared with Telethon's.
///
/// Field names are matched against the tree Telethon's side wrote (`expected`), not converted
/// blindly: TL names such as `srp_B` or `M1`, and names Swift reserves (`self`, `static`,
/// `default`), do not survive a camelCase round trip, but they do match when case, underscores
/// and backticks are ignored.
enum FieldTreeReflection {
    /// Field names that are not TL data but the generated code may keep: the flag words.
    static let flagWords: Set<String> = ["flags", "flags2"]

    static func tree(of value: Any, expected: FieldTree?) -> FieldTree {
        switch value {
        case let value as Bool: return .bool(value)
        case let value as Int32: return .int(Int64(value))
        case let value as Int64: return .int(value)
        case let value as Int: return .int(Int64(value))
        case let value as UInt32: return .int(Int64(Int32(bitPattern: value)))
        case let value as Double: return .double(value)
        case let value as String: return .string(value)
        case let value as TLInt128: return .string(Hex.encode(value.bytes))
        case let value as TLInt256: return .string(Hex.encode(value.bytes))
        default: break
        }
        // An exact type check: `as? [UInt8]` would also accept an empty `[Int64]`.
        if type(of: value) == [UInt8].self, let bytes = value as? [UInt8] {
            return .string(Hex.encode(bytes))
        }
        if let combinator = value as? any TLCombinator {
            return object(combinator, expected: expected)
        }
        let mirror = Mirror(reflecting: value)
        switch mirror.displayStyle {
        case .optional:
            guard let wrapped = mirror.children.first?.value else { return .null }
            return tree(of: wrapped, expected: expected)
        case .collection:
            var expectedItems: [FieldTree] = []
            if case .array(let items)? = expected { expectedItems = items }
            return .array(mirror.children.enumerated().map { index, child in
                tree(of: child.value, expected: index < expectedItems.count ? expectedItems[index] : nil)
            })
        case .enum:
            // A boxed type: the case's payload is the constructor's struct.
            guard let payload = mirror.children.first?.value else {
                return .string("<enum case \(value) without payload>")
            }
            return tree(of: payload, expected: expected)
        default:
            return .string("<unsupported \(type(of: value))>")
        }
    }

    static func object(_ combinator: any TLCombinator, expected: FieldTree?) -> FieldTree {
        var expectedFields: [String: FieldTree] = [:]
        if case .object(let fields)? = expected { expectedFields = fields }
        let namesByKey = Dictionary(expectedFields.keys.map { (matchKey($0), $0) }, uniquingKeysWith: { first, _ in first })
        var fields: [String: FieldTree] = ["_": .string(type(of: combinator).tlName)]
        for child in Mirror(reflecting: combinator).children {
            guard let label = child.label else { continue }
            let key = matchKey(label)
            if flagWords.contains(key) && namesByKey[key] == nil { continue }
            let name = namesByKey[key] ?? namesByKey[key.hasPrefix("is") ? String(key.dropFirst(2)) : key] ?? label
            fields[name] = tree(of: child.value, expected: expectedFields[name])
        }
        return .object(fields)
    }

    /// `peerID`, `peerId`, `peer_id` and `` `static` `` all give `peerid` / `static`.
    static func matchKey(_ name: String) -> String {
        String(name.lowercased().filter { $0 != "_" && $0 != "`" })
    }
}
