import Foundation
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// Telethon string sessions without Telethon (the library's own strings are in
/// PythonSessionInteropTests): the layout byte by byte, and every kind of bad input as a typed error.
@Suite struct TelethonStringSessionTests {
    static let key = TestKeys.key(seed: 11)

    /// Builds a string the way Telethon's `StringSession.save` does: "1" + padded URL-safe base64.
    static func string(dc: UInt8, ip: [UInt8], port: UInt16, key: [UInt8]) -> String {
        let packed = [dc] + ip + [UInt8(port >> 8), UInt8(port & 0xFF)] + key
        let base64 = Data(packed).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        return "1" + base64
    }

    @Test func decodesTheLayoutByteForByte() throws {
        let key = try #require(Self.key)
        let v4 = Self.string(dc: 2, ip: [149, 154, 167, 51], port: 443, key: key.bytes)
        #expect(v4.count == 353)
        let session = try TelethonStringSession.decode(v4)
        #expect(session.dc == 2)
        #expect(session.address == DCAddress(host: "149.154.167.51", port: 443))
        #expect(session.authKey == key)
        #expect(session.userID == nil && session.isBot == nil && session.apiID == nil)

        let ipv6: [UInt8] = [0x20, 0x01, 0x06, 0x7C, 0x04, 0xE8, 0xF0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0x0A]
        let v6 = Self.string(dc: 2, ip: ipv6, port: 5222, key: key.bytes)
        #expect(v6.count == 369)
        let session6 = try TelethonStringSession.decode(v6)
        #expect(session6.address == DCAddress(host: "2001:67c:4e8:f002::a", port: 5222, isIPv6: true))
    }

    @Test func encodesWhatItDecodes() throws {
        let key = try #require(Self.key)
        for address in [DCAddress(host: "91.108.56.130", port: 443), DCAddress(host: "2001:b28:f23f:f005::a", port: 80, isIPv6: true)] {
            let session = PortableSession(dc: 5, authKey: key, address: address)
            let text = try TelethonStringSession.encode(session)
            #expect(text == Self.string(dc: 5, ip: try #require(Self.ipBytes(address.host)), port: UInt16(address.port), key: key.bytes))
            #expect(try TelethonStringSession.decode(text) == session)
        }
    }

    static func ipBytes(_ host: String) -> [UInt8]? {
        host.contains(":")
            ? [0x20, 0x01, 0x0B, 0x28, 0xF2, 0x3F, 0xF0, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x0A]
            : host.split(separator: ".").compactMap { UInt8($0) }
    }

    @Test func pastedWhitespaceIsIgnored() throws {
        let key = try #require(Self.key)
        let text = Self.string(dc: 1, ip: [149, 154, 175, 53], port: 443, key: key.bytes)
        #expect(try TelethonStringSession.decode("  \(text)\n") == TelethonStringSession.decode(text))
    }

    @Test func badInputIsATypedError() throws {
        let key = try #require(Self.key)
        let good = Self.string(dc: 2, ip: [149, 154, 167, 51], port: 443, key: key.bytes)
        #expect(throws: SessionImportError.wrongLength(.telethonString, length: 0, expected: [353, 369])) {
            try TelethonStringSession.decode("")
        }
        #expect(throws: SessionImportError.wrongLength(.telethonString, length: 352, expected: [353, 369])) {
            try TelethonStringSession.decode(String(good.dropLast()))
        }
        #expect(throws: SessionImportError.unknownStringVersion(.telethonString, found: "2")) {
            try TelethonStringSession.decode("2" + good.dropFirst())
        }
        // A character outside both base64 alphabets, at the start, the middle and the end.
        for position in [1, 176, 351] {
            var characters = Array(good)
            characters[position] = "*"
            #expect(throws: SessionImportError.badBase64(.telethonString)) { try TelethonStringSession.decode(String(characters)) }
        }
        #expect(throws: SessionImportError.noAuthKey(.telethonString)) {
            try TelethonStringSession.decode(Self.string(dc: 2, ip: [149, 154, 167, 51], port: 443, key: [UInt8](repeating: 0, count: 256)))
        }
        #expect(throws: SessionImportError.invalidField(.telethonString, field: "dc", reason: "DC 0 does not exist; DC ids are positive")) {
            try TelethonStringSession.decode(Self.string(dc: 0, ip: [149, 154, 167, 51], port: 443, key: key.bytes))
        }
        #expect(throws: SessionImportError.invalidField(.telethonString, field: "port", reason: "0 is not a TCP port (1 to 65535)")) {
            try TelethonStringSession.decode(Self.string(dc: 2, ip: [149, 154, 167, 51], port: 0, key: key.bytes))
        }
    }

    @Test func exportNeedsAnIPAddress() throws {
        let key = try #require(Self.key)
        #expect(throws: SessionExportError.noAddress(dc: 2, format: .telethonString)) {
            try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key))
        }
        #expect(throws: SessionExportError.addressNotIPLiteral(host: "venus.web.telegram.org")) {
            try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "venus.web.telegram.org", port: 443)))
        }
        #expect(throws: SessionExportError.outOfRange(.telethonString, field: "dc", value: "300", allowed: "1 to 255")) {
            try TelethonStringSession.encode(PortableSession(dc: 300, authKey: key, address: DCAddress(host: "1.2.3.4", port: 443)))
        }
    }

    /// A string session is a password: no error may repeat it, and no description shows the key.
    @Test func errorsNeverShowTheStringOrTheKey() throws {
        let key = try #require(Self.key)
        let good = Self.string(dc: 2, ip: [149, 154, 167, 51], port: 443, key: key.bytes)
        var badCharacter = Array(good)
        badCharacter[100] = "*"
        let damaged = [String(good.dropLast()), "2" + good.dropFirst(), String(badCharacter)]
        for text in damaged {
            do {
                _ = try TelethonStringSession.decode(text)
                Issue.record("a damaged string decoded")
            } catch {
                let description = error.description
                #expect(!description.contains(String(text.dropFirst().prefix(16))))
                #expect(!description.isEmpty)
            }
        }
        let session = try TelethonStringSession.decode(good)
        #expect(!session.description.contains(Hex.encode(Array(key.bytes.prefix(8)))))
    }
}
