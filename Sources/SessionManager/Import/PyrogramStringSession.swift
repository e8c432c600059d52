import Foundation
import MTProtoClient
import MTProtoCrypto

/// Pyrogram's (and kurigram's) session string: URL-safe base64 without padding of
/// `>BI?256sQ?`: DC id, api_id, test mode, auth key, user id, bot flag (362 characters). Two older
/// layouts still load in Pyrogram and here: `>B?256sI?` (351 characters, 32-bit user id) and
/// `>B?256sQ?` (356). No address: Pyrogram dials its own table for the DC (`defaultAddress`).
public enum PyrogramStringSession {
    static let format = PortableSessionFormat.pyrogramString

    enum Layout: CaseIterable {
        case old32, old64, current

        var length: Int {
            switch self {
            case .old32: 351
            case .old64: 356
            case .current: 362
            }
        }

        var byteCount: Int {
            switch self {
            case .old32: 1 + 1 + 256 + 4 + 1
            case .old64: 1 + 1 + 256 + 8 + 1
            case .current: 1 + 4 + 1 + 256 + 8 + 1
            }
        }
    }

    public static let lengths = Layout.allCases.map(\.length)

    /// The addresses Pyrogram dials for a DC (production port 443, test servers port 80): the
    /// tables of kurigram 2.2.26's `sqlite_storage.py`. Nil for a DC it has no address for.
    public static func defaultAddress(dc: Int, testMode: Bool) -> DCAddress? {
        let production = [1: "149.154.175.53", 2: "149.154.167.51", 3: "149.154.175.100", 4: "149.154.167.91",
                          5: "91.108.56.130", 203: "91.105.192.100"]
        let test = [1: "149.154.175.10", 2: "149.154.167.40", 3: "149.154.175.117"]
        guard let host = (testMode ? test : production)[dc] else { return nil }
        return DCAddress(host: host, port: testMode ? 80 : 443)
    }

    public static func decode(_ string: String) throws(SessionImportError) -> PortableSession {
        let text = string.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let layout = Layout.allCases.first(where: { $0.length == text.count }) else {
            throw .wrongLength(format, length: text.count, expected: lengths)
        }
        guard let bytes = URLSafeBase64.decode(Substring(text)), bytes.count == layout.byteCount else { throw .badBase64(format) }
        var reader = BigEndianReader(bytes)
        guard let dcByte = reader.unsigned(1) else { throw .badBase64(format) }
        var apiID: Int64?
        if layout == .current {
            guard let value = reader.unsigned(4) else { throw .badBase64(format) }
            apiID = Int64(value)
        }
        guard let testByte = reader.unsigned(1), let keyBytes = reader.take(256),
              let user = reader.unsigned(layout == .old32 ? 4 : 8), let botByte = reader.unsigned(1)
        else { throw .badBase64(format) }
        let dc = try SessionFieldRules.dc(Int64(dcByte), format: format, field: "dc_id")
        guard let signedUser = Int64(exactly: user) else {
            throw .invalidField(format, field: "user_id", reason: "\(user) is beyond any user id")
        }
        let userID = try SessionFieldRules.userID(signedUser, format: format, field: "user_id")
        let key = try SessionFieldRules.authKey(keyBytes, format: format)
        // Python's struct reads any non-zero byte as True for `?`.
        let testMode = testByte != 0
        return PortableSession(
            dc: dc, authKey: key, address: defaultAddress(dc: dc, testMode: testMode), userID: userID,
            isBot: botByte != 0, apiID: apiID, isTestMode: testMode
        )
    }

    /// The current layout, which `Client(session_string=...)` loads. Pyrogram treats a session
    /// without a user id as logged out, so one is required, as is the api_id the layout carries.
    public static func encode(_ session: PortableSession) throws(SessionExportError) -> String {
        guard (1...255).contains(session.dc) else {
            throw .outOfRange(format, field: "dc_id", value: "\(session.dc)", allowed: "1 to 255")
        }
        // The string has no address: Pyrogram (both libraries) looks the DC up in its table and
        // fails on connect when the DC is not there, so such a string would be useless.
        guard defaultAddress(dc: session.dc, testMode: session.isTestMode ?? false) != nil else {
            throw .outOfRange(
                format, field: "dc_id", value: "\(session.dc)\((session.isTestMode ?? false) ? " (test mode)" : "")",
                allowed: "a DC Pyrogram has an address for (production 1 to 5 and 203, test 1 to 3); a Pyrogram session file (schema version 7) stores the address"
            )
        }
        guard let apiID = session.apiID else {
            throw .missingField(format, field: "api_id", advice: "set the session's apiID to the api_id of the application the account logs in with, then export.")
        }
        guard let api = UInt32(exactly: apiID) else {
            throw .outOfRange(format, field: "api_id", value: "\(apiID)", allowed: "0 to \(UInt32.max)")
        }
        guard let userID = session.userID else {
            throw .missingField(format, field: "user_id", advice: "Pyrogram treats a session without a user id as logged out and would ask for a login; set the session's userID (users.getFullUser(inputUserSelf) tells it), then export.")
        }
        guard userID > 0 else {
            throw .outOfRange(format, field: "user_id", value: "\(userID)", allowed: "1 to \(Int64.max)")
        }
        let packed = [UInt8(session.dc)] + BigEndian.bytes(UInt64(api), width: 4) + [session.isTestMode == true ? 1 : 0]
            + session.authKey.bytes + BigEndian.bytes(UInt64(userID), width: 8) + [session.isBot == true ? 1 : 0]
        return URLSafeBase64.encode(packed, padded: false)
    }
}
