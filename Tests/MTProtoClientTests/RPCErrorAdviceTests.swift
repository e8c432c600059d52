import MTProto
import Testing
@testable import MTProtoClient

@Suite struct RPCErrorAdviceTests {
    @Test(arguments: [
        ("FLOOD_WAIT_30", 30, RPCErrorAdvice.WaitReason.flood),
        ("FLOOD_PREMIUM_WAIT_7", 7, .floodPremium),
        ("SLOWMODE_WAIT_120", 120, .slowMode),
        ("TAKEOUT_INIT_DELAY_WAIT_5", 5, .other),
        ("2FA_CONFIRM_WAIT_604800", 604_800, .other),
    ])
    func waitsCarryTheirSeconds(message: String, seconds: Int, reason: RPCErrorAdvice.WaitReason) {
        let error = RPCError(code: 420, message: message)
        #expect(error.advice == .wait(seconds: seconds, reason: reason))
        #expect(TelegramError.rpc(error, method: "messages.sendMessage").description.contains("\(seconds) s"))
    }

    /// A frozen account's refusals are no waits, though FROZEN_METHOD_INVALID carries the flood code.
    @Test(arguments: [(Int32(420), "FROZEN_METHOD_INVALID"), (400, "FROZEN_PARTICIPANT_MISSING")])
    func aFrozenAccountsRefusalIsNotAWait(code: Int32, message: String) {
        let error = RPCError(code: code, message: message)
        #expect(error.isAccountFrozen)
        #expect(error.advice == .fixRequest)
        #expect(error.description.contains("frozen this account") && error.description.contains("freeze_appeal_url"))
        #expect(RPCError(code: 420, message: "FLOOD").advice == .wait(seconds: 1, reason: .other), "another 420 without seconds still waits")
        // A 420 whose number is not named *_WAIT_X is still its seconds, not one.
        #expect(RPCError(code: 420, message: "TAKEOUT_INIT_DELAY_86400").advice == .wait(seconds: 86_400, reason: .other))
    }

    @Test(arguments: [
        ("PHONE_MIGRATE_2", MigrationKind.phone, 2),
        ("NETWORK_MIGRATE_3", .network, 3),
        ("USER_MIGRATE_4", .user, 4),
        ("FILE_MIGRATE_5", .file, 5),
        ("STATS_MIGRATE_1", .stats, 1),
    ])
    func migrationsNameTheirKindAndDC(message: String, kind: MigrationKind, dc: Int) {
        #expect(RPCError(code: 303, message: message).advice == .migrate(kind, dc: dc))
    }

    @Test(arguments: [
        ("AUTH_KEY_UNREGISTERED", AuthorizationLoss.keyUnregistered),
        ("SESSION_REVOKED", .sessionRevoked),
        ("SESSION_EXPIRED", .sessionExpired),
        ("USER_DEACTIVATED", .userDeactivated),
        ("USER_DEACTIVATED_BAN", .userDeactivated),
        ("AUTH_KEY_INVALID", .keyInvalid),
    ])
    func lostAuthorizationsTellToLogInAgain(message: String, loss: AuthorizationLoss) {
        let error = RPCError(code: 401, message: message)
        #expect(error.advice == .reLogin(loss))
        #expect(loss.description.contains(message.hasPrefix("USER_DEACTIVATED") ? "USER_DEACTIVATED" : message))
    }

    @Test func duplicatedKeyAsksForANewKey() {
        #expect(RPCError(code: 406, message: "AUTH_KEY_DUPLICATED").advice == .newAuthKey)
    }

    @Test func serverFailuresAreRetryLater() {
        #expect(RPCError(code: 500, message: "INTERNAL_SERVER_ERROR").advice == .retryLater)
        #expect(RPCError(code: -503, message: "Timeout").advice == .retryLater)
        // api/errors: a code it does not list is treated as a 500.
        #expect(RPCError(code: 502, message: "BAD_GATEWAY").advice == .retryLater)
        #expect(RPCError(code: -500, message: "UNKNOWN").advice == .retryLater)
    }

    @Test func badRequestsAskToFixTheRequest() {
        #expect(RPCError(code: 400, message: "PEER_ID_INVALID").advice == .fixRequest)
        #expect(RPCError(code: 403, message: "CHAT_WRITE_FORBIDDEN").advice == .fixRequest)
        #expect(RPCError(code: 404, message: "METHOD_INVALID").advice == .fixRequest)
        #expect(RPCError(code: 401, message: "SESSION_PASSWORD_NEEDED").advice == .fixRequest)
        // A spam-limited account is told so, not to fix its parameters.
        let peerFlood = RPCError(code: 400, message: "PEER_FLOOD")
        #expect(peerFlood.advice == .fixRequest && peerFlood.description.contains("@SpamBot"))
    }

    @Test func transportErrorsHaveAdviceAndGuidance() {
        let notFound = TelegramError.transport(.authKeyNotFound, dc: 2)
        #expect(notFound.advice == .newAuthKey)
        #expect(notFound.description.contains("-404"))
        #expect(notFound.description.contains("log in again"))
        let flood = TelegramError.transport(.transportFlood, dc: 2)
        #expect(flood.advice == .wait(seconds: 1, reason: .other))
        #expect(TelegramError.timeout(method: "help.getConfig", seconds: 5, delivery: .sent).advice == .retryLater)
        #expect(TelegramError.cancelled(method: "help.getConfig", delivery: .sent).advice == nil)
    }

    @Test func aFailureSaysWhetherTheRequestMayHaveRun() {
        let inDoubt = TelegramError.inDoubt(method: "messages.sendMessage", reason: .noAnswerAfterReceipt(waited: 20))
        #expect(inDoubt.description.contains("may have run") && inDoubt.description.contains("before repeating"))
        #expect(inDoubt.advice == nil, "repeating may run it twice")
        #expect(inDoubt.delivery == .received)
        #expect(TelegramError.inDoubt(method: "m", reason: .sessionChanged).description.contains("resendPolicy"))
        let unsent = TelegramError.timeout(method: "help.getConfig", seconds: 5, delivery: .notSent)
        #expect(unsent.description.contains("did not run") && unsent.delivery == .notSent)
        #expect(TelegramError.cancelled(method: "m", delivery: .sent).description.contains("may still have run"))
    }
}
