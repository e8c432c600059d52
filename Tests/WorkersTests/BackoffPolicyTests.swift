import Testing
import SessionManager
@testable import Workers

@Suite struct BackoffPolicyTests {
    @Test func theCeilingDoublesUpToTheCap() {
        let policy = BackoffPolicy(base: 2, cap: 60)
        #expect((1...7).map { policy.ceiling(afterAttempt: $0) } == [2, 4, 8, 16, 32, 60, 60])
        #expect(policy.ceiling(afterAttempt: 10_000) == 60)
    }

    @Test func fullJitterSpreadsBetweenZeroAndTheCeiling() {
        let policy = BackoffPolicy(base: 2, cap: 600)
        #expect(policy.delay(afterAttempt: 3, unit: 0) == 0)
        #expect(policy.delay(afterAttempt: 3, unit: 0.5) == 4)
        let random = SeededRandomSource(seed: 7)
        let delays = (0..<1000).map { _ in policy.delay(afterAttempt: 4, unit: random.nextUnit()) }
        #expect(delays.allSatisfy { $0 >= 0 && $0 < 16 })
        // Spread over the whole range, not bunched: both halves are well populated.
        #expect(delays.filter { $0 < 8 }.count > 400 && delays.filter { $0 >= 8 }.count > 400)
    }

    @Test func aSeededSourceRepeatsItself() {
        let first = SeededRandomSource(seed: 42)
        let second = SeededRandomSource(seed: 42)
        #expect((0..<5).map { _ in first.next() } == (0..<5).map { _ in second.next() })
    }
}
