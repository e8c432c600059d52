import MTProto
import SessionManager
import TLSchema
import Testing

/// help.getAppConfig's freeze fields (api/auth, "Frozen accounts"), read defensively.
@Suite struct AccountFreezeTests {
    static func config(_ fields: [(String, Api.JSONValue)]) -> Api.help.AppConfig {
        .appConfig(.init(hash: 1, config: .jsonObject(.init(value: fields.map { .jsonObjectValue(.init(key: $0.0, value: $0.1)) }))))
    }

    static func number(_ value: Double) -> Api.JSONValue { .jsonNumber(.init(value: value)) }
    static func text(_ value: String) -> Api.JSONValue { .jsonString(.init(value: value)) }

    @Test func theDatesAndTheAppealURLAreRead() {
        let freeze = AccountFreeze(appConfig: Self.config([
            ("quote_length_max", Self.number(1024)), ("freeze_since_date", Self.number(1_790_000_000)),
            ("freeze_until_date", Self.number(1_792_592_000)), ("freeze_appeal_url", Self.text("https://t.me/spambot")),
        ]))
        #expect(freeze == AccountFreeze(since: UnixTime(seconds: 1_790_000_000), deletedAfter: UnixTime(seconds: 1_792_592_000),
                                        appealURL: "https://t.me/spambot"))
    }

    @Test func anAccountThatIsNotFrozenHasNone() {
        #expect(AccountFreeze(appConfig: Self.config([("quote_length_max", Self.number(1024))])) == nil)
        #expect(AccountFreeze(appConfig: .appConfigNotModified(.init())) == nil)
        #expect(AccountFreeze(appConfig: .appConfig(.init(hash: 0, config: .jsonNull(.init())))) == nil)
        // "If set and non-zero": zero dates are not dates.
        #expect(AccountFreeze(appConfig: Self.config([("freeze_since_date", Self.number(0)), ("freeze_until_date", Self.number(0))])) == nil)
    }

    @Test func fieldsOfAnotherTypeOrOutOfRangeAreIgnored() {
        let freeze = AccountFreeze(appConfig: Self.config([
            ("freeze_since_date", Self.text("yesterday")), ("freeze_until_date", Self.number(.infinity)),
            ("freeze_appeal_url", Self.number(3)), ("freeze_since_date", Self.number(-5)),
        ]))
        #expect(freeze == nil)
        let partial = AccountFreeze(appConfig: Self.config([("freeze_until_date", Self.number(1e30)), ("freeze_appeal_url", Self.text("https://t.me/spambot"))]))
        #expect(partial == AccountFreeze(appealURL: "https://t.me/spambot"))
    }
}
