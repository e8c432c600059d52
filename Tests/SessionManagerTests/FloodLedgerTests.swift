import MTProto
import MTProtoClient
import SessionManager
import StoreTestSupport
import Synchronization
import TL
import TLSchema
import Testing

@Suite struct FloodLedgerTests {
    private func ledger(_ store: any FloodLedgerStore = InMemoryFloodLedgerStore(), clock: TestClock, threshold: Double = 10, account: AccountID = "alice") -> FloodLedger {
        FloodLedger(account: account, store: store, policy: .init(inlineWaitThreshold: threshold), clock: clock, logger: quietLogger)
    }

    @Test func decideCoversThePeerAndAccountWideWaits() {
        let now = UnixTime(seconds: 1000)
        let peerWait = FloodWait(account: "a", method: "messages.sendMessage", peer: "user:1", kind: .slowmodeWait, recordedAt: now, until: now + 60)
        let wide = FloodWait(account: "a", method: "messages.getHistory", kind: .floodWait, recordedAt: now, until: now + 5)
        let waits = [peerWait, wide]
        #expect(FloodLedger.decide(method: "messages.sendMessage", peer: "user:1", waits: waits, now: now, threshold: 10) == .refuse(peerWait))
        #expect(FloodLedger.decide(method: "messages.sendMessage", peer: "user:2", waits: waits, now: now, threshold: 10) == .proceed)
        #expect(FloodLedger.decide(method: "messages.getHistory", peer: "channel:9", waits: waits, now: now, threshold: 10) == .waitInline(wide))
        #expect(FloodLedger.decide(method: "messages.getHistory", peer: nil, waits: waits, now: now + 5, threshold: 10) == .proceed)
        // At the threshold exactly: inline.
        #expect(FloodLedger.decide(method: "messages.sendMessage", peer: "user:1", waits: waits, now: now + 50, threshold: 10) == .waitInline(peerWait))
    }

    @Test func aFloodAnswerIsRecordedWithMethodPeerAndExactUntil() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_42", method: "messages.sendMessage")))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(store, clock: clock))])
        let start = clock.now()
        let error = await failure(invoker, sendMessage(toUser: 7), options: InvokeOptions(dc: 2))
        // The server's error reaches the caller unchanged.
        #expect(error?.rpcError?.waitSeconds == 42)
        let waits = await store.activeFloodWaits(account: "alice", at: start)
        #expect(waits == [FloodWait(account: "alice", method: "messages.sendMessage", peer: "user:7", kind: .floodWait, recordedAt: start, until: start + 42, dc: 2)])
    }

    /// A long FLOOD_WAIT of a method in a second chat while the first chat's still runs is the
    /// account's limit: recorded account-wide, so a third chat is not probed. Before, each new chat
    /// made one more call, and Telegram lengthened the wait at each (1 h, 2 h, 4 h in the audit).
    /// Short waits stay per chat, and so does a long one while no other chat's runs.
    @Test func aLongWaitInASecondChatHoldsTheMethodBackInEveryChat() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_5", method: "messages.sendMessage")))
        client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_3600", method: "messages.sendMessage")))
        client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_7200", method: "messages.sendMessage")))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(store, clock: clock))])
        let start = clock.now()
        _ = await failure(invoker, sendMessage(toUser: 1))   // 5 s in chat 1: per chat, and too short to say anything
        _ = await failure(invoker, sendMessage(toUser: 2))   // an hour in chat 2: per chat still
        #expect(await store.activeFloodWaits(account: "alice", at: start).map(\.peer).sorted { ($0 ?? "") < ($1 ?? "") } == ["user:1", "user:2"])
        _ = await failure(invoker, sendMessage(toUser: 3))   // two hours in chat 3: the account's
        let waits = await store.activeFloodWaits(account: "alice", at: start)
        #expect(waits.contains { $0.peer == nil && $0.until == start + 7200 }, "\(waits)")
        let refused = await failure(invoker, sendMessage(toUser: 4))
        #expect(refused?.sessionManagerError?.until == start + 7200, "a fourth chat is refused without a call: \(String(describing: refused))")
        #expect(client.calls.count == 3)
    }

    /// The ledger names the chat for the connection's hold (`InvokeOptions.floodScope`), and records
    /// a call the connection held back for a wait it saw like the wait itself.
    @Test func aCallHeldBackByTheConnectionIsRecordedAsItsWait() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(.floodWaitHeld(method: "messages.sendMessage", seconds: 12, mayHaveRun: false)))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(store, clock: clock))])
        let start = clock.now()
        _ = await failure(invoker, sendMessage(toUser: 7))
        #expect(client.calls.first?.options.floodScope == "messages.sendMessage user:7")
        let waits = await store.activeFloodWaits(account: "alice", at: start)
        #expect(waits.map(\.until) == [start + 12] && waits.first?.peer == "user:7" && waits.first?.kind == .floodWait)
    }

    /// Two calls of a chat in flight when the DC answers FLOOD_WAIT to one: the connection holds the
    /// other back for the same wait. One FLOOD_WAIT is recorded (logged, counted) once; before, the
    /// held call recorded it again and the log and `tgsm_flood_waits_total` said two.
    @Test func aCallHeldBackForAWaitAlreadyRecordedDoesNotRecordItAgain() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_12", method: "messages.sendMessage")),
                      .failure(.floodWaitHeld(method: "messages.sendMessage", seconds: 12, mayHaveRun: false)))
        let gate = FirstCallGate(client)
        let logs = LogCapture()
        let ledger = FloodLedger(account: "alice", store: InMemoryFloodLedgerStore(), policy: .init(inlineWaitThreshold: 10), clock: clock, logger: logs.logger)
        let invoker = gate.wrapped(in: [FloodLedgerMiddleware(ledger)])
        // The held call was admitted before the answer came; it reaches the connection after it.
        async let held = failure(invoker, sendMessage(toUser: 7, text: "second"))
        await gate.firstCallArrived()
        let flooded = await failure(invoker, sendMessage(toUser: 7, text: "first"))
        gate.release()
        #expect(flooded?.rpcError?.message == "FLOOD_WAIT_12")
        guard case .floodWaitHeld? = await held else { Issue.record("the second call was not held back"); return }
        #expect(logs.messages.filter { $0.contains("flood wait recorded") }.count == 1, "\(logs.messages)")
    }

    @Test func aLongWaitFailsFastWithoutTouchingTheNetwork() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("messages.sendMessage", .failure(rpc(420, "SLOWMODE_WAIT_300", method: "messages.sendMessage")))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(clock: clock))])
        _ = await failure(invoker, sendMessage(toUser: 7))
        let error = try #require(await failure(invoker, sendMessage(toUser: 7)))
        let typed = try #require(error.sessionManagerError)
        #expect(typed.code == "TGSM-RATE-003")
        #expect(typed.until == clock.now() + 300)
        #expect(client.count("messages.sendMessage") == 1)
        // Another chat is not held back by a slow mode.
        #expect(await failure(invoker, sendMessage(toUser: 8)) == nil)
        #expect(client.count("messages.sendMessage") == 2)
    }

    @Test func aShortWaitIsSleptInlineThenTheCallGoes() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_7")))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(clock: clock, threshold: 10))])
        _ = await failure(invoker, nearest)
        clock.advance(by: 2)
        #expect(await failure(invoker, nearest) == nil)
        #expect(clock.sleeps == [5])
        #expect(client.count("help.getNearestDc") == 2)
    }

    @Test func theInlineWaitIsCancellable() async throws {
        let clock = TestClock(autoAdvance: false)
        let client = ScriptedInvoker()
        client.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_9")))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(clock: clock))])
        _ = await failure(invoker, nearest)
        let call = Task { await failure(invoker, nearest) }
        await clock.untilSleeping()
        call.cancel()
        let error = await call.value
        guard case .cancelled(let method, _) = error else {
            Issue.record("expected cancellation, got \(String(describing: error))")
            return
        }
        #expect(method == "help.getNearestDc")
        #expect(client.count("help.getNearestDc") == 1)
    }

    @Test func waitsAreSharedByEveryLedgerOnTheStore() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let first = ScriptedInvoker()
        first.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_3600")))
        _ = await failure(first.wrapped(in: [FloodLedgerMiddleware(ledger(store, clock: clock))]), nearest)
        // Another process (or this one after a restart) on the same store.
        let second = ScriptedInvoker()
        let error = await failure(second.wrapped(in: [FloodLedgerMiddleware(ledger(store, clock: clock))]), nearest)
        #expect(error?.sessionManagerError?.code == "TGSM-RATE-001")
        #expect(second.calls.isEmpty)
        // Another account on the store is not affected.
        #expect(await failure(second.wrapped(in: [FloodLedgerMiddleware(ledger(store, clock: clock, account: "bob"))]), nearest) == nil)
    }

    @Test func aLateShorterAnswerNeverShortensAWait() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let floodLedger = ledger(store, clock: clock)
        let start = clock.now()
        await floodLedger.record(FloodWait(account: "alice", method: "m", kind: .floodWait, recordedAt: start, until: start + 100))
        await floodLedger.record(FloodWait(account: "alice", method: "m", kind: .floodWait, recordedAt: start, until: start + 10))
        #expect(await floodLedger.activeWaits().map(\.until) == [start + 100])
        #expect(await store.activeFloodWaits(account: "alice", at: start).map(\.until) == [start + 100])
    }

    @Test func otherWaitsAndOtherErrorsAreNotRecorded() async throws {
        let clock = TestClock()
        let store = InMemoryFloodLedgerStore()
        let client = ScriptedInvoker()
        client.script("help.getNearestDc", .failure(rpc(420, "2FA_CONFIRM_WAIT_3600")), .failure(rpc(400, "PEER_ID_INVALID")), .failure(.timeout(method: "help.getNearestDc", seconds: 1, delivery: .sent)))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(store, clock: clock))])
        for _ in 0..<3 { _ = await failure(invoker, nearest) }
        #expect(await store.activeFloodWaits(account: nil, at: clock.now()).isEmpty)
    }

    @Test func aFailingStoreStillEnforcesWaitsInThisProcess() async throws {
        let clock = TestClock()
        let client = ScriptedInvoker()
        client.script("help.getNearestDc", .failure(rpc(420, "FLOOD_WAIT_600")))
        let invoker = client.wrapped(in: [FloodLedgerMiddleware(ledger(BrokenLedgerStore(), clock: clock))])
        _ = await failure(invoker, nearest)
        clock.advance(by: 5)
        #expect(await failure(invoker, nearest)?.sessionManagerError?.code == "TGSM-RATE-001")
        #expect(client.count("help.getNearestDc") == 1)
    }
    @Test(arguments: StoreEngine.allCases) func aWaitRecordedThroughOneStoreIsSeenByASecondStoreOnTheSameData(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            // Two store instances on the same data (one file, or one PostgreSQL database) are what two
            // processes see: separate connections,
            // nothing shared in memory.
            let first = try await place.open()
            let second = try await place.open()
            let clock = TestClock()
            let client = ScriptedInvoker()
            client.script("messages.sendMessage", .failure(rpc(420, "FLOOD_WAIT_3600", method: "messages.sendMessage")))
            let start = clock.now()
            _ = await failure(client.wrapped(in: [FloodLedgerMiddleware(ledger(first, clock: clock))]), sendMessage(toUser: 7), options: InvokeOptions(dc: 2))
            let recorded = FloodWait(account: "alice", method: "messages.sendMessage", peer: "user:7", kind: .floodWait, recordedAt: start, until: start + 3600, dc: 2)
            #expect(try await second.activeFloodWaits(account: "alice", at: start) == [recorded])
            // The other "process" refuses the call before it reaches the network.
            clock.advance(by: 60)
            let refused = await failure(client.wrapped(in: [FloodLedgerMiddleware(ledger(second, clock: clock))]), sendMessage(toUser: 7))
            #expect(refused?.sessionManagerError?.code == "TGSM-RATE-001")
            #expect(client.count("messages.sendMessage") == 1)
            try await first.shutDown()
            try await second.shutDown()
        }
    }

    /// On PostgreSQL a recorded wait is announced (NOTIFY at commit): another process's ledger
    /// refuses the call at once, though its copy would not be read again for an hour (its clock
    /// stands still, so only the announcement can make the copy stale). A ledger that does not
    /// hear announcements, on the same store, still goes: the proof that nothing else did it.
    @Test func onPostgreSQLAWaitRecordedByOneProcessStopsTheOthersAtOnce() async throws {
        try await EngineStore.with(.postgres) { place in
            let first = try await place.open()
            let second = try await place.open()
            let clock = TestClock()
            let hourly = FloodLedger.Policy(inlineWaitThreshold: 10, refreshInterval: 3600)
            let watcher = FloodLedger(account: "alice", store: second, policy: hourly, clock: clock, logger: quietLogger)
            let deaf = FloodLedger(account: "alice", store: Unannounced(store: second), policy: hourly, clock: clock, logger: quietLogger)
            try await watcher.admit(method: "messages.sendMessage", peer: "user:7")
            try await deaf.admit(method: "messages.sendMessage", peer: "user:7")

            let start = clock.now()
            let recorder = FloodLedger(account: "alice", store: first, policy: hourly, clock: clock, logger: quietLogger)
            await recorder.record(FloodWait(account: "alice", method: "messages.sendMessage", peer: "user:7", kind: .floodWait,
                                            recordedAt: start, until: start + 600, dc: 2))
            let began = ContinuousClock.now
            var refusal: TelegramError?
            while refusal == nil, ContinuousClock.now - began < .seconds(10) {
                do throws(TelegramError) { try await watcher.admit(method: "messages.sendMessage", peer: "user:7") } catch { refusal = error }
                if refusal == nil { try await Task.sleep(for: .milliseconds(2)) }
            }
            let took = ContinuousClock.now - began
            #expect(refusal?.sessionManagerError?.code == "TGSM-RATE-001", "the other process's ledger never saw the wait")
            #expect(took < .seconds(2), "seen after \(took)")
            #expect(clock.now() == start, "the ledgers' clock did not move")
            // Without the announcement the copy read before the wait is still taken as fresh.
            try await deaf.admit(method: "messages.sendMessage", peer: "user:7")
            try await first.shutDown()
            try await second.shutDown()
        }
    }
}

/// A store that forwards everything but the announcements of new waits, as SQLite has none.
private struct Unannounced: FloodLedgerStore {
    let store: any FloodLedgerStore
    func recordFloodWait(_ wait: FloodWait) async throws { try await store.recordFloodWait(wait) }
    func activeFloodWaits(account: AccountID?, at now: UnixTime) async throws -> [FloodWait] { try await store.activeFloodWaits(account: account, at: now) }
    func purgeFloodWaits(endedBefore now: UnixTime) async throws -> Int { try await store.purgeFloodWaits(endedBefore: now) }
    func phoneKey(for phone: String) async throws -> String { try await store.phoneKey(for: phone) }
    func sendCodeDeadline(account: AccountID, phoneKey: String) async throws -> UnixTime? {
        try await store.sendCodeDeadline(account: account, phoneKey: phoneKey)
    }
    func setSendCodeDeadline(_ deadline: UnixTime?, account: AccountID, phoneKey: String) async throws {
        try await store.setSendCodeDeadline(deadline, account: account, phoneKey: phoneKey)
    }
    func latestSendCodeDeadline(phoneKey: String) async throws -> SendCodeDeadline? {
        try await store.latestSendCodeDeadline(phoneKey: phoneKey)
    }
    func pendingLoginCode(account: AccountID, phoneKey: String) async throws -> PendingLoginCode? {
        try await store.pendingLoginCode(account: account, phoneKey: phoneKey)
    }
    func setPendingLoginCode(_ code: PendingLoginCode?, account: AccountID, phoneKey: String) async throws {
        try await store.setPendingLoginCode(code, account: account, phoneKey: phoneKey)
    }
    func futureAuthTokens(phoneKey: String) async throws -> [FutureAuthToken] { try await store.futureAuthTokens(phoneKey: phoneKey) }
    func addFutureAuthToken(_ token: FutureAuthToken, account: AccountID, phoneKey: String) async throws {
        try await store.addFutureAuthToken(token, account: account, phoneKey: phoneKey)
    }
    func futureAuthTokenPhoneKey(account: AccountID) async throws -> String? { try await store.futureAuthTokenPhoneKey(account: account) }
    func removeFutureAuthTokens(phoneKey: String) async throws -> Int { try await store.removeFutureAuthTokens(phoneKey: phoneKey) }
}

struct BrokenLedgerStore: FloodLedgerStore {
    struct Broken: Error {}
    func recordFloodWait(_ wait: FloodWait) async throws { throw Broken() }
    func activeFloodWaits(account: AccountID?, at now: UnixTime) async throws -> [FloodWait] { throw Broken() }
    func purgeFloodWaits(endedBefore now: UnixTime) async throws -> Int { throw Broken() }
    func phoneKey(for phone: String) async throws -> String { throw Broken() }
    func sendCodeDeadline(account: AccountID, phoneKey: String) async throws -> UnixTime? { throw Broken() }
    func setSendCodeDeadline(_ deadline: UnixTime?, account: AccountID, phoneKey: String) async throws { throw Broken() }
    func latestSendCodeDeadline(phoneKey: String) async throws -> SendCodeDeadline? { throw Broken() }
    func pendingLoginCode(account: AccountID, phoneKey: String) async throws -> PendingLoginCode? { throw Broken() }
    func setPendingLoginCode(_ code: PendingLoginCode?, account: AccountID, phoneKey: String) async throws { throw Broken() }
    func futureAuthTokens(phoneKey: String) async throws -> [FutureAuthToken] { throw Broken() }
    func addFutureAuthToken(_ token: FutureAuthToken, account: AccountID, phoneKey: String) async throws { throw Broken() }
    func futureAuthTokenPhoneKey(account: AccountID) async throws -> String? { throw Broken() }
    func removeFutureAuthTokens(phoneKey: String) async throws -> Int { throw Broken() }
}

/// Holds the first call that reaches it until `release()`; later calls pass through.
private final class FirstCallGate: TelegramInvoking {
    private let inner: any TelegramInvoking
    private struct State {
        var arrived = 0
        var held: CheckedContinuation<Void, Never>?
        var released = false
        var arrival: CheckedContinuation<Void, Never>?
    }
    private let state = Mutex(State())

    init(_ inner: any TelegramInvoking) { self.inner = inner }

    func firstCallArrived() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.arrived > 0 { return true }
                state.arrival = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let held = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.released = true
            defer { state.held = nil }
            return state.held
        }
        held?.resume()
    }

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        let first = state.withLock { state -> Bool in
            state.arrived += 1
            return state.arrived == 1
        }
        if first {
            await withCheckedContinuation { continuation in
                let (resumeNow, arrival) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
                    defer { state.arrival = nil }
                    if state.released { return (true, state.arrival) }
                    state.held = continuation
                    return (false, state.arrival)
                }
                arrival?.resume()
                if resumeNow { continuation.resume() }
            }
        }
        return try await inner.invoke(request, options: options)
    }
}
