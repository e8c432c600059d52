import MTProtoCrypto
import Foundation
import NIOHTTP1
import TLSchema
import Testing
@testable import TestDC

/// The control endpoint's routes, called without HTTP.
@Suite struct ControlAPITests {
    func makeAPI() -> ControlAPI {
        let core = TestDCCore(state: DCState.forTests(), clock: { 1_800_000_000 })
        let table = ClusterTable(dcs: [], control: nil)
        return ControlAPI(core: core, table: { table })
    }

    func json(_ response: ControlResponse) throws -> Any {
        try JSONSerialization.jsonObject(with: response.body)
    }

    @Test func setsListsAndClearsFaults() throws {
        let api = makeAPI()
        let body = Data(#"{"match": {"method": "auth.sendCode", "count": 2}, "effect": {"kind": "floodWait", "seconds": 30}}"#.utf8)
        let created = api.handle(method: .POST, uri: "/faults", body: body)
        #expect(created.status == .created)
        let rule = try JSONDecoder().decode(FaultRule.self, from: created.body)
        #expect(rule.id == 1 && rule.effect == .floodWait(30) && rule.match.count == 2)
        #expect(api.core.withState { $0.faults.rules.count } == 1)

        let listed = try json(api.handle(method: .GET, uri: "/faults", body: Data())) as? [String: Any]
        #expect((listed?["rules"] as? [Any])?.count == 1)

        #expect(api.handle(method: .DELETE, uri: "/faults?kind=delay", body: Data()).status == .ok)
        #expect(api.core.withState { $0.faults.rules.count } == 1)
        #expect(api.handle(method: .DELETE, uri: "/faults/1", body: Data()).status == .ok)
        #expect(api.core.withState { $0.faults.rules.isEmpty })
        #expect(api.handle(method: .DELETE, uri: "/faults/1", body: Data()).status == .notFound)
    }

    @Test func refusesBadRulesWithTheReason() throws {
        let api = makeAPI()
        let response = api.handle(method: .POST, uri: "/faults", body: Data(#"{"effect": {"kind": "migrate", "dc": 2}}"#.utf8))
        #expect(response.status == .badRequest)
        let message = (try json(response) as? [String: String])?["error"] ?? ""
        #expect(message.contains("migrateKind"))
        #expect(api.handle(method: .POST, uri: "/faults", body: Data("nonsense".utf8)).status == .badRequest)
    }

    @Test func readsTheLoginCodeSentToAPhone() throws {
        let api = makeAPI()
        #expect(api.handle(method: .GET, uri: "/codes/15550001", body: Data()).status == .notFound)
        api.core.withState { state in
            state.recordCode(SentLoginCode(phone: "15550001", code: "10005", phoneCodeHash: "h", dc: 1, sentAt: 0))
        }
        let code = try JSONDecoder().decode(ControlAPI.CodeView.self, from: api.handle(method: .GET, uri: "/codes/+1%20555%200001", body: Data()).body)
        #expect(code.code == "10005" && code.dc == 1 && code.purpose == "login")
        api.core.withState { state in
            state.recordCode(SentLoginCode(phone: "15550001", code: "550001", phoneCodeHash: "h", dc: 1, sentAt: 0, awaitsLoginEmail: true))
        }
        let mailed = try JSONDecoder().decode(ControlAPI.CodeView.self, from: api.handle(method: .GET, uri: "/codes/15550001", body: Data()).body)
        #expect(mailed.code == "550001" && mailed.purpose == "loginEmail")
    }

    /// A service notification for the user's live connections (UpdateHandlersTests checks the push).
    @Test func pushesAServiceNotification() throws {
        let api = makeAPI()
        let body = Data(#"{"userID": 1001, "type": "AUTH_KEY_DROP_DUPLICATE", "message": "Session ended", "popup": true}"#.utf8)
        #expect(api.handle(method: .POST, uri: "/service-notifications", body: body).status == .created)
        #expect(api.handle(method: .POST, uri: "/service-notifications", body: Data(#"{"userID": 9999, "type": "X", "message": "m"}"#.utf8)).status == .badRequest)
        #expect(api.handle(method: .POST, uri: "/service-notifications", body: Data("{}".utf8)).status == .badRequest)
    }

    /// How a user's login codes travel, changed at run time (a world file sets it at start); a login
    /// email set up meanwhile is forgotten, so the new way applies.
    @Test func setsHowAUsersCodesTravel() throws {
        let api = makeAPI()
        api.core.withState { $0.loginEmails[1003] = "carol@example.com" }
        let response = api.handle(method: .POST, uri: "/users/1003/code-delivery", body: Data(#"{"codeDelivery": "setUpEmail"}"#.utf8))
        #expect(response.status == .ok)
        #expect(api.core.withState { state in state.world.users.first { $0.id == 1003 }?.codeDelivery == .setUpEmail && state.loginEmails.isEmpty })
        #expect(api.handle(method: .POST, uri: "/users/1003/code-delivery", body: Data(#"{"codeDelivery": "pigeon"}"#.utf8)).status == .badRequest)
        #expect(api.handle(method: .POST, uri: "/users/9999/code-delivery", body: Data(#"{"codeDelivery": "sms"}"#.utf8)).status == .notFound)
        #expect(api.handle(method: .POST, uri: "/users/carol/code-delivery", body: Data(#"{"codeDelivery": "sms"}"#.utf8)).status == .badRequest)
    }

    @Test func clockSkewAndDuplicateDetectionToggle() throws {
        let api = makeAPI()
        #expect(api.handle(method: .POST, uri: "/clock", body: Data(#"{"dc": 2, "offsetSeconds": -90}"#.utf8)).status == .ok)
        #expect(api.core.now(dc: 2) == 1_800_000_000 - 90)
        #expect(api.core.now(dc: 1) == 1_800_000_000)
        #expect(api.handle(method: .POST, uri: "/clock", body: Data(#"{"dc": 2, "offsetSeconds": 9999999999}"#.utf8)).status == .badRequest)
        #expect(api.handle(method: .POST, uri: "/faults", body: Data(#"{"effect": {"kind": "delay", "milliseconds": 99999999999}}"#.utf8)).status == .badRequest)
        #expect(api.handle(method: .POST, uri: "/duplicate-key-detection", body: Data(#"{"enabled": false}"#.utf8)).status == .ok)
        #expect(!api.core.detectsDuplicateKeys)
    }

    @Test func listsKeysByIDOnlyAndRevokes() throws {
        let api = makeAPI()
        let key = try AuthKeyFixture.make()
        api.core.withState { state in
            state.registerAuthKey(key, dc: 1)
            state.bind(CallContext(dc: 1, authKeyID: key.id), to: 1001)
        }
        let response = api.handle(method: .GET, uri: "/keys", body: Data())
        let keys = try JSONDecoder().decode([ControlAPI.KeyView].self, from: response.body)
        #expect(keys.map(\.keyID) == [key.id] && keys.first?.userID == 1001)
        #expect(String(decoding: response.body, as: UTF8.self).count < 200)
        let revoke = Data(#"{"dc": 1, "keyID": \#(key.id)}"#.utf8)
        #expect(api.handle(method: .POST, uri: "/keys/revoke", body: revoke).status == .ok)
        #expect(api.core.withState { $0.userID(for: CallContext(dc: 1, authKeyID: key.id)) } == nil)
    }

    @Test func unknownRoutesSayWhereTheDocsAre() throws {
        let response = makeAPI().handle(method: .GET, uri: "/nope", body: Data())
        #expect(response.status == .notFound)
        #expect(String(decoding: response.body, as: UTF8.self).contains("docs/TESTDC.md"))
    }
}

enum AuthKeyFixture {
    static func make() throws -> AuthKey {
        var entropy = SeededEntropy(seed: 9)
        return try AuthKey(entropy.bytes(256))
    }
}
