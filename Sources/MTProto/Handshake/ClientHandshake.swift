import MTProtoCrypto
import MTProtoSchema
import TL

/// The client side of the auth-key exchange (spec `mtproto/auth_key`), as a sans-IO state machine.
///
/// Feed it the server's unencrypted messages (the transport payloads, auth_key_id = 0) with the current
/// time; it answers with the bytes to send or, at the end, the negotiated key. It never touches a socket,
/// a clock or a global random generator: time comes in as `now`, randomness from the injected
/// `EntropySource`. A message that fails any of the spec's checks is thrown as a `HandshakeError` and
/// ends the exchange; calling it again after an error or after completion is a programming error.
///
/// The steps live side by side with the server's in `Steps/`: `PQExchange.swift` (req_pq_multi,
/// resPQ), `DHParamsExchange.swift` (req_DH_params, server_DH_params_ok/fail) and
/// `ClientDHExchange.swift` (set_client_DH_params, dh_gen_ok/retry/fail).
public struct ClientHandshake: Sendable {
    public struct Configuration: Sendable {
        /// The server RSA keys this client trusts; the exchange uses the first one the server offers.
        public var serverKeys: [RSAPublicKey]
        /// The DC id sent in p_q_inner_data_dc: add 10000 for test DCs, negate for media DCs.
        public var dcID: Int32
        public var keyType: KeyType
        /// How p_q_inner_data is wrapped. `.rsaPad` is the current protocol; `.legacy` is what older
        /// clients (Telethon 1.45) send, kept so a server's tolerance for them can be exercised.
        public var innerDataEncryption: InnerDataEncryption
        /// How many dh_gen_retry answers to follow before giving up.
        public var maxRetries: Int

        public init(
            serverKeys: [RSAPublicKey],
            dcID: Int32,
            keyType: KeyType = .permanent,
            innerDataEncryption: InnerDataEncryption = .rsaPad,
            maxRetries: Int = 5
        ) {
            precondition(!serverKeys.isEmpty, "a client needs at least one trusted server key")
            precondition(serverKeys.allSatisfy { $0.byteCount == 256 }, "MTProto's RSA schemes need 2048-bit keys")
            precondition(maxRetries >= 0, "maxRetries cannot be negative")
            if case .temporary(let expiresIn) = keyType {
                precondition(expiresIn > 0, "a temporary key needs a positive lifetime")
            }
            self.serverKeys = serverKeys
            self.dcID = dcID
            self.keyType = keyType
            self.innerDataEncryption = innerDataEncryption
            self.maxRetries = maxRetries
        }
    }

    public enum KeyType: Sendable, Hashable {
        case permanent
        /// A PFS key the server keeps in memory for at most `expiresIn` seconds.
        case temporary(expiresIn: Int32)
    }

    public enum InnerDataEncryption: Sendable, Hashable {
        /// p_q_inner_data_dc / _temp_dc under RSA_PAD.
        case rsaPad
        /// p_q_inner_data / _temp (no DC id) as SHA1(data) + data + padding under raw RSA.
        case legacy
    }

    public enum Action: Sendable {
        case send([UInt8])
        case completed(HandshakeResult)
    }

    enum State: Sendable {
        case idle
        case awaitingResPQ(nonce: TLInt128)
        case awaitingServerDHParams(ExchangeNonces)
        case awaitingDHGen(ClientKeyAttempt)
        case completed
        case failed
    }

    let configuration: Configuration
    var state: State = .idle
    var entropy: any EntropySource
    var messageIDs = MessageIDGenerator()
    /// server_time minus local time, learnt from server_DH_inner_data; corrects later msg_ids.
    var serverTimeOffset: Double = 0

    public init(configuration: Configuration, entropy: some EntropySource) {
        self.configuration = configuration
        self.entropy = entropy
    }

    /// The first message: req_pq_multi with a fresh nonce.
    public mutating func start(now: UnixTime) -> [UInt8] {
        guard case .idle = state else { preconditionFailure("ClientHandshake.start(now:) called twice") }
        precondition(now.seconds.isFinite, "ClientHandshake.start needs a finite time")
        let nonce = HandshakeRandom.int128(&entropy)
        state = .awaitingResPQ(nonce: nonce)
        return envelope(MT.functions.ReqPqMulti(nonce: nonce), now: now)
    }

    /// Handles one message from the server.
    public mutating func receive(_ packet: [UInt8], now: UnixTime) throws(HandshakeError) -> Action {
        precondition(now.seconds.isFinite, "ClientHandshake.receive needs a finite time")
        do {
            return try process(packet, now: now)
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func process(_ packet: [UInt8], now: UnixTime) throws(HandshakeError) -> Action {
        let message: PlainMessage
        do {
            message = try PlainMessage(decoding: packet)
        } catch {
            throw .malformedEnvelope(error)
        }
        // Server ids are odd: 1 mod 4 for answers, 3 for messages of its own.
        guard let kind = MessageIDGenerator.kind(of: message.messageID), kind != .client else {
            throw .invalidMessageID(message.messageID)
        }
        switch state {
        case .idle:
            preconditionFailure("ClientHandshake.receive before start(now:)")
        case .completed, .failed:
            preconditionFailure("ClientHandshake.receive after the exchange ended")
        case .awaitingResPQ(let nonce):
            let answer = try HandshakeCodec.decode(
                MT.ResPQ.self, from: message.body, accepting: [MT.ResPQ.ResPQ.constructorID], step: .resPQ
            )
            switch answer {
            case .resPQ(let resPQ): return .send(envelope(try answerResPQ(resPQ, nonce: nonce), now: now))
            }
        case .awaitingServerDHParams(let nonces):
            let answer = try HandshakeCodec.decode(
                MT.Server_DH_Params.self,
                from: message.body,
                accepting: [MT.Server_DH_Params.ServerDHParamsOk.constructorID, MT.Server_DH_Params.ServerDHParamsFail.constructorID],
                step: .serverDHParams
            )
            let request = try answerServerDHParams(answer, nonces: nonces, now: now)
            return .send(envelope(request, now: now))
        case .awaitingDHGen(let attempt):
            let answer = try HandshakeCodec.decode(
                MT.Set_client_DH_params_answer.self,
                from: message.body,
                accepting: MT.Set_client_DH_params_answer.constructorIDs,
                step: .dhGen
            )
            switch try answerDHGen(answer, attempt: attempt, now: now) {
            case .retry(let request): return .send(envelope(request, now: now))
            case .done(let result): return .completed(result)
            }
        }
    }

    mutating func envelope(_ message: some TLEncodable, now: UnixTime) -> [UInt8] {
        // The offset goes into the time rather than the generator, which would drop its monotonic
        // floor when the offset changes.
        let id = messageIDs.next(now: now + serverTimeOffset, kind: .client)
        return PlainMessage(messageID: id, body: message.serialized()).encoded()
    }
}

/// The three nonces of one exchange, once all are known.
struct ExchangeNonces: Sendable {
    var nonce: TLInt128
    var serverNonce: TLInt128
    /// Secret until the end of the exchange.
    var newNonce: TLInt256
}

/// Random TL numbers from an entropy source.
enum HandshakeRandom {
    static func int128(_ entropy: inout any EntropySource) -> TLInt128 {
        let bytes = entropy.bytes(16)
        return TLInt128(low: word(bytes, 0), high: word(bytes, 8))
    }

    static func int256(_ entropy: inout any EntropySource) -> TLInt256 {
        let bytes = entropy.bytes(32)
        return TLInt256(
            first: TLInt128(low: word(bytes, 0), high: word(bytes, 8)),
            second: TLInt128(low: word(bytes, 16), high: word(bytes, 24))
        )
    }

    private static func word(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        return value
    }
}
