import MTProto
import MTProtoClient
import SessionManager
import Testing

@Suite struct KeepAliveTests {
    @Test func anIdleAccountIsPingedOncePerIntervalAndAnActiveOneIsLeftAlone() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", clock: clock, logger: quietLogger)
        let client = ScriptedInvoker()
        let policy = KeepAlivePolicy(interval: 3600, jitter: 0, call: .getAccountTTL)
        let keepAlive = KeepAlive(account: "alice", invoker: client.wrapped(in: [HealthMiddleware(health)]), health: health, policy: policy,
                                  clock: clock, random: SeededRandomSource(seed: 3), logger: quietLogger)
        // Never succeeded: due at once.
        guard case .pinged = await keepAlive.step() else {
            Issue.record("expected a ping")
            return
        }
        #expect(client.calls.map(\.method) == ["account.getAccountTTL"])
        #expect(health.snapshot.pingRTT == 0)
        clock.advance(by: 1800)
        #expect(await keepAlive.step() == .skipped(next: clock.now() + 1800))
        // Another successful call postpones the keep-alive.
        _ = await failure(client.wrapped(in: [HealthMiddleware(health)]), nearest)
        clock.advance(by: 3599)
        #expect(await keepAlive.step() == .skipped(next: clock.now() + 1))
        clock.advance(by: 1)
        #expect(await keepAlive.step() == .pinged(rtt: 0))
        #expect(client.count("account.getAccountTTL") == 2)
    }

    @Test func jitterOnlyEverShortensTheInterval() {
        let policy = KeepAlivePolicy(interval: 1000, jitter: 0.1)
        let last = UnixTime(seconds: 0)
        #expect(policy.nextDue(lastSuccess: last, now: last, unit: 0) == UnixTime(seconds: 1000))
        #expect(policy.nextDue(lastSuccess: last, now: last, unit: 0.5) == UnixTime(seconds: 950))
        #expect(policy.nextDue(lastSuccess: nil, now: last, unit: 0.5) == last)
    }

    @Test func theLoopStopsWhenTheAccountTurnsTerminal() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", clock: clock, logger: quietLogger)
        let client = ScriptedInvoker()
        client.script("updates.getState", .success(ScriptedInvoker.state), .failure(rpc(401, "SESSION_REVOKED", method: "updates.getState")))
        let keepAlive = KeepAlive(account: "alice", invoker: client.wrapped(in: [HealthMiddleware(health)]), health: health,
                                  policy: KeepAlivePolicy(interval: 600, jitter: 0), clock: clock, random: SeededRandomSource(seed: 3), logger: quietLogger)
        await keepAlive.run()
        #expect(client.count("updates.getState") == 2)
        #expect(clock.sleeps == [600])
        #expect(health.snapshot.state == .terminal)
    }
}
