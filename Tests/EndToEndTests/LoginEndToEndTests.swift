import MTProto
import TLSchema
import TestDC
import Testing
import class MTProtoClient.TelegramClient
@testable import MTProtoClient

@Suite struct LoginEndToEndTests {
    @Test func connectRunsTheKeyExchangeAndStoresTheKey() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let client = cluster.client(storage: storage)
        try await client.connect()
        await client.sessionSaved()
        let stored = try #require(await storage.load())
        #expect(stored.homeDC == 1)
        #expect(stored.dcs[1]?.authKey != nil)
        #expect(stored.isAuthorized == false)
        #expect(await client.knownDCs.dcIDs == [1, 2, 3])
        #expect(await client.statistics()[1]?.keyExchanges == 1)
        await client.close()

        // A second client reuses the stored key: no new exchange, same key id.
        let again = cluster.client(storage: storage)
        try await again.connect()
        #expect(try #require(await storage.load()).dcs[1]?.authKey?.id == stored.dcs[1]?.authKey?.id)
        #expect(await again.statistics()[1]?.keyExchanges == 0)
        await again.close()
        await cluster.shutdown()
    }

    @Test func logInWithCodeThenCallAuthorizedMethods() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        try await client.connect()
        let user = try await cluster.logIn(client, phone: alice.phone)
        #expect(user.userID == alice.id)
        #expect(await client.isAuthorized)
        #expect(await client.userID == alice.id)
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        await client.close()
        await cluster.shutdown()
    }

    @Test func twoFactorLoginChecksThePasswordWithSRP() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        await #expect {
            _ = try await cluster.logIn(client, phone: bob.phone, password: "not-it")
        } throws: { error in
            guard case LoginError.passwordInvalid = error else { return false }
            return true
        }
        let user = try await cluster.logIn(client, phone: bob.phone, password: bob.password)
        #expect(user.userID == bob.id)
        #expect(await client.isAuthorized)
        await client.close()
        await cluster.shutdown()
    }

    @Test func aNewNumberSignsUp() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        await #expect {
            _ = try await cluster.logIn(client, phone: "15557777")
        } throws: { error in
            guard case LoginError.signUpRequired = error else { return false }
            return true
        }
        let user = try await cluster.logIn(client, phone: "15557778", signUpName: ("New", "Person"))
        #expect(user.userID > 1005)
        #expect(await client.isAuthorized)
        await client.close()
        await cluster.shutdown()
    }

    @Test func botLogsInWithItsToken() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        let login = TelegramLogin(client: client)
        await #expect {
            _ = try await login.signInBot(token: "1005:wrong")
        } throws: { error in
            guard case LoginError.botTokenInvalid = error else { return false }
            return true
        }
        let bot = try await login.signInBot(token: "1005:test-bot-token")
        #expect(bot.userID == 1005)
        #expect(await client.isAuthorized)
        await client.close()
        await cluster.shutdown()
    }

    @Test func phoneMigrateMovesTheHomeDCDuringLogin() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let client = cluster.client(storage: storage)
        try await client.connect()
        let user = try await cluster.logIn(client, phone: carol.phone)
        #expect(user.userID == carol.id)
        #expect(await client.homeDC == carol.home)
        await client.sessionSaved()
        let stored = try #require(await storage.load())
        #expect(stored.homeDC == carol.home)
        #expect(stored.dcs[carol.home]?.isAuthorized == true)
        #expect(stored.dcs[1]?.isAuthorized != true)
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [carol.id])
        await client.close()
        await cluster.shutdown()
    }
}
