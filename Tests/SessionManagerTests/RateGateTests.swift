import MTProto
import MTProtoClient
import SessionManager
import TLSchema
import Testing

@Suite struct RateGateTests {
    @Test func aBucketGivesItsBurstThenPacesAtItsRate() {
        var bucket = TokenBucket(rate: .per(2, burst: 3), now: UnixTime(seconds: 0))
        var waits: [Double] = []
        for _ in 0..<5 {
            waits.append(bucket.waitForToken(now: UnixTime(seconds: 0)))
            bucket.take(now: UnixTime(seconds: 0))
        }
        // Three free, then each token is 2 s after the previous debt.
        #expect(waits == [0, 0, 0, 2, 4])
        // A clock that goes back neither refills nor drains.
        #expect(bucket.waitForToken(now: UnixTime(seconds: -100)) == 6)
        #expect(bucket.waitForToken(now: UnixTime(seconds: 6)) == 0)
    }

    /// A bucket stamped ahead of the clock (written by a process whose clock was ahead, or before
    /// NTP stepped ours back) refills from now on, instead of refilling nothing for the length of
    /// the step while every call still takes a token.
    @Test func aBucketStampedAheadOfTheClockRefillsFromNow() {
        var bucket = TokenBucket(rate: .per(2, burst: 3), tokens: 0, updatedAt: UnixTime(seconds: 3600))
        #expect(bucket.waitForToken(now: UnixTime(seconds: 0)) == 2)
        #expect(bucket.waitForToken(now: UnixTime(seconds: 2)) == 0)
        bucket.take(now: UnixTime(seconds: 2))
        #expect(bucket.waitForToken(now: UnixTime(seconds: 4)) == 0)
    }

    @Test func sendsArePacedPerChatAndPerAccount() {
        let gate = RateGate(account: "alice", clock: TestClock(), logger: quietLogger)
        let now = UnixTime(seconds: 0)
        // Per chat: burst 3, then one every 3 s.
        let one = (0..<4).map { _ in gate.reserve(category: .send, peer: "user:1", now: now) }
        #expect(one == [.go(after: 0), .go(after: 0), .go(after: 0), .go(after: 3)])
        // The account-wide burst (5) is nearly spent: the second chat gets one free token.
        let two = (0..<2).map { _ in gate.reserve(category: .send, peer: "user:2", now: now) }
        #expect(two == [.go(after: 0), .go(after: 3)])
    }

    @Test func aRefusalTakesNoTokenAndNeverReachesTheNetwork() async throws {
        let clock = TestClock()
        let gate = RateGate(account: "alice", policy: RateGatePolicy(maximumInlineWait: 30), clock: clock, logger: quietLogger)
        let client = ScriptedInvoker()
        let invoker = client.wrapped(in: [RateGateMiddleware(gate)])
        let resolve = TLSchemaRequests.resolve("someone")
        // Burst of 3, then one per 450 s: beyond the inline limit.
        // (The fake's answer to resolveUsername is an error of the server: what counts is that it was asked.)
        for _ in 0..<3 { #expect(await failure(invoker, resolve)?.sessionManagerError == nil) }
        let error = try #require(await failure(invoker, resolve))
        let typed = try #require(error.sessionManagerError)
        #expect(typed.code == "TGSM-RATE-005")
        #expect(typed.until == clock.now() + 450)
        #expect(client.count("contacts.resolveUsername") == 3)
        // Nothing was taken by the refusal: after 450 s exactly one more goes without waiting.
        clock.advance(by: 450)
        #expect(await failure(invoker, resolve)?.sessionManagerError == nil)
        #expect(client.count("contacts.resolveUsername") == 4)
        #expect(clock.sleeps.isEmpty)
    }

    @Test func shortWaitsAreSleptOnTheInjectedClock() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        let invoker = client.wrapped(in: [RateGateMiddleware(RateGate(account: "alice", clock: clock, logger: quietLogger))])
        for _ in 0..<5 { #expect(await failure(invoker, sendMessage(toUser: 1)) == nil) }
        #expect(clock.sleeps == [3, 3])
        #expect(client.count("messages.sendMessage") == 5)
    }

    @Test func methodsFallIntoTheirCategories() {
        #expect(MethodCategory(method: "messages.sendMessage") == .send)
        #expect(MethodCategory(method: "messages.getHistory") == .read)
        #expect(MethodCategory(method: "contacts.resolveUsername") == .resolve)
        #expect(MethodCategory(method: "channels.joinChannel") == .join)
        #expect(MethodCategory(method: "auth.signIn") == .auth)
        #expect(MethodCategory(method: "updates.getState") == .other)
    }

    /// A bucket per chat written to does not pile up over weeks: once more than a few hundred are
    /// held, those refilled to full (the same as new ones) are dropped, and a chat used again
    /// starts from a full bucket as it would have anyway.
    @Test func perChatBucketsThatRefilledAreDropped() {
        let clock = TestClock()
        let policy = RateGatePolicy(perAccount: [.send: .per(0.001, burst: 10_000)], maximumInlineWait: 30)
        let gate = RateGate(account: "alice", policy: policy, clock: clock, logger: quietLogger)
        for chat in 0..<300 { #expect(gate.reserve(category: .send, peer: "user:\(chat)", now: clock.now()) == .go(after: 0)) }
        #expect(gate.bucketsHeld == 301, "none full yet: the account's and one per chat")
        clock.advance(by: 10)
        #expect(gate.reserve(category: .send, peer: "user:1000", now: clock.now()) == .go(after: 0))
        #expect(gate.bucketsHeld == 2, "the refilled per-chat buckets went: \(gate.bucketsHeld)")
        // A chat used again: three sends go at once, the fourth waits its 3 s, as with a new bucket.
        for _ in 0..<3 { #expect(gate.reserve(category: .send, peer: "user:7", now: clock.now()) == .go(after: 0)) }
        #expect(gate.reserve(category: .send, peer: "user:7", now: clock.now()) == .go(after: 3))
    }
}

enum TLSchemaRequests {
    static func resolve(_ username: String) -> Api.functions.contacts.ResolveUsername {
        Api.functions.contacts.ResolveUsername(username: username)
    }
}
