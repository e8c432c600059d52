import MTProto
import Testing
@testable import MTProtoClient

@Suite struct RequestTrackerTests {
    private let start = UnixTime(seconds: 1_700_000_000)

    @Test func answersReachTheirCallExactlyOnce() {
        var tracker = RequestTracker<String>()
        let token = tracker.makeToken()
        tracker.register(token, method: "help.getConfig", timeout: 10, payload: "a")
        tracker.handOver(token, to: RequestID(rawValue: 7), now: start, checkAt: start + 2)
        #expect(tracker.complete(RequestID(rawValue: 7))?.0 == token)
        #expect(tracker.complete(RequestID(rawValue: 7)) == nil)
        #expect(tracker.isEmpty)
    }

    /// "Still running" turns a give-up into another answer request, only within the limit counted
    /// from the first confirmation, and never moves a state check or an answer request.
    @Test func aRunningReportPostponesTheGiveUpOnlyWithinItsLimit() {
        var tracker = RequestTracker<String>()
        let token = tracker.makeToken()
        let request = RequestID(rawValue: 9)
        tracker.register(token, method: "messages.search", timeout: nil, payload: "q")
        tracker.handOver(token, to: request, now: start, checkAt: start + 10)
        tracker.markRunning(request, askAt: start + 5, now: start + 1, limit: 60)
        #expect(tracker.entries[token]?.followUp == .checkState(at: start + 10), "not confirmed yet: nothing to postpone")
        tracker.markReceived(request, followUp: .askForAnswer(at: start + 20), now: start + 10)
        #expect(tracker.entries[token]?.confirmedAt == start + 10)
        tracker.markRunning(request, askAt: start + 20, now: start + 10, limit: 60)
        #expect(tracker.entries[token]?.followUp == .askForAnswer(at: start + 20))
        tracker.setFollowUp(token, .giveUp(at: start + 30))
        tracker.markRunning(request, askAt: start + 30, now: start + 20, limit: 60)
        #expect(tracker.entries[token]?.followUp == .askForAnswer(at: start + 30))
        tracker.setFollowUp(token, .giveUp(at: start + 70))
        tracker.markRunning(request, askAt: start + 70, now: start + 60, limit: 60)
        #expect(tracker.entries[token]?.followUp == .askForAnswer(at: start + 70), "the last ask: 60 s after the confirmation")
        tracker.setFollowUp(token, .giveUp(at: start + 75))
        tracker.markRunning(request, askAt: start + 75, now: start + 60, limit: 60)
        #expect(tracker.entries[token]?.followUp == .giveUp(at: start + 75), "reported within 60 s, but the ask would be 65 s after: no more waiting")
        // A second confirmation (a repeated state check) keeps the first time.
        tracker.markReceived(request, followUp: .askForAnswer(at: start + 90), now: start + 75)
        #expect(tracker.entries[token]?.confirmedAt == start + 10)
        // Sent again under a new msg_id: the wait starts over.
        tracker.markResent(token, checkAt: start + 100)
        #expect(tracker.entries[token]?.followUp == .checkState(at: start + 100))
        #expect(tracker.entries[token]?.confirmedAt == nil && tracker.entries[token]?.delivery == .sent)
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
        for (index, token) in [short, long, forever].enumerated() {
            tracker.handOver(token, to: RequestID(rawValue: UInt64(index) + 1), now: start, checkAt: start + 1000)
        }
        // Handed over again (a resend on a new session): the timeout already runs and is kept.
        tracker.handOver(short, to: RequestID(rawValue: 4), now: start + 100, checkAt: start + 1000)
        #expect(tracker.nextDeadline == start + 5)
        #expect(tracker.expire(now: start + 4.999).isEmpty)
        #expect(tracker.expire(now: start + 5).map(\.1.method) == ["a"])
        #expect(tracker.nextDeadline == start + 30)
        #expect(tracker.expire(now: start + 1000).map(\.1.method) == ["b"])
        #expect(tracker.nextDeadline == nil)
        #expect(tracker.count == 1)
    }

    @Test func handingOverArmsLinksAndMarksTheCallSent() {
        var tracker = RequestTracker<String>()
        for timeout in [Double?.some(5), nil] {
            let token = tracker.makeToken()
            tracker.register(token, method: "m", timeout: timeout, payload: "body")
            #expect(tracker.entries[token]?.payload == "body" && tracker.entries[token]?.delivery == .notSent)
            let request = RequestID(rawValue: token.rawValue + 100)
            tracker.handOver(token, to: request, now: start, checkAt: start + 2)
            #expect(tracker.entries[token]?.deadline == timeout.map { start + $0 })
            #expect(tracker.entries[token]?.requestID == request)
            #expect(tracker.entries[token]?.payload == nil, "the body is the session's now")
            #expect(tracker.entries[token]?.delivery == .sent)
            #expect(tracker.entries[token]?.followUp == .checkState(at: start + 2))
            #expect(tracker.token(of: request) == token)
        }
        #expect(tracker.nextDeadline == start + 5)
        #expect(tracker.nextFollowUp == start + 2)
    }

    @Test func theEarliestTimesStayALowerBoundUntilRefreshedAndNeverMissAnEarlierOne() {
        var tracker = RequestTracker<String>()
        let first = tracker.makeToken()
        let second = tracker.makeToken()
        tracker.register(first, method: "a", timeout: 5, payload: "first")
        tracker.register(second, method: "b", timeout: 10, payload: "second")
        tracker.handOver(first, to: RequestID(rawValue: 1), now: start, checkAt: start + 2)
        tracker.handOver(second, to: RequestID(rawValue: 2), now: start, checkAt: start + 3)
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
        tracker.handOver(token, to: RequestID(rawValue: 1), now: start + 1000, checkAt: start + 1002)
        #expect(tracker.expire(now: start + 1009).isEmpty)
        #expect(tracker.expire(now: start + 1010).map(\.1.method) == ["help.getConfig"])
    }

    @Test func aCancelledCallIgnoresItsLateAnswer() {
        var tracker = RequestTracker<String>()
        let token = tracker.makeToken()
        tracker.register(token, method: "messages.getHistory", timeout: nil, payload: "x")
        tracker.handOver(token, to: RequestID(rawValue: 3), now: start, checkAt: start + 2)
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
        tracker.handOver(sent, to: RequestID(rawValue: 9), now: start, checkAt: start + 2)
        #expect(tracker.requestsInFlight == [RequestID(rawValue: 9)])
        #expect(tracker.parked.map(\.1) == [2], "only the unsent call still holds its body")
        #expect(tracker.removeAll().map(\.0) == [sent, queued])
        #expect(tracker.isEmpty)
    }
}
