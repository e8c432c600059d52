import MTProto
import MTProtoClient
import MTProtoNIO
import SessionManager
import Testing

@Suite struct RetryPolicyTests {
    private let policy = RetryPolicy(maximumAttempts: 4, baseDelay: 0.5, multiplier: 2, maximumDelay: 3, maximumFloodWait: 10)

    @Test func onlyRetryableClassesAreRetried() {
        #expect(policy.classify(rpc(420, "FLOOD_WAIT_5"), idempotent: false) == .after(5))
        #expect(policy.classify(rpc(420, "FLOOD_WAIT_11"), idempotent: true) == .giveUp)
        #expect(policy.classify(rpc(420, "FROZEN_METHOD_INVALID"), idempotent: true) == .giveUp, "a frozen account is no wait")
        #expect(policy.classify(rpc(500, "INTERNAL"), idempotent: true) == .backoff)
        #expect(policy.classify(rpc(500, "INTERNAL"), idempotent: false) == .giveUp)
        #expect(policy.classify(rpc(-503, "Timeout"), idempotent: true) == .backoff)
        #expect(policy.classify(.timeout(method: "m", seconds: 1, delivery: .sent), idempotent: true) == .backoff)
        #expect(policy.classify(.timeout(method: "m", seconds: 1, delivery: .sent), idempotent: false) == .giveUp)
        // Never left the client: it did not run, so even a non-idempotent call is repeated.
        #expect(policy.classify(.timeout(method: "m", seconds: 1, delivery: .notSent), idempotent: false) == .backoff)
        #expect(policy.classify(.inDoubt(method: "m", reason: .sessionChanged), idempotent: false) == .giveUp)
        #expect(policy.classify(.inDoubt(method: "m", reason: .sessionChanged), idempotent: true) == .backoff)
        #expect(policy.classify(.connectionFailed(dc: 1, attempts: 6, reason: "x"), idempotent: true) == .backoff)
        #expect(policy.classify(.connectionFailed(dc: 1, attempts: 6, reason: "x"), idempotent: false) == .giveUp)
        #expect(policy.classify(.connectionFailed(dc: 1, attempts: 6, reason: "x", delivery: .notSent), idempotent: false) == .backoff)
        // A proxy that refused the client's credentials refuses them again: a person fixes the link.
        #expect(policy.classify(.proxyRefused(dc: 1, reason: "x", delivery: .notSent), idempotent: true) == .giveUp)
        // Held back by the connection during a wait it saw: the wait's seconds, unless an earlier
        // send may have run and the call is not safe to repeat.
        #expect(policy.classify(.floodWaitHeld(method: "m", seconds: 4, mayHaveRun: false), idempotent: false) == .after(4))
        #expect(policy.classify(.floodWaitHeld(method: "m", seconds: 4, mayHaveRun: true), idempotent: false) == .giveUp)
        #expect(policy.classify(.floodWaitHeld(method: "m", seconds: 4, mayHaveRun: true), idempotent: true) == .after(4))
        #expect(policy.classify(.floodWaitHeld(method: "m", seconds: 11, mayHaveRun: false), idempotent: true) == .giveUp)
        #expect(policy.classify(.transport(TransportErrorCode(rawValue: -429), dc: 1), idempotent: true) == .backoff)
        #expect(policy.classify(.transport(TransportErrorCode(rawValue: -404), dc: 1), idempotent: true) == .giveUp)
        for terminal in [rpc(401, "AUTH_KEY_UNREGISTERED"), rpc(401, "SESSION_REVOKED"), rpc(406, "AUTH_KEY_DUPLICATED"), rpc(401, "USER_DEACTIVATED"),
                         rpc(400, "PEER_ID_INVALID"), .cancelled(method: "m", delivery: .notSent), .closed, .handshakeFailed(dc: 1, reason: "x")] {
            #expect(policy.classify(terminal, idempotent: true) == .giveUp, "\(terminal)")
        }
    }

    @Test func backoffIsExponentialCappedAndFullyJittered() {
        #expect((1...5).map { policy.backoff(beforeRetry: $0, unit: 0.999_999) }.map { ($0 * 1000).rounded() / 1000 } == [0.5, 1, 2, 3, 3])
        #expect(policy.backoff(beforeRetry: 3, unit: 0) == 0)
        let random = SeededRandomSource(seed: 7)
        let delays = (0..<1000).map { _ in policy.backoff(beforeRetry: 3, unit: random.nextUnit()) }
        #expect(delays.allSatisfy { $0 >= 0 && $0 < 2 })
        // Full jitter spreads over the whole range, not around the cap.
        #expect(delays.contains { $0 < 0.2 } && delays.contains { $0 > 1.8 })
    }

    @Test func anIdempotentCallIsRetriedUntilItSucceeds() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("help.getNearestDc", .failure(rpc(500, "INTERNAL")), .failure(.timeout(method: "help.getNearestDc", seconds: 1, delivery: .sent)))
        let invoker = client.wrapped(in: [RetryMiddleware(account: "alice", policy: policy, clock: clock, random: SeededRandomSource(seed: 1), logger: quietLogger)])
        #expect(await failure(invoker, nearest, options: InvokeOptions(isIdempotent: true)) == nil)
        #expect(client.count("help.getNearestDc") == 3)
        #expect(clock.sleeps.count == 2 && clock.sleeps[0] < 0.5 && clock.sleeps[1] < 1)
    }

    @Test func aCallNotMarkedIdempotentIsNotRepeatedAfterA500() async throws {
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(rpc(500, "INTERNAL", method: "messages.sendMessage")))
        let invoker = client.wrapped(in: [RetryMiddleware(account: "alice", policy: policy, clock: TestClock(), random: SeededRandomSource(seed: 1), logger: quietLogger)])
        #expect(await failure(invoker, sendMessage(toUser: 3))?.rpcError?.code == 500)
        #expect(client.count("messages.sendMessage") == 1)
    }

    /// A caller with a deadline of its own (the session check) gets the first failure with its
    /// reason: a retry would run into that deadline and hide why (a proxy that refused the password).
    @Test func aCallThatMayNotBeRetriedEndsAtItsFirstFailure() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        let refused = TelegramError.connectionFailed(dc: 1, attempts: 6, reason: "the SOCKS5 proxy rejected the username and password", delivery: .notSent)
        client.script("help.getNearestDc", .failure(refused), .failure(refused))
        let invoker = client.wrapped(in: [RetryMiddleware(account: "alice", policy: policy, clock: clock, random: SeededRandomSource(seed: 1), logger: quietLogger)])
        #expect(await failure(invoker, nearest, options: InvokeOptions(isIdempotent: true, mayRetry: false))?.description == refused.description)
        #expect(client.count("help.getNearestDc") == 1 && clock.sleeps.isEmpty)
    }

    @Test func attemptsAreLimited() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        for _ in 0..<10 { client.script("help.getNearestDc", .failure(rpc(500, "INTERNAL"))) }
        let invoker = client.wrapped(in: [RetryMiddleware(account: "alice", policy: policy, clock: clock, random: SeededRandomSource(seed: 1), logger: quietLogger)])
        #expect(await failure(invoker, nearest, options: InvokeOptions(isIdempotent: true))?.rpcError?.code == 500)
        #expect(client.count("help.getNearestDc") == 4)
    }

    @Test func aShortFloodWaitIsRetriedAfterExactlyItsSeconds() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_4", method: "messages.sendMessage")))
        let invoker = client.wrapped(in: [RetryMiddleware(account: "alice", policy: policy, clock: clock, random: SeededRandomSource(seed: 1), logger: quietLogger)])
        #expect(await failure(invoker, sendMessage(toUser: 3)) == nil)
        #expect(clock.sleeps == [4])
    }
}
