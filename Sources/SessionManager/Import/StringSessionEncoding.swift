import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The URL-safe base64 both libraries use (RFC 4648 §5). Telethon keeps the padding, Pyrogram
/// strips it. Decoding also takes the standard alphabet, as Python's `urlsafe_b64decode` does, and
/// ignores surrounding whitespace (strings are pasted); anything else is refused rather than
/// skipped the way Python skips it, so a damaged string is never half-read.
enum URLSafeBase64 {
    static func decode(_ text: Substring) -> [UInt8]? {
        var standard = String(text.map { character -> Character in
            switch character {
            case "-": "+"
            case "_": "/"
            default: character
            }
        })
        let remainder = standard.utf8.count % 4
        if remainder == 1 { return nil }
        if remainder != 0 { standard += String(repeating: "=", count: 4 - remainder) }
        return Data(base64Encoded: standard).map(Array.init)
    }

    static func encode(_ bytes: [UInt8], padded: Bool) -> String {
        var text = Data(bytes).base64EncodedString()
        if !padded { while text.hasSuffix("=") { text.removeLast() } }
        return String(text.map { character -> Character in
            switch character {
            case "+": "-"
            case "/": "_"
            default: character
            }
        })
    }
}

/// IP address text to bytes and back, with the C library's parser and printer (the same rules as
/// Python's `ipaddress` for the addresses Telegram uses: dotted quads, compressed IPv6).
enum IPLiteral {
    /// 4 bytes for an IPv4 literal, 16 for IPv6, nil for a host name or garbage.
    static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    static func text(_ bytes: [UInt8]) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let printed = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        guard printed != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Big-endian reads from a byte array whose length was checked by the caller; each read still
/// checks its bounds and returns nil past the end, so a wrong length check can never trap.
struct BigEndianReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, bytes.count - offset >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func unsigned(_ width: Int) -> UInt64? {
        guard let raw = take(width) else { return nil }
        return raw.reduce(0) { $0 << 8 | UInt64($1) }
    }
}

enum BigEndian {
    static func bytes(_ value: UInt64, width: Int) -> [UInt8] {
        (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}
