import Testing
@testable import MTProto

@Suite struct ServerSaltScheduleTests {
    let start = UnixTime(seconds: 1_800_000_000)
    var schedule: ServerSaltSchedule { ServerSaltSchedule(initialSalt: 42, validSince: start, seed: Array(repeating: 1, count: 32)) }

    @Test func theHandshakeSaltHoldsTheFirstPeriodThenSaltsRotate() {
        #expect(schedule.current(at: start) == 42)
        #expect(schedule.current(at: start + 3599) == 42)
        let next = schedule.current(at: start + 3600)
        #expect(next != 42)
        #expect(schedule.current(at: start + 7199) == next)
        #expect(schedule.current(at: start + 7200) != next)
    }

    @Test func theOldSaltIsAcceptedThroughTheOverlapOnly() {
        #expect(schedule.accepts(42, at: start + 3600 + 1799))
        #expect(!schedule.accepts(42, at: start + 3600 + 1800))
        #expect(schedule.accepts(schedule.current(at: start + 5000), at: start + 5000))
        #expect(!schedule.accepts(0, at: start + 10))
        #expect(!schedule.accepts(42, at: start + -1), "nothing is valid before the schedule starts")
    }

    @Test func futureSaltsAreTheSaltsTheScheduleWillUse() {
        let upcoming = schedule.upcoming(5, at: start + 100)
        #expect(upcoming.count == 5)
        for (offset, salt) in upcoming.enumerated() {
            let during = start + Double(offset * 3600 + 10)
            #expect(salt.isValid(at: during.seconds))
            #expect(schedule.current(at: during) == salt.salt)
        }
        #expect(schedule.upcoming(500, at: start).count == 64)
        #expect(schedule.upcoming(0, at: start).count == 1)
    }

    @Test func copiesFromOneSeedAgreeAndSeedsDiffer() {
        let other = ServerSaltSchedule(initialSalt: 42, validSince: start, seed: Array(repeating: 1, count: 32))
        let different = ServerSaltSchedule(initialSalt: 42, validSince: start, seed: Array(repeating: 2, count: 32))
        let later = start + 100_000
        #expect(schedule.current(at: later) == other.current(at: later))
        #expect(schedule.current(at: later) != different.current(at: later))
        #expect(!schedule.description.contains("1, 1, 1"))
    }

    @Test func nonsenseTimesDoNotTrap() {
        _ = schedule.current(at: UnixTime(seconds: .nan))
        _ = schedule.accepts(1, at: UnixTime(seconds: .infinity))
        _ = schedule.upcoming(3, at: UnixTime(seconds: 1e300))
        _ = ServerSaltSchedule(initialSalt: 1, validSince: UnixTime(seconds: -.infinity), seed: [])
    }
}
