import MTProto
import Testing
@testable import MTProtoClient

@Suite struct RequestTrackerTests {
    private let start = UnixTime(seconds: 1_700_000_000)

    @Test func answersReachTheirCallExactlyOnce() {
        var tracker = RequestTracker<String>()
        let token = tracker.makeToken()
        tracker.register(token, method: "help.getConfig", timeout: 10, payload: "a")
        tracker.attach(token, to: RequestID(rawValue: 7))
        #expect(tracker.complete(RequestID(rawValue: 7))?.0 == token)
        #expect(tracker.complete(RequestID(rawValue: 7)) == nil)
        #expect(tracker.isEmpty)
    }

    @Test func deadlinesExpireAtTheInjectedTimeAndNotBefore() {
        var tracker = RequestTracker<String>()
        let short = tracker.makeToken()
        let long = tracker.makeToken()
        let forever = tracker.makeToken()
        tracker.register(short, method: "a", timeout: 5, payload: "short")
        tracker.register(long, method: "b", timeout: 30, payload: "long")
        tracker.register(forever, method: "c", timeout: nil, payload: "forever")
        #expect(tracker.nextDeadline == nil)
        for token in [short, long, forever] { tracker.arm(token, now: start) }
        tracker.arm(short, now: start + 100)
        #expect(tracker.nextDeadline == start + 5)
        #expect(tracker.expire(now: start + 4.999).isEmpty)
        #expect(tracker.expire(now: start + 5).map(\.1.payload) == ["short"])
        #expect(tracker.nextDeadline == start + 30)
        #expect(tracker.expire(now: start + 1000).map(\.1.payload) == ["long"])
        #expect(tracker.nextDeadline == nil)
        #expect(tracker.count == 1)
    }

    @Test func handingOverDoesWhatArmingAttachingAndMarkingSentDo() {
        var stepByStep = RequestTracker<String>()
        var atOnce = RequestTracker<String>()
        for timeout in [Double?.some(5), nil] {
            let one = stepByStep.makeToken()
            let other = atOnce.makeToken()
            stepByStep.register(one, method: "m", timeout: timeout, payload: "body")
            atOnce.register(other, method: "m", timeout: timeout, payload: "body")
            let request = RequestID(rawValue: one.rawValue + 100)
            stepByStep.arm(one, now: start)
            stepByStep.attach(one, to: request)
            stepByStep.markSent(one, checkAt: start + 2)
            atOnce.handOver(other, to: request, now: start, checkAt: start + 2)
            #expect(stepByStep.entries[one]?.deadline == atOnce.entries[other]?.deadline)
            #expect(stepByStep.entries[one]?.requestID == atOnce.entries[other]?.requestID)
            #expect(atOnce.entries[other]?.payload == nil && stepByStep.entries[one]?.payload == nil)
            #expect(atOnce.entries[other]?.delivery == .sent && stepByStep.entries[one]?.delivery == .sent)
            #expect(stepByStep.entries[one]?.followUp == atOnce.entries[other]?.followUp)
            #expect(atOnce.token(of: request) == other)
        }
        #expect(stepByStep.nextDeadline == atOnce.nextDeadline)
        #expect(stepByStep.nextFollowUp == atOnce.nextFollowUp)
    }

    @Test func theEarliestTimesStayALowerBoundUntilRefreshedAndNeverMissAnEarlierOne() {
        var tracker = RequestTracker<String>()
        let first = tracker.makeToken()
        let second = tracker.makeToken()
        tracker.register(first, method: "a", timeout: 5, payload: "first")
        tracker.register(second, method: "b", timeout: 10, payload: "second")
        tracker.arm(first, now: start)
        tracker.arm(second, now: start)
        tracker.markSent(first, checkAt: start + 2)
        tracker.markSent(second, checkAt: start + 3)
        #expect(tracker.nextDeadline == start + 5)
        #expect(tracker.nextFollowUp == start + 2)
        // An answered call leaves the bounds where they were (a wake-up then finds nothing due)...
        _ = tracker.remove(first)
        #expect(tracker.nextDeadline == start + 5)
        #expect(tracker.nextFollowUp == start + 2)
        // ...until the timer makes them exact.
        tracker.refreshBounds()
        #expect(tracker.nextDeadline == start + 10)
        #expect(tracker.nextFollowUp == start + 3)
        // An earlier time always lowers them at once.
        tracker.setFollowUp(second, .giveUp(at: start + 1))
        #expect(tracker.nextFollowUp == start + 1)
        _ = tracker.remove(second)
        tracker.refreshBounds()
        #expect(tracker.nextDeadline == nil)
        #expect(tracker.nextFollowUp == nil)
    }

    @Test func theTimeoutStartsWhenTheCallIsArmedNotWhenItWaitsForAConnection() {
        var tracker = RequestTracker<String>()
        let token = tracker.makeToken()
        tracker.register(token, method: "help.getConfig", timeout: 10, payload: "c")
        #expect(tracker.expire(now: start + 1000).isEmpty)
        tracker.arm(token, now: start + 1000)
        #expect(tracker.expire(now: start + 1009).isEmpty)
        #expect(tracker.expire(now: start + 1010).map(\.1.payload) == ["c"])
    }

    @Test func aCancelledCallIgnoresItsLateAnswer() {
        var tracker = RequestTracker<String>()
        let token = tracker.makeToken()
        tracker.register(token, method: "messages.getHistory", timeout: nil, payload: "x")
        tracker.attach(token, to: RequestID(rawValue: 3))
        let removed = tracker.remove(token)
        #expect(removed?.requestID == RequestID(rawValue: 3))
        #expect(tracker.complete(RequestID(rawValue: 3)) == nil)
        #expect(tracker.requestsInFlight.isEmpty)
    }

    @Test func onlyAttachedCallsAreInDoubtAfterAReconnect() {
        var tracker = RequestTracker<Int>()
        let sent = tracker.makeToken()
        let queued = tracker.makeToken()
        tracker.register(sent, method: "a", timeout: nil, payload: 1)
        tracker.register(queued, method: "b", timeout: nil, payload: 2)
        tracker.attach(sent, to: RequestID(rawValue: 9))
        #expect(tracker.requestsInFlight == [RequestID(rawValue: 9)])
        #expect(tracker.parked.map(\.1) == [2], "only the unsent call still holds its body")
        #expect(tracker.removeAll().map(\.0) == [sent, queued])
        #expect(tracker.isEmpty)
    }
}
