import Foundation
import MTProtoClient
import MTProtoCrypto

/// Typed reads of one row of a foreign session table: every value is checked for its storage class
/// and range, and a failure names the format, the column and what was found (never a key byte).
struct SessionRowReader {
    let format: PortableSessionFormat
    let tableName: String
    let table: SessionFileTable
    let row: [SessionFileValue]

    /// The column's value; a missing column is an error.
    func value(_ column: String) throws(SessionImportError) -> SessionFileValue {
        guard let value = table.value(column, in: row) else {
            throw .missingColumn(format, table: tableName, column: column)
        }
        return value
    }

    /// The column's value, or nil when the column does not exist (older schema versions).
    func optionalColumn(_ column: String) -> SessionFileValue? {
        table.value(column, in: row)
    }

    func integer(_ column: String, _ value: SessionFileValue?) throws(SessionImportError) -> Int64? {
        switch value {
        case nil, .null?: return nil
        case .integer(let integer)?: return integer
        case let other?: throw .invalidField(format, field: column, reason: "it holds \(other.kind) where an integer is stored")
        }
    }

    func requiredInteger(_ column: String) throws(SessionImportError) -> Int64 {
        guard let integer = try integer(column, try value(column)) else {
            throw .invalidField(format, field: column, reason: "it is NULL")
        }
        return integer
    }

    /// Python stores booleans as 0 and 1 and reads any non-zero integer as true.
    func bool(_ column: String, _ value: SessionFileValue?) throws(SessionImportError) -> Bool? {
        try integer(column, value).map { $0 != 0 }
    }

    func text(_ column: String, _ value: SessionFileValue?) throws(SessionImportError) -> String? {
        switch value {
        case nil, .null?: return nil
        case .text(let text)?: return text
        case let other?: throw .invalidField(format, field: column, reason: "it holds \(other.kind) where text is stored")
        }
    }

    /// A key column: NULL and empty mean "no key" (Telethon writes b'' then).
    func blob(_ column: String, _ value: SessionFileValue?) throws(SessionImportError) -> [UInt8]? {
        switch value {
        case nil, .null?: return nil
        case .blob(let bytes)?: return bytes.isEmpty ? nil : bytes
        case let other?: throw .invalidField(format, field: column, reason: "it holds \(other.kind) where the key's bytes are stored")
        }
    }
}

enum SessionFieldRules {
    /// Telethon keeps the minimal big-endian form of g^ab, so about one key in 256 is stored 255
    /// bytes long (one in 65536, 254...). Keys down to 248 bytes are left-padded; anything shorter
    /// has odds below 2^-64 of being a real key and is damage.
    static let shortestStoredKey = 248

    static func authKey(_ bytes: [UInt8], format: PortableSessionFormat) throws(SessionImportError) -> AuthKey {
        guard bytes.contains(where: { $0 != 0 }) else { throw .noAuthKey(format) }
        guard (shortestStoredKey...256).contains(bytes.count) else { throw .wrongKeySize(format, length: bytes.count) }
        do {
            return try AuthKey(minimalBigEndian: bytes)
        } catch {
            throw .wrongKeySize(format, length: bytes.count)
        }
    }

    static func dc(_ value: Int64, format: PortableSessionFormat, field: String = "dc_id") throws(SessionImportError) -> Int {
        guard (1...Int64(Int32.max)).contains(value) else {
            throw .invalidField(format, field: field, reason: "DC \(value) does not exist; DC ids are positive")
        }
        return Int(value)
    }

    static func port(_ value: Int64, format: PortableSessionFormat) throws(SessionImportError) -> Int {
        guard (1...65535).contains(value) else {
            throw .invalidField(format, field: "port", reason: "\(value) is not a TCP port (1 to 65535)")
        }
        return Int(value)
    }

    static func userID(_ value: Int64, format: PortableSessionFormat, field: String) throws(SessionImportError) -> Int64 {
        guard value > 0 else { throw .invalidField(format, field: field, reason: "user ids are positive, found \(value)") }
        return value
    }

    static func address(host: String, port: Int, format: PortableSessionFormat) throws(SessionImportError) -> DCAddress {
        let trimmed = host.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .invalidField(format, field: "server_address", reason: "it is empty") }
        return DCAddress(host: trimmed, port: port, isIPv6: IPLiteral.bytes(trimmed)?.count == 16)
    }
}
