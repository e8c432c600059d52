import MTProtoSchema
import TL

/// Decoding the exchange's TL messages (the generated `MT` types) without ever trapping: a body whose
/// constructor is not one the current step accepts is `.unexpectedMessage`; one that is but does not
/// decode (truncated, trailing bytes, over-long strings) is `.malformedMessage`.
enum HandshakeCodec {
    /// Nothing in the exchange is longer than a few hundred bytes; refusing more keeps a hostile peer
    /// from making us allocate megabytes for a "p" or an "encrypted_data".
    static let limits = TLReader.Limits(maxBytesLength: 1024, maxVectorCount: 64, maxDepth: 4, maxInflatedLength: 0)

    /// A whole message body as `T`.
    static func decode<T: TLDecodable>(
        _: T.Type,
        from body: [UInt8],
        accepting constructors: Set<UInt32>,
        step: HandshakeStep
    ) throws(HandshakeError) -> T {
        let constructor = constructorID(of: body)
        guard constructors.contains(constructor) else {
            throw .unexpectedMessage(constructor: constructor, expected: step)
        }
        do {
            return try T(serialized: body, limits: limits)
        } catch {
            throw .malformedMessage(step)
        }
    }

    /// The TL object at the start of `bytes` (padding may follow) and how many bytes it took: the part
    /// a SHA-1 prefix covers in the encrypted inner data.
    static func decodePrefix<T: TLDecodable>(_: T.Type, of bytes: [UInt8], step: HandshakeStep) throws(HandshakeError) -> (T, length: Int) {
        do {
            var reader = TLReader(bytes, limits: limits)
            let value = try T(from: &reader)
            return (value, reader.position)
        } catch {
            throw .malformedMessage(step)
        }
    }

    /// The little-endian constructor number at the start of a body (0 when there is none).
    static func constructorID(of body: [UInt8]) -> UInt32 {
        guard body.count >= 4 else { return 0 }
        return UInt32(body[0]) | UInt32(body[1]) << 8 | UInt32(body[2]) << 16 | UInt32(body[3]) << 24
    }
}

/// The requests a server can receive during the exchange.
enum ClientRequest: Sendable {
    case reqPQ(nonce: TLInt128)
    case reqDHParams(MT.functions.ReqDHParams)
    case setClientDHParams(MT.functions.SetClientDHParams)

    init(decoding body: [UInt8], expected: HandshakeStep) throws(HandshakeError) {
        let all: Set<UInt32> = [
            MT.functions.ReqPq.constructorID, MT.functions.ReqPqMulti.constructorID,
            MT.functions.ReqDHParams.constructorID, MT.functions.SetClientDHParams.constructorID,
        ]
        switch HandshakeCodec.constructorID(of: body) {
        case MT.functions.ReqPq.constructorID:
            self = .reqPQ(nonce: try HandshakeCodec.decode(MT.functions.ReqPq.self, from: body, accepting: all, step: .reqPQ).nonce)
        case MT.functions.ReqPqMulti.constructorID:
            self = .reqPQ(nonce: try HandshakeCodec.decode(MT.functions.ReqPqMulti.self, from: body, accepting: all, step: .reqPQ).nonce)
        case MT.functions.ReqDHParams.constructorID:
            self = .reqDHParams(try HandshakeCodec.decode(MT.functions.ReqDHParams.self, from: body, accepting: all, step: .reqDHParams))
        case MT.functions.SetClientDHParams.constructorID:
            self = .setClientDHParams(
                try HandshakeCodec.decode(MT.functions.SetClientDHParams.self, from: body, accepting: all, step: .setClientDHParams)
            )
        case let other:
            throw .unexpectedMessage(constructor: other, expected: expected)
        }
    }
}

/// dh_gen_ok, dh_gen_retry, dh_gen_fail; the raw value is the byte appended to new_nonce for
/// new_nonce_hash1/2/3.
enum DHGenVerdict: UInt8, Sendable {
    case ok = 1
    case retry = 2
    case fail = 3

    var step: HandshakeStep {
        switch self {
        case .ok: .dhGenOK
        case .retry: .dhGenRetry
        case .fail: .dhGenFail
        }
    }

    func answer(nonce: TLInt128, serverNonce: TLInt128, newNonceHash: TLInt128) -> MT.Set_client_DH_params_answer {
        switch self {
        case .ok: .dhGenOk(.init(nonce: nonce, serverNonce: serverNonce, newNonceHash1: newNonceHash))
        case .retry: .dhGenRetry(.init(nonce: nonce, serverNonce: serverNonce, newNonceHash2: newNonceHash))
        case .fail: .dhGenFail(.init(nonce: nonce, serverNonce: serverNonce, newNonceHash3: newNonceHash))
        }
    }
}

extension MT.Set_client_DH_params_answer {
    static let constructorIDs: Set<UInt32> = [DhGenOk.constructorID, DhGenRetry.constructorID, DhGenFail.constructorID]

    var verdict: DHGenVerdict {
        switch self {
        case .dhGenOk: .ok
        case .dhGenRetry: .retry
        case .dhGenFail: .fail
        }
    }

    var nonce: TLInt128 {
        switch self {
        case .dhGenOk(let value): value.nonce
        case .dhGenRetry(let value): value.nonce
        case .dhGenFail(let value): value.nonce
        }
    }

    var serverNonce: TLInt128 {
        switch self {
        case .dhGenOk(let value): value.serverNonce
        case .dhGenRetry(let value): value.serverNonce
        case .dhGenFail(let value): value.serverNonce
        }
    }

    var newNonceHash: TLInt128 {
        switch self {
        case .dhGenOk(let value): value.newNonceHash1
        case .dhGenRetry(let value): value.newNonceHash2
        case .dhGenFail(let value): value.newNonceHash3
        }
    }
}

/// p_q_inner_data in any of its four forms, read through one shape.
struct PQInnerData: Sendable, Equatable {
    var pq: [UInt8]
    var p: [UInt8]
    var q: [UInt8]
    var nonce: TLInt128
    var serverNonce: TLInt128
    var newNonce: TLInt256
    /// nil for the forms without a DC id (p_q_inner_data, p_q_inner_data_temp).
    var dc: Int32?
    /// nil for a permanent key.
    var expiresIn: Int32?

    /// The constructor these fields call for.
    var boxed: MT.P_Q_inner_data {
        switch (dc, expiresIn) {
        case (nil, nil):
            .pQInnerData(.init(pq: pq, p: p, q: q, nonce: nonce, serverNonce: serverNonce, newNonce: newNonce))
        case (let dc?, nil):
            .pQInnerDataDc(.init(pq: pq, p: p, q: q, nonce: nonce, serverNonce: serverNonce, newNonce: newNonce, dc: dc))
        case (nil, let expiresIn?):
            .pQInnerDataTemp(.init(pq: pq, p: p, q: q, nonce: nonce, serverNonce: serverNonce, newNonce: newNonce, expiresIn: expiresIn))
        case (let dc?, let expiresIn?):
            .pQInnerDataTempDc(.init(
                pq: pq, p: p, q: q, nonce: nonce, serverNonce: serverNonce, newNonce: newNonce, dc: dc, expiresIn: expiresIn
            ))
        }
    }

    init(pq: [UInt8], p: [UInt8], q: [UInt8], nonce: TLInt128, serverNonce: TLInt128, newNonce: TLInt256, dc: Int32? = nil, expiresIn: Int32? = nil) {
        self.pq = pq
        self.p = p
        self.q = q
        self.nonce = nonce
        self.serverNonce = serverNonce
        self.newNonce = newNonce
        self.dc = dc
        self.expiresIn = expiresIn
    }

    init(_ boxed: MT.P_Q_inner_data) {
        switch boxed {
        case .pQInnerData(let v):
            self.init(pq: v.pq, p: v.p, q: v.q, nonce: v.nonce, serverNonce: v.serverNonce, newNonce: v.newNonce)
        case .pQInnerDataDc(let v):
            self.init(pq: v.pq, p: v.p, q: v.q, nonce: v.nonce, serverNonce: v.serverNonce, newNonce: v.newNonce, dc: v.dc)
        case .pQInnerDataTemp(let v):
            self.init(pq: v.pq, p: v.p, q: v.q, nonce: v.nonce, serverNonce: v.serverNonce, newNonce: v.newNonce, expiresIn: v.expiresIn)
        case .pQInnerDataTempDc(let v):
            self.init(
                pq: v.pq, p: v.p, q: v.q, nonce: v.nonce, serverNonce: v.serverNonce, newNonce: v.newNonce,
                dc: v.dc, expiresIn: v.expiresIn
            )
        }
    }
}
