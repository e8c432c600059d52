import MTProto
import MTProtoClient
import SessionManager
import Testing

@Suite struct AccountHealthTests {
    @Test func stateFollowsTheOutcomesOfCalls() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", policy: .init(failuresForDown: 3), clock: clock, logger: quietLogger)
        let client = ScriptedInvoker()
        let invoker = client.wrapped(in: [HealthMiddleware(health)])
        #expect(health.snapshot.state == .unknown)
        #expect(await failure(invoker, nearest) == nil)
        #expect(health.snapshot.state == .healthy && health.snapshot.lastSuccess == clock.now())
        let down = TelegramError.connectionFailed(dc: 1, attempts: 6, reason: "refused")
        client.script("help.getNearestDc", .failure(down), .failure(down), .failure(down))
        var states: [HealthState] = []
        for _ in 0..<3 {
            clock.advance(by: 1)
            _ = await failure(invoker, nearest)
            states.append(health.snapshot.state)
        }
        #expect(states == [.degraded, .degraded, .down])
        #expect(health.snapshot.consecutiveFailures == 3 && health.snapshot.lastFailureCode == "TGSM-NET-001")
        #expect(await failure(invoker, nearest) == nil)
        #expect(health.snapshot.state == .healthy && health.snapshot.consecutiveFailures == 0)
        client.script("help.getNearestDc", .failure(rpc(401, "SESSION_REVOKED")))
        _ = await failure(invoker, nearest)
        #expect(health.snapshot.state == .terminal)
    }

    /// A frozen account (read-only until an appeal) stays degraded whatever succeeds after.
    @Test func aFrozenAccountStaysDegraded() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", policy: .init(failuresForDown: 3), clock: clock, logger: quietLogger)
        let client = ScriptedInvoker()
        let invoker = client.wrapped(in: [HealthMiddleware(health)])
        client.script("help.getNearestDc", .failure(rpc(420, "FROZEN_METHOD_INVALID")))
        _ = await failure(invoker, nearest)
        let frozen = clock.now()
        #expect(health.snapshot.state == .degraded && health.snapshot.frozenSince == frozen)
        clock.advance(by: 5)
        #expect(await failure(invoker, nearest) == nil)
        #expect(health.snapshot.state == .degraded && health.snapshot.frozenSince == frozen, "a read that works unfreezes nothing")
        client.script("help.getNearestDc", .failure(rpc(400, "PEER_ID_INVALID")))
        _ = await failure(invoker, nearest)
        #expect(health.snapshot.frozenSince == frozen)
    }

    /// api/auth: after FROZEN_METHOD_INVALID, help.getAppConfig says when the account is deleted and
    /// where to appeal. Asked once (a failed lookup is asked again at the next frozen answer).
    @Test func theFreezesDeletionDateAndAppealAreReadOnceFromTheAppConfig() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", clock: clock, logger: quietLogger)
        let client = ScriptedInvoker()
        let invoker = client.wrapped(in: [HealthMiddleware(health)])
        let frozenAnswer = rpc(420, "FROZEN_METHOD_INVALID", method: "messages.sendMessage")
        client.script("help.getNearestDc", .failure(frozenAnswer), .failure(frozenAnswer), .failure(frozenAnswer))
        client.script("help.getAppConfig", .failure(rpc(500, "INTERNAL_SERVER_ERROR", method: "help.getAppConfig")),
                      .success(AccountFreezeTests.config([("freeze_until_date", AccountFreezeTests.number(1_800_086_400)),
                                                          ("freeze_appeal_url", AccountFreezeTests.text("https://t.me/spambot"))])))
        _ = await failure(invoker, nearest)
        #expect(health.snapshot.freeze == nil, "the lookup failed")
        _ = await failure(invoker, nearest)
        #expect(health.snapshot.freeze == AccountFreeze(deletedAfter: UnixTime(seconds: 1_800_086_400), appealURL: "https://t.me/spambot"))
        _ = await failure(invoker, nearest)
        #expect(client.count("help.getAppConfig") == 2, "read once it is known")
        // Other failures never ask.
        let unfrozen = AccountHealth(account: "bob", clock: clock, logger: quietLogger)
        let other = ScriptedInvoker()
        other.script("help.getNearestDc", .failure(rpc(400, "PEER_ID_INVALID")))
        _ = await failure(other.wrapped(in: [HealthMiddleware(unfrozen)]), nearest)
        #expect(other.count("help.getAppConfig") == 0)
    }

    @Test func eventsArriveAsAnAsyncSequence() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", clock: clock, logger: quietLogger)
        let events = health.events()
        let other = health.events()
        health.recordSuccess()
        health.recordSuccess()
        health.recordPing(rtt: 0.25)
        let wait = FloodWait(account: "alice", method: "m", kind: .floodWait, recordedAt: clock.now(), until: clock.now() + 60)
        health.recordFailure(SessionManagerError(.floodWait(wait)))
        var iterator = events.makeAsyncIterator()
        var received: [HealthEvent.Kind] = []
        for _ in 0..<4 { if let event = await iterator.next() { received.append(event.kind) } }
        #expect(received == [
            .stateChanged(from: .unknown, to: .healthy), .ping(rtt: 0.25),
            .stateChanged(from: .healthy, to: .rateLimited), .failure(code: "TGSM-RATE-001"),
        ])
        var second = other.makeAsyncIterator()
        #expect(await second.next()?.kind == .stateChanged(from: .unknown, to: .healthy))
        #expect(health.snapshot.pingRTT == 0.25 && health.snapshot.rateLimitedUntil == clock.now() + 60)
    }
}
