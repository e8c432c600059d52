import TL
import TLSchema
import Testing
@testable import TestDC

/// QR login tokens: export on the new device, accept on a logged-in one, then success or a migration.
@Suite struct LoginTokenHandlersTests {
    typealias F = Api.functions
    static let now = 1_800_000_000.0
    static let phone = CallContext(dc: 1, authKeyID: 81)
    static let desktop = CallContext(dc: 1, authKeyID: 82)

    func answer(_ state: inout DCState, _ request: some TLEncodable, as context: CallContext, now: Double = now) -> RPCAnswer? {
        state.handle(request.serialized(), context: context, now: now).answer
    }

    func token(_ answer: RPCAnswer?) throws -> Api.auth.LoginToken {
        guard case .result(let bytes) = answer else { throw Refused(answer: answer) }
        return try Api.auth.LoginToken(serialized: bytes)
    }

    struct Refused: Error { var answer: RPCAnswer? }

    func export(_ state: inout DCState, as context: CallContext = desktop, now: Double = now) throws -> Api.auth.LoginToken {
        try token(answer(&state, F.auth.ExportLoginToken(apiId: 1, apiHash: "h", exceptIds: []), as: context, now: now))
    }

    @Test func acceptedTokenLogsTheExportingKeyIn() throws {
        var state = DCState.forTests()
        state.bind(Self.phone, to: 1001)
        guard case .loginToken(let shown) = try export(&state) else { Issue.record("expected a token"); return }
        #expect(shown.expires == Int32(Self.now) + DCState.loginTokenLifetime)
        guard case .result = answer(&state, F.auth.AcceptLoginToken(token: shown.token), as: Self.phone) else {
            Issue.record("accept failed")
            return
        }
        #expect(state.takeOutbox() == [PendingPush(
            target: .authKey(dc: 1, keyID: Self.desktop.authKeyID), name: "updateLoginToken",
            body: Api.Updates.updateShort(.init(update: .updateLoginToken(.init()), date: Int32(Self.now))).serialized())])
        guard case .loginTokenSuccess = try export(&state) else { Issue.record("expected success"); return }
        #expect(state.userID(for: Self.desktop) == 1001)
        #expect(answer(&state, F.auth.AcceptLoginToken(token: shown.token), as: Self.phone) == .error(code: 400, message: "AUTH_TOKEN_INVALID"))
    }

    @Test func expiredOrUnknownTokensAreRefused() throws {
        var state = DCState.forTests()
        state.bind(Self.phone, to: 1001)
        guard case .loginToken(let shown) = try export(&state) else { return }
        #expect(answer(&state, F.auth.AcceptLoginToken(token: shown.token), as: Self.phone, now: Self.now + 31) == .error(code: 400, message: "AUTH_TOKEN_EXPIRED"))
        #expect(answer(&state, F.auth.AcceptLoginToken(token: [1, 2, 3]), as: Self.phone) == .error(code: 400, message: "AUTH_TOKEN_INVALID"))
        #expect(answer(&state, F.auth.AcceptLoginToken(token: shown.token), as: Self.desktop) == .error(code: 401, message: "AUTH_KEY_UNREGISTERED"))
    }

    @Test func anAccountOnAnotherDCGetsMigrateToAndImportsThere() throws {
        var state = DCState.forTests()
        let carolsPhone = CallContext(dc: 2, authKeyID: 91)
        state.bind(carolsPhone, to: 1003)
        guard case .loginToken(let shown) = try export(&state) else { return }
        _ = answer(&state, F.auth.AcceptLoginToken(token: shown.token), as: carolsPhone)
        guard case .loginTokenMigrateTo(let migrate) = try export(&state) else { Issue.record("expected loginTokenMigrateTo"); return }
        #expect(migrate.dcId == 2)
        let onDC2 = CallContext(dc: 2, authKeyID: 92)
        #expect(answer(&state, F.auth.ImportLoginToken(token: migrate.token), as: Self.desktop) == .error(code: 400, message: "AUTH_TOKEN_INVALID"))
        guard case .loginTokenSuccess = try token(answer(&state, F.auth.ImportLoginToken(token: migrate.token), as: onDC2)) else {
            Issue.record("expected success on DC 2")
            return
        }
        #expect(state.userID(for: onDC2) == 1003)
    }
}
