import TL
import TLSchema

/// One initConnection as the DC received it: which connection, key and session sent it, and the
/// client's identity fields as they came over the wire (not as the client's configuration says),
/// so tests can check that an account presents the same device to Telegram on every connection.
public struct InitConnectionRecord: Sendable, Equatable {
    public var dc: Int32
    public var connectionID: Int
    public var authKeyID: Int64
    public var sessionID: Int64
    public var apiID: Int32
    public var deviceModel: String
    public var systemVersion: String
    public var appVersion: String
    public var systemLangCode: String
    public var langPack: String
    public var langCode: String

    /// The identity fields alone (what must never change for an account).
    public var identity: [String] { [deviceModel, systemVersion, appVersion, systemLangCode, langPack, langCode] }
}

extension DCState {
    /// The newest initConnections kept; older ones are dropped (a long soak makes many).
    static let initConnectionLogLimit = 1000

    /// Records the initConnection inside `body`'s wrappers, if there is one.
    mutating func recordInitConnection(in body: [UInt8], context: CallContext) {
        guard let fields = Self.initConnectionFields(in: body) else { return }
        if initConnections.count >= Self.initConnectionLogLimit { initConnections.removeFirst(initConnections.count - Self.initConnectionLogLimit + 1) }
        initConnections.append(InitConnectionRecord(
            dc: context.dc, connectionID: context.connectionID, authKeyID: context.authKeyID, sessionID: context.sessionID,
            apiID: fields.apiID, deviceModel: fields.strings[0], systemVersion: fields.strings[1], appVersion: fields.strings[2],
            systemLangCode: fields.strings[3], langPack: fields.strings[4], langCode: fields.strings[5]))
    }

    /// initConnection's api_id and its six strings (device_model, system_version, app_version,
    /// system_lang_code, lang_pack, lang_code), found through the same wrappers `unwrap` strips.
    static func initConnectionFields(in body: [UInt8]) -> (apiID: Int32, strings: [String])? {
        var current = body
        for _ in 0..<8 {
            var reader = TLReader(current)
            guard let id = try? reader.readConstructorID() else { return nil }
            switch id {
            case WrapperID.invokeWithLayer:
                guard (try? reader.readInt32()) != nil else { return nil }
            case WrapperID.invokeWithoutUpdates:
                break
            case WrapperID.invokeAfterMsg:
                guard (try? reader.readInt64()) != nil else { return nil }
            case WrapperID.initConnection:
                guard (try? reader.readUInt32()) != nil, let apiID = try? reader.readInt32() else { return nil }
                var strings: [String] = []
                for _ in 0..<6 {
                    guard let string = try? reader.readString() else { return nil }
                    strings.append(string)
                }
                return (apiID, strings)
            default:
                return nil
            }
            current = Array(current[reader.position...])
        }
        return nil
    }
}
