import MTProtoCrypto
import MTProtoSchema
import TL
import Testing
@testable import MTProto

/// The client against a hostile server: every check of `mtproto/auth_key` and the security guidelines
/// is fed a message that violates it, and must fail with its own error, never crash nor succeed.
@Suite("ClientHandshake against a hostile server")
struct ClientHandshakeTests {
    /// A client driven to a given step by an honest server, plus what a hostile server would need to
    /// forge the next message (the nonces; new_nonce recovered with the server's private key).
    struct Scene {
        var client: ClientHandshake
        var server: ServerHandshake
        let now = UnixTime(seconds: 1_759_500_000)
        var nonce = TLInt128.zero
        var serverNonce = TLInt128.zero
        var newNonce = TLInt256.zero
        var nextServerID: Int64 = 0x6900_0000_0000_0001

        init(seed: UInt64 = 11) {
            client = ClientHandshake(configuration: .init(serverKeys: [TestKeys.server.publicKey], dcID: 2), entropy: SplitMixEntropy(seed: seed))
            server = ServerHandshake(configuration: .init(keys: [TestKeys.server]), entropy: SplitMixEntropy(seed: seed + 1))
        }

        var nonces: ExchangeNonces { ExchangeNonces(nonce: nonce, serverNonce: serverNonce, newNonce: newNonce) }

        /// An unencrypted message from "the server" (odd msg_id).
        mutating func message(_ body: some TLEncodable) -> [UInt8] { message(body.serialized()) }

        mutating func message(_ body: [UInt8]) -> [UInt8] {
            nextServerID += 4
            return PlainMessage(messageID: nextServerID, body: body).encoded()
        }

        /// The client has sent req_pq_multi; returns the honest resPQ.
        mutating func awaitingResPQ() throws -> [UInt8] {
            let request = client.start(now: now)
            nonce = try MT.functions.ReqPqMulti(serialized: PlainMessage(decoding: request).body).nonce
            guard case .send(let resPQ) = try server.receive(request, now: now) else { throw SceneError.noAnswer }
            return resPQ
        }

        /// The client has sent req_DH_params; returns the honest server_DH_params_ok.
        mutating func awaitingServerDHParams() throws -> [UInt8] {
            let resPQ = try awaitingResPQ()
            guard case .send(let request) = try client.receive(resPQ, now: now) else { throw SceneError.noAnswer }
            let reqDH = try MT.functions.ReqDHParams(serialized: PlainMessage(decoding: request).body)
            serverNonce = reqDH.serverNonce
            let inner = try HandshakeCodec.decodePrefix(
                MT.P_Q_inner_data.self, of: TestKeys.server.decryptRSAPad(reqDH.encryptedData), step: .pqInnerData
            ).0
            newNonce = PQInnerData(inner).newNonce
            guard case .send(let answer) = try server.receive(request, now: now) else { throw SceneError.noAnswer }
            return answer
        }

        /// The client has sent set_client_DH_params; returns the honest dh_gen_ok.
        mutating func awaitingDHGen() throws -> [UInt8] {
            let ok = try awaitingServerDHParams()
            guard case .send(let request) = try client.receive(ok, now: now) else { throw SceneError.noAnswer }
            guard case .sendAndComplete(let answer, _) = try server.receive(request, now: now) else { throw SceneError.noAnswer }
            return answer
        }

        /// server_DH_params_ok around any inner bytes, sealed with this exchange's tmp_aes_key/iv;
        /// `hash` and `padding` override SHA1(inner) and the 0-15 random bytes.
        mutating func serverDHParamsOK(inner: [UInt8], hash: [UInt8]? = nil, padding: [UInt8]? = nil) throws -> [UInt8] {
            let (key, iv) = HandshakeDerivations.temporaryAESKeyAndIV(nonces)
            var plaintext = (hash ?? Hashing.sha1(inner)) + inner
            plaintext += padding ?? [UInt8](repeating: 0xAB, count: (16 - plaintext.count % 16) % 16)
            try AESIGE.encrypt(&plaintext, key: key, iv: iv)
            return message(MT.Server_DH_Params.serverDHParamsOk(.init(nonce: nonce, serverNonce: serverNonce, encryptedAnswer: plaintext)))
        }

        func innerData(g: Int32 = 3, prime: [UInt8] = DHGroup.telegramPrime, gA: [UInt8]? = nil, nonce: TLInt128? = nil, serverNonce: TLInt128? = nil) -> [UInt8] {
            let group = try? DHGroup.telegram(generator: 3)
            let honestGA = group?.publicValue(secret: [UInt8](repeating: 0x42, count: 256)) ?? []
            return MT.Server_DH_inner_data.serverDHInnerData(.init(
                nonce: nonce ?? self.nonce,
                serverNonce: serverNonce ?? self.serverNonce,
                g: g,
                dhPrime: prime,
                gA: gA ?? honestGA,
                serverTime: 1_759_500_000
            )).serialized()
        }

        enum SceneError: Error { case noAnswer }
    }

    static let otherNonce = TLInt128(low: 0x0123_4567_89AB_CDEF, high: 0xFEDC_BA98_7654_3210)

    // MARK: Envelope

    @Test("a packet that is not an unencrypted message", arguments: [
        ([UInt8](repeating: 0, count: 12), HandshakeError.malformedEnvelope(.tooShort(byteCount: 12))),
        ([1] + [UInt8](repeating: 0, count: 27), HandshakeError.malformedEnvelope(.notPlain)),
        ([UInt8](repeating: 0, count: 16) + [9, 0, 0, 0] + [UInt8](repeating: 0, count: 8),
         HandshakeError.malformedEnvelope(.lengthMismatch(declared: 9, available: 8))),
        ([UInt8](repeating: 0, count: 16) + [6, 0, 0, 0] + [UInt8](repeating: 0, count: 6),
         HandshakeError.malformedEnvelope(.bodyNotWordAligned(length: 6))),
    ])
    func envelope(packet: [UInt8], expected: HandshakeError) throws {
        var scene = Scene()
        _ = try scene.awaitingResPQ()
        #expect(throws: expected) { try scene.client.receive(packet, now: scene.now) }
    }

    @Test("a server msg_id with even parity")
    func evenMessageID() throws {
        var scene = Scene()
        let resPQ = try PlainMessage(decoding: scene.awaitingResPQ())
        let forged = PlainMessage(messageID: resPQ.messageID + 1, body: resPQ.body).encoded()
        #expect(throws: HandshakeError.invalidMessageID(resPQ.messageID + 1)) { try scene.client.receive(forged, now: scene.now) }
    }

    // MARK: resPQ

    @Test("resPQ: wrong nonce, no trusted key, bad pq, wrong type, truncated")
    func resPQ() throws {
        func resPQ(nonce: TLInt128? = nil, pq: [UInt8]? = nil, fingerprints: [Int64]? = nil, _ scene: inout Scene) -> [UInt8] {
            let body = MT.ResPQ.resPQ(.init(
                nonce: nonce ?? scene.nonce,
                serverNonce: Self.otherNonce,
                pq: pq ?? [0x17, 0xED, 0x48, 0x94, 0x1A, 0x08, 0xF9, 0x81],
                serverPublicKeyFingerprints: fingerprints ?? [TestKeys.server.publicKey.fingerprint]
            ))
            return scene.message(body)
        }
        let cases: [(HandshakeError, (inout Scene) -> [UInt8])] = [
            (.nonceMismatch(.resPQ), { resPQ(nonce: Self.otherNonce, &$0) }),
            (.noKnownServerKey(offered: [0x1234, UInt64(bitPattern: TestKeys.other.publicKey.fingerprint)]),
             { resPQ(fingerprints: [0x1234, TestKeys.other.publicKey.fingerprint], &$0) }),
            (.pqNotFactorable, { resPQ(pq: [0x7F, 0xFF, 0xFF, 0xFF], &$0) }),  // 2^31 - 1 is prime
            (.pqNotFactorable, { resPQ(pq: [0x0D, 0xBC, 0x1D, 0xB5, 0x6F, 0x2A, 0x39, 0x09], &$0) }),  // 1000000007^2
            (.pqNotFactorable, { resPQ(pq: [0x1E], &$0) }),  // 30 = 2 * 3 * 5
            (.pqOutOfRange(byteCount: 9), { resPQ(pq: [UInt8](repeating: 0x11, count: 9), &$0) }),
            (.pqOutOfRange(byteCount: 0), { resPQ(pq: [], &$0) }),
            (.unexpectedMessage(constructor: MT.Set_client_DH_params_answer.DhGenOk.constructorID, expected: .resPQ),
             { $0.message(DHGenVerdict.ok.answer(nonce: $0.nonce, serverNonce: Self.otherNonce, newNonceHash: .zero)) }),
            (.malformedMessage(.resPQ), { $0.message(Array(resPQ(&$0).dropFirst(20).dropLast(4))) }),
            (.malformedMessage(.resPQ), { $0.message(resPQ(&$0).dropFirst(20) + [0, 0, 0, 0]) }),
        ]
        for (expected, forge) in cases {
            var scene = Scene()
            _ = try scene.awaitingResPQ()
            let packet = forge(&scene)
            #expect(throws: expected) { try scene.client.receive(packet, now: scene.now) }
        }
    }

    // MARK: server_DH_params

    @Test("server_DH_params_ok: nonces outside and inside, alignment, answer hash, padding")
    func serverDHParamsFraming() throws {
        let cases: [(HandshakeError, (inout Scene) throws -> [UInt8])] = [
            (.nonceMismatch(.serverDHParams), { scene in
                scene.message(MT.Server_DH_Params.serverDHParamsOk(.init(nonce: Self.otherNonce, serverNonce: scene.serverNonce, encryptedAnswer: [])))
            }),
            (.serverNonceMismatch(.serverDHParams), { scene in
                scene.message(MT.Server_DH_Params.serverDHParamsOk(.init(nonce: scene.nonce, serverNonce: Self.otherNonce, encryptedAnswer: [])))
            }),
            (.encryptedDataNotBlockAligned(.serverDHInnerData, byteCount: 599), { scene in
                scene.message(MT.Server_DH_Params.serverDHParamsOk(.init(
                    nonce: scene.nonce, serverNonce: scene.serverNonce, encryptedAnswer: [UInt8](repeating: 7, count: 599)
                )))
            }),
            (.malformedMessage(.serverDHInnerData), { scene in
                // Random ciphertext decrypts to garbage that is no server_DH_inner_data.
                scene.message(MT.Server_DH_Params.serverDHParamsOk(.init(
                    nonce: scene.nonce, serverNonce: scene.serverNonce, encryptedAnswer: [UInt8](repeating: 7, count: 592)
                )))
            }),
            (.innerHashMismatch(.serverDHInnerData), { scene in
                try scene.serverDHParamsOK(inner: scene.innerData(), hash: [UInt8](repeating: 1, count: 20))
            }),
            (.innerPaddingTooLong(.serverDHInnerData, byteCount: 24), { scene in
                // 20 + 564 bytes need 8 of padding; 24 is block-aligned too, but over the 0-15 allowed.
                try scene.serverDHParamsOK(inner: scene.innerData(), padding: [UInt8](repeating: 0, count: 24))
            }),
            (.nonceMismatch(.serverDHInnerData), { scene in
                try scene.serverDHParamsOK(inner: scene.innerData(nonce: Self.otherNonce))
            }),
            (.serverNonceMismatch(.serverDHInnerData), { scene in
                try scene.serverDHParamsOK(inner: scene.innerData(serverNonce: Self.otherNonce))
            }),
            (.unexpectedMessage(constructor: MT.ResPQ.ResPQ.constructorID, expected: .serverDHParams), { scene in
                scene.message(MT.ResPQ.resPQ(.init(nonce: scene.nonce, serverNonce: scene.serverNonce, pq: [1], serverPublicKeyFingerprints: [])))
            }),
        ]
        for (expected, forge) in cases {
            var scene = Scene()
            _ = try scene.awaitingServerDHParams()
            let packet = try forge(&scene)
            #expect(throws: expected) { try scene.client.receive(packet, now: scene.now) }
        }
    }

    /// A 2048-bit prime p with p mod 3 = 2 whose (p - 1) / 2 is composite (made with `openssl prime`).
    static let unsafePrime = SpecExample.bytes("""
        EC69A0B534AF348132D9A1CCD3B34D8683668B78E7B36E83263EEEF71C1C79E2C3E6F345CFEDF5786603E13AFF9445D0831497C7A83CF15F76DC434DCEA2A149174DF6540A0EA5F6F626F1654A9D837055DFC4EC6B94CBD322F68447869E65B983BAF35810F9223F6E24D410301D3FCF2740FA95C170CB949A90A18E9644BBF3E053CFA2CFF7F57ECB5DB339C4453B98B8FCDC79E6DC16D24CC280EDE7983AAC1DF4815AF0FACD427C925CC2487A7C61D095DA342406791FA27B822DEA529797605812AFA69C0595AC06AE9456D29A0A38357F4B893236EADB6E8464B58430E2E27BF4C2FA3991B347B261590A7AC9F7A327B11665AE7DD4E4BEA217FBB09D2B
        """)

    @Test("server_DH_inner_data: every DH check of the spec")
    func dhChecks() throws {
        let prime = DHGroup.telegramPrime
        var primeMinusOne = prime
        primeMinusOne[255] -= 1
        var smallValue = [UInt8](repeating: 0, count: 256)
        smallValue[10] = 1  // about 2^1960, below the 2^1984 safety bound
        let composite = Array(prime.dropLast()) + [prime[255] &+ 2]
        let cases: [(HandshakeError, (Scene) -> [UInt8])] = [
            (.dhGeneratorInvalid(8), { $0.innerData(g: 8) }),
            (.dhGeneratorInvalid(1), { $0.innerData(g: 1) }),
            (.dhGeneratorNotQuadraticResidue(2), { $0.innerData(g: 2) }),  // Telegram's p mod 8 = 3
            (.dhPrimeUnsafe, { $0.innerData(prime: Array(prime.dropFirst())) }),  // 2040 bits
            (.dhPrimeUnsafe, { $0.innerData(g: 4, prime: composite) }),  // g = 4 sets no condition on p
            (.dhPrimeUnsafe, { $0.innerData(prime: Self.unsafePrime) }),  // prime, but not safe
            (.gAOutOfRange, { $0.innerData(gA: [1]) }),
            (.gAOutOfRange, { $0.innerData(gA: primeMinusOne) }),
            (.gAOutOfRange, { $0.innerData(gA: prime) }),
            (.gAOutOfRange, { $0.innerData(gA: smallValue) }),
            (.gAOutOfRange, { $0.innerData(gA: [UInt8](repeating: 0xFF, count: 257)) }),
        ]
        for (expected, inner) in cases {
            var scene = Scene()
            _ = try scene.awaitingServerDHParams()
            let packet = try scene.serverDHParamsOK(inner: inner(scene))
            #expect(throws: expected) { try scene.client.receive(packet, now: scene.now) }
        }
    }

    @Test("server_DH_params_fail: authentic (right new_nonce_hash) or forged")
    func serverDHParamsFail() throws {
        var scene = Scene()
        _ = try scene.awaitingServerDHParams()
        var forgedScene = scene
        let authentic = scene.message(MT.Server_DH_Params.serverDHParamsFail(.init(
            nonce: scene.nonce, serverNonce: scene.serverNonce, newNonceHash: HandshakeDerivations.dhParamsFailHash(scene.nonces)
        )))
        #expect(throws: HandshakeError.serverRejectedDHParams) { try scene.client.receive(authentic, now: scene.now) }
        let forged = forgedScene.message(MT.Server_DH_Params.serverDHParamsFail(.init(
            nonce: forgedScene.nonce, serverNonce: forgedScene.serverNonce, newNonceHash: Self.otherNonce
        )))
        #expect(throws: HandshakeError.newNonceHashMismatch(.serverDHParamsFail)) { try forgedScene.client.receive(forged, now: forgedScene.now) }
    }

    // MARK: dh_gen

    @Test("dh_gen_ok/retry/fail with a wrong new_nonce_hash, wrong nonces, or the wrong type")
    func dhGen() throws {
        let cases: [(HandshakeError, (inout Scene, [UInt8]) throws -> [UInt8])] = [
            (.newNonceHashMismatch(.dhGenOK), { scene, honest in
                var body = try PlainMessage(decoding: honest).body
                body[body.count - 1] ^= 0x01
                return scene.message(body)
            }),
            (.newNonceHashMismatch(.dhGenRetry), { scene, _ in
                scene.message(DHGenVerdict.retry.answer(nonce: scene.nonce, serverNonce: scene.serverNonce, newNonceHash: Self.otherNonce))
            }),
            (.newNonceHashMismatch(.dhGenFail), { scene, _ in
                scene.message(DHGenVerdict.fail.answer(nonce: scene.nonce, serverNonce: scene.serverNonce, newNonceHash: Self.otherNonce))
            }),
            (.nonceMismatch(.dhGenOK), { scene, _ in
                scene.message(DHGenVerdict.ok.answer(nonce: Self.otherNonce, serverNonce: scene.serverNonce, newNonceHash: .zero))
            }),
            (.serverNonceMismatch(.dhGenRetry), { scene, _ in
                scene.message(DHGenVerdict.retry.answer(nonce: scene.nonce, serverNonce: Self.otherNonce, newNonceHash: .zero))
            }),
            (.unexpectedMessage(constructor: MT.Server_DH_Params.ServerDHParamsOk.constructorID, expected: .dhGen), { scene, _ in
                scene.message(MT.Server_DH_Params.serverDHParamsOk(.init(nonce: scene.nonce, serverNonce: scene.serverNonce, encryptedAnswer: [])))
            }),
            (.malformedMessage(.dhGen), { scene, honest in
                scene.message(Array(try PlainMessage(decoding: honest).body.dropLast(4)))
            }),
        ]
        for (expected, forge) in cases {
            var scene = Scene()
            let honest = try scene.awaitingDHGen()
            let packet = try forge(&scene, honest)
            #expect(throws: expected) { try scene.client.receive(packet, now: scene.now) }
        }
    }

    // MARK: Garbage

    @Test("random bytes and every truncation of the honest answer, at each step: a typed error, never a crash")
    func garbage() throws {
        var random = SplitMixEntropy(seed: 99)
        for step in 0..<3 {
            var base = Scene()
            let honest: [UInt8] = switch step {
            case 0: try base.awaitingResPQ()
            case 1: try base.awaitingServerDHParams()
            default: try base.awaitingDHGen()
            }
            for length in 0..<honest.count {
                var client = base.client
                #expect(throws: HandshakeError.self) { try client.receive(Array(honest.prefix(length)), now: base.now) }
            }
            for _ in 0..<200 {
                var client = base.client
                let count = Int(random.bytes(1)[0]) * 3
                let packet = [UInt8](repeating: 0, count: 8) + random.bytes(count)
                #expect(throws: HandshakeError.self) { try client.receive(packet, now: base.now) }
            }
            // Flipping any byte of server_DH_params_ok's or dh_gen_ok's body breaks a nonce, the
            // length, the encryption or a hash: nothing there is left unchecked.
            if step > 0 {
                let message = try PlainMessage(decoding: honest)
                for index in message.body.indices {
                    var client = base.client
                    var body = message.body
                    body[index] ^= 0x10
                    let packet = PlainMessage(messageID: message.messageID, body: body).encoded()
                    #expect(throws: HandshakeError.self, "byte \(index) of step \(step)") { try client.receive(packet, now: base.now) }
                }
            }
        }
    }
}
