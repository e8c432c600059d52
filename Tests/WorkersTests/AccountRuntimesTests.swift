import Foundation
import GRDB
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import StoreTestSupport
import TLSchema
import TestDC
import Testing
@testable import Workers

/// `AccountRuntimes` as the workers' invokers: real runtimes (lease, client, stack, check) on a
/// real SQLite store against the in-process test DC.
@Suite(.timeLimit(.minutes(2))) struct AccountRuntimesTests {
    struct Setup {
        let cluster: JobCluster
        let database: TemporaryDatabase
        let store: SQLiteSessionStore
        let queue: SQLiteJobQueue
        let clock = ManualClock()

        init() async throws {
            cluster = try await JobCluster.start()
            database = try TemporaryDatabase()
            store = try SQLiteSessionStore.open(directory: database.folder.appendingPathComponent("store").path,
                                                options: SQLiteStoreOptions(logger: quietLogger))
            queue = try database.queue()
        }

        func runtimes(leaseTTL: Double = 30) -> AccountRuntimes {
            let store = store, configuration = cluster.configuration
            return AccountRuntimes(clock: SystemClock(), logger: quietLogger) { account in
                AccountRuntime(account: account, store: store, client: configuration,
                               configuration: AccountRuntimeConfiguration(leaseTTL: leaseTTL, keepAlive: nil),
                               environment: AccountRuntimeEnvironment(holder: LeaseHolder(host: "test", pid: 1), holderIsDead: { _ in false },
                                                                      logger: quietLogger))
            }
        }

        /// Logs `account` in on the store through a runtime, as `tgsm auth` does.
        func logIn(_ account: AccountID, phone: String) async throws {
            let runtime = AccountRuntime(account: account, store: store, client: cluster.configuration,
                                         configuration: AccountRuntimeConfiguration(keepAlive: nil, stopsOnTerminal: false),
                                         environment: AccountRuntimeEnvironment(logger: quietLogger))
            _ = try await runtime.start(validate: false)
            let dc = cluster.dc
            _ = try await TelegramLogin(invoker: runtime.invoker, apiID: 1, apiHash: "test-api-hash").logIn(
                phoneNumber: phone, code: { _ in dc.loginCode(phone: phone) ?? "" }, password: { _ in "" })
            await runtime.stop()
        }

        func finish() async {
            try? await cluster.dc.shutdown()
            database.remove()
        }
    }

    @Test func aRunningAccountServesJobsAndAnAccountWithoutSessionStopsAlone() async throws {
        let setup = try await Setup()
        try await setup.logIn("alice", phone: "15550001")
        try await setup.store.setStatus(.active(since: setup.clock.now()), for: "bob")   // known, never logged in
        let runtimes = setup.runtimes()
        let outcomes = await runtimes.start(["alice", "bob"])
        guard case .running(.valid(let user)?)? = outcomes["alice"] else { Issue.record("alice: \(String(describing: outcomes["alice"]))"); return }
        #expect(user == 1001)
        guard case .failed(let refusal)? = outcomes["bob"] else { Issue.record("bob ran without a session"); return }
        #expect(refusal.code == "TGSM-SESSION-001")
        #expect(try await setup.store.currentLease(account: "bob") == nil)   // released again

        let pool = WorkerPool(queue: setup.queue, handlers: [MeJob()], invokers: runtimes, accountStatus: setup.store, floodLedger: setup.store,
                              configuration: WorkerConfiguration(accounts: ["alice", "bob"], pollInterval: 3600, owner: "test"),
                              clock: setup.clock, random: SeededRandomSource(seed: 3), logger: quietLogger)
        var events = pool.events().makeAsyncIterator()
        let task = Task { try await pool.run() }
        let aliceJob = try await setup.queue.enqueue(NewJob(kind: MeJob.kind, account: "alice"), now: setup.clock.now()).id
        let bobJob = try await setup.queue.enqueue(NewJob(kind: MeJob.kind, account: "bob"), now: setup.clock.now()).id
        var aliceDone = false, bobStopped = false
        while !(aliceDone && bobStopped), let event = await events.next() {
            if case .finished(aliceJob, _, .completed) = event { aliceDone = true }
            if case .accountStopped("bob", let stop) = event {
                bobStopped = true
                #expect(stop.marksAccount)
                #expect(stop.status.state == .unauthorized)
                // Not AUTH_KEY_UNREGISTERED's TGSM-AUTH-001: a login never finished has a code of its own.
                #expect(stop.status.code == AccountStatus.noLoginFinishedCode && stop.status.cause.hasPrefix(AccountStatus.noLoginFinished),
                        "\(stop.status)")
            }
        }
        #expect(try await setup.queue.job(aliceJob)?.state == .completed)
        #expect(try await setup.queue.job(bobJob)?.state == .queued)          // kept for after a login, attempt not spent
        #expect(try await setup.store.status(of: "bob")?.state == .unauthorized)
        #expect(try await setup.store.status(of: "alice")?.state ?? .active == .active)

        pool.shutdownGracefully()
        try await task.value
        // Stopping the sessions (what the service does on shutdown) releases the leases.
        #expect(try await setup.store.currentLease(account: "alice") != nil)
        await runtimes.stopAll()
        #expect(try await setup.store.currentLease(account: "alice") == nil)
        await setup.finish()
    }

    @Test func aLeaseGivenUpInAStoreOutageIsTakenBackEvenWhenItsLastRenewalLandedLate() async throws {
        let setup = try await Setup()
        try await setup.logIn("alice", phone: "15550001")
        let runtimes = setup.runtimes(leaseTTL: 1.5)
        _ = await runtimes.start(["alice"])
        let runtime = try #require(runtimes.existingRuntime(for: "alice"))
        let lease = try #require(await runtime.lease)
        let lock = try SQLiteFileLock(path: setup.database.folder.appendingPathComponent("store/sessions.sqlite").path)
        guard case .leaseExpired = await runtime.waitUntilStopped() else { lock.release(); Issue.record("not stopped as an outage"); return }
        lock.release()
        // The renewal the runtime gave up on lands once the store answers: the lease is in this
        // process's name again, for a whole TTL, and no runtime uses it.
        _ = try await setup.store.renewLease(lease, now: WallClock().now(), ttl: 30)

        // The workers' next look learns of the outage, the one after takes the account back at once
        // (before: "another process (pid 1 on test) owns this account" until the renewal expired).
        await #expect(throws: TelegramError.self) { _ = try await runtimes.invoker(for: "alice") }
        _ = try await runtimes.invoker(for: "alice")
        let taken = try #require(try await setup.store.currentLease(account: "alice"))
        #expect(taken.token == LeaseToken(lease.token.rawValue + 1) && taken.holder == lease.holder)
        await runtimes.stopAll()
        await setup.finish()
    }

    /// A shutdown that begins while an account is being taken back from a stalled store (a deploy's
    /// SIGTERM during a store stall) does not bring the account up again on the way out: the start
    /// that completes once the store answers is stopped at once and its lease released, and no
    /// other start is made. Before, the stopping process took its leases back and reconnected,
    /// holding the accounts from the process replacing it until it stopped.
    @Test func aShutdownDoesNotTakeAnAccountBackThatAStalledStoreHeldUp() async throws {
        let setup = try await Setup()
        try await setup.logIn("alice", phone: "15550001")
        let runtimes = setup.runtimes()
        let lock = try SQLiteFileLock(path: setup.database.folder.appendingPathComponent("store/sessions.sqlite").path)
        // The lease take waits out the store's busy timeout.
        let taking = Task { try await runtimes.invoker(for: "alice") }
        try await Task.sleep(for: .milliseconds(300))
        runtimes.stopStarting()
        lock.release()
        await #expect(throws: TelegramError.self) { _ = try await taking.value }
        #expect(try await setup.store.currentLease(account: "alice") == nil, "taken, then released at once")
        await #expect(throws: TelegramError.self) { _ = try await runtimes.invoker(for: "alice") }
        #expect(try await setup.store.currentLease(account: "alice") == nil, "no new start on the way out")
        #expect(runtimes.runtimes.isEmpty)
        await runtimes.stopAll()
        await setup.finish()
    }

    /// An account marked revoked whose stored key is logged out is refused as revoked (the cause a
    /// person must act on: someone ended the session from another device), not as the check's
    /// "unauthorized: the stored key is not logged in".
    @Test func aMarkedAccountIsRefusedWithItsMarkNotTheChecksConsequence() async throws {
        let setup = try await Setup()
        try await setup.logIn("alice", phone: "15550001")
        var session = try #require(try await setup.store.loadSession(account: "alice"))
        for dc in Array(session.dcs.keys) { session.dcs[dc]?.isAuthorized = false }
        try await setup.store.saveSession(session, account: "alice", fence: nil)
        try await setup.store.setStatus(AccountStatus(state: .revoked, since: setup.clock.now(), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"),
                                        for: "alice")
        let runtimes = setup.runtimes()
        guard case .failed(let error)? = await runtimes.start(["alice"])["alice"] else { Issue.record("alice started"); return }
        #expect(error.summary.contains("marked revoked since SESSION_REVOKED"), "\(error)")
        #expect(error.recoverySteps.joined().contains("from another device"), "\(error.recoverySteps)")
        await runtimes.stopAll()
        await setup.finish()
    }

    /// A key the DC answers -404 for (it does not know it) is not AUTH_KEY_DUPLICATED: the check's
    /// verdict, the refusal the workers get and the mark all say the key is unknown (TGSM-AUTH-007),
    /// so nobody goes looking for a second process that does not exist.
    @Test func aKeyTheDCDoesNotKnowIsRefusedAsUnknownNotAsDuplicated() async throws {
        let setup = try await Setup()
        try await setup.logIn("alice", phone: "15550001")
        var session = try #require(try await setup.store.loadSession(account: "alice"))
        for dc in Array(session.dcs.keys) { session.dcs[dc]?.authKey = try AuthKey([UInt8](repeating: 0x5A, count: 256)) }
        try await setup.store.saveSession(session, account: "alice", fence: nil)
        let runtimes = setup.runtimes()
        guard case .failed(let error)? = await runtimes.start(["alice"])["alice"] else { Issue.record("alice started"); return }
        guard case .accountUnusable(_, let status, _) = error.reason else { Issue.record("\(error)"); return }
        #expect(status.cause == AccountStatus.keyUnknownCause && status.code == "TGSM-AUTH-007", "\(status)")
        #expect(!error.summary.contains("AUTH_KEY_DUPLICATED") && !error.recoverySteps.joined().contains("Stop every other process"), "\(error) \(error.recoverySteps)")
        let mark = try #require(try await setup.store.status(of: "alice"))
        #expect(mark.cause == AccountStatus.keyUnknownCause && mark.code == "TGSM-AUTH-007", "\(mark)")
        await runtimes.stopAll()
        // Without a mark (a stack that does not mark), the verdict alone gives the same code.
        let bare = try #require(AccountRuntimes.refusal(for: .keyUnknown, account: "alice", now: setup.clock.now()))
        #expect(bare.recoverySteps == error.recoverySteps, "\(bare.recoverySteps)")
        guard case .accountUnusable(_, let bareStatus, _) = bare.reason else { Issue.record("\(bare)"); return }
        #expect(bareStatus.cause == AccountStatus.keyUnknownCause && bareStatus.code == "TGSM-AUTH-007", "\(bareStatus)")
        let twice = try #require(AccountRuntimes.refusal(for: .duplicated, account: "alice", now: setup.clock.now()))
        guard case .accountUnusable(_, let twiceStatus, _) = twice.reason else { Issue.record("\(twice)"); return }
        #expect(twiceStatus.code == "TGSM-AUTH-006" && twice.recoverySteps != error.recoverySteps, "\(twiceStatus)")
        await setup.finish()
    }

    /// A mark this version cannot read (a newer tgsm wrote it): the account is refused as unreadable
    /// with the way out (`tgsm session clear-mark`), the row is kept as it was, and once a person
    /// clears it the account runs. Before, the guard took it for a store outage and ran the account.
    @Test func aMarkThatCannotBeReadStopsTheAccountUntilCleared() async throws {
        let setup = try await Setup()
        try await setup.logIn("alice", phone: "15550001")
        try await setup.store.setStatus(AccountStatus(state: .revoked, since: setup.clock.now(), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"),
                                        for: "alice")
        let file = try DatabaseQueue(path: setup.store.path)
        try await file.write { try $0.execute(sql: "UPDATE account_status SET state = 'suspended' WHERE account = 'alice'") }
        let runtimes = setup.runtimes()
        guard case .failed(let error)? = await runtimes.start(["alice"])["alice"] else { Issue.record("alice started"); return }
        guard case .accountUnusable(_, let status, _) = error.reason else { Issue.record("\(error)"); return }
        #expect(status.state == .unreadable && status.cause == "account status (unknown state \"suspended\")", "\(status)")
        #expect(error.recoverySteps.joined().contains("tgsm session clear-mark --account alice"), "\(error.recoverySteps)")
        await runtimes.stopAll()
        let row = try await file.read { try String.fetchOne($0, sql: "SELECT state FROM account_status WHERE account = 'alice'") }
        #expect(row == "suspended", "nothing wrote over it")
        try file.close()

        try await setup.store.setStatus(.active(since: setup.clock.now()), for: "alice")
        let again = setup.runtimes()
        guard case .running(.valid?)? = await again.start(["alice"])["alice"] else { Issue.record("alice did not start once cleared"); return }
        await again.stopAll()
        await setup.finish()
    }

    @Test func aLeaseTakenOverStopsTheAccountsWorkersWithoutMarkingIt() async throws {
        let setup = try await Setup()
        try await setup.logIn("alice", phone: "15550001")
        let runtimes = setup.runtimes()
        _ = await runtimes.start(["alice"])
        let runtime = try #require(runtimes.existingRuntime(for: "alice"))
        let lease = try #require(await runtime.lease)
        // Another process takes the lease over; the runtime learns it at its next heartbeat. Its
        // invoker then refuses with the lease error, as a worker meets it mid-job.
        _ = try await setup.store.acquireLease(account: "alice", holder: LeaseHolder(host: "other", pid: 2), now: UnixTime(seconds: lease.expiresAt.seconds + 1),
                                               ttl: 30, holderIsDead: { _ in true })
        let classified = JobErrorClassifier.classify(AccountRuntime.refusal(for: .leaseLost(current: "pid 2 on other"), account: "alice"))
        guard case .stopAccount(let name, _) = classified else { Issue.record("classified as \(classified)"); return }
        #expect(name == "TGSM-SESSION-002")
        let stop = WorkerPool.accountStop(name, "", error: AccountRuntime.refusal(for: .leaseLost(current: nil), account: "alice"),
                                          account: "alice", now: setup.clock.now())
        #expect(!stop.marksAccount)
        await runtimes.stopAll()
        // The new owner's lease is untouched by this process's stop.
        #expect(try await setup.store.currentLease(account: "alice")?.holder.pid == 2)
        await setup.finish()
    }
}
