import Testing
@testable import MTProto

@Suite struct MessageIDGeneratorTests {
    @Test func clientIDsAreDivisibleByFourAndStrictlyIncreasingWithinOneTick() {
        var generator = MessageIDGenerator()
        var previous: Int64 = 0
        var seen = Set<Int64>()
        for _ in 0..<10_000 {
            let id = generator.next(now: Fixtures.start, kind: .client)
            #expect(id % 4 == 0)
            #expect(id > previous)
            #expect(id & 0xffff_ffff != 0)
            seen.insert(id)
            previous = id
        }
        #expect(seen.count == 10_000)
    }

    @Test func serverIDsCarryTheirParity() {
        var generator = MessageIDGenerator()
        for index in 0..<100 {
            let kind: MessageIDKind = index % 2 == 0 ? .serverResponse : .serverInitiated
            let id = generator.next(now: Fixtures.start, kind: kind)
            #expect(id & 3 == (kind == .serverResponse ? 1 : 3))
            #expect(MessageIDGenerator.kind(of: id) == kind)
        }
    }

    @Test func idsEncodeTheCorrectedTime() {
        var generator = MessageIDGenerator(timeOffset: 42.5)
        let id = generator.next(now: Fixtures.start, kind: .client)
        let encoded = MessageIDGenerator.seconds(of: id)
        #expect(abs(encoded - (Fixtures.start.seconds + 42.5)) < 0.001)
        #expect(id >> 32 == Int64(Fixtures.start.seconds + 42.5))
    }

    /// A clock that ran ahead is corrected, but ids stay above the ones already issued (a repeated
    /// msg_id is answered with the old answer); `synchronize` says so, and only a new session's
    /// `restartFloor` lets ids follow the corrected clock.
    @Test func synchronizingBackKeepsIdsUniqueUntilTheFloorIsRestarted() {
        var generator = MessageIDGenerator(timeOffset: 3600)
        let ahead = generator.next(now: Fixtures.start, kind: .client)
        var server = MessageIDGenerator()
        let serverID = server.next(now: Fixtures.start, kind: .serverResponse)
        let floorLead = generator.synchronize(serverMessageID: serverID, now: Fixtures.start)
        #expect(abs(floorLead - 3600) < 1, "the ids issued are an hour ahead of the corrected clock")
        #expect(abs(generator.timeOffset) < 0.001)
        #expect(generator.next(now: Fixtures.start + 1, kind: .client) > ahead, "no id below one already issued in the session")
        generator.restartFloor()
        let corrected = generator.next(now: Fixtures.start + 1, kind: .client)
        #expect(corrected < ahead)
        #expect(abs(MessageIDGenerator.seconds(of: corrected) - (Fixtures.start.seconds + 1)) < 0.001)
    }

    /// A clock that was behind moves forward: nothing issued is in the way.
    @Test func synchronizingForwardNeedsNoNewSession() {
        var generator = MessageIDGenerator(timeOffset: -3600)
        let behind = generator.next(now: Fixtures.start, kind: .client)
        var server = MessageIDGenerator()
        let floorLead = generator.synchronize(serverMessageID: server.next(now: Fixtures.start, kind: .serverResponse), now: Fixtures.start)
        #expect(floorLead < 0)
        #expect(generator.next(now: Fixtures.start, kind: .client) > behind)
    }

    @Test func nonsenseClocksDoNotTrap() {
        var generator = MessageIDGenerator(timeOffset: .infinity)
        #expect(generator.timeOffset == 0)
        _ = generator.next(now: UnixTime(seconds: -5), kind: .client)
        _ = generator.next(now: UnixTime(seconds: .nan), kind: .client)
        _ = generator.next(now: UnixTime(seconds: 1e300), kind: .client)
        generator.setTimeOffset(.nan)
        #expect(generator.timeOffset == 0)
    }

    @Test func seqNoCountsContentRelatedMessages() {
        var counter = SequenceNumberCounter()
        #expect(counter.next(contentRelated: false) == 0)
        #expect(counter.next(contentRelated: true) == 1)
        #expect(counter.next(contentRelated: true) == 3)
        #expect(counter.next(contentRelated: false) == 4)
        #expect(counter.next(contentRelated: false) == 4)
        #expect(counter.next(contentRelated: true) == 5)
        #expect(counter.contentRelatedSent == 3)
    }
}
