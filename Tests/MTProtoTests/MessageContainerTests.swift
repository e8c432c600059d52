import Testing
@testable import MTProto

@Suite struct MessageContainerTests {
    private func messages(_ count: Int, sizes: (Int) -> Int = { _ in 8 }) -> [SessionMessage] {
        (0..<count).map { index in
            SessionMessage(messageID: Int64(1000 + index * 4), seqNo: Int32(index * 2 + 1), body: Fixtures.request(UInt32(index), payload: sizes(index)))
        }
    }

    @Test func roundTrips() throws {
        let inner = messages(5)
        let body = MessageContainer.encode(inner)
        #expect(try MessageContainer.decode(body, containerID: 5000) == inner)
    }

    @Test func nestedContainersAreRejected() {
        let nested = MessageContainer.encode(messages(2))
        let outer = MessageContainer.encode([SessionMessage(messageID: 2000, seqNo: 0, body: nested)])
        #expect(throws: SessionError.nestedContainer(messageID: 3000)) { try MessageContainer.decode(outer, containerID: 3000) }
    }

    @Test func innerIDsMustBeBelowTheContainers() {
        let body = MessageContainer.encode(messages(3))
        #expect(throws: SessionError.self) { try MessageContainer.decode(body, containerID: 1004) }
    }

    @Test func tooManyMessagesOrLyingLengthsAreRejected() {
        var writer = WireWriter()
        writer.write(WireConstructor.messageContainer)
        writer.write(Int32(MessageContainer.maxMessages + 1))
        writer.writeRaw([UInt8](repeating: 0, count: 16 * (MessageContainer.maxMessages + 1)))
        #expect(throws: SessionError.self) { try MessageContainer.decode(writer.bytes, containerID: 1 << 40) }

        var lying = WireWriter()
        lying.write(WireConstructor.messageContainer)
        lying.write(Int32(1))
        lying.write(Int64(4))
        lying.write(Int32(1))
        lying.write(Int32(4096))
        lying.write(UInt32(0))
        #expect(throws: SessionError.self) { try MessageContainer.decode(lying.bytes, containerID: 1 << 40) }

        var trailing = MessageContainer.encode(messages(1))
        trailing += [0, 0, 0, 0]
        #expect(throws: SessionError.self) { try MessageContainer.decode(trailing, containerID: 1 << 40) }
    }

    /// Property: random message sets plan into runs that respect both limits, and every run packs
    /// and unpacks to exactly its messages, in order.
    @Test func randomSetsPackWithinLimitsAndUnpackToTheSameSet() throws {
        var entropy = SeededEntropy(seed: 11)
        for _ in 0..<40 {
            let count = entropy.int(in: 1...300)
            let maxCount = entropy.int(in: 1...64)
            let maxBytes = entropy.int(in: 64...20_000)
            let set = messages(count) { _ in entropy.int(in: 0...1_500) & ~3 }
            let runs = MessageContainer.plan(bodySizes: set.map(\.body.count), maxCount: maxCount, maxBytes: maxBytes)
            #expect(runs.flatMap { Array($0) } == Array(0..<count), "every message exactly once, in order")
            var unpacked: [SessionMessage] = []
            for run in runs {
                #expect(run.count <= maxCount)
                let slice = Array(set[run])
                let encoded = MessageContainer.encode(slice)
                if run.count > 1 { #expect(encoded.count <= maxBytes) }
                unpacked += try MessageContainer.decode(encoded, containerID: Int64.max)
            }
            #expect(unpacked == set)
        }
    }

    @Test func theSpecsLimitsAreTheDefaults() {
        #expect(MessageContainer.maxMessages == 1024)
        let runs = MessageContainer.plan(bodySizes: Array(repeating: 4, count: 3000))
        #expect(runs.map(\.count) == [1024, 1024, 952])
        let big = MessageContainer.plan(bodySizes: [600_000, 600_000, 10])
        #expect(big.map(\.count) == [1, 2])
    }
}
