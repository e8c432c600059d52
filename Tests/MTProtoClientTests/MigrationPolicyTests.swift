import MTProto
import Testing
@testable import MTProtoClient

@Suite struct MigrationPolicyTests {
    private func decide(_ message: String, authorized: Bool, current: Int = 1, home: Int = 1) -> MigrationDecision {
        MigrationPolicy.decide(RPCError(code: 303, message: message), isAuthorized: authorized, currentDC: current, homeDC: home)
    }

    @Test func beforeLoginPhoneNetworkAndUserMigrateMoveHome() {
        #expect(decide("PHONE_MIGRATE_2", authorized: false) == .switchHome(to: 2))
        #expect(decide("NETWORK_MIGRATE_3", authorized: false) == .switchHome(to: 3))
        #expect(decide("USER_MIGRATE_4", authorized: false) == .switchHome(to: 4))
    }

    @Test func afterLoginMigrationsReinvokeWithImportedAuthorization() {
        #expect(decide("USER_MIGRATE_4", authorized: true) == .reinvoke(on: 4, importAuthorization: true))
        #expect(decide("FILE_MIGRATE_5", authorized: true) == .reinvoke(on: 5, importAuthorization: true))
        #expect(decide("STATS_MIGRATE_2", authorized: true) == .reinvoke(on: 2, importAuthorization: true))
    }

    @Test func migratingBackHomeNeedsNoImport() {
        #expect(decide("FILE_MIGRATE_1", authorized: true, current: 3, home: 1) == .reinvoke(on: 1, importAuthorization: false))
    }

    @Test func fileMigrateBeforeLoginDoesNotMoveHome() {
        #expect(decide("FILE_MIGRATE_5", authorized: false) == .reinvoke(on: 5, importAuthorization: false))
    }

    @Test func notAMigrationOrTheSameDCIsSurfaced() {
        #expect(decide("PHONE_MIGRATE_1", authorized: false, current: 1) == .surface)
        #expect(MigrationPolicy.decide(RPCError(code: 420, message: "FLOOD_WAIT_3"), isAuthorized: false, currentDC: 1, homeDC: 1) == .surface)
        #expect(MigrationPolicy.decide(RPCError(code: 400, message: "PHONE_MIGRATE_2"), isAuthorized: false, currentDC: 1, homeDC: 1) == .surface)
    }
}
