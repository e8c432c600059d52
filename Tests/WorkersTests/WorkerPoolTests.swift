import Foundation
import Logging
import MTProto
import MTProtoClient
import ServiceLifecycleTestKit
import SessionManager
import Synchronization
import TL
import TLSchema
import StoreTestSupport
import Testing
@testable import Workers

/// A handler whose body the test writes.
struct ScriptedHandler: JobHandler {
    let kind: JobKind
    let body: @Sendable (JobContext) async throws -> Data?
    func run(_ context: JobContext) async throws -> Data? { try await body(context) }
}

/// Answers help.getNearestDc (the one call the ping handler makes) without a network.
struct NearestDCInvoker: TelegramInvoking {
    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        let bytes = Api.NearestDc.nearestDc(.init(country: "NL", thisDc: 1, nearestDc: 1)).serialized()
        do {
            var reader = TLReader(bytes)
            return try Request.Result(from: &reader)
        } catch {
            throw .undecodableResult(method: Request.tlName, reason: "\(error)")
        }
    }
}

let ping = ScriptedHandler(kind: "ping") { context in
    _ = try await context.invoker.invoke(Api.functions.help.GetNearestDc())
    return Data("pong".utf8)
}

// The limit catches a hang, not slowness: a loaded 2-core machine can stall the whole test process for minutes.
@Suite(.timeLimit(.minutes(5))) struct WorkerPoolTests {
    struct Fixture {
        let database: TemporaryDatabase
        let queue: SQLiteJobQueue
        let clock: ManualClock
        let status = InMemoryAccountStatusStore()
        let ledger = InMemoryFloodLedgerStore()

        init() throws {
            database = try TemporaryDatabase()
            queue = try database.queue()
            clock = ManualClock()
        }

        func pool(
            _ handlers: [any JobHandler], invokers: [AccountID: any TelegramInvoking], concurrency: Int = 2, grace: Double = 1000,
            seed: UInt64 = 1, resumeInterval: Double? = nil, accounts: [AccountID]? = nil
        ) -> WorkerPool {
            WorkerPool(
                queue: queue, handlers: handlers, invokers: FixedAccountInvokers(invokers), accountStatus: status, floodLedger: ledger,
                configuration: WorkerConfiguration(
                    accounts: accounts ?? invokers.keys.sorted(), concurrencyPerAccount: concurrency, leaseSeconds: 60, heartbeatInterval: 1000,
                    pollInterval: 3600, gracePeriod: grace, backoff: BackoffPolicy(base: 2, cap: 600), owner: "test",
                    resumeInterval: resumeInterval),
                clock: clock, random: SeededRandomSource(seed: seed), logger: quietLogger)
        }

        /// A pool of one job at a time per account on `invokers`, that looks at a stopped account again
        /// every `resumeInterval`.
        func pool(_ handlers: [any JobHandler], invokers: any AccountInvokers, accounts: [AccountID], resumeInterval: Double,
                  standbyInterval: Double? = nil, logger: Logger = quietLogger) -> WorkerPool {
            WorkerPool(
                queue: queue, handlers: handlers, invokers: invokers, accountStatus: status, floodLedger: ledger,
                configuration: WorkerConfiguration(accounts: accounts, concurrencyPerAccount: 1, leaseSeconds: 60, heartbeatInterval: 1000,
                                                   pollInterval: 3600, owner: "test", standbyInterval: standbyInterval, resumeInterval: resumeInterval),
                clock: clock, random: SeededRandomSource(seed: 1), logger: logger)
        }

        /// Zeroes a leaf page of the jobs table in the (closed) queue file, the first or the middle one;
        /// returns the page, its size and its bytes as they were.
        func zeroJobsLeaf(middle: Bool) throws -> (page: Int, size: Int, original: Data) {
            let (leaves, size) = try SQLiteJobQueueSalvageTests.leafPages(database.path)
            let page = try #require(middle ? leaves[leaves.count / 2] : leaves.first)
            var file = try Data(contentsOf: URL(fileURLWithPath: database.path))
            let original = file[(page - 1) * size..<page * size]
            file.replaceSubrange((page - 1) * size..<page * size, with: Data(count: size))
            try file.write(to: URL(fileURLWithPath: database.path))
            return (page, size, Data(original))
        }

        /// A pool of ping for alice over a queue opened anew on the file (its connections read the
        /// pages as they are now), polling every 5 s, logging into `capture`.
        func poolOverTheFile(logger: Logger) throws -> (SQLiteJobQueue, WorkerPool) {
            let queue = try SQLiteJobQueue.open(path: database.path)
            let pool = WorkerPool(
                queue: queue, handlers: [ping], invokers: FixedAccountInvokers(["alice": NearestDCInvoker()]), accountStatus: status,
                floodLedger: ledger,
                configuration: WorkerConfiguration(accounts: ["alice"], concurrencyPerAccount: 1, leaseSeconds: 60, heartbeatInterval: 1000,
                                                   pollInterval: 5, owner: "test"),
                clock: clock, random: SeededRandomSource(seed: 1), logger: logger)
            return (queue, pool)
        }

        func enqueue(_ kind: JobKind, _ account: AccountID, maxAttempts: Int = 5) async throws -> JobID {
            try await queue.enqueue(NewJob(kind: kind, account: account, maxAttempts: maxAttempts), now: clock.now()).id
        }
    }

    @Test func theAccountsConcurrencyLimitHolds() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let gate = Gate()
        let twoRunning = Gate()
        let running = Mutex((now: 0, peak: 0))
        let blocking = ScriptedHandler(kind: "block") { _ in
            let now = running.withLock { state -> Int in
                state.now += 1
                state.peak = max(state.peak, state.now)
                return state.now
            }
            if now == 2 { twoRunning.open() }
            await gate.wait()
            running.withLock { $0.now -= 1 }
            return nil
        }
        let pool = fixture.pool([blocking], invokers: ["alice": NearestDCInvoker()], concurrency: 2)
        var events = pool.events().makeAsyncIterator()
        for _ in 0..<5 { _ = try await fixture.enqueue("block", "alice") }
        let task = Task { try await pool.run() }
        await twoRunning.wait()
        gate.open()
        var finished = 0
        while finished < 5 {
            if await awaitEvent(&events, where: { isFinished($0) == .completed }) != nil { finished += 1 }
        }
        pool.shutdownGracefully()
        try await task.value
        #expect(running.withLock { $0.peak } == 2)
        #expect(try await fixture.queue.counts(account: "alice")[.completed] == 5)
    }

    @Test func aFloodWaitDefersTheJobToTheLedgersUntilWithoutSpendingAnAttempt() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let now = fixture.clock.now()
        // The ledger already knows a longer wait for the method than the error's own seconds.
        await fixture.ledger.recordFloodWait(FloodWait(
            account: "alice", method: "help.getNearestDc", kind: .floodWait, recordedAt: now, until: now + 100))
        let flood = FailingInvoker(error: .rpc(RPCError(code: 420, message: "FLOOD_WAIT_30"), method: "help.getNearestDc"))
        let pool = fixture.pool([ping], invokers: ["alice": flood])
        var events = pool.events().makeAsyncIterator()
        let id = try await fixture.enqueue("ping", "alice", maxAttempts: 1)
        let task = Task { try await pool.run() }
        let event = await awaitEvent(&events) { isFinished($0) != nil }
        #expect(event.flatMap(isFinished) == .deferred(until: now + 100))
        pool.shutdownGracefully()
        try await task.value
        let job = try #require(try await fixture.queue.job(id))
        #expect(job.state == .queued && job.attempts == 0 && job.deferrals == 1 && job.runAt == now + 100)
        #expect(job.lastError?.contains("FLOOD_WAIT_30") == true)
    }

    /// The account has no connection (the network, the DC or its proxy is down) and the job's call
    /// never reached one: it did not run, so the attempt is not spent, and an outage of any length
    /// ends no job as a dead letter (before: a four-minute outage took two of a job's attempts).
    /// A call that may have been written before the link died still spends its attempt.
    @Test func aCallThatFoundNoConnectionDefersTheJobWithoutSpendingAnAttempt() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let now = fixture.clock.now()
        let unsent = FailingInvoker(error: .connectionFailed(dc: 2, attempts: 6, reason: "Connection refused connecting to 127.0.0.1:1", delivery: .notSent))
        let pool = fixture.pool([ping], invokers: ["alice": unsent])
        var events = pool.events().makeAsyncIterator()
        let id = try await fixture.enqueue("ping", "alice", maxAttempts: 1)
        let task = Task { try await pool.run() }
        let event = await awaitEvent(&events) { isFinished($0) != nil }
        #expect(event.flatMap(isFinished) == .deferred(until: now + JobErrorClassifier.unsentRetryDelay))
        pool.shutdownGracefully()
        try await task.value
        let job = try #require(try await fixture.queue.job(id))
        #expect(job.state == .queued && job.attempts == 0 && job.deferrals == 1, "\(job)")
        #expect(job.lastError?.contains("Connection refused") == true)

        // One that may have been written waits too: no connection for the whole reconnect budget is
        // the network's doing, not the job's (the next attempt finds out whether it ran).
        #expect(JobErrorClassifier.classify(TelegramError.connectionFailed(dc: 2, attempts: 6, reason: "x"))
                == .deferOutage(seconds: JobErrorClassifier.unsentRetryDelay, reason: TelegramError.connectionFailed(dc: 2, attempts: 6, reason: "x").description))
        let refused = TelegramError.proxyRefused(dc: 2, reason: "the SOCKS5 proxy rejected the username and password", delivery: .notSent)
        #expect(JobErrorClassifier.classify(refused) == .deferUnsent(seconds: JobErrorClassifier.unsentRetryDelay, reason: refused.description),
                "a proxy refusing the account waits for a person without spending attempts")
        let timedOut = TelegramError.timeout(method: "users.getFullUser", seconds: 30, delivery: .notSent)
        #expect(JobErrorClassifier.classify(timedOut) == .deferUnsent(seconds: JobErrorClassifier.unsentRetryDelay, reason: timedOut.description),
                "a call that timed out before any connection was up did not run either")
    }

    @Test func aTerminalSessionErrorStopsOnlyThatAccount() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let revoked = FailingInvoker(error: .rpc(RPCError(code: 401, message: "SESSION_REVOKED"), method: "help.getNearestDc"))
        let pool = fixture.pool([ping], invokers: ["alice": revoked, "bob": NearestDCInvoker()], concurrency: 1)
        var events = pool.events().makeAsyncIterator()
        let aliceJob = try await fixture.enqueue("ping", "alice")
        let bobJob = try await fixture.enqueue("ping", "bob")
        let task = Task { try await pool.run() }
        var seen: [WorkerEvent] = []
        await awaitEvent(&events) { event in
            seen.append(event)
            let stopped = seen.contains { if case .stopped("alice") = $0 { true } else { false } }
            let bobDone = seen.contains { if case .finished(bobJob, _, .completed) = $0 { true } else { false } }
            return stopped && bobDone
        }
        #expect(seen.contains { if case .accountStopped("alice", let stop) = $0 { stop.error == "SESSION_REVOKED" } else { false } })
        // The stopped account's job went back untouched, for after the new login.
        let job = try #require(try await fixture.queue.job(aliceJob))
        #expect(job.state == .queued && job.attempts == 0)
        // The mark is the session manager's, as its terminal guard writes it.
        let mark = try #require(await fixture.status.all["alice"])
        #expect(mark.state == .revoked && mark.cause == "SESSION_REVOKED" && mark.code == "TGSM-AUTH-002")
        // Bob's workers go on.
        let later = try await fixture.enqueue("ping", "bob")
        await awaitEvent(&events) { if case .finished(later, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
        #expect(await fixture.status.all["bob"] == nil)
    }

    /// With `resumeInterval`, an account stopped by a session error waits for a person while
    /// another is served: its mark is looked at every interval, and once a login cleared it the
    /// account's queued job runs (before, the account stayed stopped until the process restarted,
    /// and the alert said to look at `tgsm check`, which found nothing wrong).
    @Test func aStoppedAccountIsServedAgainOnceItsMarkIsCleared() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let alice = SwitchableInvoker(failing: .rpc(RPCError(code: 401, message: "SESSION_REVOKED"), method: "help.getNearestDc"))
        let pool = fixture.pool([ping], invokers: ["alice": alice, "bob": NearestDCInvoker()], concurrency: 1, resumeInterval: 30)
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .accountStopped("alice", _) = $0 { true } else { false } }
        await fixture.clock.waitForSleepers(2)  // bob's poll, alice's look at her mark
        fixture.clock.advance(by: 30)
        await fixture.clock.waitForSleepers(2)
        #expect(try await fixture.queue.job(first)?.state == .queued, "still marked: still stopped")

        // A person logs alice in again: the login clears her mark.
        alice.fails(with: nil)
        await fixture.status.setStatus(.active(since: fixture.clock.now()), for: "alice")
        fixture.clock.advance(by: 30)
        var seen: [WorkerEvent] = []
        await awaitEvent(&events) { event in
            seen.append(event)
            if case .finished(first, _, .completed) = event { return true }
            return false
        }
        #expect(seen.contains { if case .serving("alice") = $0 { true } else { false } })
        pool.shutdownGracefully()
        try await task.value
    }

    /// An account already marked when the pool starts waits for its login like one stopped mid-run
    /// (its loop begins waiting even before the other account's loop begins), and an account added
    /// while the pool runs (`serve`) gets a loop of its own.
    @Test func anAccountMarkedAtTheStartWaitsForItsLoginAndAnAddedAccountIsServed() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        await fixture.status.setStatus(
            AccountStatus(state: .revoked, since: fixture.clock.now(), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "alice")
        let pool = fixture.pool([ping], invokers: ["alice": NearestDCInvoker(), "bob": NearestDCInvoker(), "carol": NearestDCInvoker()],
                                concurrency: 1, resumeInterval: 30, accounts: ["alice", "bob"])
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await fixture.clock.waitForSleepers(2)  // bob's poll, alice's look at her mark
        #expect(try await fixture.queue.job(first)?.state == .queued, "marked: not served")
        await fixture.status.setStatus(.active(since: fixture.clock.now()), for: "alice")
        fixture.clock.advance(by: 30)
        await awaitEvent(&events) { if case .finished(first, _, .completed) = $0 { true } else { false } }

        let added = try await fixture.enqueue("ping", "carol")
        #expect(pool.serve("carol"))
        #expect(!pool.serve("carol"), "one loop per account")
        await awaitEvent(&events) { if case .finished(added, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
        #expect(!pool.serve("dave"), "a pool that ended takes no account")
    }

    /// An account whose lease was lost (the store unreachable past its TTL) is taken again once it
    /// is free, while another is served: nothing marks it, so no person is waited for. Before, its
    /// workers stopped for good, and with every account so stopped `tgsm run` exited 0.
    @Test func anAccountWhoseLeaseWasLostIsTakenAgainOnceItIsFree() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let lost = TelegramError.middleware(SessionManagerError(.leaseHeld(account: "alice", holder: "another process", expires: nil)))
        let alice = SwitchableInvoker(failing: lost)
        let pool = fixture.pool([ping], invokers: ["alice": alice, "bob": NearestDCInvoker()], concurrency: 1, resumeInterval: 30)
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .accountStopped("alice", let stop) = $0 { !stop.marksAccount } else { false } }
        #expect(await fixture.status.all["alice"] == nil, "a lost lease marks nothing")
        await fixture.clock.waitForSleepers(2)
        alice.fails(with: nil)
        fixture.clock.advance(by: 30)
        await awaitEvent(&events) { if case .finished(first, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
    }

    /// The store let the account's lease run out (TGSM-SESSION-004): the account's loop says so once,
    /// however many tries the store's outage lasts, the pool keeps running although it serves no
    /// other account, and the account is served again once the store answers. Before, the stop
    /// counted as a lost lease: the pool of one account ended, and with others each try logged an
    /// error and a stop.
    @Test func aStoreOutageIsSaidOnceAndRiddenOutHoweverLongItLasts() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let expired = TelegramError.middleware(SessionManagerError(.leaseExpired(account: "alice", cause: "database is locked")))
        let alice = SwitchableInvoker(failing: expired)
        let invokers = OutageInvokers(["alice": alice])
        let pool = fixture.pool([ping], invokers: invokers, accounts: ["alice"], resumeInterval: 10)
        let recorded = RecordedEvents(pool)
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .accountStopped("alice", let stop) = $0 { stop.storeOutage } else { false } }
        #expect(await fixture.status.all["alice"] == nil, "an outage marks nothing")
        invokers.down(true)
        for tries in 1...6 {
            await fixture.clock.waitForSleepers(1)
            fixture.clock.advance(by: 10)
            while invokers.lookups < tries { try await Task.sleep(for: .milliseconds(1)) }
        }
        invokers.down(false)
        alice.fails(with: nil)
        await fixture.clock.waitForSleepers(1)
        fixture.clock.advance(by: 10)
        await awaitEvent(&events) { if case .finished(first, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
        let seen = recorded.all
        #expect(seen.filter { if case .accountStopped = $0 { true } else { false } }.count == 1, "\(seen)")
        #expect(seen.contains(.serving("alice")))
        #expect(!seen.contains(.stopped("alice")) || seen.last == .stopped("alice"), "the loop ended only at the shutdown")
    }

    /// A queue file damaged under a running pool fails every claim of every poll until a person
    /// salvages it. Said once, in the queue's own words (which name `tgsm jobs salvage`), then
    /// quietly, and once more when a claim works again. Before, each failure was an error line per
    /// account per poll: a flood in the log for a condition that does not pass by itself.
    @Test func aQueueThatFailsEveryClaimIsSaidOnceUntilAClaimWorks() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        for _ in 0..<300 {
            _ = try await fixture.queue.enqueue(NewJob(kind: "ping", account: "alice", payload: Data(repeating: 1, count: 200)), now: fixture.clock.now())
        }
        try fixture.queue.writer.close()
        // The first page of jobs zeroed, its bytes kept to mend it later.
        let path = fixture.database.path
        let (page, size, original) = try fixture.zeroJobsLeaf(middle: false)
        let capture = LogCapture()
        let (queue, pool) = try fixture.poolOverTheFile(logger: capture.logger)
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        func failures() -> [String] { capture.messages.filter { $0.contains("claiming jobs failed") } }
        let started = fixture.clock.now()
        for polls in 1...4 {
            while failures().count < polls { try await Task.sleep(for: .milliseconds(1)) }
            await fixture.clock.waitForSleepers(1)
            fixture.clock.advance(by: 5)
        }
        // What the operator views say meanwhile: since the first failure, and a person's to end.
        let failure = try #require(pool.claimFailure)
        #expect(failure.since == started && failure.needsAPerson && failure.error.contains("tgsm jobs salvage"), "\(failure)")
        // Mended, and written to by another connection, so the pool's connections read the file anew.
        var file = try Data(contentsOf: URL(fileURLWithPath: path))
        file.replaceSubrange((page - 1) * size..<page * size, with: original)
        try file.write(to: URL(fileURLWithPath: path))
        let other = try SQLiteJobQueue.open(path: path)
        _ = try await other.enqueue(NewJob(kind: "ping", account: "bob"), now: fixture.clock.now())
        try other.writer.close()
        await fixture.clock.waitForSleepers(1)
        fixture.clock.advance(by: 5)
        await awaitEvent(&events) { isFinished($0) == .completed }
        pool.shutdownGracefully()
        try await task.value
        try queue.writer.close()

        let said = failures()
        #expect(said.filter { $0.hasPrefix("error ") }.count == 1, "\(said)")
        #expect(said.first { $0.hasPrefix("error ") }?.contains("tgsm jobs salvage") == true, "\(said)")
        #expect(said.filter { $0.hasPrefix("debug ") }.count >= 3, "\(said)")
        #expect(capture.messages.filter { $0.hasPrefix("notice claiming jobs works again") }.count == 1, "\(capture.messages)")
        #expect(pool.claimFailure == nil)
    }

    /// Jobs due later, a page of them damaged: the claim finds nothing due (no damaged page read),
    /// and the look for the next due job meets the damage. One failure, said once: before, each
    /// claim that worked said "works again" and the look after it failed again, every poll.
    @Test func aRoundWhoseLookForTheNextJobFailsIsNotAQueueWorkingAgain() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let later = fixture.clock.now() + 86_400
        for _ in 0..<300 {
            _ = try await fixture.queue.enqueue(NewJob(kind: "ping", account: "alice", payload: Data(repeating: 1, count: 200), runAt: later),
                                                now: fixture.clock.now())
        }
        try fixture.queue.writer.close()
        _ = try fixture.zeroJobsLeaf(middle: true)
        let capture = LogCapture()
        let (queue, pool) = try fixture.poolOverTheFile(logger: capture.logger)
        let task = Task { try await pool.run() }
        func failures() -> Int { capture.messages.filter { $0.contains("claiming jobs failed") }.count }
        for polls in 1...4 {
            while failures() < polls { try await Task.sleep(for: .milliseconds(1)) }
            await fixture.clock.waitForSleepers(1)
            fixture.clock.advance(by: 5)
        }
        pool.shutdownGracefully()
        try await task.value
        try queue.writer.close()
        #expect(capture.messages.filter { $0.hasPrefix("error ") && $0.contains("claiming jobs failed") }.count == 1, "\(capture.messages)")
        #expect(!capture.messages.contains { $0.contains("works again") }, "\(capture.messages)")
    }

    /// An outage after which the session needs a person (its key was revoked meanwhile): the try
    /// that meets the refusal ends the outage and marks the account as any session error does.
    /// Before, every error during an outage was taken for the store still being down, and the loop
    /// tried again every 10 s for ever without marking it.
    @Test func anOutageThatEndsOnASessionErrorMarksTheAccount() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let expired = TelegramError.middleware(SessionManagerError(.leaseExpired(account: "alice", cause: "database is locked")))
        let revoked = AccountStatus(state: .revoked, since: fixture.clock.now(), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002")
        let refusal = TelegramError.middleware(SessionManagerError(.accountUnusable(account: "alice", status: revoked, method: "updates.getState")))
        let invokers = OutageInvokers(["alice": SwitchableInvoker(failing: expired), "bob": NearestDCInvoker()], failing: { _ in refusal })
        let pool = fixture.pool([ping], invokers: invokers, accounts: ["alice", "bob"], resumeInterval: 10)
        var events = pool.events().makeAsyncIterator()
        _ = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .accountStopped("alice", let stop) = $0 { stop.storeOutage } else { false } }
        invokers.down(true)
        await fixture.clock.waitForSleepers(2)   // alice's next try, bob's poll
        fixture.clock.advance(by: 10)
        await awaitEvent(&events) { if case .accountStopped("alice", let stop) = $0 { stop.marksAccount } else { false } }
        #expect(await fixture.status.all["alice"]?.state == .revoked)
        pool.shutdownGracefully()
        try await task.value
    }

    /// Another process took alice's lease (no standby): the loss is said once, the tries that find
    /// that process still holding it every `resumeInterval` say nothing more, and taking it back is
    /// said once. Before, every try logged an error, a stop and two notices. Bob is served throughout.
    @Test func aLeaseStillHeldElsewhereIsTriedAgainQuietly() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let lost = TelegramError.middleware(SessionManagerError(.leaseHeld(account: "alice", holder: "pid 2 on other", expires: nil)))
        let invokers = OutageInvokers(["alice": NearestDCInvoker(), "bob": NearestDCInvoker()], failing: { _ in lost })
        invokers.down(true)
        let pool = fixture.pool([ping], invokers: invokers, accounts: ["alice", "bob"], resumeInterval: 30)
        let recorded = RecordedEvents(pool)
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .accountStopped("alice", let stop) = $0 { !stop.marksAccount && !stop.storeOutage } else { false } }
        for tries in 2...6 {
            await fixture.clock.waitForSleepers(2)   // alice's look, bob's poll
            fixture.clock.advance(by: 30)
            while invokers.lookups < tries { try await Task.sleep(for: .milliseconds(1)) }
        }
        invokers.down(false)
        await fixture.clock.waitForSleepers(2)
        fixture.clock.advance(by: 30)
        await awaitEvent(&events) { if case .finished(first, _, .completed) = $0 { true } else { false } }
        let bobs = try await fixture.enqueue("ping", "bob")
        await awaitEvent(&events) { if case .finished(bobs, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
        let seen = recorded.all
        #expect(seen.filter { if case .accountStopped = $0 { true } else { false } }.count == 1, "\(seen)")
        #expect(seen.filter { $0 == .serving("alice") }.count == 1, "\(seen)")
    }

    /// A standby whose account's holder marked it (its session is dead) and let it go does not take
    /// it over to check the dead key again: it waits for the login like the holder, and serves the
    /// account once the mark is cleared. Before, each standby took the lease, asked Telegram with the
    /// revoked key and marked the account once more.
    @Test func aStandbyDoesNotTakeOverAnAccountItsHolderMarked() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let held = TelegramError.middleware(SessionManagerError(.leaseHeld(account: "alice", holder: "pid 2 on other", expires: nil)))
        let invokers = OutageInvokers(["alice": NearestDCInvoker(), "bob": NearestDCInvoker()], failing: { _ in held })
        invokers.down(true)
        let log = LogCapture()
        let pool = fixture.pool([ping], invokers: invokers, accounts: ["alice", "bob"], resumeInterval: 10, standbyInterval: 2, logger: log.logger)
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .standingBy("alice") = $0 { true } else { false } }
        // Standing by names the holder, not the lease-held error's "stop the other process" steps.
        let standing = log.messages.filter { $0.contains("standing by to take it over") }
        #expect(standing.count == 1 && standing.allSatisfy { $0.contains("held-by=pid 2 on other") && !$0.contains("Stop the other process") }, "\(standing)")

        // The holder marks alice and lets her lease go.
        await fixture.status.setStatus(
            AccountStatus(state: .revoked, since: fixture.clock.now(), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "alice")
        invokers.down(false)
        await fixture.clock.waitForSleepers(2)
        fixture.clock.advance(by: 10)
        await awaitEvent(&events) { if case .accountStopped("alice", let stop) = $0 { stop.marksAccount && stop.status.code == "TGSM-AUTH-002" } else { false } }
        for _ in 0..<2 {
            await fixture.clock.waitForSleepers(2)   // alice's next look, bob's poll
            fixture.clock.advance(by: 10)
        }
        await fixture.clock.waitForSleepers(2)
        #expect(invokers.handedOut == 0, "alice's session was not taken up")
        #expect(try await fixture.queue.job(first)?.state == .queued)
        #expect(await fixture.status.all["alice"]?.code == "TGSM-AUTH-002", "the holder's mark, not written again")

        await fixture.status.setStatus(.active(since: fixture.clock.now()), for: "alice")
        fixture.clock.advance(by: 10)
        await awaitEvent(&events) { if case .finished(first, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
    }

    /// A store that does not let an account's lease be looked at (a standby's, or an account not yet
    /// started, while PostgreSQL is out of reach) is said once per spell, and its end once. Before,
    /// every try logged a warning of about 1 KB saying "no session for the account yet" (an audit
    /// counted 56 per standby in a 130 s outage).
    @Test func aStoreThatDoesNotLetALeaseBeLookedAtIsSaidOnce() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let log = LogCapture()
        let invokers = OutageInvokers(["alice": NearestDCInvoker(), "bob": NearestDCInvoker()])
        invokers.down(true)
        let pool = fixture.pool([ping], invokers: invokers, accounts: ["alice", "bob"], resumeInterval: 10, standbyInterval: 2, logger: log.logger)
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        for tries in 1...5 {
            while invokers.lookups < tries { try await Task.sleep(for: .milliseconds(1)) }
            await fixture.clock.waitForSleepers(2)   // alice's next look, bob's poll
            fixture.clock.advance(by: 3600)
        }
        invokers.down(false)
        await awaitEvent(&events) { if case .finished(first, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
        let lines = log.messages
        #expect(lines.filter { $0.contains("the account's lease cannot be looked at") }.count == 1, "\(lines)")
        #expect(lines.filter { $0.contains("the store answers again") }.count == 1, "\(lines)")
        #expect(!lines.contains { $0.contains("no session for the account yet") || $0.contains("could not be started") }, "\(lines)")
    }

    /// An account removed from the store (`tgsm session remove`) while it waited for a login, or
    /// while a standby waited to take it over, is not served again: its loop ends and says so.
    /// Before, its missing mark read as "logged in again", and serving it wrote it back into the
    /// store (lease, identity, a new mark): the removal was undone within seconds.
    @Test func anAccountRemovedFromTheStoreIsNotServedAgain() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        await fixture.status.setStatus(
            AccountStatus(state: .revoked, since: fixture.clock.now(), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "alice")
        // The first account by name is the one whose lease lookups fail while down: aaron stands by.
        let held = TelegramError.middleware(SessionManagerError(.leaseHeld(account: "aaron", holder: "pid 2 on other", expires: nil)))
        let invokers = OutageInvokers(["aaron": NearestDCInvoker(), "alice": NearestDCInvoker(), "bob": NearestDCInvoker()], failing: { _ in held })
        invokers.down(true)
        let pool = fixture.pool([ping], invokers: invokers, accounts: ["alice", "bob", "aaron"], resumeInterval: 10, standbyInterval: 2)
        let recorded = RecordedEvents(pool)
        var events = pool.events().makeAsyncIterator()
        let alices = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .standingBy("aaron") = $0 { true } else { false } }

        await fixture.status.removeAccount("alice")
        await fixture.status.removeAccount("aaron")
        invokers.down(false)
        await fixture.clock.waitForSleepers(3)   // alice's look at her mark, aaron's next lease try, bob's poll
        fixture.clock.advance(by: 10)
        var ended: Set<AccountID> = []
        await awaitEvent(&events) { event in
            if case .stopped(let account) = event { ended.insert(account) }
            return ended == ["aaron", "alice"]
        }
        #expect(try await fixture.queue.job(alices)?.state == .queued, "not served")
        #expect(invokers.handedOut == 0, "aaron's session was not taken up")
        #expect(await fixture.status.all["alice"] == nil, "no mark written back")
        let bobs = try await fixture.enqueue("ping", "bob")
        await awaitEvent(&events) { if case .finished(bobs, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
        #expect(recorded.all.contains(.removed("alice")) && recorded.all.contains(.removed("aaron")), "\(recorded.all)")
        #expect(!recorded.all.contains(.serving("alice")) && !recorded.all.contains(.serving("aaron")), "\(recorded.all)")
    }

    /// When every account is stopped, nothing is left to serve: the pool ends (a `tgsm run` then
    /// exits 8 for its service manager) instead of waiting for a person forever.
    @Test func aPoolWhoseEveryAccountStoppedEndsEvenWhenItCouldResume() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let revoked = FailingInvoker(error: .rpc(RPCError(code: 401, message: "SESSION_REVOKED"), method: "help.getNearestDc"))
        let pool = fixture.pool([ping], invokers: ["alice": revoked], resumeInterval: 30)
        _ = try await fixture.enqueue("ping", "alice")
        try await pool.run()
        #expect(await fixture.status.all["alice"]?.state == .revoked)
    }

    /// The holder that meets a dead session logs the mark's steps with the account's login command,
    /// as `tgsm check` and a standby's refusal do; before, the client's "run the login again".
    @Test func aStopForADeadSessionCarriesTheMarksStepsForTheAccount() {
        let error = TelegramError.rpc(RPCError(code: 401, message: "AUTH_KEY_UNREGISTERED"), method: "messages.sendMessage")
        guard case .stopAccount(let name, let guidance) = JobErrorClassifier.classify(error) else {
            Issue.record("a dead session stops the account")
            return
        }
        let stop = WorkerPool.accountStop(name, guidance, error: error, account: "alice", now: UnixTime(seconds: 1_800_000_000))
        #expect(stop.status.code == "TGSM-AUTH-001" && stop.marksAccount)
        #expect(stop.guidance.contains("`tgsm auth --account alice`"), "\(stop.guidance)")
    }

    @Test func aMarkedAccountDoesNotStart() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        await fixture.status.setStatus(
            AccountStatus(state: .deactivated, since: fixture.clock.now(), cause: "USER_DEACTIVATED", code: "TGSM-AUTH-005"), for: "alice")
        let pool = fixture.pool([ping], invokers: ["alice": NearestDCInvoker()])
        var events = pool.events().makeAsyncIterator()
        let id = try await fixture.enqueue("ping", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .stopped("alice") = $0 { true } else { false } }
        try await task.value
        #expect(try await fixture.queue.job(id)?.state == .queued)
    }

    @Test func gracefulShutdownStopsClaimingAndLetsInFlightWorkFinish() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let gate = Gate()
        let blocking = ScriptedHandler(kind: "block") { _ in
            await gate.wait()
            return Data("finished".utf8)
        }
        let pool = fixture.pool([blocking], invokers: ["alice": NearestDCInvoker()])
        var events = pool.events().makeAsyncIterator()
        let first = try await fixture.enqueue("block", "alice")
        try await testGracefulShutdown { trigger in
            let task = Task { try await pool.run() }
            await awaitEvent(&events) { if case .claimed(first, _) = $0 { true } else { false } }
            trigger.triggerGracefulShutdown()
            let second = try await fixture.enqueue("block", "alice")
            gate.open()
            try await task.value
            #expect(try await fixture.queue.job(first)?.state == .completed)
            let untouched = try #require(try await fixture.queue.job(second))
            #expect(untouched.state == .queued && untouched.attempts == 0)
        }
    }

    @Test func workStillRunningWhenTheGracePeriodEndsIsReleased() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let endless = ScriptedHandler(kind: "endless") { context in
            try await context.clock.sleep(for: 1_000_000)
            return nil
        }
        let pool = fixture.pool([endless], invokers: ["alice": NearestDCInvoker()], concurrency: 1, grace: 5)
        var events = pool.events().makeAsyncIterator()
        let id = try await fixture.enqueue("endless", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .claimed = $0 { true } else { false } }
        await fixture.clock.waitForSleepers(2)  // the handler and the heartbeat
        pool.shutdownGracefully()
        await fixture.clock.waitForSleepers(3)  // and the grace period
        fixture.clock.advance(by: 5)
        let event = await awaitEvent(&events) { isFinished($0) != nil }
        #expect(event.flatMap(isFinished) == .released)
        try await task.value
        let job = try #require(try await fixture.queue.job(id))
        #expect(job.state == .queued && job.attempts == 0)
    }

    @Test func aWorkerThatLostItsLeaseDropsTheJobWithoutWritingIt() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let endless = ScriptedHandler(kind: "endless") { context in
            try await context.clock.sleep(for: 1_000_000)
            return Data("should never be stored".utf8)
        }
        let pool = fixture.pool([endless], invokers: ["alice": NearestDCInvoker()], concurrency: 1)
        var events = pool.events().makeAsyncIterator()
        let id = try await fixture.enqueue("endless", "alice")
        let task = Task { try await pool.run() }
        await awaitEvent(&events) { if case .claimed = $0 { true } else { false } }
        await fixture.clock.waitForSleepers(2)
        // Another process rescues the job after the lease (60 s) ran out without a heartbeat.
        let rescuer = try fixture.database.queue()
        let rescued = try #require(try await rescuer.claim(
            ClaimRequest(accounts: ["alice"], limit: 1, perAccountLimit: 5, owner: "other", leaseSeconds: 100_000), now: fixture.clock.now() + 61).first)
        fixture.clock.advance(by: 1000)  // the heartbeat finds the claim gone
        let event = await awaitEvent(&events) { isFinished($0) != nil }
        #expect(event.flatMap(isFinished) == .claimLost)
        pool.shutdownGracefully()
        try await task.value
        let job = try #require(try await fixture.queue.job(id))
        #expect(job.state == .running && job.leaseOwner == "other" && job.result == nil)
        try await rescuer.complete(rescued.claim, result: nil, now: fixture.clock.now())
    }

    struct Unexpected: Error {}

    @Test func anyOtherErrorIsRetriedWithJitteredBackoffAndNeverEndsTheWorkers() async throws {
        let fixture = try Fixture()
        defer { fixture.database.remove() }
        let failing = ScriptedHandler(kind: "fail") { _ in throw Unexpected() }
        let pool = fixture.pool([failing, ping], invokers: ["alice": NearestDCInvoker()], concurrency: 1, seed: 99)
        var events = pool.events().makeAsyncIterator()
        let now = fixture.clock.now()
        let id = try await fixture.enqueue("fail", "alice")
        let task = Task { try await pool.run() }
        let event = await awaitEvent(&events) { isFinished($0) != nil }
        #expect(event.flatMap(isFinished) == .retried)
        let expected = BackoffPolicy(base: 2, cap: 600).delay(afterAttempt: 1, unit: SeededRandomSource(seed: 99).nextUnit())
        let job = try #require(try await fixture.queue.job(id))
        #expect(job.state == .queued && job.attempts == 1 && job.runAt == now + expected && job.lastError?.contains("Unexpected") == true)
        // The pool keeps serving.
        let next = try await fixture.enqueue("ping", "alice")
        await awaitEvent(&events) { if case .finished(next, _, .completed) = $0 { true } else { false } }
        pool.shutdownGracefully()
        try await task.value
    }
}
