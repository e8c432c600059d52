import Testing
import Foundation

/// One line of Tests/Interop/tl-vectors.jsonl: an object Telethon 1.45.0 serialized, with the field
/// tree Tests/Interop/tlschema.py derived from it.
struct TelethonVector: Decodable, CustomTestStringConvertible {
    let label: String
    let schema: String
    let name: String
    let id: String
    let kind: String
    let type: String
    let hex: String
    let tree: FieldTree

    var testDescription: String { "\(label) (\(name)#\(id))" }

    var bytes: [UInt8] {
        get throws { try Hex.decode(hex) }
    }

    static let fileURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Interop/tl-vectors.jsonl")

    static func loadAll() throws -> [TelethonVector] {
        let text = try String(contentsOf: fileURL, encoding: .utf8)
        let decoder = JSONDecoder()
        return try text.split(separator: "\n").map { line in
            try decoder.decode(TelethonVector.self, from: Data(line.utf8))
        }
    }
}

/// The normalized field tree both sides agree on (see Tests/Interop/tlschema.py): objects keyed by
/// TL field names with "_" for the constructor, integers, booleans, strings (text, hex of bytes and
/// int128/int256, `float.hex()` of doubles), arrays and null.
indirect enum FieldTree: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case string(String)
    /// Only on our side: a Swift Double, compared with the `float.hex()` string Python wrote.
    case double(Double)
    case array([FieldTree])
    case object([String: FieldTree])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([FieldTree].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: FieldTree].self))
        }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .int(let value): "\(value)"
        case .string(let value): value.count > 80 ? "\"\(value.prefix(80))…\" (\(value.utf8.count) bytes)" : "\"\(value)\""
        case .double(let value): "\(value)"
        case .array(let items): "[\(items.count) items]"
        case .object(let fields): "{\(fields["_"]?.description ?? "?") \(fields.count - 1) fields}"
        }
    }

    /// The first difference between `self` (decoded by us) and `expected` (Telethon's), as
    /// "path: ours vs Telethon's", or nil when they agree.
    func firstDifference(from expected: FieldTree, path: String = "") -> String? {
        switch (self, expected) {
        case (.double(let ours), .string(let theirs)):
            guard let value = Double(theirs), value.bitPattern == ours.bitPattern else {
                return "\(path): \(ours) vs \(theirs)"
            }
            return nil
        case (.string(let ours), .string(let theirs)):
            // By UTF-8 bytes: Swift's `==` treats canonically equivalent strings (NFC/NFD) as equal.
            return ours.utf8.elementsEqual(theirs.utf8) ? nil : "\(path): \(self) vs \(expected)"
        case (.array(let ours), .array(let theirs)):
            guard ours.count == theirs.count else {
                return "\(path): \(ours.count) items vs \(theirs.count)"
            }
            for (index, (item, expectedItem)) in zip(ours, theirs).enumerated() {
                if let difference = item.firstDifference(from: expectedItem, path: "\(path)[\(index)]") {
                    return difference
                }
            }
            return nil
        case (.object(let ours), .object(let theirs)):
            let name = theirs["_"].map { "\($0)" } ?? "?"
            for key in Set(ours.keys).union(theirs.keys).sorted() {
                let fieldPath = path.isEmpty ? key : "\(path).\(key)"
                guard let item = ours[key] else { return "\(fieldPath): missing in our \(name)" }
                guard let expectedItem = theirs[key] else { return "\(fieldPath): not in Telethon's \(name)" }
                if let difference = item.firstDifference(from: expectedItem, path: fieldPath) {
                    return difference
                }
            }
            return nil
        default:
            return self == expected ? nil : "\(path.isEmpty ? "(root)" : path): \(self) vs \(expected)"
        }
    }
}

enum Hex {
    struct InvalidHex: Error, CustomStringConvertible {
        let text: String
        var description: String { "not an even-length hex string: \(text.prefix(40))" }
    }

    static func decode(_ text: String) throws -> [UInt8] {
        let digits = Array(text.utf8)
        guard digits.count.isMultiple(of: 2) else { throw InvalidHex(text: text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(of: digits[index]), let low = value(of: digits[index + 1]) else {
                throw InvalidHex(text: text)
            }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func value(of digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
