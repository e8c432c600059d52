import MTProtoCrypto
import MTProtoSchema
import TL
import Testing
@testable import MTProto

/// The server against a hostile client: a hand-driven client sends each message with one field
/// wrong, and the server must refuse it with that check's error, never crash nor hand out a key.
@Suite("ServerHandshake against a hostile client")
struct ServerHandshakeTests {
    /// A client made by hand, so any field of any message can be forged.
    struct ManualClient {
        var server: ServerHandshake
        let now = UnixTime(seconds: 1_759_500_000)
        let nonce = TLInt128(low: 0x1111_2222_3333_4444, high: 0x5555_6666_7777_8888)
        let newNonce = TLInt256(first: TLInt128(low: 1, high: 2), second: TLInt128(low: 3, high: 4))
        var serverNonce = TLInt128.zero
        var pq: (pq: UInt64, p: UInt64, q: UInt64) = (0, 0, 0)
        var gA: [UInt8] = []
        var nextID: Int64 = 0x6900_0000_0000_0000

        init(configuration: ServerHandshake.Configuration = .init(keys: [TestKeys.server], dcIDs: [2, 10002])) {
            server = ServerHandshake(configuration: configuration, entropy: SplitMixEntropy(seed: 5))
        }

        var nonces: ExchangeNonces { ExchangeNonces(nonce: nonce, serverNonce: serverNonce, newNonce: newNonce) }

        mutating func message(_ body: some TLEncodable) -> [UInt8] { message(body.serialized()) }

        mutating func message(_ body: [UInt8]) -> [UInt8] {
            nextID += 4
            return PlainMessage(messageID: nextID, body: body).encoded()
        }

        func bytes(_ value: UInt64) -> [UInt8] { PQFactorization.bigEndianBytes(value) }

        /// Sends req_pq_multi and reads the challenge.
        mutating func sendReqPQ() throws {
            let packet = message(MT.functions.ReqPqMulti(nonce: nonce))
            guard case .send(let answer) = try server.receive(packet, now: now),
                  case .resPQ(let resPQ) = try MT.ResPQ(serialized: PlainMessage(decoding: answer).body)
            else { throw ClientError.unexpectedAnswer }
            serverNonce = resPQ.serverNonce
            let value = resPQ.pq.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let factors = try PQFactorization.factor(value)
            pq = (value, factors.p, factors.q)
        }

        func innerData(dc: Int32? = 2, expiresIn: Int32? = nil) -> PQInnerData {
            PQInnerData(
                pq: bytes(pq.pq), p: bytes(pq.p), q: bytes(pq.q),
                nonce: nonce, serverNonce: serverNonce, newNonce: newNonce, dc: dc, expiresIn: expiresIn
            )
        }

        func encrypted(_ inner: PQInnerData, legacy: Bool = false, key: RSAPublicKey = TestKeys.server.publicKey) throws -> [UInt8] {
            var entropy = SplitMixEntropy(seed: 17)
            let data = inner.boxed.serialized()
            return legacy ? try key.encryptWithOldScheme(data, entropy: &entropy) : try key.encryptWithRSAPad(data, entropy: &entropy)
        }

        mutating func reqDHParams(
            nonce: TLInt128? = nil, serverNonce: TLInt128? = nil, p: [UInt8]? = nil, q: [UInt8]? = nil,
            fingerprint: Int64 = TestKeys.server.publicKey.fingerprint, encryptedData: [UInt8]
        ) -> [UInt8] {
            message(MT.functions.ReqDHParams(
                nonce: nonce ?? self.nonce, serverNonce: serverNonce ?? self.serverNonce,
                p: p ?? bytes(pq.p), q: q ?? bytes(pq.q), publicKeyFingerprint: fingerprint, encryptedData: encryptedData
            ))
        }

        /// Sends an honest req_DH_params and reads g_a from the answer.
        mutating func sendReqDHParams(legacy: Bool = false) throws {
            try sendReqPQ()
            let packet = reqDHParams(encryptedData: try encrypted(innerData(dc: legacy ? nil : 2), legacy: legacy))
            guard case .send(let answer) = try server.receive(packet, now: now),
                  case .serverDHParamsOk(let ok) = try MT.Server_DH_Params(serialized: PlainMessage(decoding: answer).body)
            else { throw ClientError.unexpectedAnswer }
            let (key, iv) = HandshakeDerivations.temporaryAESKeyAndIV(nonces)
            let inner = try InnerDataCipher.open(ok.encryptedAnswer, key: key, iv: iv, step: .serverDHInnerData) {
                (bytes) throws(HandshakeError) in
                try HandshakeCodec.decodePrefix(MT.Server_DH_inner_data.self, of: bytes, step: .serverDHInnerData)
            }
            guard case .serverDHInnerData(let data) = inner else { throw ClientError.unexpectedAnswer }
            gA = data.gA
        }

        /// set_client_DH_params around any client_DH_inner_data fields; `hash` overrides its SHA-1.
        mutating func setClientDHParams(
            innerNonce: TLInt128? = nil, innerServerNonce: TLInt128? = nil, retryID: Int64 = 0, gB: [UInt8]? = nil,
            hash: [UInt8]? = nil, outerNonce: TLInt128? = nil
        ) throws -> [UInt8] {
            let group = ServerHandshake.defaultGroup
            let inner = MT.Client_DH_Inner_Data.clientDHInnerData(.init(
                nonce: innerNonce ?? nonce, serverNonce: innerServerNonce ?? serverNonce, retryId: retryID,
                gB: gB ?? group.publicValue(secret: [UInt8](repeating: 0x24, count: 256))
            )).serialized()
            var plaintext = (hash ?? Hashing.sha1(inner)) + inner
            plaintext += [UInt8](repeating: 0, count: (16 - plaintext.count % 16) % 16)
            let (key, iv) = HandshakeDerivations.temporaryAESKeyAndIV(nonces)
            try AESIGE.encrypt(&plaintext, key: key, iv: iv)
            return message(MT.functions.SetClientDHParams(nonce: outerNonce ?? nonce, serverNonce: serverNonce, encryptedData: plaintext))
        }

        enum ClientError: Error { case unexpectedAnswer }
    }

    static let otherNonce = TLInt128(low: 0xAAAA, high: 0xBBBB)

    @Test("an honest hand-made client gets a key, by RSA_PAD or the legacy scheme")
    func honestClient() throws {
        for legacy in [false, true] {
            var client = ManualClient()
            try client.sendReqDHParams(legacy: legacy)
            guard case .sendAndComplete(_, let result) = try client.server.receive(client.setClientDHParams(), now: client.now) else {
                Issue.record("no key")
                continue
            }
            let expected = try ServerHandshake.defaultGroup.sharedKey(peerPublicValue: client.gA, secret: [UInt8](repeating: 0x24, count: 256))
            #expect(result.authKey.bytes == expected)
        }
    }

    @Test("req_DH_params: nonces, proof of work, fingerprint, RSA, inner data, DC, lifetime")
    func reqDHParams() throws {
        let cases: [(HandshakeError, (inout ManualClient) throws -> [UInt8])] = [
            (.nonceMismatch(.reqDHParams), { try $0.reqDHParams(nonce: Self.otherNonce, encryptedData: $0.encrypted($0.innerData())) }),
            (.serverNonceMismatch(.reqDHParams), { try $0.reqDHParams(serverNonce: Self.otherNonce, encryptedData: $0.encrypted($0.innerData())) }),
            (.proofOfWorkMismatch, { c in try c.reqDHParams(p: c.bytes(c.pq.q), q: c.bytes(c.pq.p), encryptedData: c.encrypted(c.innerData())) }),
            (.proofOfWorkMismatch, { c in try c.reqDHParams(p: c.bytes(c.pq.p + 2), encryptedData: c.encrypted(c.innerData())) }),
            (.proofOfWorkMismatch, { c in try c.reqDHParams(p: [UInt8](repeating: 1, count: 9), encryptedData: c.encrypted(c.innerData())) }),
            (.unknownFingerprint(UInt64(bitPattern: TestKeys.other.publicKey.fingerprint)), { c in
                try c.reqDHParams(fingerprint: TestKeys.other.publicKey.fingerprint, encryptedData: c.encrypted(c.innerData()))
            }),
            (.rsaDecryptionFailed, { c in c.reqDHParams(encryptedData: [UInt8](repeating: 0x33, count: 256)) }),
            (.rsaDecryptionFailed, { c in c.reqDHParams(encryptedData: [UInt8](repeating: 0x33, count: 255)) }),
            (.rsaDecryptionFailed, { c in try c.reqDHParams(encryptedData: c.encrypted(c.innerData(), key: TestKeys.other.publicKey)) }),
            (.rsaDecryptionFailed, { c in try c.reqDHParams(encryptedData: c.encrypted(c.innerData(), legacy: true, key: TestKeys.other.publicKey)) }),
            (.nonceMismatch(.pqInnerData), { c in
                var inner = c.innerData()
                inner.nonce = Self.otherNonce
                return try c.reqDHParams(encryptedData: c.encrypted(inner))
            }),
            (.serverNonceMismatch(.pqInnerData), { c in
                var inner = c.innerData()
                inner.serverNonce = Self.otherNonce
                return try c.reqDHParams(encryptedData: c.encrypted(inner, legacy: true))
            }),
            (.proofOfWorkMismatch, { c in
                var inner = c.innerData()
                inner.pq = c.bytes(c.pq.pq + 2)
                return try c.reqDHParams(encryptedData: c.encrypted(inner))
            }),
            (.dcMismatch(accepted: [2, 10002], received: 4), { c in try c.reqDHParams(encryptedData: c.encrypted(c.innerData(dc: 4))) }),
            (.temporaryKeyLifetimeInvalid(0), { c in try c.reqDHParams(encryptedData: c.encrypted(c.innerData(expiresIn: 0))) }),
            (.temporaryKeyLifetimeInvalid(-5), { c in try c.reqDHParams(encryptedData: c.encrypted(c.innerData(dc: nil, expiresIn: -5), legacy: true)) }),
            (.malformedMessage(.pqInnerData), { c in
                // Validly encrypted, but the plaintext is no P_Q_inner_data.
                var entropy = SplitMixEntropy(seed: 3)
                let junk = try TestKeys.server.publicKey.encryptWithRSAPad([UInt8](repeating: 0x77, count: 100), entropy: &entropy)
                return c.reqDHParams(encryptedData: junk)
            }),
            (.unexpectedMessage(constructor: MT.functions.SetClientDHParams.constructorID, expected: .reqDHParams), { c in
                c.message(MT.functions.SetClientDHParams(nonce: c.nonce, serverNonce: c.serverNonce, encryptedData: []))
            }),
            (.malformedMessage(.reqDHParams), { c in
                var body = MT.functions.ReqDHParams(
                    nonce: c.nonce, serverNonce: c.serverNonce, p: [1], q: [2], publicKeyFingerprint: 0, encryptedData: []
                ).serialized()
                body.removeLast(4)
                return c.message(body)
            }),
        ]
        for (expected, forge) in cases {
            var client = ManualClient()
            try client.sendReqPQ()
            let packet = try forge(&client)
            #expect(throws: expected) { try client.server.receive(packet, now: client.now) }
        }
    }

    @Test("set_client_DH_params: nonces, inner hash and padding, retry_id, g_b range")
    func setClientDHParams() throws {
        let prime = ServerHandshake.defaultGroup.prime
        var smallValue = [UInt8](repeating: 0, count: 256)
        smallValue[10] = 1
        let cases: [(HandshakeError, (inout ManualClient) throws -> [UInt8])] = [
            (.nonceMismatch(.setClientDHParams), { try $0.setClientDHParams(outerNonce: Self.otherNonce) }),
            (.nonceMismatch(.clientDHInnerData), { try $0.setClientDHParams(innerNonce: Self.otherNonce) }),
            (.serverNonceMismatch(.clientDHInnerData), { try $0.setClientDHParams(innerServerNonce: Self.otherNonce) }),
            (.innerHashMismatch(.clientDHInnerData), { try $0.setClientDHParams(hash: [UInt8](repeating: 9, count: 20)) }),
            (.retryIDMismatch, { try $0.setClientDHParams(retryID: 42) }),
            (.gBOutOfRange, { try $0.setClientDHParams(gB: [1]) }),
            (.gBOutOfRange, { try $0.setClientDHParams(gB: prime) }),
            (.gBOutOfRange, { try $0.setClientDHParams(gB: smallValue) }),
            (.encryptedDataNotBlockAligned(.clientDHInnerData, byteCount: 20), { c in
                c.message(MT.functions.SetClientDHParams(nonce: c.nonce, serverNonce: c.serverNonce, encryptedData: [UInt8](repeating: 1, count: 20)))
            }),
            (.unexpectedMessage(constructor: MT.functions.ReqDHParams.constructorID, expected: .setClientDHParams), { c in
                c.reqDHParams(encryptedData: [])
            }),
        ]
        for (expected, forge) in cases {
            var client = ManualClient()
            try client.sendReqDHParams()
            let packet = try forge(&client)
            #expect(throws: expected) { try client.server.receive(packet, now: client.now) }
        }
    }

    @Test("after dh_gen_retry the server wants retry_id = auth_key_aux_hash of the rejected key, not 0")
    func retryID() throws {
        var client = ManualClient(configuration: .init(keys: [TestKeys.server], retryPolicy: .init(forcedRetries: 1)))
        try client.sendReqDHParams()
        let secret = [UInt8](repeating: 0x24, count: 256)
        guard case .send = try client.server.receive(client.setClientDHParams(), now: client.now) else {
            Issue.record("no dh_gen_retry")
            return
        }
        // The identical request again gets the identical answer (the spec's resend rule); a new g_b
        // with the first attempt's retry_id is refused.
        var repeated = client
        guard case .send(let again) = try repeated.server.receive(repeated.setClientDHParams(), now: repeated.now) else {
            Issue.record("no repeated answer")
            return
        }
        #expect(try HandshakeCodec.constructorID(of: PlainMessage(decoding: again).body) == MT.Set_client_DH_params_answer.DhGenRetry.constructorID)
        var stale = client
        let staleGB = ServerHandshake.defaultGroup.publicValue(secret: [UInt8](repeating: 0x26, count: 256))
        #expect(throws: HandshakeError.retryIDMismatch) { try stale.server.receive(stale.setClientDHParams(gB: staleGB), now: stale.now) }
        let rejected = try AuthKey(ServerHandshake.defaultGroup.sharedKey(peerPublicValue: client.gA, secret: secret))
        let retryID = HandshakeDerivations.retryID(after: rejected)
        let newB = [UInt8](repeating: 0x25, count: 256)
        let gB = ServerHandshake.defaultGroup.publicValue(secret: newB)
        guard case .sendAndComplete(_, let result) = try client.server.receive(client.setClientDHParams(retryID: retryID, gB: gB), now: client.now) else {
            Issue.record("no dh_gen_ok")
            return
        }
        #expect(result.retryCount == 1)
        #expect(try result.authKey.bytes == ServerHandshake.defaultGroup.sharedKey(peerPublicValue: client.gA, secret: newB))
    }

    @Test("client msg_ids must be divisible by 4")
    func messageIDParity() throws {
        var client = ManualClient()
        let packet = PlainMessage(messageID: 0x6900_0000_0000_0002, body: MT.functions.ReqPqMulti(nonce: client.nonce).serialized()).encoded()
        #expect(throws: HandshakeError.invalidMessageID(0x6900_0000_0000_0002)) { try client.server.receive(packet, now: client.now) }
    }

    @Test("the first message must be req_pq or req_pq_multi; both are answered")
    func firstMessage() throws {
        var client = ManualClient()
        let early = client.reqDHParams(encryptedData: [])
        #expect(throws: HandshakeError.unexpectedMessage(constructor: MT.functions.ReqDHParams.constructorID, expected: .reqPQ)) {
            try client.server.receive(early, now: client.now)
        }
        var legacy = ManualClient()
        let reqPQ = legacy.message(MT.functions.ReqPq(nonce: legacy.nonce))
        guard case .send(let answer) = try legacy.server.receive(reqPQ, now: legacy.now) else { Issue.record("no resPQ"); return }
        guard case .resPQ(let resPQ) = try MT.ResPQ(serialized: PlainMessage(decoding: answer).body) else { return }
        #expect(resPQ.nonce == legacy.nonce)
    }

    @Test("random bytes, truncations and a flipped byte anywhere in a request, at each step: a typed error, never a crash")
    func garbage() throws {
        var random = SplitMixEntropy(seed: 77)
        for step in 0..<3 {
            var base = ManualClient()
            let request: [UInt8]
            switch step {
            case 0:
                request = base.message(MT.functions.ReqPqMulti(nonce: base.nonce))
            case 1:
                try base.sendReqPQ()
                request = base.reqDHParams(encryptedData: try base.encrypted(base.innerData()))
            default:
                try base.sendReqDHParams()
                request = try base.setClientDHParams()
            }
            for length in 0..<request.count {
                var server = base.server
                #expect(throws: HandshakeError.self) { try server.receive(Array(request.prefix(length)), now: base.now) }
            }
            for _ in 0..<200 {
                var server = base.server
                let packet = [UInt8](repeating: 0, count: 8) + random.bytes(Int(random.bytes(1)[0]) * 3)
                #expect(throws: HandshakeError.self) { try server.receive(packet, now: base.now) }
            }
            // Every field of req_DH_params and set_client_DH_params is checked (req_pq_multi's only
            // field is the client's own nonce, so a flipped copy is just another request).
            if step > 0 {
                let message = try PlainMessage(decoding: request)
                for index in message.body.indices {
                    var server = base.server
                    var body = message.body
                    body[index] ^= 0x08
                    let packet = PlainMessage(messageID: message.messageID + 4, body: body).encoded()
                    #expect(throws: HandshakeError.self, "byte \(index) of step \(step)") { try server.receive(packet, now: base.now) }
                }
            }
        }
    }
}
