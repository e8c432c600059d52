import MTProto
import MTProtoClient
import SessionManager
import TLSchema
import Testing

@Suite struct SessionStackTests {
    private func stack(_ client: ScriptedInvoker, clock: TestClock, store: InMemoryFloodLedgerStore = InMemoryFloodLedgerStore(),
                       statuses: InMemoryAccountStatusStore = InMemoryAccountStatusStore()) -> SessionStack {
        SessionStack(account: "alice", client: client, ledgerStore: store, statuses: statuses, clock: clock, random: SeededRandomSource(seed: 9), logger: quietLogger)
    }

    @Test func aShortFloodIsRecordedWaitedOutOnceAndRetried() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        let store = InMemoryFloodLedgerStore()
        client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_5", method: "messages.sendMessage")))
        let sessions = stack(client, clock: clock, store: store)
        let start = clock.now()
        #expect(await failure(sessions.invoker, sendMessage(toUser: 5)) == nil)
        #expect(client.count("messages.sendMessage") == 2)
        // The retry slept the wait; the ledger then found it over and did not sleep again.
        #expect(clock.sleeps == [5])
        #expect(await store.activeFloodWaits(account: "alice", at: start).map(\.until) == [start + 5])
        #expect(sessions.health.snapshot.state == .healthy)
    }

    @Test func aLongFloodReachesTheCallerAndLaterCallsFailFastOffline() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_3600")))
        let sessions = stack(client, clock: clock)
        // The flood answer itself already comes as the rate-limit error the ledger recorded (with
        // its until-time), the server's error kept underneath; it once surfaced raw, as TGSM-RPC-003.
        let first = try #require(await failure(sessions.invoker, nearest, options: InvokeOptions(isIdempotent: true)))
        let managed = try #require(first.sessionManagerError)
        #expect(managed.code == "TGSM-RATE-001")
        #expect(managed.until == clock.now() + 3600)
        #expect(managed.underlying?.rpcError?.waitSeconds == 3600)
        #expect(first.advice == .wait(seconds: 3600, reason: .flood))
        #expect(first.guidance(account: "alice").code == "TGSM-RATE-001")
        for _ in 0..<5 {
            #expect(await failure(sessions.invoker, nearest, options: InvokeOptions(isIdempotent: true))?.sessionManagerError?.code == "TGSM-RATE-001")
        }
        #expect(client.count("help.getNearestDc") == 1)
        #expect(clock.sleeps.isEmpty)
        #expect(sessions.health.snapshot.state == .rateLimited)
        #expect(sessions.health.snapshot.rateLimitedUntil == clock.now() + 3600)
    }

    @Test func repeatedShortFloodsOpenTheBreakerInsideOneRetryLoop() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        for _ in 0..<5 { client.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_1"))) }
        let sessions = stack(client, clock: clock)
        let error = try #require(await failure(sessions.invoker, nearest))
        #expect(error.sessionManagerError?.code == "TGSM-RATE-006")
        #expect(client.count("help.getNearestDc") == 3)
        if case .open = sessions.breakers.state(of: "help.getNearestDc") {} else { Issue.record("the breaker should be open") }
    }

    @Test func aTerminalErrorIsNeverRetriedAndStopsTheAccount() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        let statuses = InMemoryAccountStatusStore()
        client.script("updates.getState", .failure(rpc(401, "AUTH_KEY_UNREGISTERED", method: "updates.getState")))
        let sessions = stack(client, clock: clock, statuses: statuses)
        let error = await failure(sessions.invoker, Api.functions.updates.GetState(), options: InvokeOptions(isIdempotent: true))
        #expect(error?.sessionManagerError?.code == "TGSM-AUTH-001")
        #expect(await failure(sessions.invoker, nearest)?.sessionManagerError?.code == "TGSM-SESSION-001")
        #expect(client.calls.count == 1)
        #expect(await statuses.status(of: "alice")?.state == .unauthorized)
        #expect(sessions.health.snapshot.state == .terminal)
    }

    @Test func refusedCallsSpendNoGateTokens() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(rpc(420, "SLOWMODE_WAIT_600", method: "messages.sendMessage")))
        let sessions = stack(client, clock: clock)
        _ = await failure(sessions.invoker, sendMessage(toUser: 1))
        // Many refusals in chat 1 (slow mode)...
        for _ in 0..<20 { _ = await failure(sessions.invoker, sendMessage(toUser: 1)) }
        // ...leave the account's send burst (5, one used) intact for chat 2.
        for _ in 0..<3 { #expect(await failure(sessions.invoker, sendMessage(toUser: 2)) == nil) }
        #expect(clock.sleeps.isEmpty)
        #expect(client.count("messages.sendMessage") == 4)
    }
}
