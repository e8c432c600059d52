#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MTProto
import MTProtoClient

/// What initConnection tells Telegram about the "device" an account runs on. Chosen once per
/// account (at first login or import), stored, and sent unchanged afterwards: an account whose
/// device model hops between connections looks like a stolen session.
public struct DeviceIdentity: Sendable, Hashable {
    public var deviceModel: String
    public var systemVersion: String
    public var appVersion: String
    public var systemLangCode: String
    public var langPack: String
    public var langCode: String
    public var chosenAt: UnixTime

    public init(deviceModel: String, systemVersion: String, appVersion: String, systemLangCode: String = "en",
                langPack: String = "", langCode: String = "en", chosenAt: UnixTime) {
        self.deviceModel = deviceModel
        self.systemVersion = systemVersion
        self.appVersion = appVersion
        self.systemLangCode = systemLangCode
        self.langPack = langPack
        self.langCode = langCode
        self.chosenAt = chosenAt
    }

    /// An identity describing this host as a desktop client would ("PC 64bit", "Linux 6.8.0"),
    /// for accounts that start here rather than arrive by import.
    public static func thisHost(appVersion: String, langCode: String = "en", at now: UnixTime) -> DeviceIdentity {
        var name = utsname()
        var system = "Linux"
        var machine = "x86_64"
        if uname(&name) == 0 {
            system = field(&name.sysname) + " " + field(&name.release)
            machine = field(&name.machine)
        }
        let model = machine.hasSuffix("64") ? "PC 64bit" : "PC"
        return DeviceIdentity(deviceModel: model, systemVersion: system, appVersion: appVersion,
                              systemLangCode: langCode, langCode: langCode, chosenAt: now)
    }

    private static func field<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

extension TelegramClientConfiguration {
    /// This configuration with the account's stored identity in every initConnection field.
    public func with(identity: DeviceIdentity) -> TelegramClientConfiguration {
        var copy = self
        copy.deviceModel = identity.deviceModel
        copy.systemVersion = identity.systemVersion
        copy.appVersion = identity.appVersion
        copy.systemLangCode = identity.systemLangCode
        copy.langPack = identity.langPack
        copy.langCode = identity.langCode
        return copy
    }
}
