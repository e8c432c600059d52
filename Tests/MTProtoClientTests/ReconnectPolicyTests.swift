import Testing
@testable import MTProtoClient

@Suite struct ReconnectPolicyTests {
    @Test func delaysGrowExponentiallyUpToTheCapThenStop() {
        let policy = ReconnectPolicy(initialDelay: 0.5, multiplier: 2, maximumDelay: 3, maximumAttempts: 6)
        let delays = (1...7).map { policy.delay(beforeAttempt: $0) }
        #expect(delays == [0, 0.5, 1, 2, 3, 3, nil])
    }

    @Test func aSingleAttemptPolicyNeverWaits() {
        let policy = ReconnectPolicy(maximumAttempts: 1)
        #expect(policy.delay(beforeAttempt: 1) == 0)
        #expect(policy.delay(beforeAttempt: 2) == nil)
        #expect(policy.delay(beforeAttempt: 0) == nil)
    }

    @Test func onlyAConnectionThatStayedUpRestartsTheBudget() {
        let policy = ReconnectPolicy(stableAfter: 10)
        #expect(!policy.resetsBudget(afterLinkLasting: 0.01))
        #expect(!policy.resetsBudget(afterLinkLasting: 9.99))
        #expect(policy.resetsBudget(afterLinkLasting: 10))
        #expect(ReconnectPolicy(stableAfter: 0).resetsBudget(afterLinkLasting: 0))
    }
}
