import Foundation
import MTProtoClient
import MTProtoCrypto

/// Telethon's `StringSession` (version "1"): "1" + URL-safe base64, padded, of
/// `>B{4|16}sH256s`: DC id, the DC's IPv4 or IPv6 address, port, auth key. 353 characters with an
/// IPv4 address, 369 with IPv6. No user id, bot flag or takeout id.
public enum TelethonStringSession {
    static let format = PortableSessionFormat.telethonString
    static let version: Character = "1"
    /// Whole-string lengths: the version character plus the padded base64 of 263 or 275 bytes.
    public static let lengths = [353, 369]

    public static func decode(_ string: String) throws(SessionImportError) -> PortableSession {
        let text = string.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let first = text.first else { throw .wrongLength(format, length: 0, expected: lengths) }
        guard first == version else { throw .unknownStringVersion(format, found: String(first)) }
        let body = text.dropFirst()
        let ipLength: Int
        switch text.count {
        case 353: ipLength = 4
        case 369: ipLength = 16
        default: throw .wrongLength(format, length: text.count, expected: lengths)
        }
        guard let bytes = URLSafeBase64.decode(body), bytes.count == 1 + ipLength + 2 + 256 else { throw .badBase64(format) }
        var reader = BigEndianReader(bytes)
        guard let dcByte = reader.unsigned(1), let ip = reader.take(ipLength), let portValue = reader.unsigned(2),
              let keyBytes = reader.take(256)
        else { throw .badBase64(format) }
        let dc = try SessionFieldRules.dc(Int64(dcByte), format: format, field: "dc")
        let port = try SessionFieldRules.port(Int64(portValue), format: format)
        guard let host = IPLiteral.text(ip) else {
            throw .invalidField(format, field: "address", reason: "its \(ipLength) bytes are no IP address")
        }
        // Telethon treats an all-zero key as "no key" (`if any(key)`).
        let key = try SessionFieldRules.authKey(keyBytes, format: format)
        return PortableSession(dc: dc, authKey: key, address: DCAddress(host: host, port: port, isIPv6: ipLength == 16))
    }

    /// The string Telethon's `StringSession(string)` loads. Needs the DC's IP address (not a host
    /// name); only DC, address, port and key go in.
    public static func encode(_ session: PortableSession) throws(SessionExportError) -> String {
        guard (1...255).contains(session.dc) else {
            throw .outOfRange(format, field: "dc", value: "\(session.dc)", allowed: "1 to 255")
        }
        guard let address = session.address else { throw .noAddress(dc: session.dc, format: format) }
        guard let ip = IPLiteral.bytes(address.host) else { throw .addressNotIPLiteral(host: address.host) }
        guard (1...65535).contains(address.port) else {
            throw .outOfRange(format, field: "port", value: "\(address.port)", allowed: "1 to 65535")
        }
        let packed = [UInt8(session.dc)] + ip + BigEndian.bytes(UInt64(address.port), width: 2) + session.authKey.bytes
        return String(version) + URLSafeBase64.encode(packed, padded: true)
    }
}
