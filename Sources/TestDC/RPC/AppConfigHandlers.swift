import TL
import TLSchema

/// help.getAppConfig: the client configuration (api/config) as a JSON object. Only what the test
/// DC's clients read is in it: a frozen account's freeze_since_date, freeze_until_date and
/// freeze_appeal_url (api/auth, "Frozen accounts"), beside one ordinary key.
extension DCState {
    func appConfig(viewer: Int64?) -> Api.help.AppConfig {
        var fields: [(String, Api.JSONValue)] = [("test_dc", .jsonBool(Api.JSONValue.JsonBool(value: true)))]
        if let viewer, let freeze = user(id: viewer)?.frozen {
            fields += [
                ("freeze_since_date", .jsonNumber(Api.JSONValue.JsonNumber(value: Double(freeze.since)))),
                ("freeze_until_date", .jsonNumber(Api.JSONValue.JsonNumber(value: Double(freeze.until)))),
                ("freeze_appeal_url", .jsonString(Api.JSONValue.JsonString(value: freeze.appealURL))),
            ]
        }
        let object = fields.map { key, value in Api.JSONObjectValue.jsonObjectValue(Api.JSONObjectValue.JsonObjectValue(key: key, value: value)) }
        // The hash changes with the content, so a client caching by it sees a freeze appear.
        var hash: Int32 = 0
        for (key, _) in fields { for byte in key.utf8 { hash = hash &* 31 &+ Int32(byte) } }
        return .appConfig(Api.help.AppConfig.AppConfig(hash: hash, config: .jsonObject(Api.JSONValue.JsonObject(value: object))))
    }
}
