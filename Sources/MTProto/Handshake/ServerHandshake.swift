import MTProtoCrypto
import MTProtoSchema
import TL

/// The server side of the auth-key exchange (spec `mtproto/auth_key`), as a sans-IO state machine:
/// what the test DC runs for every new connection until the client holds a key.
///
/// Feed it each unencrypted message the client sends, with the current time; it answers with the
/// bytes to send, and with the negotiated key once dh_gen_ok goes out. It accepts what real clients
/// send: p_q_inner_data_dc/_temp_dc under RSA_PAD, and the older p_q_inner_data/_temp under raw RSA
/// with a SHA-1 prefix (Telethon 1.45). A req_pq/req_pq_multi at any point restarts the exchange,
/// because clients (Telethon among them) retry on the same connection after a failed attempt; an
/// identical repeat of the previous request gets the previous answer again, as the spec asks.
/// A client that fails a check is thrown as a `HandshakeError`: answer it with transport error -404
/// and close. After an error or after completion the machine must not be used again.
public struct ServerHandshake: Sendable {
    public struct Configuration: Sendable {
        /// The RSA keys whose fingerprints resPQ offers; clients encrypt p_q_inner_data to one of them.
        public var keys: [RSAPrivateKey]
        /// The DC ids clients may address this server by in p_q_inner_data_dc (e.g. 2 and 10002);
        /// empty accepts any.
        public var dcIDs: Set<Int32>
        /// The DH group offered in server_DH_inner_data (Telegram's prime and g = 3 by default).
        public var group: DHGroup
        /// Whether the older raw-RSA scheme (SHA1(data) + data + padding) is accepted besides RSA_PAD.
        public var acceptsLegacyRSA: Bool
        /// When to answer dh_gen_retry instead of dh_gen_ok.
        public var retryPolicy: RetryPolicy
        /// How many times one connection may start the exchange over (req_pq) before it is refused.
        public var maxAttempts: Int

        public init(
            keys: [RSAPrivateKey],
            dcIDs: Set<Int32> = [],
            group: DHGroup = ServerHandshake.defaultGroup,
            acceptsLegacyRSA: Bool = true,
            retryPolicy: RetryPolicy = RetryPolicy(),
            maxAttempts: Int = 8
        ) {
            precondition(!keys.isEmpty, "a server needs at least one RSA key")
            precondition(keys.allSatisfy { $0.publicKey.byteCount == 256 }, "MTProto's RSA schemes need 2048-bit keys")
            precondition(maxAttempts >= 1, "maxAttempts must allow one exchange")
            self.keys = keys
            self.dcIDs = dcIDs
            self.group = group
            self.acceptsLegacyRSA = acceptsLegacyRSA
            self.retryPolicy = retryPolicy
            self.maxAttempts = maxAttempts
        }
    }

    /// When the server answers set_client_DH_params with dh_gen_retry (the client then sends a new
    /// g_b with retry_id = auth_key_aux_hash of the rejected key) or, past `maxRetries`, dh_gen_fail.
    public struct RetryPolicy: Sendable, Hashable {
        /// Retry keys whose first byte is zero. Telethon keeps g^ab as minimal-length big-endian bytes,
        /// so for such a key (1 in 256) it hashes a 255-byte key and its new_nonce_hash1 check fails
        /// against ours; answering dh_gen_retry instead makes it start over, and the key both sides
        /// end up with is one they agree on. Spec-conforming clients simply send a new g_b.
        public var retryKeysWithLeadingZeroByte: Bool
        /// Answer dh_gen_retry to this many first attempts whatever the key, to drive a client through
        /// its retry path (a test DC feature; 0 in normal operation).
        public var forcedRetries: Int
        /// Attempts beyond this many retries get dh_gen_fail.
        public var maxRetries: Int

        public init(retryKeysWithLeadingZeroByte: Bool = true, forcedRetries: Int = 0, maxRetries: Int = 5) {
            precondition(forcedRetries >= 0 && maxRetries >= 0, "retry counts cannot be negative")
            self.retryKeysWithLeadingZeroByte = retryKeysWithLeadingZeroByte
            self.forcedRetries = forcedRetries
            self.maxRetries = maxRetries
        }
    }

    public enum Action: Sendable {
        case send([UInt8])
        /// Send dh_gen_ok; the key is ready.
        case sendAndComplete([UInt8], HandshakeResult)
    }

    /// Telegram's 2048-bit prime with g = 3, what real servers offer.
    public static let defaultGroup: DHGroup = {
        do {
            return try DHGroup.telegram(generator: 3)
        } catch {
            preconditionFailure("Telegram's prime with g = 3 passes the spec's checks: \(error)")
        }
    }()

    enum State: Sendable {
        case awaitingReqPQ
        case awaitingReqDHParams(IssuedChallenge)
        case awaitingSetClientDHParams(ServerKeyAttempt)
        case completed
        case failed
    }

    let configuration: Configuration
    var state: State = .awaitingReqPQ
    var entropy: any EntropySource
    var messageIDs = MessageIDGenerator()
    var attempts = 0
    /// The last request body and our answer to it, to answer an identical repeat identically.
    var lastExchange: (request: [UInt8], answer: [UInt8])?

    public init(configuration: Configuration, entropy: some EntropySource) {
        self.configuration = configuration
        self.entropy = entropy
    }

    /// Handles one message from the client.
    public mutating func receive(_ packet: [UInt8], now: UnixTime) throws(HandshakeError) -> Action {
        precondition(now.seconds.isFinite, "ServerHandshake.receive needs a finite time")
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
        guard message.messageID != 0, MessageIDGenerator.kind(of: message.messageID) == .client else {
            throw .invalidMessageID(message.messageID)
        }
        let expected: HandshakeStep
        switch state {
        case .completed, .failed:
            preconditionFailure("ServerHandshake.receive after the exchange ended")
        case .awaitingReqPQ: expected = .reqPQ
        case .awaitingReqDHParams: expected = .reqDHParams
        case .awaitingSetClientDHParams: expected = .setClientDHParams
        }
        if let lastExchange, lastExchange.request == message.body {
            return .send(envelope(lastExchange.answer, now: now))
        }
        let request = try ClientRequest(decoding: message.body, expected: expected)
        let answer: any TLEncodable
        var result: HandshakeResult?
        switch (request, state) {
        case (.reqPQ(let nonce), _):
            attempts += 1
            guard attempts <= configuration.maxAttempts else { throw .tooManyAttempts(limit: configuration.maxAttempts) }
            answer = answerReqPQ(nonce: nonce)
        case (.reqDHParams(let request), .awaitingReqDHParams(let challenge)):
            answer = try answerReqDHParams(request, challenge: challenge, now: now)
        case (.setClientDHParams(let request), .awaitingSetClientDHParams(let attempt)):
            (answer, result) = try answerSetClientDHParams(request, attempt: attempt, now: now)
        default:
            throw .unexpectedMessage(constructor: HandshakeCodec.constructorID(of: message.body), expected: expected)
        }
        let body = answer.serialized()
        lastExchange = (message.body, body)
        let bytes = envelope(body, now: now)
        if let result { return .sendAndComplete(bytes, result) }
        return .send(bytes)
    }

    private mutating func envelope(_ body: [UInt8], now: UnixTime) -> [UInt8] {
        PlainMessage(messageID: messageIDs.next(now: now, kind: .serverResponse), body: body).encoded()
    }
}
