// The session layer's cost per RPC round trip, in release builds:
//   swift run -c release SessionBench          (scripts/bench-session runs it next to Telethon's)
// Client side: ClientSession.send (msg_id, seq_no, container with acks, MTProto 2.0 encryption) plus
// ClientSession.receive of the answer (decryption, checks, rpc_result matching, ack bookkeeping),
// timed in thread CPU time around the client's calls only; the ServerSession answering in between
// is timed separately. Output: one "name value unit" line per figure.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MTProto
import MTProtoCrypto

func threadCPUSeconds() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func report(_ name: String, _ value: Double, _ unit: String) {
    let hundredths = Int(value * 100 + 0.5)
    let fraction = hundredths % 100
    print("\(name) \(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction) \(unit)")
}

var entropy = SystemEntropy()
let key: AuthKey = {
    guard let key = try? AuthKey(entropy.bytes(256)) else { preconditionFailure("256 bytes make a key") }
    return key
}()

/// Best of `trials` runs of `count` round trips: (client µs per round trip, server µs per round trip).
@MainActor func roundTrips(resultSize: Int, count: Int, trials: Int = 5) -> (client: Double, server: Double) {
    var bestClient = Double.infinity
    var bestServer = Double.infinity
    let request = [UInt8](repeating: 0x42, count: 64)
    // Random results: incompressible, so neither side spends time on gzip.
    let result = entropy.bytes(resultSize)
    for _ in 0..<trials {
        let start = UnixTime(seconds: 1_800_000_000)
        var client = ClientSession(authKey: key, sessionID: 1, serverSalt: 7, entropy: SystemEntropy())
        var server = ServerSession(
            authKey: key, salts: ServerSaltSchedule(initialSalt: 7, validSince: start, seed: entropy.bytes(32)), entropy: SystemEntropy())
        var clientTime = 0.0
        var serverTime = 0.0
        var answered = 0
        for index in 0..<count {
            let now = start + Double(index) * 0.001
            var mark = threadCPUSeconds()
            let (_, sent) = client.send(request: request, now: now)
            clientTime += threadCPUSeconds() - mark
            mark = threadCPUSeconds()
            var replies: [[UInt8]] = []
            for case .send(let packet) in sent {
                guard let actions = try? server.receive(packet, now: now) else { preconditionFailure("server refused") }
                for action in actions {
                    if case .send(let reply) = action { replies.append(reply) }
                    if case .request(let id, _) = action {
                        for case .send(let reply) in server.answer(request: id, result: result, now: now) { replies.append(reply) }
                    }
                }
            }
            serverTime += threadCPUSeconds() - mark
            mark = threadCPUSeconds()
            for reply in replies {
                guard let actions = try? client.receive(reply, now: now) else { preconditionFailure("client refused") }
                answered += actions.filter { if case .rpcResult = $0 { true } else { false } }.count
            }
            clientTime += threadCPUSeconds() - mark
        }
        precondition(answered == count, "every request must be answered")
        bestClient = min(bestClient, clientTime / Double(count) * 1e6)
        bestServer = min(bestServer, serverTime / Double(count) * 1e6)
    }
    return (bestClient, bestServer)
}

for size in [64, 4096, 65536] {
    let count = size > 10_000 ? 500 : 5_000
    let (client, server) = roundTrips(resultSize: size, count: count)
    report("session_client_roundtrip_\(size)B_ours", client, "us")
    report("session_server_roundtrip_\(size)B_ours", server, "us")
}
