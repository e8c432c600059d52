import MTProto
import MTProtoClient
import SessionManager
import Testing

/// `LinkKeeper` on a scripted client behind the health middleware: the tries and their backoff,
/// and when it leaves the link alone.
@Suite struct LinkKeeperTests {
    static let refused = TelegramError.connectionFailed(dc: 2, attempts: 3, reason: "connection refused")

    func keeper(_ client: ScriptedInvoker, _ health: AccountHealth, _ clock: TestClock) -> LinkKeeper {
        LinkKeeper(account: "alice", invoker: client.wrapped(in: [HealthMiddleware(health)]), health: health,
                   policy: LinkKeeperPolicy(firstDelay: 1, maximumDelay: 8, timeout: 5), clock: clock, logger: quietLogger)
    }

    /// The link dropped with nothing to do: tries with backoff (1, 2, 4, 8, 8 s), the account seen
    /// down on the way, healthy once a try goes through.
    @Test func aLostLinkIsTriedWithBackoffUntilItIsBack() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", clock: clock, logger: quietLogger)
        health.recordSuccess()
        let client = ScriptedInvoker()
        client.script("updates.getState", .failure(Self.refused), .failure(Self.refused), .failure(Self.refused), .failure(Self.refused),
                      .success(ScriptedInvoker.state))
        let states = health.events()
        let calls = await keeper(client, health, clock).reconnect(after: .linkLost(clock.now()))
        #expect(calls == 5 && client.count("updates.getState") == 5)
        #expect(clock.sleeps == [1, 2, 4, 8, 8])
        #expect(client.calls.allSatisfy { $0.options.isIdempotent && $0.options.timeout == 5 })
        #expect(health.snapshot.state == .healthy && health.snapshot.consecutiveFailures == 0)
        var seen: [HealthState] = []
        for await event in states {
            if case .stateChanged(_, let to) = event.kind { seen.append(to) }
            if seen.last == .healthy, seen.count > 1 { break }
        }
        #expect(seen == [.degraded, .down, .healthy], "down on the way: \(seen)")
    }

    /// A call that went through since the loss (a job's) already reconnected: nothing is sent. A
    /// trigger for failing calls with none failing any more, and a terminal account, likewise.
    @Test func aLinkAlreadyBackOrAnAccountThatNeedsAPersonIsLeftAlone() async throws {
        let clock = TestClock()
        let health = AccountHealth(account: "alice", clock: clock, logger: quietLogger)
        let client = ScriptedInvoker()
        let lost = clock.now()
        clock.advance(by: 1)
        health.recordSuccess()
        #expect(await keeper(client, health, clock).reconnect(after: .linkLost(lost)) == 0)
        #expect(await keeper(client, health, clock).reconnect(after: .callsFailing) == 0)
        health.recordFailure(Self.refused.guidance(account: "alice"))
        health.recordFailure(rpc(401, "AUTH_KEY_UNREGISTERED").guidance(account: "alice"))
        #expect(health.snapshot.state == .terminal)
        #expect(await keeper(client, health, clock).reconnect(after: .callsFailing) == 0)
        #expect(client.calls.isEmpty)
    }
}
