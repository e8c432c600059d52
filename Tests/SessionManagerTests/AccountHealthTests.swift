import MTProto
import MTProtoClient
import SessionManager
import StoreTestSupport
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
        #expect(health.snapshot.lastFailureSummary == "no connection to DC 1 after 6 attempts (refused)", "what /health says of a down account")
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

    /// Telegram's own notices (updateServiceNotification) are kept, the newest ten, and logged with
    /// login codes masked; a repeat of a type within 15 minutes is kept but not logged again; one
    /// asking the session to log out (AUTH_KEY_DROP_...) degrades the account for good.
    @Test func serviceNotificationsAreKeptLoggedMaskedAndASessionDropDegrades() async throws {
        let clock = TestClock()
        let logs = LogCapture()
        let health = AccountHealth(account: "alice", clock: clock, logger: logs.logger)
        let events = health.events()
        health.recordSuccess()
        health.recordServiceNotification(ServiceNotification(type: "LOGIN_CODE", message: "Login code: 12345", popup: false, inboxDate: 1))
        clock.advance(by: 60)
        health.recordServiceNotification(ServiceNotification(type: "LOGIN_CODE", message: "Login code: 67890", popup: false, inboxDate: 2))
        #expect(health.snapshot.state == .healthy)
        #expect(health.snapshot.serviceNotifications.map(\.isRepeat) == [false, true])
        let notices = logs.messages.filter { $0.contains("service notification") }
        #expect(notices.count == 1)
        // Two new logins within minutes are two events, each logged.
        let login = ServiceNotification(type: ServiceNotification.newUnconfirmedLoginType, message: "A new login to this account: Pixel 9", popup: true, inboxDate: 3)
        health.recordServiceNotification(login)
        health.recordServiceNotification(login)
        #expect(logs.messages.filter { $0.contains("new login") }.count == 2)
        #expect(health.snapshot.serviceNotifications.suffix(2).map(\.isRepeat) == [false, false])
        #expect(notices.allSatisfy { $0.contains("Login code: •••••") } && !logs.messages.contains { $0.contains("12345") || $0.contains("67890") },
                "\(logs.messages)")

        clock.advance(by: 900)
        health.recordServiceNotification(ServiceNotification(type: "AUTH_KEY_DROP_DUPLICATE", message: "Session revoked", popup: true, inboxDate: nil))
        #expect(health.snapshot.state == .degraded && health.snapshot.sessionDropAskedAt == clock.now())
        #expect(logs.messages.last?.hasPrefix("error Telegram asks this session to log out") == true, "\(logs.messages)")
        health.recordSuccess()
        #expect(health.snapshot.state == .degraded, "a success does not undo Telegram's request")

        for index in 0..<12 {
            health.recordServiceNotification(ServiceNotification(type: "NOTE_\(index)", message: "n", popup: true, inboxDate: nil))
        }
        #expect(health.snapshot.serviceNotifications.count == ReceivedServiceNotification.kept)
        #expect(health.snapshot.serviceNotifications.last?.notification.type == "NOTE_11")

        var kinds: [HealthEvent.Kind] = []
        for await event in events {
            kinds.append(event.kind)
            if kinds.count == 5 { break }
        }
        let loginType = ServiceNotification.newUnconfirmedLoginType
        #expect(kinds == [.stateChanged(from: .unknown, to: .healthy), .serviceNotification(type: "LOGIN_CODE"), .serviceNotification(type: "LOGIN_CODE"),
                          .serviceNotification(type: loginType), .serviceNotification(type: loginType)])
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
