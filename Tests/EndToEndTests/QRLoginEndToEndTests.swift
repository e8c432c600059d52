import MTProto
import TLSchema
import TestDC
import Testing
import class MTProtoClient.TelegramClient
@testable import MTProtoClient

/// QR login through the client's `TelegramLogin` flow against the test DC's login tokens.
@Suite struct QRLoginEndToEndTests {
    @Test func aLoggedInDeviceAcceptsTheTokenAndTheNewOneLogsIn() async throws {
        let cluster = try await Cluster.start()
        let phone = cluster.client()
        _ = try await cluster.logIn(phone, phone: alice.phone)

        let desktop = cluster.client()
        var pushed = UpdateReader(desktop.updates)
        let login = TelegramLogin(client: desktop)
        guard case .token(let token, let expires) = try await login.exportLoginToken() else {
            Issue.record("expected a token to show")
            return
        }
        #expect(token.count >= 16)
        #expect(expires > 0)

        let accepted = try await phone.invoke(Api.functions.auth.AcceptLoginToken(token: token))
        guard case .authorization = accepted else {
            Issue.record("unexpected acceptLoginToken answer \(accepted)")
            return
        }
        // The new device learns it from updateLoginToken, pushed before it logged in.
        let notice = try await pushed.next { if case .updateLoginToken = $0.update { true } else { false } }
        #expect(notice.origin == .live)

        guard case .loggedIn(let user) = try await login.exportLoginToken() else {
            Issue.record("expected the login to complete")
            return
        }
        #expect(user.userID == alice.id)
        #expect(await desktop.isAuthorized)
        let me = try await desktop.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(me.map(\.userID) == [alice.id])

        // A token works once.
        await #expect(throws: TelegramError.self) {
            _ = try await phone.invoke(Api.functions.auth.AcceptLoginToken(token: token))
        }
        await phone.close()
        await desktop.close()
        await cluster.shutdown()
    }

    /// Carol lives on DC 2: the token exported on DC 1 answers loginTokenMigrateTo, the flow imports
    /// it on DC 2, and the client makes DC 2 its home.
    @Test func anAccountOnAnotherDCLogsInThroughLoginTokenMigrateTo() async throws {
        let cluster = try await Cluster.start()
        let phone = cluster.client()
        _ = try await cluster.logIn(phone, phone: carol.phone)

        let desktop = cluster.client()
        let login = TelegramLogin(client: desktop)
        guard case .token(let token, _) = try await login.exportLoginToken() else {
            Issue.record("expected a token to show")
            return
        }
        _ = try await phone.invoke(Api.functions.auth.AcceptLoginToken(token: token))
        guard case .loggedIn(let user) = try await login.exportLoginToken() else {
            Issue.record("expected the login to complete on DC 2")
            return
        }
        #expect(user.userID == carol.id)
        #expect(await desktop.homeDC == carol.home)
        #expect(await desktop.isAuthorized)
        await phone.close()
        await desktop.close()
        await cluster.shutdown()
    }
}
