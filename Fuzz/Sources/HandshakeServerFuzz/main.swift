import FuzzSupport
import MTProto
import MTProtoCrypto

// Feeds arbitrary bytes to `ServerHandshake` in each of its three waiting states (before req_pq,
// before req_DH_params, before set_client_DH_params). The states are reached once, at start-up, by
// an honest `ClientHandshake`; value-type machines are then copied for every input, so the costly
// RSA and DH work of the honest prefix is not repeated.
//
// Input layout: byte 0 picks the state (mod 3), byte 1 the mode (mod 3), the rest is the payload.
//   mode 0: raw packets, each as [length: 2 bytes LE][bytes], fed in turn to the same machine
//   mode 1: message bodies in the same framing, wrapped in a valid unencrypted envelope
//   mode 2: edits [offset: 2 bytes LE][xor] applied to the honest client's next packet, which
//           reaches the RSA, AES and DH checks that random bytes never get past
// Feeding stops at the first thrown error or when a key is produced. Properties: nothing traps;
// every error has a description; an unedited honest packet is accepted.

struct Fixture {
    /// The server waiting in each state, and the honest client's packet for that state.
    var servers: [ServerHandshake] = []
    var honestPackets: [[UInt8]] = []
    let now = UnixTime(seconds: 1_759_500_000)

    init() {
        let key: RSAPrivateKey
        do {
            key = try RSAPrivateKey.generate(bits: 2048)
        } catch {
            preconditionFailure("cannot generate the fuzzer's RSA key: \(error)")
        }
        var server = ServerHandshake(configuration: .init(keys: [key], dcIDs: [2]), entropy: FuzzEntropy(seed: 1))
        var client = ClientHandshake(configuration: .init(serverKeys: [key.publicKey], dcID: 2), entropy: FuzzEntropy(seed: 2))
        var packet = client.start(now: now)
        do {
            for _ in 0..<3 {
                servers.append(server)
                honestPackets.append(packet)
                guard case .send(let answer) = try server.receive(packet, now: now),
                      case .send(let next) = try client.receive(answer, now: now)
                else { break }
                packet = next
            }
        } catch {
            preconditionFailure("the honest exchange failed: \(error)")
        }
        precondition(servers.count == 3, "the honest exchange did not reach set_client_DH_params")
    }
}

let fixture = Fixture()

/// [length: 2 bytes LE][bytes] chunks; a short tail is the last chunk.
func chunks(_ payload: ArraySlice<UInt8>) -> [[UInt8]] {
    var result: [[UInt8]] = []
    var rest = payload
    while rest.count >= 2 {
        let length = Int(rest[rest.startIndex]) | Int(rest[rest.startIndex + 1]) << 8
        rest = rest.dropFirst(2)
        result.append(Array(rest.prefix(length)))
        rest = rest.dropFirst(length)
    }
    return result
}

func envelope(_ body: [UInt8], id: Int64) -> [UInt8] {
    PlainMessage(messageID: id, body: body).encoded()
}

runFuzzer { raw in
    let input = Array(raw)
    guard input.count >= 2 else { return }
    let stateIndex = Int(input[0]) % 3
    let payload = input[2...]
    var server = fixture.servers[stateIndex]
    var packets: [[UInt8]]
    var mustSucceed = false
    switch input[1] % 3 {
    case 0:
        packets = chunks(payload)
    case 1:
        packets = chunks(payload).enumerated().map { envelope($0.element, id: 0x6A00_0000_0000_0000 + Int64($0.offset) * 4) }
    default:
        var packet = fixture.honestPackets[stateIndex]
        var edits = payload
        var changed = false
        while edits.count >= 3 {
            let offset = (Int(edits[edits.startIndex]) | Int(edits[edits.startIndex + 1]) << 8) % packet.count
            let mask = edits[edits.startIndex + 2]
            packet[offset] ^= mask
            changed = changed || mask != 0
            edits = edits.dropFirst(3)
        }
        // Edits can cancel out; only an input that edits nothing is known to be honest.
        mustSucceed = !changed && payload.count < 3
        packets = [packet]
    }
    for packet in packets {
        do throws(HandshakeError) {
            if case .sendAndComplete = try server.receive(packet, now: fixture.now) { return }
        } catch {
            precondition(!mustSucceed, "the honest packet for state \(stateIndex) was refused: \(error)")
            precondition(!error.description.isEmpty, "an error without a description")
            return
        }
    }
}
