import Foundation
import Testing
@testable import TestDC

@Suite struct WorldTests {
    @Test func decodesTheDocumentedFormatWithDefaults() throws {
        let json = """
        {
          "users": [
            {"id": 1, "phone": "+1 555 0100", "firstName": "Ann", "username": "ann", "password": "pw", "homeDC": 2},
            {"id": 2, "firstName": "Ben", "deactivated": true}
          ],
          "channels": [
            {"id": 10, "title": "News", "username": "news", "messages": [{"id": 1, "date": 1700000000, "text": "hi"}]}
          ],
          "contacts": [[1, 2]]
        }
        """
        let world = try World.decode(Data(json.utf8))
        #expect(world.users.count == 2)
        #expect(world.users[0].phone == "15550100")
        #expect(world.users[0].homeDC == 2)
        #expect(world.users[0].password == "pw")
        #expect(world.users[1].deactivated)
        #expect(world.users[1].accessHash == 2 &* 7919)
        #expect(world.channels[0].broadcast)
        #expect(world.channels[0].messages.map(\.text) == ["hi"])
        #expect(world.contacts == [[1, 2]])
    }

    @Test func onlyUsersAreRequired() throws {
        let world = try World.decode(Data(#"{"users": [{"id": 1, "firstName": "A"}]}"#.utf8))
        #expect(world.channels.isEmpty && world.contacts.isEmpty)
        #expect(throws: WorldError.self) { try World.decode(Data(#"{"users": [{"id": 1, "firstName": "A", "phone": "1"}, {"id": 2, "firstName": "B", "phone": "+1"}]}"#.utf8)) }
    }

    /// How a user's codes travel is one of the DC's code types; a misspelt one is refused, not taken for SMS.
    @Test func codeDeliveryIsOneOfTheKnownTypes() throws {
        let world = try World.decode(Data(#"{"users": [{"id": 1, "firstName": "A", "codeDelivery": "fragment", "reloginDaysWithoutPassword": 7}]}"#.utf8))
        #expect(world.users.first?.codeDelivery == .fragment && world.users.first?.reloginDaysWithoutPassword == 7)
        #expect(throws: WorldError.self) { try World.decode(Data(#"{"users": [{"id": 1, "firstName": "A", "codeDelivery": "emial"}]}"#.utf8)) }
    }

    @Test func refusesDuplicatePhonesAndUsernames() {
        let twoPhones = World(users: [
            World.User(id: 1, accessHash: 1, phone: "1", firstName: "A"),
            World.User(id: 2, accessHash: 2, phone: "1", firstName: "B"),
        ])
        #expect(throws: WorldError.self) { try twoPhones.validate() }
        let twoNames = World(users: [World.User(id: 1, accessHash: 1, firstName: "A", username: "x")],
                             channels: [World.Channel(id: 2, accessHash: 2, title: "C", username: "X")])
        #expect(throws: WorldError.self) { try twoNames.validate() }
    }

    @Test func refusesMessageIDsThatDoNotAscend() {
        let world = World(users: [], channels: [World.Channel(id: 1, accessHash: 1, title: "C", messages: [
            World.Message(id: 2, date: 0, text: "b"), World.Message(id: 1, date: 0, text: "a"),
        ])])
        #expect(throws: WorldError.self) { try world.validate() }
    }

    @Test func errorsSayWhatToFixWithoutEchoingSecrets() throws {
        let error = #expect(throws: WorldError.self) { try World.decode(Data("{\"users\": 3}".utf8), source: "w.json") }
        #expect(error?.description.contains("w.json") == true)
        #expect(error?.description.contains("docs/TESTDC.md") == true)
    }

    @Test func defaultWorldIsValidAndHasTheDocumentedAccounts() throws {
        try World.default.validate()
        let byName = Dictionary(uniqueKeysWithValues: World.default.users.compactMap { u in u.username.map { ($0, u) } })
        #expect(byName["bob"]?.password != nil)
        #expect(byName["carol"]?.homeDC == 2)
        #expect(World.default.channels.first { $0.username == "testnews" }?.messages.count == 30)
    }

    @Test func loginCodeIsTheLastFiveDigitsReversed() {
        #expect(DCState.loginCode(for: "+1 555 0001") == "10005")
        #expect(DCState.loginCode(for: "123") == "32100")
    }
}
