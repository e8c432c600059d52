import Foundation
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// Pyrogram session strings without Pyrogram (the library's own strings are in
/// PythonSessionInteropTests): the three layouts byte by byte, and bad input as typed errors.
@Suite struct PyrogramStringSessionTests {
    static let key = TestKeys.key(seed: 21)

    static func bigEndian(_ value: UInt64, _ width: Int) -> [UInt8] {
        (0..<width).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    /// URL-safe base64 without padding, as Pyrogram's export_session_string writes.
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// `>BI?256sQ?`
    static func current(dc: UInt8, apiID: UInt32, test: Bool, key: [UInt8], user: UInt64, bot: Bool) -> String {
        encode([dc] + bigEndian(UInt64(apiID), 4) + [test ? 1 : 0] + key + bigEndian(user, 8) + [bot ? 1 : 0])
    }

    @Test func decodesTheCurrentLayout() throws {
        let key = try #require(Self.key)
        let text = Self.current(dc: 4, apiID: 611335, test: false, key: key.bytes, user: 1_234_567_890_123, bot: false)
        #expect(text.count == 362)
        let session = try PyrogramStringSession.decode(text)
        #expect(session == PortableSession(
            dc: 4, authKey: key, address: DCAddress(host: "149.154.167.91", port: 443), userID: 1_234_567_890_123,
            isBot: false, apiID: 611335, isTestMode: false
        ))
        #expect(try PyrogramStringSession.encode(session) == text)

        let bot = try PyrogramStringSession.decode(Self.current(dc: 2, apiID: 1, test: true, key: key.bytes, user: 99, bot: true))
        #expect(bot.isBot == true && bot.isTestMode == true)
        #expect(bot.address == DCAddress(host: "149.154.167.40", port: 80), "Pyrogram's test DC 2 on port 80")
    }

    @Test func decodesTheOlderLayouts() throws {
        let key = try #require(Self.key)
        // >B?256sI?  (351) and >B?256sQ? (356): no api_id.
        let old32 = Self.encode([5, 0] + key.bytes + Self.bigEndian(123_456_789, 4) + [0])
        let old64 = Self.encode([1, 0] + key.bytes + Self.bigEndian(8_123_456_789, 8) + [1])
        #expect(old32.count == 351 && old64.count == 356)
        let session32 = try PyrogramStringSession.decode(old32)
        #expect(session32.dc == 5 && session32.userID == 123_456_789 && session32.isBot == false && session32.apiID == nil)
        #expect(session32.address == DCAddress(host: "91.108.56.130", port: 443))
        let session64 = try PyrogramStringSession.decode(old64)
        #expect(session64.dc == 1 && session64.userID == 8_123_456_789 && session64.isBot == true && session64.authKey == key)
    }

    @Test func aDCPyrogramHasNoAddressForImportsWithoutOne() throws {
        let key = try #require(Self.key)
        let session = try PyrogramStringSession.decode(Self.current(dc: 4, apiID: 1, test: true, key: key.bytes, user: 7, bot: false))
        #expect(session.dc == 4 && session.address == nil, "Pyrogram knows test DCs 1 to 3 only")
    }

    @Test func badInputIsATypedError() throws {
        let key = try #require(Self.key)
        let good = Self.current(dc: 2, apiID: 5, test: false, key: key.bytes, user: 10, bot: false)
        #expect(throws: SessionImportError.wrongLength(.pyrogramString, length: 361, expected: [351, 356, 362])) {
            try PyrogramStringSession.decode(String(good.dropLast()))
        }
        #expect(throws: SessionImportError.wrongLength(.pyrogramString, length: 363, expected: [351, 356, 362])) {
            try PyrogramStringSession.decode(good + "A")
        }
        for position in [0, 200, 361] {
            var characters = Array(good)
            characters[position] = "!"
            #expect(throws: SessionImportError.badBase64(.pyrogramString)) { try PyrogramStringSession.decode(String(characters)) }
        }
        #expect(throws: SessionImportError.noAuthKey(.pyrogramString)) {
            try PyrogramStringSession.decode(Self.current(dc: 2, apiID: 5, test: false, key: [UInt8](repeating: 0, count: 256), user: 10, bot: false))
        }
        #expect(throws: SessionImportError.invalidField(.pyrogramString, field: "user_id", reason: "\(UInt64.max) is beyond any user id")) {
            try PyrogramStringSession.decode(Self.current(dc: 2, apiID: 5, test: false, key: key.bytes, user: .max, bot: false))
        }
        #expect(throws: SessionImportError.invalidField(.pyrogramString, field: "user_id", reason: "user ids are positive, found 0")) {
            try PyrogramStringSession.decode(Self.current(dc: 2, apiID: 5, test: false, key: key.bytes, user: 0, bot: false))
        }
        #expect(throws: SessionImportError.invalidField(.pyrogramString, field: "dc_id", reason: "DC 0 does not exist; DC ids are positive")) {
            try PyrogramStringSession.decode(Self.current(dc: 0, apiID: 5, test: false, key: key.bytes, user: 10, bot: false))
        }
    }

    @Test func exportNeedsTheAPIIDAndTheUser() throws {
        let key = try #require(Self.key)
        var session = PortableSession(dc: 2, authKey: key, userID: 10)
        #expect(throws: SessionExportError.self) { try PyrogramStringSession.encode(session) }
        session.apiID = -1
        #expect(throws: SessionExportError.outOfRange(.pyrogramString, field: "api_id", value: "-1", allowed: "0 to \(UInt32.max)")) {
            try PyrogramStringSession.encode(session)
        }
        session.apiID = 5
        session.userID = nil
        do {
            _ = try PyrogramStringSession.encode(session)
            Issue.record("exported a Pyrogram string without a user id")
        } catch {
            guard case .missingField(.pyrogramString, let field, _) = error else { throw error }
            #expect(field == "user_id")
            #expect(error.description.contains("would ask for a login"))
        }
    }

    /// A string has no address: a DC Pyrogram has none for would fail on connect, so it is refused.
    @Test func exportRefusesADCPyrogramCannotDial() throws {
        let key = try #require(Self.key)
        var session = PortableSession(dc: 4, authKey: key, userID: 10, apiID: 5, isTestMode: true)
        #expect(throws: SessionExportError.self) { try PyrogramStringSession.encode(session) }
        session.isTestMode = false
        #expect(try PyrogramStringSession.decode(try PyrogramStringSession.encode(session)).dc == 4)
        session.dc = 7
        #expect(throws: SessionExportError.self) { try PyrogramStringSession.encode(session) }
    }
}
