import FuzzSupport
import MTProto
import MTProtoCrypto

// Feeds the server session what a hostile client could send: raw packets, and packets that decrypt
// correctly but carry arbitrary plaintext (any salt, msg_id time and parity, seq_no, body), alone
// or inside a msg_container. Every RPC query handed up is answered. Properties: no trap; every
// packet the server emits decrypts as a server→client message with an odd msg_id; a container it
// emits unpacks.

let key: AuthKey = {
    var entropy = FuzzEntropy(seed: 43)
    var bytes = [UInt8](repeating: 0, count: 256)
    bytes.withUnsafeMutableBytes { entropy.fill($0) }
    guard let key = try? AuthKey(bytes) else { preconditionFailure("256 bytes make a key") }
    return key
}()
let salt: Int64 = 0x0102_0304_0506_0708
let now = UnixTime(seconds: 1_800_000_000.5)

func checkOutput(_ actions: [ServerSessionAction]) {
    for case .send(let packet) in actions {
        guard let message = try? MessageCrypto.decryptMessage(packet, authKey: key, direction: .serverToClient) else {
            preconditionFailure("the server emitted a packet it cannot have encrypted correctly")
        }
        precondition(message.messageID & 1 == 1, "server msg_id must be odd")
        if message.body.count >= 4, Array(message.body.prefix(4)) == [0xdc, 0xf8, 0xf1, 0x73] {
            precondition((try? MessageContainer.decode(message.body, containerID: message.messageID)) != nil, "the server emitted a broken container")
        }
    }
}

runFuzzer { raw in
    var input = FuzzInput(Array(raw))
    var server = ServerSession(
        authKey: key, salts: ServerSaltSchedule(initialSalt: salt, validSince: now + -60, seed: Array(repeating: 9, count: 32)),
        entropy: FuzzEntropy(seed: 9))

    let mode = input.byte() % 4
    var packet: [UInt8]
    if mode == 0 {
        packet = input.remaining
    } else {
        let flags = input.byte()
        let seqNo = input.int32()
        let lowBits = Int64(input.byte() % 4)
        let secondsOff = Double(Int8(bitPattern: input.byte())) * 4
        var generator = MessageIDGenerator()
        let base = (generator.next(now: now + secondsOff, kind: .client) & ~3) | lowBits
        let sessionID: Int64 = flags & 4 == 0 ? 0x1111 : 0x2222
        var body = input.remaining
        body = Array(body.prefix(body.count & ~3))
        if mode == 2 {
            var inputForPieces = FuzzInput(Array(raw.suffix(8)))
            let inner = pieces(of: body, using: &inputForPieces).enumerated().map { index, piece in
                SessionMessage(messageID: base - Int64(64 - index * 4), seqNo: seqNo &+ Int32(index * 2), body: piece)
            }
            body = MessageContainer.encode(inner)
        }
        let declared = mode == 3 ? input.int32() : Int32(body.count)
        var plaintext = plaintextHeader(salt: flags & 1 == 0 ? salt : 0, sessionID: sessionID, messageID: base, seqNo: seqNo, length: declared) + body
        let padding = mode == 3 ? Int(input.byte() % 64) : 12 + (16 - (plaintext.count + 12) % 16) % 16
        plaintext += [UInt8](repeating: 0x5A, count: padding)
        plaintext += [UInt8](repeating: 0, count: (16 - plaintext.count % 16) % 16)
        guard let sealed = try? MessageCrypto.encrypt(paddedPlaintext: plaintext, authKey: key, direction: .clientToServer) else { return }
        packet = sealed
    }

    guard let actions = try? server.receive(packet, now: now) else { return }
    checkOutput(actions)
    for case .request(let messageID, let body) in actions {
        checkOutput(server.answer(request: messageID, result: Array(body.reversed()), now: now))
    }
    checkOutput(server.push([0x44, 0x33, 0x22, 0x11], now: now))
    checkOutput(server.tick(now: now + 3600))
}
