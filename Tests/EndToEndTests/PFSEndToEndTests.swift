import Foundation
import Logging
import MTProto
import MTProtoCrypto
import Synchronization
import TLSchema
import TestDC
import Testing
@testable import MTProtoClient

/// Perfect forward secrecy against the in-process test DC: the client binds a temporary key with
/// auth.bindTempAuthKey before any call, runs every call on it, renews it before it expires,
/// keeps it across a restart, and loses it with its permanent key. The DC and the client read one
/// clock that the test moves (wall time plus an offset), so expiry is simulated, not waited for.
@Suite struct PFSEndToEndTests {
    static let lifetime: Int32 = 3600
    static let pfs = PFSConfiguration(expiresIn: lifetime, renewBefore: 300)
    static let getSelf = Api.functions.users.GetUsers(id: [.inputUserSelf(.init())])

    /// Wall time plus an offset the test moves; both ends read it.
    final class MovableClock: TelegramClock {
        private let offset = Mutex<Double>(0)
        func now() -> UnixTime { UnixTime(seconds: Date().timeIntervalSince1970 + offset.withLock { $0 }) }
        func sleep(for seconds: Double) async throws { try await Task.sleep(for: .seconds(max(0, seconds))) }
        func advance(_ seconds: Double) { offset.withLock { $0 += seconds } }
    }

    struct Setup {
        let dc: RunningTestDC
        let clock: MovableClock
        let keys: [RSAPublicKey]
        let table: DCTable

        static func start() async throws -> Setup {
            let clock = MovableClock()
            let quiet = Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }
            let running = try await TestDCServer.start(TestDCConfiguration(
                dcCount: 1, controlEnabled: false, clock: { clock.now().seconds }, logger: quiet))
            let keys = try running.publicKeyPEMs.values.map { pem throws(RSAError) in try RSAPublicKey(pem: pem) }
            let table = DCTable(Dictionary(uniqueKeysWithValues: running.dcs.map { (Int($0.key), [$0.value]) }))
            return Setup(dc: running, clock: clock, keys: keys, table: table)
        }

        func client(storage: any SessionStorage) -> TelegramClient {
            let configuration = TelegramClientConfiguration(
                apiID: 1, apiHash: "test-api-hash", serverKeys: keys, dcTable: table, initialDC: 1, deviceModel: "PFSEndToEndTests",
                defaultTimeout: 10, handshakeTimeout: 10, reconnect: Cluster.fastReconnect, pfs: PFSEndToEndTests.pfs)
            return TelegramClient(configuration: configuration, storage: storage, clock: clock, logger: Logger(label: "client") { _ in SwiftLogNoOpLogHandler() })
        }

        func logIn(_ client: TelegramClient) async throws {
            let running = dc
            _ = try await TelegramLogin(client: client).logIn(
                phoneNumber: alice.phone, code: { _ in running.loginCode(phone: alice.phone) ?? "" }, password: { _ in "" }, signUpName: nil)
        }

        /// The auth key of the DC's only live connection.
        var liveKeyID: Int64? { dc.core.liveConnections.compactMap(\.authKeyID).last }
        var binds: Int { dc.core.withState { $0.temporaryKeyBinds } }
    }

    /// What `client` saved by now: saves are written off its loop, after the calls that caused them.
    private func stored(_ storage: InMemorySessionStorage, by client: TelegramClient) async throws -> DCSessionState {
        await client.sessionSaved()
        return try #require(await storage.load()?.dcs[1])
    }

    @Test func callsRunOnATemporaryKeyBoundBeforeAnyCall() async throws {
        let setup = try await Setup.start()
        let storage = InMemorySessionStorage()
        let client = setup.client(storage: storage)
        try await setup.logIn(client)
        let users = try await client.invoke(Self.getSelf)
        #expect(users.map(\.userID) == [alice.id])

        let state = try await stored(storage, by: client)
        let permanent = try #require(state.authKey)
        let temporary = try #require(state.temporaryKey)
        #expect(temporary.key.id != permanent.id)
        #expect(setup.binds == 1)
        #expect(setup.liveKeyID == temporary.key.id, "the traffic runs on the temporary key")
        setup.dc.core.withState { dc in
            #expect(dc.permanentKeyID(boundTo: temporary.key.id, dc: 1) == permanent.id)
            // The login belongs to the permanent key; the temporary key acts for it.
            #expect(dc.authorizations[DCState.AuthKeyRef(dc: 1, keyID: permanent.id)] == alice.id)
            #expect(dc.authorizations[DCState.AuthKeyRef(dc: 1, keyID: temporary.key.id)] == nil)
            #expect(dc.authKeyIDs(dc: 1) == [permanent.id], "the temporary key is not a permanent one of the DC")
        }
        let statistics = try #require(await client.statistics()[1])
        #expect(statistics.keyExchanges == 2 && statistics.temporaryKeyBinds == 1)
        await client.close()
        try await setup.dc.shutdown()
    }

    @Test func theKeyIsRenewedBeforeAndAfterExpiryWithoutFailingCalls() async throws {
        let setup = try await Setup.start()
        let storage = InMemorySessionStorage()
        let client = setup.client(storage: storage)
        try await setup.logIn(client)
        let first = try #require(try await stored(storage, by: client).temporaryKey)
        let permanent = try #require(try await stored(storage, by: client).authKey)

        // Inside the renewal margin: the next call waits for a new key, then runs.
        setup.clock.advance(Double(Self.lifetime) - 200)
        #expect(try await client.invoke(Self.getSelf).map(\.userID) == [alice.id])
        let second = try #require(try await stored(storage, by: client).temporaryKey)
        #expect(second.key.id != first.key.id)
        #expect(setup.binds == 2)
        #expect(setup.liveKeyID == second.key.id)

        // Long past expiry (the DC forgot the key): renewed on the next call all the same.
        setup.clock.advance(Double(Self.lifetime) * 3)
        #expect(try await client.invoke(Self.getSelf).map(\.userID) == [alice.id])
        let third = try #require(try await stored(storage, by: client).temporaryKey)
        #expect(third.key.id != second.key.id && setup.binds == 3)
        #expect(setup.dc.core.withState { $0.authKey(id: first.key.id, dc: 1, now: setup.clock.now().seconds) } == nil, "the DC forgot the expired key")

        let statistics = try #require(await client.statistics()[1])
        #expect(statistics.temporaryKeyRenewals >= 1)
        // One permanent key all along, never a new login.
        #expect(setup.dc.core.withState { $0.authKeyIDs(dc: 1) } == [permanent.id])
        #expect(try await stored(storage, by: client).authKey == permanent)
        #expect(setup.dc.core.withState { $0.handlerRuns["auth.signIn"] } == 1)
        await client.close()
        try await setup.dc.shutdown()
    }

    @Test func aRestartReusesTheStoredTemporaryKey() async throws {
        let setup = try await Setup.start()
        let storage = InMemorySessionStorage()
        let first = setup.client(storage: storage)
        try await setup.logIn(first)
        let key = try #require(try await stored(storage, by: first).temporaryKey)
        await first.close()

        let second = setup.client(storage: storage)
        #expect(try await second.invoke(Self.getSelf).map(\.userID) == [alice.id])
        #expect(setup.binds == 1, "no new binding")
        #expect(setup.liveKeyID == key.key.id)
        let statistics = try #require(await second.statistics()[1])
        #expect(statistics.keyExchanges == 0)
        await second.close()
        try await setup.dc.shutdown()
    }

    /// A second binding of the same permanent key (another process on a copy of the session, as in
    /// a lease takeover) unbinds this client's temporary key: the DC answers AUTH_KEY_PERM_EMPTY.
    /// That is no lost login: the client binds a new temporary key and the call, which did not run,
    /// goes again, with no error, no new login and the account not marked.
    @Test func anotherBindingOfThePermanentKeyIsRepairedWithoutAnError() async throws {
        let setup = try await Setup.start()
        let storage = InMemorySessionStorage()
        let first = setup.client(storage: storage)
        try await setup.logIn(first)
        let original = try #require(try await stored(storage, by: first).temporaryKey)

        var copied = try #require(await storage.load())
        copied.dcs[1]?.temporaryKey = nil
        let second = setup.client(storage: InMemorySessionStorage(copied))
        #expect(try await second.invoke(Self.getSelf).map(\.userID) == [alice.id])
        #expect(setup.binds == 2)
        #expect(setup.dc.core.withState { $0.permanentKeyID(boundTo: original.key.id, dc: 1) } == nil, "the second binding replaced the first")

        #expect(try await first.invoke(Self.getSelf).map(\.userID) == [alice.id])
        let renewed = try #require(try await stored(storage, by: first).temporaryKey)
        #expect(renewed.key.id != original.key.id && setup.binds == 3)
        let statistics = try #require(await first.statistics()[1])
        #expect(statistics.temporaryKeyBindingsLost == 1)
        #expect(await first.isAuthorized)
        #expect(setup.dc.core.withState { $0.handlerRuns["auth.signIn"] } == 1, "no new login")
        await first.close()
        await second.close()
        try await setup.dc.shutdown()
    }

    @Test func aRevokedPermanentKeyTakesTheTemporaryKeyWithIt() async throws {
        let setup = try await Setup.start()
        let storage = InMemorySessionStorage()
        let client = setup.client(storage: storage)
        try await setup.logIn(client)
        let permanent = try #require(try await stored(storage, by: client).authKey)

        // Logged out (the authorization of the permanent key revoked): the temporary key has none either.
        setup.dc.core.withState { $0.revokeAuthorization(dc: 1, keyID: permanent.id) }
        do throws(TelegramError) {
            _ = try await client.invoke(Self.getSelf)
            Issue.record("a call succeeded after the permanent key was logged out")
        } catch {
            #expect(error.rpcError?.message == "AUTH_KEY_UNREGISTERED")
        }

        // The permanent key itself destroyed: the temporary key goes (-404), a new one cannot be
        // bound, and the client says so instead of making a new permanent key behind the account's back.
        setup.dc.core.withState { $0.dropAuthKey(dc: 1, keyID: permanent.id) }
        // The call that meets the -404 was in flight on the forgotten key: it may have run before
        // the DC forgot it, so it fails in doubt; from then on the refused binding is the answer.
        do throws(TelegramError) {
            _ = try await client.invoke(Self.getSelf)
            Issue.record("a call succeeded on a forgotten temporary key")
        } catch {
            switch error {
            case .inDoubt, .handshakeFailed: break
            default: Issue.record("expected in doubt or a failed binding, got \(error)")
            }
        }
        do throws(TelegramError) {
            _ = try await client.invoke(Self.getSelf)
            Issue.record("a call succeeded without a permanent key")
        } catch {
            guard case .handshakeFailed(_, let reason) = error else {
                Issue.record("expected a failed binding, got \(error)")
                return
            }
            #expect(reason.contains("ENCRYPTED_MESSAGE_INVALID"))
        }
        #expect(try await stored(storage, by: client).authKey?.id == permanent.id)
        #expect(try await stored(storage, by: client).temporaryKey == nil)
        await client.close()
        try await setup.dc.shutdown()
    }
}
