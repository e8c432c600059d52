import Testing
import MTProtoCrypto
@testable import MTProto

/// Property: over random runs of requests, clock jumps, lost, duplicated and reordered packets,
/// server resends and client state requests, every request is answered exactly once and no packet
/// either side produces is ever refused as undecryptable.
@Suite struct SessionRobustnessTests {
    struct Network {
        var pair: SessionPair
        var rng: SeededEntropy
        var answered: [RequestID: Int] = [:]
        var sent: Set<RequestID> = []
        var nextTag: UInt32 = 1
        /// How often the server handed each query (by its unique body) up to the API layer.
        var runs: [[UInt8]: Int] = [:]

        mutating func deliverToServer(_ packet: [UInt8]) {
            do {
                let actions = try pair.server.receive(packet, now: pair.now)
                pair.serverDid(actions)
                for case .request(let id, let body) in actions {
                    runs[body, default: 0] += 1
                    pair.serverDid(pair.server.answer(request: id, result: body, now: pair.now))
                }
            } catch {
                Issue.record("server refused a packet: \(error)")
            }
        }

        mutating func deliverToClient(_ packet: [UInt8]) {
            do {
                let actions = try pair.client.receive(packet, now: pair.now)
                var lost: [RequestID] = []
                for action in actions {
                    switch action {
                    case .rpcResult(let id, _): answered[id, default: 0] += 1
                    case .newSessionCreated(_, let inDoubt), .sessionReset(_, let inDoubt): lost += inDoubt
                    case .forgottenByServer(let requests): lost += requests
                    default: break
                    }
                }
                pair.clientDid(actions)
                // What an owner whose requests are all safe to repeat does (ResendPolicy.always).
                if !lost.isEmpty { pair.clientDid(pair.client.resend(lost, now: pair.now)) }
            } catch {
                // Replays and stale copies are expected here; anything fatal is not.
                #expect(!error.isFatal, "\(error)")
            }
        }

        mutating func deliverAll(shuffled: Bool) {
            var rounds = 0
            while !pair.toServer.isEmpty || !pair.toClient.isEmpty, rounds < 50 {
                rounds += 1
                // Client packets keep their order (one TCP stream): a state request overtaking the
                // query it asks about would rightly be told "not received", and the query would
                // then run twice. Server packets may arrive in any order.
                let outbound = pair.toServer
                pair.toServer.removeAll()
                for packet in outbound { deliverToServer(packet) }
                var inbound = pair.toClient
                pair.toClient.removeAll()
                if shuffled { inbound.shuffle(using: &rng) }
                for packet in inbound { deliverToClient(packet) }
            }
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func everyRequestIsAnsweredExactlyOnce(seed: UInt64) throws {
        var net = Network(pair: SessionPair(clientSalt: seed % 2 == 0 ? 0 : Fixtures.initialSalt, seed: seed), rng: SeededEntropy(seed: seed))
        for _ in 0..<200 {
            net.pair.now = net.pair.now + Double(net.rng.int(in: 0...2000)) / 1000
            switch net.rng.int(in: 0...11) {
            case 0...3:
                let (id, actions) = net.pair.client.send(request: Fixtures.request(0x5000_0000 + net.nextTag, payload: net.rng.int(in: 0...64) * 4), now: net.pair.now)
                net.nextTag += 1
                net.sent.insert(id)
                net.pair.clientDid(actions)
            case 4:
                net.pair.now = net.pair.now + Double(net.rng.int(in: 1...40))
                net.pair.clientDid(net.pair.client.tick(now: net.pair.now))
                net.pair.serverDid(net.pair.server.tick(now: net.pair.now))
            case 5:
                net.pair.serverDid(net.pair.server.push(Fixtures.request(0xFEED), now: net.pair.now))
            case 6:
                // The connection drops what the server sent; the server resends on reconnect.
                net.pair.toClient.removeAll()
                net.pair.serverDid(net.pair.server.resendUnacknowledged(now: net.pair.now))
            case 7:
                if let packet = net.pair.toClient.randomElement(using: &net.rng) { net.pair.toClient.append(packet) }
                if let packet = net.pair.toServer.randomElement(using: &net.rng) { net.pair.toServer.append(packet) }
            case 8:
                net.deliverAll(shuffled: true)
            case 9:
                // The client's packets are lost; it asks about what is pending later.
                net.pair.toServer.removeAll()
            case 10:
                net.pair.clientDid(net.pair.client.requestState(of: net.pair.client.pendingRequests, now: net.pair.now))
            default:
                net.deliverAll(shuffled: false)
            }
        }
        // Settle: deliver, let the server resend what was lost, ask about the rest, until done.
        for _ in 0..<10 where !net.pair.client.pendingRequests.isEmpty || !net.pair.toServer.isEmpty || !net.pair.toClient.isEmpty {
            net.deliverAll(shuffled: false)
            net.pair.serverDid(net.pair.server.resendUnacknowledged(now: net.pair.now))
            net.deliverAll(shuffled: false)
            net.pair.clientDid(net.pair.client.requestState(of: net.pair.client.pendingRequests, now: net.pair.now))
            net.deliverAll(shuffled: false)
        }
        #expect(net.pair.client.pendingRequests.isEmpty)
        #expect(Set(net.answered.keys) == net.sent)
        #expect(net.answered.values.allSatisfy { $0 == 1 }, "a request answered twice")
        #expect(net.sent.count > 20)
        #expect(net.runs.count == net.sent.count)
        #expect(net.runs.values.allSatisfy { $0 == 1 }, "the server ran a query twice: \(net.runs.values.filter { $0 > 1 })")
    }
}

extension SeededEntropy: RandomNumberGenerator {}
