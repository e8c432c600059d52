import MTProto
import MTProtoClient
import SessionManager
import Testing

@Suite struct CircuitBreakerTests {
    private let t0 = UnixTime(seconds: 1000)

    @Test func opensAfterRepeatedFloodsWithinTheWindow() {
        var breaker = CircuitBreaker(policy: .init(floodsToOpen: 3, window: 600, baseCooldown: 300))
        #expect(breaker.recordFlood(now: t0, waitUntil: t0 + 5) == .none)
        // A flood outside the window starts the count again.
        #expect(breaker.recordFlood(now: t0 + 700, waitUntil: t0 + 705) == .none)
        #expect(breaker.recordFlood(now: t0 + 710, waitUntil: t0 + 715) == .none)
        #expect(breaker.recordFlood(now: t0 + 720, waitUntil: t0 + 725) == .opened(until: t0 + 1020, floods: 3))
        #expect(breaker.admit(now: t0 + 1019) == .refuse(until: t0 + 1020, floods: 3))
        #expect(breaker.admit(now: t0 + 1020) == .probe)
        // While the probe is out, the others wait.
        if case .refuse = breaker.admit(now: t0 + 1020) {} else { Issue.record("a second call went out during the probe") }
    }

    @Test func aFloodOnTheProbeReopensWithADoubledCooldownAndSuccessCloses() {
        var breaker = CircuitBreaker(policy: .init(floodsToOpen: 1, window: 600, baseCooldown: 300, maximumCooldown: 1000))
        #expect(breaker.recordFlood(now: t0, waitUntil: t0 + 10) == .opened(until: t0 + 300, floods: 1))
        #expect(breaker.admit(now: t0 + 300) == .probe)
        #expect(breaker.recordFlood(now: t0 + 300, waitUntil: t0 + 310) == .opened(until: t0 + 900, floods: 2))
        #expect(breaker.admit(now: t0 + 900) == .probe)
        // The cool-down is capped (1000 s), and a flood wait longer than it wins; the floods of
        // 600 s ago fell out of the window.
        #expect(breaker.recordFlood(now: t0 + 900, waitUntil: t0 + 5000) == .opened(until: t0 + 5000, floods: 1))
        #expect(breaker.admit(now: t0 + 5000) == .probe)
        #expect(breaker.recordSuccess() == .closed)
        #expect(breaker.state == .closed)
        #expect(breaker.recordFlood(now: t0 + 5001, waitUntil: t0 + 5002) == .opened(until: t0 + 5301, floods: 1))
    }

    /// The clock stepped back an hour (NTP) while the breaker was open: the cool-down still ends
    /// 300 s after it opened, not an hour later.
    @Test func aClockSteppedBackDoesNotLengthenTheCooldown() {
        var breaker = CircuitBreaker(policy: .init(floodsToOpen: 1, window: 600, baseCooldown: 300))
        #expect(breaker.recordFlood(now: t0 + 3600, waitUntil: t0 + 3610) == .opened(until: t0 + 3900, floods: 1))
        #expect(breaker.admit(now: t0) == .refuse(until: t0 + 300, floods: 1))
        #expect(breaker.admit(now: t0 + 299) == .refuse(until: t0 + 300, floods: 1))
        #expect(breaker.admit(now: t0 + 300) == .probe)
    }

    @Test func anOpenBreakerRefusesWithoutTouchingTheNetwork() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        for _ in 0..<3 { client.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_1"))) }
        let board = CircuitBreakerBoard(account: "alice", clock: clock, logger: quietLogger)
        let invoker = client.wrapped(in: [CircuitBreakerMiddleware(board)])
        for _ in 0..<3 { _ = await failure(invoker, nearest) }
        let error = try #require(await failure(invoker, nearest))
        #expect(error.sessionManagerError?.code == "TGSM-RATE-006")
        #expect(client.count("help.getNearestDc") == 3)
        // Other operations of the account are not affected.
        #expect(await failure(invoker, sendMessage(toUser: 1)) == nil)
        // After the cool-down one probe goes; its success closes the breaker.
        clock.advance(by: 300)
        #expect(await failure(invoker, nearest) == nil)
        #expect(board.state(of: "help.getNearestDc") == .closed)
        #expect(await failure(invoker, nearest) == nil)
    }

    @Test func aNetworkErrorOnTheProbeLetsTheNextCallProbe() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_1")), .failure(.timeout(method: "help.getNearestDc", seconds: 1, delivery: .sent)))
        let board = CircuitBreakerBoard(account: "alice", policy: .init(floodsToOpen: 1), clock: clock, logger: quietLogger)
        let invoker = client.wrapped(in: [CircuitBreakerMiddleware(board)])
        _ = await failure(invoker, nearest)
        clock.advance(by: 300)
        guard case .timeout = await failure(invoker, nearest) else {
            Issue.record("the probe should have reached the network")
            return
        }
        #expect(await failure(invoker, nearest) == nil)
    }
}
