import Foundation
import Logging
import MTProto
import MTProtoCrypto
import SessionManager
import TL
import TLSchema
import TestDC
import struct MTProtoClient.DCAddress
import struct MTProtoClient.DCTable
import class MTProtoClient.TelegramClient
import Synchronization
import Testing
@testable import MTProtoClient
@testable import Workers

/// The in-process test DC and logged-in clients for the end-to-end job tests.
struct JobCluster {
    let dc: RunningTestDC
    let configuration: TelegramClientConfiguration

    static func start() async throws -> JobCluster {
        let quiet = Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }
        let running = try await TestDCServer.start(TestDCConfiguration(dcCount: 2, controlEnabled: false, logger: quiet))
        let keys = try running.publicKeyPEMs.values.map { pem throws(RSAError) in try RSAPublicKey(pem: pem) }
        var addresses: [Int: [DCAddress]] = [:]
        for (id, address) in running.dcs { addresses[Int(id)] = [address] }
        let configuration = TelegramClientConfiguration(
            apiID: 1, apiHash: "test-api-hash", serverKeys: keys, dcTable: DCTable(addresses), initialDC: 1,
            deviceModel: "WorkersTests", defaultTimeout: 10, handshakeTimeout: 10,
            reconnect: ReconnectPolicy(initialDelay: 0.05, maximumDelay: 0.2, maximumAttempts: 4))
        return JobCluster(dc: running, configuration: configuration)
    }

    func loggedInClient(phone: String, password: String? = nil) async throws -> TelegramClient {
        let client = TelegramClient(configuration: configuration, storage: InMemorySessionStorage(), clock: SystemClock(), logger: quietLogger)
        let running = dc
        _ = try await TelegramLogin(client: client).logIn(
            phoneNumber: phone, code: { _ in running.loginCode(phone: phone) ?? "" }, password: { _ in password ?? "" })
        return client
    }
}

/// Wraps the real client and loses the answer of the first messages.sendMessage after it ran: the
/// crash window between the RPC and the job's completion.
final class LosesSendAnswers: TelegramInvoking {
    let inner: any TelegramInvoking
    /// Lose the request on the way instead (it never reaches the DC).
    let beforeTheDC: Bool
    private let lost = Mutex(false)

    init(inner: any TelegramInvoking, beforeTheDC: Bool = false) {
        self.inner = inner
        self.beforeTheDC = beforeTheDC
    }

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        let loses = Request.tlName == "messages.sendMessage" && lost.withLock { lost in defer { lost = true }; return !lost }
        if loses, beforeTheDC { throw .timeout(method: Request.tlName, seconds: 10, delivery: .sent) }
        let result = try await inner.invoke(request, options: options)
        if loses { throw .timeout(method: Request.tlName, seconds: 10, delivery: .sent) }
        return result
    }
}

@Suite(.timeLimit(.minutes(2))) struct BuiltInJobsEndToEndTests {
    struct Setup {
        let cluster: JobCluster
        let database: TemporaryDatabase
        let queue: SQLiteJobQueue
        let archive: SQLiteMessageArchive
        let clock = ManualClock()
        let status = InMemoryAccountStatusStore()

        init() async throws {
            cluster = try await JobCluster.start()
            database = try TemporaryDatabase()
            queue = try database.queue()
            archive = try SQLiteMessageArchive(writer: queue.writer)
        }

        func pool(
            _ invokers: [AccountID: any TelegramInvoking], concurrency: Int = 2, doubtWindow: Double = 3600, peers: (any PeerDirectory)? = nil
        ) -> WorkerPool {
            WorkerPool(
                queue: queue,
                handlers: [MeJob(), ResolveJob(archive: archive), HistoryJob(archive: archive, peers: peers),
                           SendJob(archive: archive, doubtWindow: doubtWindow, peers: peers)],
                invokers: FixedAccountInvokers(invokers), accountStatus: status,
                configuration: WorkerConfiguration(
                    accounts: invokers.keys.sorted(), concurrencyPerAccount: concurrency, leaseSeconds: 60, heartbeatInterval: 20,
                    pollInterval: 3600, owner: "e2e"),
                clock: clock, random: SeededRandomSource(seed: 5), logger: quietLogger)
        }

        func finish() async {
            try? await cluster.dc.shutdown()
            database.remove()
        }
    }

    /// Enqueues a job and waits for the workers to finish it.
    func run(
        _ job: NewJob, on setup: Setup, events: inout AsyncStream<WorkerEvent>.Iterator
    ) async throws -> (Job, WorkerPool.JobOutcome?) {
        let id = try await setup.queue.enqueue(job, now: setup.clock.now()).id
        let event = await awaitEvent(&events) { if case .finished(id, _, _) = $0 { true } else { false } }
        return (try #require(try await setup.queue.job(id)), event.flatMap(isFinished))
    }

    func decode<T: Decodable>(_ type: T.Type, _ job: Job) throws -> T {
        try JSONDecoder().decode(T.self, from: try #require(job.result))
    }

    @Test func meResolveHistoryAndSendAgainstTheTestDC() async throws {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let pool = setup.pool(["alice": alice])
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }

        let (me, _) = try await run(NewJob(kind: MeJob.kind, account: "alice"), on: setup, events: &events)
        let profile = try decode(MeJob.Result.self, me)
        #expect(me.state == .completed && profile.id == 1001 && profile.username == "alice" && profile.firstName == "Alice")

        let (resolve, _) = try await run(
            try NewJob(kind: ResolveJob.kind, account: "alice", json: ResolveJob.Payload(username: "@testnews")), on: setup, events: &events)
        let resolved = try decode(ResolveJob.Result.self, resolve)
        #expect(resolved.peer.type == .channel && resolved.peer.id == 2001 && resolved.peer.accessHash != 0)
        #expect(try await setup.archive.peer(username: "testnews", account: "alice") == resolved.peer)

        // First run: the whole channel, page by page (10 per page).
        let history = HistoryJob.Payload(peer: PeerReference(username: "testnews"), pageSize: 10)
        let (first, _) = try await run(try NewJob(kind: HistoryJob.kind, account: "alice", json: history), on: setup, events: &events)
        #expect(try decode(HistoryJob.Result.self, first) == HistoryJob.Result(peer: "channel:2001", fetched: 30, from: 0, through: 30))
        var stored = try await setup.archive.messages(account: "alice", peer: "channel:2001")
        #expect(stored.map(\.id) == Array(1...30) && stored.first?.text == "News post #1" && stored.last?.text == "News post #30")

        // Again: nothing new, nothing stored twice.
        let (second, _) = try await run(try NewJob(kind: HistoryJob.kind, account: "alice", json: history), on: setup, events: &events)
        #expect(try decode(HistoryJob.Result.self, second) == HistoryJob.Result(peer: "channel:2001", fetched: 0, from: 30, through: 30))

        // Alice created the channel, so she may post; one key, one message.
        let post = SendJob.Payload(peer: PeerReference(username: "testnews"), text: "posted by a worker")
        let (sent, _) = try await run(
            try NewJob(kind: SendJob.kind, account: "alice", json: post, idempotencyKey: "post-31"), on: setup, events: &events)
        let sentResult = try decode(SendJob.Result.self, sent)
        #expect(sent.state == .completed && sentResult.messageID == 31)
        let again = try await setup.queue.enqueue(
            try NewJob(kind: SendJob.kind, account: "alice", json: post, idempotencyKey: "post-31"), now: setup.clock.now())
        #expect(again == .duplicate(sent.id))

        // Incremental: only the new post is fetched.
        let (third, _) = try await run(try NewJob(kind: HistoryJob.kind, account: "alice", json: history), on: setup, events: &events)
        #expect(try decode(HistoryJob.Result.self, third) == HistoryJob.Result(peer: "channel:2001", fetched: 1, from: 30, through: 31))
        stored = try await setup.archive.messages(account: "alice", peer: "channel:2001")
        #expect(stored.count == 31 && stored.filter { $0.text == "posted by a worker" }.map(\.id) == [31])

        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await setup.finish()
    }

    /// What the account's peer cache saw (here: imported from another library's session) spares
    /// contacts.resolveUsername: a username seen within `PeerReference.cachedUsernameLifetime` is
    /// taken from it, before the archive's older resolution (the name moved since), an older one
    /// is resolved again (usernames change hands), a `resolve` job always asks Telegram (it is how
    /// the archive is refreshed), and a peer given by id alone gets its access hash from the cache
    /// (the DC refuses a wrong one).
    @Test func aPeerTheAccountsCacheSawIsAddressedWithoutResolvingIt() async throws {
        let setup = try await Setup()
        let store = try SQLiteSessionStore.open(directory: setup.database.folder.appendingPathComponent("store").path,
                                                options: SQLiteStoreOptions(logger: quietLogger))
        let now = setup.clock.now()
        try await store.importPeers([
            PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, username: "TestNews", seenAt: now + -60),
            PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob", seenAt: now + -(PeerReference.cachedUsernameLifetime + 60)),
        ], account: "alice")
        // Resolved long ago, before the name moved to channel 2001: the DC knows no channel 2999.
        try await setup.archive.savePeer(ResolvedPeer(type: .channel, id: 2999, accessHash: 1), username: "testnews", account: "alice")
        let resolves = try setup.cluster.dc.addFault(FaultRule(match: FaultMatch(method: "contacts.resolveUsername"), effect: .delay(milliseconds: 0))).id
        func resolved() -> Int { setup.cluster.dc.core.withState { $0.faults.firedCount(rule: resolves) } }
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let pool = setup.pool(["alice": alice], peers: store)
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }

        let history = HistoryJob.Payload(peer: PeerReference(username: "@testnews"), initialLimit: 5)
        let (fetched, _) = try await run(try NewJob(kind: HistoryJob.kind, account: "alice", json: history), on: setup, events: &events)
        let fetchedPeer = try decode(HistoryJob.Result.self, fetched).peer
        #expect(fetched.state == .completed && fetchedPeer == "channel:2001")
        #expect(resolved() == 0, "a username seen a minute ago is not resolved again")

        let toBob = SendJob.Payload(peer: PeerReference(username: "bob"), text: "seen long ago")
        let (sent, _) = try await run(try NewJob(kind: SendJob.kind, account: "alice", json: toBob), on: setup, events: &events)
        #expect(sent.state == .completed, "\(sent.lastError ?? "")")
        #expect(resolved() == 1, "a username last seen over \(PeerReference.cachedUsernameLifetime) s ago is resolved again")

        let (news, _) = try await run(
            try NewJob(kind: ResolveJob.kind, account: "alice", json: ResolveJob.Payload(username: "testnews")), on: setup, events: &events)
        let newsPeer = try decode(ResolveJob.Result.self, news).peer
        #expect(news.state == .completed && newsPeer.id == 2001)
        #expect(resolved() == 2, "a resolve job asks Telegram, fresh cache or not")
        #expect(try await setup.archive.peer(username: "testnews", account: "alice")?.id == 2001, "the archive is refreshed")

        var byID = PeerReference(ResolvedPeer(type: .channel, id: 2001, accessHash: 0))
        byID.accessHash = nil
        let (posted, _) = try await run(
            try NewJob(kind: SendJob.kind, account: "alice", json: SendJob.Payload(peer: byID, text: "by id alone")), on: setup, events: &events)
        #expect(posted.state == .completed, "\(posted.lastError ?? "")")
        #expect(resolved() == 2)

        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        try store.close()
        await setup.finish()
    }

    /// The answer to a send is lost after Telegram ran it: the retry sends again with the same
    /// random_id, the DC refuses it as RANDOM_ID_DUPLICATE, and the job completes as already sent.
    @Test func aSendWhoseAnswerWasLostCompletesOnTheRetryWithoutSendingAgain() async throws {
        let (job, history) = try await sendWithTroubleOnTheFirstAttempt(text: "sent once, whatever happens", beforeTheDC: false, doubtWindow: 3600)
        #expect(job.state == .completed && job.attempts == 2)
        let result = try decode(SendJob.Result.self, job)
        #expect(result.alreadySent == true && result.messageID == nil)
        #expect(history == 1)
    }

    /// The request was lost before the DC: the retry's send is the first the DC sees, and it goes out.
    @Test func aSendThatNeverArrivedIsSentOnTheRetry() async throws {
        let (job, history) = try await sendWithTroubleOnTheFirstAttempt(text: "lost on the way, sent on the retry", beforeTheDC: true, doubtWindow: 3600)
        #expect(job.state == .completed && job.attempts == 2)
        let result = try decode(SendJob.Result.self, job)
        #expect(result.alreadySent == nil && result.messageID != nil)
        #expect(history == 1)
    }

    /// Past the window (Telegram may have forgotten the random_id) the doubt is the operator's.
    @Test func aSendInDoubtPastTheWindowIsADeadLetter() async throws {
        let (job, history) = try await sendWithTroubleOnTheFirstAttempt(text: "in doubt for too long", beforeTheDC: false, doubtWindow: 60)
        #expect(job.state == .dead && job.attempts == 2 && job.lastError?.contains("may already have happened") == true)
        #expect(history == 1)
    }

    /// A key used again once its job was purged is a new message: its random_id is the new job's,
    /// not the purged one's (the DC remembers every random_id, as Telegram may: with the key alone
    /// the new job was taken for already sent, and its message silently dropped).
    @Test func aKeyUsedAgainAfterItsJobWasPurgedSendsTheNewMessage() async throws {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let pool = setup.pool(["alice": alice], concurrency: 1)
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        let bob = ResolvedPeer(type: .user, id: 1002, accessHash: 0x0B0B)
        func send(_ text: String) async throws -> Job {
            try await run(try NewJob(kind: SendJob.kind, account: "alice", json: SendJob.Payload(peer: PeerReference(bob), text: text),
                                     idempotencyKey: "weekly-report"), on: setup, events: &events).0
        }
        let first = try await send("week 1")
        #expect(first.state == .completed)
        setup.clock.advance(by: 8 * 86_400)
        let purge = try #require(JobRetention().purge(now: setup.clock.now()))
        #expect(try await setup.queue.purgeAll(purge) == 1)
        let second = try await send("week 2")
        #expect(second.id != first.id && second.state == .completed)
        #expect(try decode(SendJob.Result.self, second).alreadySent == nil, "\(String(decoding: second.result ?? Data(), as: UTF8.self))")
        let history = try await alice.invoke(Api.functions.messages.GetHistory(
            peer: bob.inputPeer, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 100, maxId: 0, minId: 0, hash: 0))
        #expect(HistoryJob.messages(in: history).map(\.text).filter { $0.hasPrefix("week ") }.sorted() == ["week 1", "week 2"])
        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await setup.finish()
    }

    /// A send left in doubt by a version whose marks kept no note (its random_id was the key's
    /// alone) is resolved with that random_id after the upgrade: already sent, not sent twice.
    @Test func aSendInDoubtFromBeforeMarksKeptNotesIsNotSentTwice() async throws {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let bob = ResolvedPeer(type: .user, id: 1002, accessHash: 0x0B0B)
        let text = "sent by the old version"
        let id = try await setup.queue.enqueue(
            try NewJob(kind: SendJob.kind, account: "alice", json: SendJob.Payload(peer: PeerReference(bob), text: text), idempotencyKey: "upgrade"),
            now: setup.clock.now()).id
        // The old version's attempt: its mark (no note), then its send, then it died.
        let claimed = try #require(try await setup.queue.claim(
            ClaimRequest(accounts: ["alice"], limit: 1, perAccountLimit: 1, owner: "old", leaseSeconds: 60), now: setup.clock.now()).first)
        #expect(claimed.job.id == id)
        let oldMark = #"{"started":["messages.sendMessage"],"startedAt":{"messages.sendMessage":\#(setup.clock.now().seconds)}}"#
        try await setup.queue.checkpoint(claimed.claim, progress: Data(oldMark.utf8), now: setup.clock.now())
        _ = try await alice.invoke(Api.functions.messages.SendMessage(peer: bob.inputPeer, message: text, randomId: SendJob.legacyRandomID(for: claimed.job)))
        _ = try await setup.queue.retry(claimed.claim, error: "the worker died", retryAt: setup.clock.now(), now: setup.clock.now())

        let pool = setup.pool(["alice": alice], concurrency: 1)
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        _ = await awaitEvent(&events) { if case .finished(id, _, _) = $0 { true } else { false } }
        let job = try #require(try await setup.queue.job(id))
        let result = try decode(SendJob.Result.self, job)
        #expect(job.state == .completed && result.alreadySent == true)
        let history = try await alice.invoke(Api.functions.messages.GetHistory(
            peer: bob.inputPeer, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 100, maxId: 0, minId: 0, hash: 0))
        #expect(HistoryJob.messages(in: history).filter { $0.text == text }.count == 1)
        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await setup.finish()
    }

    /// One send job whose first attempt times out (after the DC ran it, or before it reached the
    /// DC), retried 600 s later; returns the job as it ended and how often its text is in the chat.
    private func sendWithTroubleOnTheFirstAttempt(text: String, beforeTheDC: Bool, doubtWindow: Double) async throws -> (Job, Int) {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let pool = setup.pool(["alice": LosesSendAnswers(inner: alice, beforeTheDC: beforeTheDC)], concurrency: 1, doubtWindow: doubtWindow)
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        let bob = ResolvedPeer(type: .user, id: 1002, accessHash: 0x0B0B)
        let (first, outcome) = try await run(
            try NewJob(kind: SendJob.kind, account: "alice", json: SendJob.Payload(peer: PeerReference(bob), text: text), idempotencyKey: text),
            on: setup, events: &events)
        #expect(outcome == .retried && first.attempts == 1)

        await setup.clock.waitForSleepers(1)
        setup.clock.advance(by: 600)
        _ = await awaitEvent(&events) { if case .finished(first.id, _, _) = $0 { true } else { false } }
        let job = try #require(try await setup.queue.job(first.id))
        let history = try await alice.invoke(Api.functions.messages.GetHistory(
            peer: bob.inputPeer, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 100, maxId: 0, minId: 0, hash: 0))
        let count = HistoryJob.messages(in: history).filter { $0.text == text }.count
        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await setup.finish()
        return (job, count)
    }

    @Test func aFloodWaitFromTheDCDefersTheJobWithoutSpendingAnAttempt() async throws {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        _ = try setup.cluster.dc.addFault(FaultRule(match: FaultMatch(method: "messages.getHistory", count: 1), effect: .floodWait(30)))
        let pool = setup.pool(["alice": alice])
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        let now = setup.clock.now()
        let payload = HistoryJob.Payload(peer: PeerReference(username: "testnews"))
        let (job, outcome) = try await run(try NewJob(kind: HistoryJob.kind, account: "alice", json: payload, maxAttempts: 1), on: setup, events: &events)
        #expect(outcome == .deferred(until: now + 30))
        #expect(job.state == .queued && job.attempts == 0 && job.runAt == now + 30)
        #expect(try await setup.archive.messages(account: "alice", peer: "channel:2001").isEmpty)
        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await setup.finish()
    }

    /// A frozen account (FROZEN_METHOD_INVALID comes with the flood code 420, but no seconds) is not
    /// a wait: the send is a dead letter after one call saying why and where to appeal, where it was
    /// deferred by a second and repeated for ever.
    /// A history payload whose limits make no sense is a dead letter saying which, before any call:
    /// before, `initialLimit` -5 completed and moved the cursor past messages it never fetched.
    @Test func aHistoryWithALimitBelowOneIsADeadLetterNotASkippedHistory() async throws {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let pool = setup.pool(["alice": alice])
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        // A payload that does not decode names the field as a person would, not the decoder's debug text.
        for (payload, complaint) in [(#"{"peer": {"username": "testnews"}, "initialLimit": -5}"#, "initialLimit is -5"),
                                     (#"{"peer": {"username": "testnews"}, "pageSize": 0}"#, "pageSize is 0"),
                                     (#"{"peerr": {"username": "testnews"}}"#, "it needs `peer`"),
                                     (#"{"peer": {"username": "testnews"}, "pageSize": "ten"}"#, "`pageSize` must be a number")] {
            let (job, outcome) = try await run(NewJob(kind: HistoryJob.kind, account: "alice", payload: Data(payload.utf8)), on: setup, events: &events)
            #expect(outcome == .dead && job.lastError?.contains(complaint) == true, "\(job.lastError ?? "")")
        }
        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await setup.finish()
    }

    @Test func aSendFromAFrozenAccountIsADeadLetterAfterOneCall() async throws {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let frozen = try setup.cluster.dc.addFault(FaultRule(match: FaultMatch(method: "messages.sendMessage"), effect: .rpcError(420, "FROZEN_METHOD_INVALID")))
        let pool = setup.pool(["alice": alice])
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        let payload = SendJob.Payload(peer: PeerReference(username: "bob"), text: "from a frozen account")
        let (job, outcome) = try await run(try NewJob(kind: SendJob.kind, account: "alice", json: payload, idempotencyKey: "frozen"), on: setup, events: &events)
        #expect(outcome == .dead)
        #expect(job.state == .dead && job.attempts == 1, "\(job)")
        #expect(job.lastError?.contains("frozen this account") == true, "\(job.lastError ?? "")")
        #expect(setup.cluster.dc.core.withState { $0.faults.firedCount(rule: frozen.id) } == 1)
        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await setup.finish()
    }

    @Test func aRevokedSessionStopsItsAccountWhileAnotherKeepsWorking() async throws {
        let setup = try await Setup()
        let alice = try await setup.cluster.loggedInClient(phone: "15550001")
        let bob = try await setup.cluster.loggedInClient(phone: "15550002", password: "hunter2")
        _ = try setup.cluster.dc.addFault(FaultRule(
            match: FaultMatch(method: "users.getFullUser", account: 1001), effect: FaultEffect(kind: .sessionRevoked)))
        let pool = setup.pool(["alice": alice, "bob": bob])
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }

        let (aliceJob, aliceOutcome) = try await run(NewJob(kind: MeJob.kind, account: "alice"), on: setup, events: &events)
        guard case .accountStopped(let stop) = aliceOutcome else {
            Issue.record("alice's account should have stopped, got \(String(describing: aliceOutcome))")
            return
        }
        #expect(stop.error == "SESSION_REVOKED")
        await awaitEvent(&events) { if case .accountStopped("alice", _) = $0 { true } else { false } }
        #expect(aliceJob.state == .queued && aliceJob.attempts == 0, "\(aliceJob)")
        #expect(stop.guidance.contains("`tgsm auth --account alice`") && stop.guidance.contains("find out who"), "\(stop.guidance)")
        #expect(await setup.status.all["alice"]?.state == .revoked)

        let (bobJob, bobOutcome) = try await run(NewJob(kind: MeJob.kind, account: "bob"), on: setup, events: &events)
        let bobProfile = try decode(MeJob.Result.self, bobJob)
        #expect(bobOutcome == .completed && bobProfile.id == 1002)

        pool.shutdownGracefully()
        try await task.value
        await alice.close()
        await bob.close()
        await setup.finish()
    }
}
