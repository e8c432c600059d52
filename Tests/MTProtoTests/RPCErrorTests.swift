import Testing
@testable import MTProto

@Suite struct RPCErrorTests {
    @Test(arguments: [
        ("FLOOD_WAIT_30", "FLOOD_WAIT_X", 30),
        ("FLOOD_PREMIUM_WAIT_5", "FLOOD_PREMIUM_WAIT_X", 5),
        ("SLOWMODE_WAIT_120", "SLOWMODE_WAIT_X", 120),
        ("2FA_CONFIRM_WAIT_604800", "2FA_CONFIRM_WAIT_X", 604_800),
    ])
    func waitErrorsGiveSeconds(message: String, name: String, seconds: Int) {
        let error = RPCError(code: 420, message: message)
        #expect(error.name == name)
        #expect(error.waitSeconds == seconds)
        #expect(error.migrateToDC == nil)
        #expect(error.description.contains("wait \(seconds) s"))
    }

    @Test(arguments: ["PHONE_MIGRATE_2", "USER_MIGRATE_2", "FILE_MIGRATE_2", "NETWORK_MIGRATE_2", "STATS_MIGRATE_2"])
    func migrateErrorsGiveTheDC(message: String) {
        let error = RPCError(code: 303, message: message)
        #expect(error.migrateToDC == 2)
        #expect(error.waitSeconds == nil)
        #expect(error.name.hasSuffix("_MIGRATE_X"))
        #expect(error.description.contains("DC 2"))
    }

    @Test func argumentsInTheMiddleAndPlainNames() {
        let part = RPCError(code: 400, message: "FILE_PART_7_MISSING")
        #expect(part.name == "FILE_PART_X_MISSING")
        #expect(part.argument == 7)
        let plain = RPCError(code: 401, message: "AUTH_KEY_UNREGISTERED")
        #expect(plain.name == "AUTH_KEY_UNREGISTERED")
        #expect(plain.argument == nil)
        #expect(plain.category == "UNAUTHORIZED")
        #expect(plain.description.contains("log in again"))
    }

    @Test func roundTripsThroughItsSerialization() throws {
        let error = RPCError(code: -503, message: "Timeout")
        #expect(try RPCError.decode(error.serialized) == error)
        #expect(throws: SessionError.self) { try RPCError.decode(Array(error.serialized.prefix(10))) }
    }

    /// The errors jobs meet most say what they mean; others keep their class's words.
    @Test func commonErrorsSayWhatTheyMean() {
        #expect(RPCError(code: 400, message: "USERNAME_NOT_OCCUPIED").description.contains("no account, channel or bot has this username"))
        #expect(RPCError(code: 403, message: "CHAT_WRITE_FORBIDDEN").description.contains("may not write in this chat"))
        #expect(RPCError(code: 400, message: "SOMETHING_NEW").description.contains("the request's parameters were rejected"))
    }

    @Test func absurdNumbersStayInTheName() {
        let error = RPCError(code: 420, message: "FLOOD_WAIT_99999999999999999999999")
        #expect(error.argument == nil)
        #expect(error.waitSeconds == nil)
        #expect(error.name == error.message)
    }
}
