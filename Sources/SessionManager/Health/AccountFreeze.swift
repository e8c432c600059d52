import MTProto
import TLSchema

/// What Telegram says of a frozen account in its client configuration (api/auth, "Frozen
/// accounts": after FROZEN_METHOD_INVALID a client should read help.getAppConfig): since when it
/// is frozen, when it is deleted unless an appeal is accepted, and where to appeal. For an operator
/// this is the difference between "some jobs fail" and "this account is deleted on that date".
public struct AccountFreeze: Sendable, Hashable {
    /// `freeze_since_date`.
    public var since: UnixTime?
    /// `freeze_until_date`: the account is deleted then, unless an appeal is submitted and accepted.
    public var deletedAfter: UnixTime?
    /// `freeze_appeal_url`: where a person submits the appeal.
    public var appealURL: String?

    public init(since: UnixTime? = nil, deletedAfter: UnixTime? = nil, appealURL: String? = nil) {
        self.since = since
        self.deletedAfter = deletedAfter
        self.appealURL = appealURL
    }

    /// The freeze fields of a help.getAppConfig answer; nil when it has none (the account is not
    /// frozen, or the answer is "not modified"). Zero dates mean "not set", as the spec says;
    /// fields of another type are ignored, never trusted.
    public init?(appConfig: Api.help.AppConfig) {
        guard case .appConfig(let config) = appConfig, case .jsonObject(let object) = config.config else { return nil }
        var freeze = AccountFreeze()
        for entry in object.value {
            guard case .jsonObjectValue(let field) = entry else { continue }
            switch (field.key, field.value) {
            case ("freeze_since_date", .jsonNumber(let number)): freeze.since = Self.date(number.value)
            case ("freeze_until_date", .jsonNumber(let number)): freeze.deletedAfter = Self.date(number.value)
            case ("freeze_appeal_url", .jsonString(let text)) where !text.value.isEmpty: freeze.appealURL = String(text.value.prefix(512))
            default: continue
            }
        }
        guard freeze != AccountFreeze() else { return nil }
        self = freeze
    }

    private static func date(_ seconds: Double) -> UnixTime? {
        seconds.isFinite && seconds > 0 && seconds < 1e11 ? UnixTime(seconds: seconds.rounded(.down)) : nil
    }
}
