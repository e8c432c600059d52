import GRDB
import MTProto

extension SQLiteSessionStore {
    public func identity(account: AccountID) async throws(SessionStoreError) -> DeviceIdentity? {
        try await read("read the identity of \(account)") { db in try Self.identity(db, account: account) }
    }

    public func chooseIdentity(_ proposed: DeviceIdentity, account: AccountID) async throws(SessionStoreError) -> DeviceIdentity {
        let now = clock.now()
        return try await write("choose the identity of \(account)") { db in
            try Self.ensureAccount(db, account, now: now)
            if let existing = try Self.identity(db, account: account) { return existing }
            try db.execute(sql: """
                UPDATE account SET device_model = ?, system_version = ?, app_version = ?, system_lang_code = ?, lang_pack = ?,
                    lang_code = ?, identity_chosen_at = ? WHERE id = ?
                """, arguments: [proposed.deviceModel, proposed.systemVersion, proposed.appVersion, proposed.systemLangCode,
                                 proposed.langPack, proposed.langCode, proposed.chosenAt.seconds, account.rawValue])
            return proposed
        }
    }

    public func proxy(account: AccountID) async throws(SessionStoreError) -> ProxySetting? {
        let stored = try await read("read the proxy of \(account)") { db in
            try String.fetchOne(db, sql: "SELECT proxy FROM account WHERE id = ?", arguments: [account.rawValue])
        }
        return try StoredProxyLink.opened(stored, account: account, sealer: sealer, location: path)
    }

    public func setProxy(_ proxy: ProxySetting?, account: AccountID) async throws(SessionStoreError) {
        let now = clock.now()
        let (path, header) = (self.path, encryptionHeader)
        let stored = try StoredProxyLink.stored(proxy, account: account, sealer: sealer)
        try await write("set the proxy of \(account)") { db in
            if proxy != nil { try Self.refuseStaleKey(db, opened: header, path: path) }
            try Self.ensureAccount(db, account, now: now)
            try db.execute(sql: "UPDATE account SET proxy = ? WHERE id = ?", arguments: [stored, account.rawValue])
        }
    }

    private static func identity(_ db: Database, account: AccountID) throws -> DeviceIdentity? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT device_model, system_version, app_version, system_lang_code, lang_pack, lang_code, identity_chosen_at
            FROM account WHERE id = ?
            """, arguments: [account.rawValue]),
            let model = row.string("device_model"), let system = row.string("system_version"), let app = row.string("app_version"),
            let systemLang = row.string("system_lang_code"), let pack = row.string("lang_pack"), let lang = row.string("lang_code"),
            let chosen = row.double("identity_chosen_at")
        else { return nil }
        return DeviceIdentity(deviceModel: model, systemVersion: system, appVersion: app, systemLangCode: systemLang,
                              langPack: pack, langCode: lang, chosenAt: UnixTime(seconds: chosen))
    }
}
