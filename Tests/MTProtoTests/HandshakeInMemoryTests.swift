import MTProtoCrypto
import MTProtoSchema
import TL
import Testing
@testable import MTProto

/// Our client against our server in memory, with their own clocks and seeded entropy: both sides
/// must end with the same key and salt on every path (key types, RSA schemes, retry, fail).
@Suite("Handshake: client against server in memory")
struct HandshakeInMemoryTests {
    @Test("a permanent key under RSA_PAD: same key and salt on both sides, clock offset learnt")
    func permanentKey() throws {
        var pair = HandshakePair()
        let (client, server) = try pair.run()
        #expect(client.authKey == server.authKey)
        #expect(client.authKey.id == server.authKey.id)
        #expect(client.serverSalt == server.serverSalt)
        #expect(client.lifetime == .permanent && server.lifetime == .permanent)
        #expect(client.dcID == 2 && server.dcID == 2)
        // The server's clock is 42.25 s ahead; server_time is whole seconds.
        #expect(client.serverTimeOffset == (pair.serverNow.seconds.rounded(.down) - pair.clientNow.seconds))
        #expect(server.serverTimeOffset == 0)
        #expect(client.retryCount == 0 && server.retryCount == 0)
    }

    @Test("a temporary key under RSA_PAD (p_q_inner_data_temp_dc): both sides know when it expires")
    func temporaryKey() throws {
        var pair = HandshakePair(client: .init(serverKeys: [TestKeys.server.publicKey], dcID: 10002, keyType: .temporary(expiresIn: 3600)))
        let (client, server) = try pair.run()
        #expect(client.authKey == server.authKey)
        #expect(client.lifetime == .temporary(expiresAt: pair.clientNow + 3600))
        #expect(server.lifetime == .temporary(expiresAt: pair.serverNow + 3600))
        #expect(server.dcID == 10002)
    }

    @Test("the legacy scheme Telethon sends (p_q_inner_data under SHA-1 + raw RSA), permanent and temporary",
          arguments: [ClientHandshake.KeyType.permanent, .temporary(expiresIn: 600)])
    func legacyScheme(keyType: ClientHandshake.KeyType) throws {
        var pair = HandshakePair(client: .init(
            serverKeys: [TestKeys.server.publicKey], dcID: 2, keyType: keyType, innerDataEncryption: .legacy
        ))
        let (client, server) = try pair.run()
        #expect(client.authKey == server.authKey)
        #expect(client.serverSalt == server.serverSalt)
        // The legacy forms carry no DC id.
        #expect(server.dcID == nil && client.dcID == nil)
        if case .temporary = keyType {
            #expect(server.lifetime == .temporary(expiresAt: pair.serverNow + 600))
        } else {
            #expect(server.lifetime == .permanent)
        }
    }

    @Test("a server that refuses the legacy scheme rejects it as undecryptable")
    func legacySchemeRefused() {
        var pair = HandshakePair(
            client: .init(serverKeys: [TestKeys.server.publicKey], dcID: 2, innerDataEncryption: .legacy),
            server: .init(keys: [TestKeys.server], acceptsLegacyRSA: false)
        )
        #expect(throws: HandshakeError.rsaDecryptionFailed) { try pair.run() }
    }

    @Test("the client uses the first offered key it trusts among several")
    func severalKeys() throws {
        var pair = HandshakePair(
            client: .init(serverKeys: [TestKeys.server.publicKey], dcID: 2),
            server: .init(keys: [TestKeys.other, TestKeys.server])
        )
        let (client, server) = try pair.run()
        #expect(client.authKey == server.authKey)
    }

    @Test("dh_gen_retry: the client sends a new g_b with retry_id = auth_key_aux_hash and both agree on the final key",
          arguments: [1, 3])
    func forcedRetries(count: Int) throws {
        var pair = HandshakePair(server: .init(keys: [TestKeys.server], retryPolicy: .init(forcedRetries: count)))
        let (client, server) = try pair.run()
        #expect(client.retryCount == count && server.retryCount == count)
        #expect(client.authKey == server.authKey)
        #expect(client.serverSalt == server.serverSalt)
    }

    @Test("dh_gen_fail after the server's retry budget: the client reports the authentic refusal")
    func dhGenFail() {
        var pair = HandshakePair(server: .init(keys: [TestKeys.server], retryPolicy: .init(forcedRetries: 10, maxRetries: 2)))
        #expect(throws: HandshakeError.serverRejectedKey) { try pair.run() }
    }

    @Test("a client gives up after its own retry budget")
    func clientRetryBudget() {
        var pair = HandshakePair(
            client: .init(serverKeys: [TestKeys.server.publicKey], dcID: 2, maxRetries: 1),
            server: .init(keys: [TestKeys.server], retryPolicy: .init(forcedRetries: 3))
        )
        #expect(throws: HandshakeError.tooManyRetries(limit: 1)) { try pair.run() }
    }

    @Test("a key starting with a zero byte gets dh_gen_retry (the Telethon quirk), the next one dh_gen_ok")
    func leadingZeroKeyIsRetried() throws {
        // Search seeds for an exchange whose first key starts with 0x00 (1 in 256); the check below
        // proves the path was taken rather than assuming the seed.
        for seed in UInt64(0)..<2048 {
            var plain = HandshakePair(server: .init(keys: [TestKeys.server], retryPolicy: .init(retryKeysWithLeadingZeroByte: false)), seed: seed)
            let (first, _) = try plain.run()
            guard first.authKey.bytes[0] == 0 else { continue }
            var pair = HandshakePair(seed: seed)
            let (client, server) = try pair.run()
            #expect(server.retryCount == 1 && client.retryCount == 1)
            #expect(client.authKey == server.authKey)
            #expect(client.authKey != first.authKey)
            #expect(client.authKey.bytes[0] != 0)
            return
        }
        Issue.record("no seed below 2048 produced a key with a leading zero byte")
    }

    @Test("a req_pq_multi mid-exchange starts over on the same connection; an identical repeat gets an identical answer")
    func restartAndRepeat() throws {
        var server = ServerHandshake(configuration: .init(keys: [TestKeys.server]), entropy: SplitMixEntropy(seed: 3))
        var first = ClientHandshake(configuration: .init(serverKeys: [TestKeys.server.publicKey], dcID: 2), entropy: SplitMixEntropy(seed: 4))
        let now = UnixTime(seconds: 1_800_000_000)
        let reqPQ = first.start(now: now)
        guard case .send(let resPQ) = try server.receive(reqPQ, now: now) else { Issue.record("no resPQ"); return }
        guard case .send(let repeated) = try server.receive(reqPQ, now: now + 1) else { Issue.record("no repeat"); return }
        #expect(try PlainMessage(decoding: repeated).body == PlainMessage(decoding: resPQ).body)
        guard case .send(let reqDH) = try first.receive(resPQ, now: now) else { Issue.record("no req_DH_params"); return }
        _ = try server.receive(reqDH, now: now)

        // The first client gives up; a second one starts over on the same server machine.
        var pair = HandshakePair()
        pair.server = server
        let (client, serverResult) = try pair.run()
        #expect(client.authKey == serverResult.authKey)
    }

    @Test("a connection that keeps restarting is refused after maxAttempts")
    func tooManyAttempts() throws {
        var server = ServerHandshake(configuration: .init(keys: [TestKeys.server], maxAttempts: 2), entropy: SplitMixEntropy(seed: 3))
        let now = UnixTime(seconds: 1_800_000_000)
        for seed in UInt64(1)...2 {
            var client = ClientHandshake(configuration: .init(serverKeys: [TestKeys.server.publicKey], dcID: 2), entropy: SplitMixEntropy(seed: seed))
            _ = try server.receive(client.start(now: now), now: now)
        }
        var third = ClientHandshake(configuration: .init(serverKeys: [TestKeys.server.publicKey], dcID: 2), entropy: SplitMixEntropy(seed: 9))
        #expect(throws: HandshakeError.tooManyAttempts(limit: 2)) { try server.receive(third.start(now: now), now: now) }
    }

    @Test("client msg_ids follow the server's clock once it is known and stay divisible by 4; server ids are 1 mod 4")
    func messageIDs() throws {
        var pair = HandshakePair()
        let first = try PlainMessage(decoding: pair.client.start(now: pair.clientNow))
        #expect(first.messageID & 3 == 0)
        #expect(first.messageID >> 32 == Int64(pair.clientNow.seconds))
        guard case .send(let resPQ) = try pair.server.receive(first.encoded(), now: pair.serverNow) else { return }
        #expect(try PlainMessage(decoding: resPQ).messageID & 3 == 1)
        guard case .send(let reqDH) = try pair.client.receive(resPQ, now: pair.clientNow) else { return }
        guard case .send(let ok) = try pair.server.receive(reqDH, now: pair.serverNow) else { return }
        guard case .send(let setParams) = try pair.client.receive(ok, now: pair.clientNow) else { return }
        let id = try PlainMessage(decoding: setParams).messageID
        #expect(id & 3 == 0)
        #expect(id >> 32 == Int64(pair.serverNow.seconds))
    }
}
