import FuzzSupport
import MTProto
import MTProtoCrypto

// Feeds the client session what a hostile server could send: raw packets (envelope checks), and
// packets that decrypt correctly but carry arbitrary plaintext, alone or inside a msg_container,
// with ids that name the client's real pending request so rpc_result, bad_server_salt,
// bad_msg_notification and friends reach their handlers. Properties: no trap; every packet the
// client emits is a well-formed client→server message of its key and session.

let key: AuthKey = {
    var entropy = FuzzEntropy(seed: 42)
    var bytes = [UInt8](repeating: 0, count: 256)
    bytes.withUnsafeMutableBytes { entropy.fill($0) }
    guard let key = try? AuthKey(bytes) else { preconditionFailure("256 bytes make a key") }
    return key
}()
let sessionID: Int64 = 0x1234_5678_9abc_def0
let salt: Int64 = 0x0102_0304_0506_0708
let now = UnixTime(seconds: 1_800_000_000.5)

func checkOutput(_ actions: [ClientSessionAction], session: ClientSession) {
    for case .send(let packet) in actions {
        guard let message = try? MessageCrypto.decryptMessage(packet, authKey: key, direction: .clientToServer) else {
            preconditionFailure("the client emitted a packet it cannot have encrypted correctly")
        }
        precondition(message.sessionID == session.sessionID, "packet under a stale session id")
        precondition(message.messageID % 4 == 0, "client msg_id not divisible by 4")
    }
}

runFuzzer { raw in
    var input = FuzzInput(Array(raw))
    var client = ClientSession(authKey: key, sessionID: sessionID, serverSalt: salt, entropy: FuzzEntropy(seed: 7))
    let (request, sent) = client.send(request: [0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4], now: now)
    checkOutput(sent, session: client)
    let pendingID = client.messageID(of: request) ?? 0

    let mode = input.byte() % 4
    var packet: [UInt8]
    if mode == 0 {
        packet = input.remaining
    } else {
        let seqNo = input.int32()
        let patch = input.byte()
        let step = Int64(input.uint16())
        let secondsOff = Double(Int8(bitPattern: input.byte())) * 8
        var generator = MessageIDGenerator()
        let base = generator.next(now: now + secondsOff, kind: patch & 2 == 0 ? .serverResponse : .serverInitiated) + step * 4
        var body = input.remaining
        // Point the first id field of a service message at the real pending request.
        if patch & 1 == 1, body.count >= 12 {
            for index in 0..<8 { body[4 + index] = UInt8(truncatingIfNeeded: UInt64(bitPattern: pendingID) >> UInt64(8 * index)) }
        }
        body = Array(body.prefix(body.count & ~3))
        if mode == 2 {
            var inputForPieces = FuzzInput(Array(raw.suffix(8)))
            let inner = pieces(of: body, using: &inputForPieces).enumerated().map { index, piece in
                SessionMessage(messageID: base - Int64(64 - index * 4), seqNo: seqNo &+ Int32(index), body: piece)
            }
            body = MessageContainer.encode(inner)
        }
        let declared = mode == 3 ? input.int32() : Int32(body.count)
        var plaintext = plaintextHeader(salt: salt, sessionID: sessionID, messageID: base, seqNo: seqNo, length: declared) + body
        let padding = mode == 3 ? Int(input.byte() % 64) : 12 + (16 - (plaintext.count + 12) % 16) % 16
        plaintext += [UInt8](repeating: 0xA5, count: padding)
        plaintext += [UInt8](repeating: 0, count: (16 - plaintext.count % 16) % 16)
        guard let sealed = try? MessageCrypto.encrypt(paddedPlaintext: plaintext, authKey: key, direction: .serverToClient) else { return }
        packet = sealed
    }

    if let actions = try? client.receive(packet, now: now) { checkOutput(actions, session: client) }
    checkOutput(client.tick(now: now + 3600), session: client)
    checkOutput(client.flush(now: now + 3600), session: client)
}
