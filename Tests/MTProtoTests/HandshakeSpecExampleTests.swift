import MTProtoCrypto
import MTProtoSchema
import TL
import Testing
@testable import MTProto

/// The spec's worked example (`mtproto/samples-auth_key`), byte for byte. Every random input the
/// page gives is fed through a scripted entropy source; every message our machines produce from it is
/// compared with the page's bytes. What the page does not give (RSA_PAD's temp_key, the server's a,
/// the private key behind its fingerprint) is checked by the nearest reproducible property instead.
@Suite("Handshake: the spec's worked example")
struct HandshakeSpecExampleTests {
    let example = SpecExample.shared
    /// The example's client clock: the second of its msg_ids, just before the server's time.
    let now = UnixTime(seconds: 1_759_501_662.1)

    func exampleClient(serverKey: RSAPublicKey, entropy: ScriptedEntropy) -> ClientHandshake {
        ClientHandshake(configuration: .init(serverKeys: [serverKey], dcID: 2), entropy: entropy)
    }

    /// nonce; new_nonce; RSA_PAD's padding then a temp_key (not given: the fallback draws it); b; padding.
    var exampleEntropy: ScriptedEntropy {
        ScriptedEntropy([example["nonce"], example["new_nonce"], example["rsa_pad.random_padding_bytes"]])
    }

    @Test("every envelope of the example parses and re-encodes to the same bytes, with the right msg_id parity")
    func envelopes() throws {
        for (name, kind) in [
            ("req_pq_multi", MessageIDKind.client), ("res_pq", .serverResponse), ("req_DH_params", .client),
            ("server_DH_params_ok", .serverResponse), ("set_client_DH_params", .client), ("dh_gen_ok", .serverResponse),
        ] {
            let bytes = example[name + ".message"]
            let message = try PlainMessage(decoding: bytes)
            #expect(message.encoded() == bytes, "\(name)")
            #expect(message.body == example.body(name), "\(name)")
            #expect(MessageIDGenerator.kind(of: message.messageID) == kind, "\(name)")
        }
    }

    @Test("the client reproduces req_pq_multi, req_DH_params' clear fields, set_client_DH_params and the auth key")
    func clientFlow() throws {
        let telegramKey = try RSAPublicKey(pem: telegramProductionKeyPEM)
        #expect(UInt64(bitPattern: telegramKey.fingerprint) == 0xD09D_1D85_DE64_FD85)
        // After RSA_PAD's padding and its temp_key (16 + 32 + 92 + 32 bytes) come b and the 12 bytes
        // of client_DH_inner_data padding; the temp_key is not in the example, so it is a fixed filler.
        let filler = [UInt8](repeating: 0x5A, count: 32)
        var client = exampleClient(serverKey: telegramKey, entropy: ScriptedEntropy([
            example["nonce"], example["new_nonce"], example["rsa_pad.random_padding_bytes"], filler,
            example["b"], example["client_DH_inner_data.padding"],
        ]))

        let reqPQ = try PlainMessage(decoding: client.start(now: now))
        #expect(reqPQ.body == example.body("req_pq_multi"))

        guard case .send(let reqDHBytes) = try client.receive(example["res_pq.message"], now: now) else {
            Issue.record("resPQ did not produce req_DH_params")
            return
        }
        let reqDH = try PlainMessage(decoding: reqDHBytes).body
        let expected = example.body("req_DH_params")
        // Constructor, nonce, server_nonce, p, q, fingerprint and the 256-byte string's length prefix.
        #expect(reqDH.count == expected.count)
        #expect(Array(reqDH.prefix(64)) == Array(expected.prefix(64)))

        guard case .send(let setBytes) = try client.receive(example["server_DH_params_ok.message"], now: now) else {
            Issue.record("server_DH_params_ok did not produce set_client_DH_params")
            return
        }
        #expect(try PlainMessage(decoding: setBytes).body == example.body("set_client_DH_params"))

        guard case .completed(let result) = try client.receive(example["dh_gen_ok.message"], now: now) else {
            Issue.record("dh_gen_ok did not complete the exchange")
            return
        }
        #expect(result.authKey.bytes == example["auth_key"])
        let newNonce = example["new_nonce"]
        let serverNonce = example["server_nonce"]
        let saltBytes = (0..<8).map { newNonce[$0] ^ serverNonce[$0] }
        #expect(result.serverSalt == Int64(bitPattern: saltBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.1) << (8 * UInt64($1.0)) }))
        #expect(result.serverTimeOffset == 1_759_501_662 - now.seconds)
        #expect(result.lifetime == .permanent)
        #expect(result.retryCount == 0)
    }

    @Test("with our own key in place of Telegram's, RSA_PAD carries exactly the example's p_q_inner_data_dc and padding")
    func innerDataPlaintext() throws {
        let key = TestKeys.server
        var client = exampleClient(serverKey: key.publicKey, entropy: exampleEntropy)
        _ = client.start(now: now)
        // The example's resPQ, offering our fingerprint instead of its three.
        let resPQ = try MT.ResPQ(serialized: example.body("res_pq"))
        guard case .resPQ(let original) = resPQ else { return }
        let offer = MT.ResPQ.resPQ(.init(
            nonce: original.nonce, serverNonce: original.serverNonce, pq: original.pq,
            serverPublicKeyFingerprints: [original.serverPublicKeyFingerprints[0], key.publicKey.fingerprint]
        ))
        let message = PlainMessage(messageID: 0x68DF_DD5E_A8F0_D401, body: offer.serialized()).encoded()
        guard case .send(let reqDHBytes) = try client.receive(message, now: now) else {
            Issue.record("resPQ did not produce req_DH_params")
            return
        }
        let request = try MT.functions.ReqDHParams(serialized: PlainMessage(decoding: reqDHBytes).body)
        #expect(request.publicKeyFingerprint == key.publicKey.fingerprint)
        let dataWithPadding = try key.decryptRSAPad(request.encryptedData)
        #expect(dataWithPadding == example["p_q_inner_data_dc"] + example["rsa_pad.random_padding_bytes"])
    }

    @Test("tmp_aes_key/iv, the decrypted answer and its padding match the example")
    func temporaryKeyAndAnswer() throws {
        let nonces = ExchangeNonces(
            nonce: try #require(TLInt128(bytes: example["nonce"])),
            serverNonce: try #require(TLInt128(bytes: example["server_nonce"])),
            newNonce: try #require(TLInt256(bytes: example["new_nonce"]))
        )
        let (key, iv) = HandshakeDerivations.temporaryAESKeyAndIV(nonces)
        #expect(key == example["tmp_aes_key"])
        #expect(iv == example["tmp_aes_iv"])

        // The server side of step 6: sealing the example's answer with its padding (the last bytes of
        // answer_with_hash) gives the example's encrypted_answer.
        let answer = example["server_DH_inner_data"]
        let answerWithHash = example["answer_with_hash"]
        let padding = Array(answerWithHash.suffix(answerWithHash.count - 20 - answer.count))
        var entropy: any EntropySource = ScriptedEntropy([padding])
        let sealed = InnerDataCipher.seal(answer, key: key, iv: iv, entropy: &entropy)
        let okMessage = try MT.Server_DH_Params(serialized: example.body("server_DH_params_ok"))
        guard case .serverDHParamsOk(let ok) = okMessage else {
            Issue.record("the example's step 6 is not server_DH_params_ok")
            return
        }
        #expect(sealed == ok.encryptedAnswer)

        let opened = try InnerDataCipher.open(ok.encryptedAnswer, key: key, iv: iv, step: .serverDHInnerData) {
            (bytes) throws(HandshakeError) in
            try HandshakeCodec.decodePrefix(MT.Server_DH_inner_data.self, of: bytes, step: .serverDHInnerData)
        }
        #expect(opened.serialized() == answer)
    }

    @Test("the server's dh_gen_ok for the example's key is the example's message body")
    func serverDHGenOK() throws {
        let nonces = ExchangeNonces(
            nonce: try #require(TLInt128(bytes: example["nonce"])),
            serverNonce: try #require(TLInt128(bytes: example["server_nonce"])),
            newNonce: try #require(TLInt256(bytes: example["new_nonce"]))
        )
        let authKey = try AuthKey(example["auth_key"])
        let answer = DHGenVerdict.ok.answer(
            nonce: nonces.nonce,
            serverNonce: nonces.serverNonce,
            newNonceHash: HandshakeDerivations.newNonceHash(nonces, verdict: .ok, authKey: authKey)
        )
        #expect(answer.serialized() == example.body("dh_gen_ok"))
    }

    @Test("the server answers the example's req_pq_multi with its nonce, our server_nonce and a factorable pq")
    func serverResPQ() throws {
        var server = ServerHandshake(
            configuration: .init(keys: [TestKeys.server]),
            entropy: ScriptedEntropy([example["server_nonce"]])
        )
        guard case .send(let bytes) = try server.receive(example["req_pq_multi.message"], now: now) else {
            Issue.record("req_pq_multi did not produce resPQ")
            return
        }
        let message = try PlainMessage(decoding: bytes)
        #expect(MessageIDGenerator.kind(of: message.messageID) == .serverResponse)
        // Constructor, nonce and server_nonce are the example's; pq and the fingerprints are ours.
        #expect(Array(message.body.prefix(36)) == Array(example.body("res_pq").prefix(36)))
        guard case .resPQ(let resPQ) = try MT.ResPQ(serialized: message.body) else { return }
        #expect(resPQ.serverPublicKeyFingerprints == [TestKeys.server.publicKey.fingerprint])
        let pq = resPQ.pq.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let factors = try PQFactorization.factor(pq)
        #expect(factors.p < factors.q && factors.p * factors.q == pq)
    }
}
