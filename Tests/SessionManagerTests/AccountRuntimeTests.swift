import Foundation
import Logging
import struct MTProtoClient.DCAddress
import struct MTProtoClient.DCTable
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import StoreTestSupport
import TLSchema
import TestDC
import Testing

/// `AccountRuntime` against the in-process test DC over loopback, on a real SQLite store file: the
/// lease before any connection, the heartbeat and fencing, validation without codes, terminal stops.
@Suite struct AccountRuntimeTests {
    static let phone = "15550001"

    struct World {
        let dc: RunningTestDC
        let directory: TemporaryDirectory
        let store: SQLiteSessionStore
        let client: TelegramClientConfiguration
        let clock = TestClock(autoAdvance: false)

        static func start() async throws -> World {
            let dc = try await TestDCServer.start(TestDCConfiguration(dcCount: 2, controlEnabled: false, logger: quietLogger))
            let keys = try dc.publicKeyPEMs.values.map { pem throws(RSAError) in try RSAPublicKey(pem: pem) }
            var addresses: [Int: [DCAddress]] = [:]
            for (id, address) in dc.dcs { addresses[Int(id)] = [address] }
            let directory = TemporaryDirectory("runtime")
            let store = try SQLiteSessionStore.open(directory: directory.path, options: Fixtures.options())
            var client = ConnectionProfile(kind: .testdc, dcTable: DCTable(addresses), serverKeys: keys, initialDC: 1)
                .clientConfiguration(apiID: 1, apiHash: "test-api-hash")
            client.defaultTimeout = 10
            client.reconnect = ReconnectPolicy(initialDelay: 0.05, maximumDelay: 0.2, maximumAttempts: 3)
            return World(dc: dc, directory: directory, store: store, client: client)
        }

        func runtime(pid: Int32 = 1, holderIsDead: @escaping @Sendable (LeaseHolder) -> Bool = { _ in false },
                     stopsOnTerminal: Bool = true, keepAlive: KeepAlivePolicy? = nil, linkKeeper: LinkKeeperPolicy? = nil,
                     store: (any SessionStore)? = nil, leaseTTL: Double = 30) -> AccountRuntime {
            AccountRuntime(account: "alice", store: store ?? self.store, client: client,
                           configuration: AccountRuntimeConfiguration(leaseTTL: leaseTTL, keepAlive: keepAlive, stopsOnTerminal: stopsOnTerminal,
                                                                      linkKeeper: linkKeeper),
                           environment: AccountRuntimeEnvironment(clock: clock, random: SeededRandomSource(seed: 7),
                                                                  holder: LeaseHolder(host: "test", pid: pid), holderIsDead: holderIsDead,
                                                                  logger: quietLogger))
        }

        /// The world's store file opened again with a busy timeout of 50 ms: a locked file fails its
        /// writes at once instead of waiting 10 s.
        func impatientStore() throws -> SQLiteSessionStore {
            var options = Fixtures.options()
            options.busyTimeout = 0.05
            return try SQLiteSessionStore.open(directory: directory.path, options: options)
        }

        /// A runtime (3 s lease) whose first renewal another program's lock on the store file holds
        /// up past the lease's end, with why it stopped; the lock is released after the stop.
        func runtimeStoppedByAStuckRenewal() async throws -> (AccountRuntime, AccountRuntimeStop) {
            let runtime = runtime(leaseTTL: 3)
            _ = try await runtime.start()
            let lock = try SQLiteFileLock(path: directory.path + "/sessions.sqlite")
            await clock.untilSleeping()
            clock.advance(by: 1)               // the first beat: 2 s of the lease left, the store waits 10
            let reason = await runtime.waitUntilStopped()
            lock.release()
            return (runtime, reason)
        }

        /// Logs alice in through a fresh runtime (which it stops), as `tgsm auth` does.
        func logIn() async throws {
            let runtime = runtime(stopsOnTerminal: false)
            let verdict = try await runtime.start()
            #expect(verdict == .unauthorized(cause: "no login was finished: no session stored"))
            let dc = dc
            _ = try await TelegramLogin(invoker: runtime.invoker, apiID: 1, apiHash: "test-api-hash").logIn(
                phoneNumber: AccountRuntimeTests.phone, code: { _ in dc.loginCode(phone: AccountRuntimeTests.phone) ?? "" }, password: { _ in "" })
            await runtime.stop()
        }

        /// alice logged in and her runtime started, with her health and its events from now on.
        func aliceRunning() async throws -> (AccountRuntime, AccountHealth, AsyncStream<HealthEvent>) {
            try await logIn()
            let runtime = runtime()
            #expect(try await runtime.start() == .valid(userID: 1001))
            let health = try #require(await runtime.health)
            return (runtime, health, health.events())
        }

        /// Returns at the first service notification the health records.
        static func untilANotice(in events: AsyncStream<HealthEvent>) async {
            for await event in events {
                if case .serviceNotification = event.kind { return }
            }
        }

        /// alice's notices in the store, once there are any: the runtime writes them off the
        /// client's threads, so they are looked for until they land (5 s at most).
        func storedNotices() async throws -> [StoredServiceNotification] {
            for _ in 0..<500 {
                let stored = try await store.serviceNotifications(account: "alice", since: UnixTime(seconds: 0))
                if !stored.isEmpty { return stored }
                try await Task.sleep(for: .milliseconds(10))
            }
            return []
        }

        func close() async throws {
            try await dc.shutdown()
            directory.remove()
        }
    }

    /// What a runtime stamps for other processes (lease expiries, flood waits, rate buckets) is on
    /// the wall clock as it is now; its client times itself on a clock that never jumps.
    @Test func aRuntimeStampsSharedTimesOnTheWallClockAndTimesItsClientMonotonically() {
        let environment = AccountRuntimeEnvironment()
        #expect(environment.clock is WallClock)
        #expect(environment.clientClock is SystemClock)
    }

    @Test func aLoggedInAccountStartsValidKeepsItsIdentityAndReleasesItsLeaseOnStop() async throws {
        let world = try await World.start()
        try await world.logIn()
        let identity = try #require(try await world.store.identity(account: "alice"))

        let runtime = world.runtime()
        let verdict = try await runtime.start()
        #expect(verdict == .valid(userID: 1001))
        let lease = try #require(await runtime.lease)
        #expect(lease.token == LeaseToken(2))   // the login's runtime held token 1
        #expect(try await world.store.currentLease(account: "alice")?.token == lease.token)
        #expect(await runtime.health?.snapshot.state == .healthy)
        // The identity chosen at login is what the client sends.
        #expect(await runtime.client?.configuration.deviceModel == identity.deviceModel)
        #expect(try await world.store.identity(account: "alice") == identity)
        let me = try await runtime.invoker.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]), options: InvokeOptions())
        guard case .user(let user)? = me.first else { Issue.record("no user"); return }
        #expect(user.id == 1001)

        await runtime.stop()
        #expect(await runtime.state == .stopped(.requested))
        #expect(try await world.store.currentLease(account: "alice") == nil)
        // After a stop the invoker refuses without touching the network.
        await #expect(throws: TelegramError.self) {
            _ = try await runtime.invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions())
        }
        try await world.close()
    }

    /// A freeze outlives the process that met it: kept in the store with its deletion date and
    /// appeal URL; the next runtime asks help.getAppConfig at start-up and shows the account frozen
    /// from the start (a restart must not read as "ready again"); once Telegram no longer reports
    /// it (the appeal accepted), the next start forgets it.
    @Test(.timeLimit(.minutes(1))) func aFreezeIsKeptAcrossRestartsUntilTelegramLiftsIt() async throws {
        let world = try await World.start()
        let (runtime, _, _) = try await world.aliceRunning()
        func setFreeze(_ freeze: TestDC.World.User.Freeze?) {
            world.dc.core.withState { state in
                if let index = state.world.users.firstIndex(where: { $0.id == 1001 }) { state.world.users[index].frozen = freeze }
            }
        }
        setFreeze(TestDC.World.User.Freeze(since: 1_790_000_000, until: 1_792_592_000, appealURL: "https://t.me/spambot"))
        let send = Api.functions.messages.SendMessage(peer: .inputPeerSelf(.init()), message: "from a frozen account", randomId: 77)
        await #expect(throws: TelegramError.self) { _ = try await runtime.invoker.invoke(send, options: InvokeOptions()) }
        let expected = StoredAccountFreeze(account: "alice", since: UnixTime(seconds: 1_790_000_000), deletedAfter: UnixTime(seconds: 1_792_592_000),
                                           appealURL: "https://t.me/spambot", confirmedAt: world.clock.now())
        var kept: [StoredAccountFreeze] = []
        for _ in 0..<500 where kept.first?.appealURL == nil {
            kept = try await world.store.freezes(account: "alice")
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(kept == [expected])
        await runtime.stop()

        let restarted = world.runtime()
        #expect(try await restarted.start() == .valid(userID: 1001))
        let health = try #require(await restarted.health).snapshot
        #expect(health.frozenSince == UnixTime(seconds: 1_790_000_000) && health.state == .degraded, "frozen before any write: \(health)")
        #expect(health.freeze?.appealURL == "https://t.me/spambot")
        await restarted.stop()

        setFreeze(nil)
        let lifted = world.runtime()
        #expect(try await lifted.start() == .valid(userID: 1001))
        #expect(try await world.store.freezes(account: "alice").isEmpty, "forgotten once Telegram no longer reports it")
        #expect(try #require(await lifted.health).snapshot.frozenSince == nil)
        await lifted.stop()
        try await world.close()
    }

    /// An idle account whose link dropped (the DC closed it, as a restart does) is connected again
    /// by its link keeper, with no call of its own to make: a notice Telegram pushes afterwards
    /// reaches the store. Before, the link stayed down until the next job, and pushes were lost.
    @Test(.timeLimit(.minutes(1))) func anIdleAccountsDroppedLinkIsReconnectedAndHearsPushesAgain() async throws {
        let world = try await World.start()
        try await world.logIn()
        let runtime = world.runtime(linkKeeper: LinkKeeperPolicy(firstDelay: 1, maximumDelay: 4, timeout: 10))
        #expect(try await runtime.start() == .valid(userID: 1001))
        func aliceConnected() -> Bool { world.dc.core.liveConnections.contains { $0.userID == 1001 } }
        for _ in 0..<500 where !aliceConnected() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(aliceConnected())
        await world.clock.untilSleeping(1)  // the lease's heartbeat

        world.dc.core.disconnectAll()
        await world.clock.untilSleeping(2)  // and the keeper's first pause
        for _ in 0..<500 where aliceConnected() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!aliceConnected())
        world.clock.advance(by: 1)
        for _ in 0..<500 where !aliceConnected() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(aliceConnected(), "reconnected with nothing to do")
        try world.dc.core.pushServiceNotification(to: 1001, type: "AUTH_KEY_DROP_DUPLICATE", message: "Session ended", popup: true)
        let stored = try await world.storedNotices()
        #expect(stored.map(\.type) == ["AUTH_KEY_DROP_DUPLICATE"])
        await runtime.stop()
        try await world.close()
    }

    /// A service notification Telegram pushes to the running session (updateServiceNotification,
    /// pushed by the test DC to every live connection of the account) reaches the account's health,
    /// updates not being started: one asking the session to log out degrades it; its text is kept
    /// with the login-code-like digits masked for every view.
    @Test(.timeLimit(.minutes(1))) func aServiceNotificationPushedToTheSessionReachesTheAccountsHealth() async throws {
        let world = try await World.start()
        let (runtime, health, events) = try await world.aliceRunning()
        try world.dc.core.pushServiceNotification(to: 1001, type: "AUTH_KEY_DROP_DUPLICATE", message: "Session ended: code 12345", popup: true)
        await World.untilANotice(in: events)
        let received = try #require(health.snapshot.serviceNotifications.last)
        #expect(received.notification.type == "AUTH_KEY_DROP_DUPLICATE" && received.notification.popup)
        #expect(received.notification.redactedMessage == "Session ended: code •••••")
        #expect(health.snapshot.state == .degraded && health.snapshot.sessionDropAskedAt != nil)
        // The store keeps it masked for `tgsm check`.
        let stored = try await world.storedNotices()
        #expect(stored.map(\.message) == ["Session ended: code •••••"] && stored.first?.asksToDropTheSession == true)
        await runtime.stop()
        try await world.close()
    }

    /// A login of the same account elsewhere (another device: a second client, its own key) is
    /// announced to the running session (updateNewAuthorization, unconfirmed): the health keeps it
    /// as a new login naming the device, and the store keeps it for `tgsm check`.
    @Test(.timeLimit(.minutes(1))) func aNewLoginElsewhereReachesTheRunningAccountsHealth() async throws {
        let world = try await World.start()
        let (runtime, health, events) = try await world.aliceRunning()
        var elsewhere = world.client
        elsewhere.deviceModel = "Someone's Phone"
        let other = TelegramClient(configuration: elsewhere, logger: quietLogger)
        let dc = world.dc
        _ = try await TelegramLogin(client: other).logIn(
            phoneNumber: AccountRuntimeTests.phone, code: { _ in dc.loginCode(phone: AccountRuntimeTests.phone) ?? "" }, password: { _ in "" })
        await World.untilANotice(in: events)
        let received = try #require(health.snapshot.serviceNotifications.last?.notification)
        #expect(received.type == ServiceNotification.newUnconfirmedLoginType && received.isNewLogin && received.message.contains("Someone's Phone"))
        #expect(health.snapshot.sessionDropAskedAt == nil, "a new login elsewhere does not degrade this session")
        let stored = try await world.storedNotices()
        #expect(stored.first?.isNewLogin == true)
        await other.close()
        await runtime.stop()
        try await world.close()
    }

    /// The stored identity as Telegram sees it, not as the client's configuration says: every
    /// initConnection the DC received (the login's, the runtime's first connection, and a restarted
    /// process's on the store reopened) carries the same fields, and a connection that replaces a
    /// dropped one carries on a session the DC knows by that identity. (The client sends
    /// initConnection once per MTProto session: a reconnection resumes the session, whose client
    /// info the server keeps; a new session, as after a restart, sends it again.)
    @Test(.timeLimit(.minutes(3))) func everyInitConnectionTheDCSawCarriesTheStoredIdentity() async throws {
        let world = try await World.start()
        try await world.logIn()
        let identity = try #require(try await world.store.identity(account: "alice"))
        let fields = [identity.deviceModel, identity.systemVersion, identity.appVersion, identity.systemLangCode, identity.langPack, identity.langCode]
        func seen() -> [InitConnectionRecord] { world.dc.core.withState { $0.initConnections } }
        let getState = Api.functions.updates.GetState()

        let first = world.runtime()
        #expect(try await first.start() == .valid(userID: 1001))
        // The connection drops under the running account; its next call reconnects.
        let before = Set(world.dc.core.liveConnections.map(\.id))
        world.dc.core.disconnectAll()
        // The DC closes on its event loops: a call that reached one before would be answered on
        // the old connection. Once they are gone, the call must go over a new one.
        for _ in 0..<1000 where !Set(world.dc.core.liveConnections.map(\.id)).isDisjoint(with: before) {
            try await Task.sleep(for: .milliseconds(10))
        }
        _ = try await first.invoker.invoke(getState, options: InvokeOptions(isIdempotent: true))
        let replacements = world.dc.core.liveConnections.filter { !before.contains($0.id) && $0.sessionID != nil }
        #expect(!replacements.isEmpty, "the call went over a new connection")
        for connection in replacements {
            let initialized = seen().filter { $0.sessionID == connection.sessionID }
            #expect(!initialized.isEmpty, "connection \(connection.id) runs session \(connection.sessionID ?? 0), never initialized with an identity")
            #expect(initialized.allSatisfy { $0.identity == fields })
        }
        let afterDrop = seen().count
        await first.stop()

        // A restart: a new process's runtime on the store opened again from its file.
        let reopened = try SQLiteSessionStore.open(directory: world.directory.path, options: Fixtures.options())
        let second = world.runtime(pid: 2, store: reopened)
        #expect(try await second.start() == .valid(userID: 1001))
        _ = try await second.invoker.invoke(getState, options: InvokeOptions(isIdempotent: true))
        await second.stop()
        try reopened.close()

        let all = seen()
        #expect(all.count > afterDrop, "the restarted runtime sent initConnection")
        #expect(Set(all.map(\.sessionID)).count >= 3, "login, start, restart: \(all.map(\.sessionID))")
        for record in all {
            #expect(record.identity == fields, "connection \(record.connectionID) (DC \(record.dc)) sent \(record.identity), stored \(fields)")
            #expect(record.apiID == 1)
        }
        try await world.close()
    }

    @Test func aSecondRuntimeIsRefusedWithTheHolderBeforeConnecting() async throws {
        let world = try await World.start()
        try await world.logIn()
        let first = world.runtime(pid: 1)
        _ = try await first.start()
        let connectionsBefore = world.dc.core.liveConnections.count

        let second = world.runtime(pid: 2)
        do {
            _ = try await second.start()
            Issue.record("a second owner was let in")
        } catch {
            #expect(error.code == "TGSM-SESSION-002")
            #expect("\(error)".contains("pid 1 on test"))
        }
        #expect(await second.client == nil)
        #expect(world.dc.core.liveConnections.count == connectionsBefore)
        await first.stop()
        try await world.close()
    }

    @Test func aRuntimeWhoseLeaseIsTakenOverStopsAndWritesNothing() async throws {
        let world = try await World.start()
        try await world.logIn()
        let runtime = world.runtime(pid: 1)
        _ = try await runtime.start()
        let token = try #require(await runtime.lease?.token)

        // Another process decides pid 1 is dead and takes over (token + 1).
        let usurper = try await world.store.acquireLease(account: "alice", holder: LeaseHolder(host: "test", pid: 9), now: world.clock.now(),
                                                          ttl: 30, holderIsDead: { _ in true })
        #expect(usurper.token.rawValue == token.rawValue + 1)
        await world.clock.untilSleeping()      // the heartbeat
        world.clock.advance(by: 10)            // a third of the TTL
        let reason = await runtime.waitUntilStopped()
        guard case .leaseLost(let current) = reason else { Issue.record("stopped for \(reason)"); return }
        #expect(current?.contains("pid 9") == true)
        // Calls now fail fast with the lease error, and the new owner's lease was not released.
        do {
            _ = try await runtime.invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions())
            Issue.record("a fenced runtime still called")
        } catch {
            #expect(error.sessionManagerError?.code == "TGSM-SESSION-002")
        }
        #expect(try await world.store.currentLease(account: "alice")?.token == usurper.token)
        try await world.close()
    }

    /// A session whose saves the store refuses (here: another program holds the file) keeps working
    /// but shows in the health as degraded, with since when and why, until a save succeeds again:
    /// the next change of its state, or the next lease renewal.
    @Test func aSessionThatCannotBeSavedDegradesTheHealthUntilASaveSucceeds() async throws {
        let world = try await World.start()
        try await world.logIn()
        let impatient = try world.impatientStore()
        let runtime = world.runtime(store: impatient)
        _ = try await runtime.start()
        let health = try #require(await runtime.health)
        func callAfterASaltChange() async throws {
            // A new server salt is state the client saves at once.
            _ = try world.dc.addFault(FaultRule(match: FaultMatch(method: "users.getUsers", count: 1), effect: FaultEffect(kind: .badServerSalt)))
            _ = try await runtime.invoker.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]), options: InvokeOptions())
        }
        let lock = try SQLiteFileLock(path: world.directory.path + "/sessions.sqlite")
        try await callAfterASaltChange()
        for _ in 0..<200 where health.snapshot.sessionNotSavedSince == nil { try await Task.sleep(for: .milliseconds(25)) }
        #expect(health.snapshot.sessionNotSavedSince != nil && health.snapshot.state == .degraded, "\(health.snapshot)")
        #expect(health.snapshot.sessionSaveError?.contains("database is locked") == true, "\(health.snapshot.sessionSaveError ?? "")")
        lock.release()
        try await callAfterASaltChange()
        for _ in 0..<200 where health.snapshot.sessionNotSavedSince != nil { try await Task.sleep(for: .milliseconds(25)) }
        #expect(health.snapshot.sessionNotSavedSince == nil && health.snapshot.state == .healthy, "\(health.snapshot)")

        // Refused again; this time nothing changes the session after the lock goes: the next lease
        // renewal saves it. Before, /health stayed at session_not_saved after a full disk was freed.
        let again = try SQLiteFileLock(path: world.directory.path + "/sessions.sqlite")
        try await callAfterASaltChange()
        for _ in 0..<200 where health.snapshot.sessionNotSavedSince == nil { try await Task.sleep(for: .milliseconds(25)) }
        #expect(health.snapshot.sessionNotSavedSince != nil, "\(health.snapshot)")
        again.release()
        await world.clock.untilSleeping()
        world.clock.advance(by: 10)
        for _ in 0..<200 where health.snapshot.sessionNotSavedSince != nil { try await Task.sleep(for: .milliseconds(25)) }
        #expect(health.snapshot.sessionNotSavedSince == nil && health.snapshot.state == .healthy, "\(health.snapshot)")
        await runtime.stop()
        try impatient.close()
        try await world.close()
    }

    /// A process frozen past its lease (SIGSTOP, a suspended VM) that wakes to find the account
    /// taken over says so (TGSM-SESSION-002) at its first beat; before, it reported a store outage
    /// first ("no answer within 0.0 s", TGSM-SESSION-004). Woken with nobody having taken it, it
    /// renews the lease under the same token and goes on.
    @Test func aRuntimeThatWakesPastItsLeaseLearnsWhetherItWasTakenOver() async throws {
        let world = try await World.start()
        try await world.logIn()
        let runtime = world.runtime(pid: 1)
        _ = try await runtime.start()
        let lease = try #require(await runtime.lease)
        await world.clock.untilSleeping()
        world.clock.advance(by: 31)            // frozen past the 30 s lease: one late beat
        await world.clock.untilSleeping()
        let renewed = try #require(await runtime.lease, "nobody took it: still running")
        #expect(renewed.token == lease.token && renewed.expiresAt == world.clock.now() + 30)

        // Frozen again; meanwhile (45 s on) another process takes the run-out lease over.
        _ = try await world.store.acquireLease(account: "alice", holder: LeaseHolder(host: "test", pid: 9), now: world.clock.now() + 45,
                                               ttl: 30, holderIsDead: { _ in false })
        world.clock.advance(by: 45)
        let reason = await runtime.waitUntilStopped()
        guard case .leaseLost(let current) = reason else { Issue.record("stopped for \(reason)"); return }
        #expect(current?.contains("pid 9") == true)
        try await world.close()
    }

    /// A store that does not let the lease be renewed (another program holds the file locked) is
    /// ridden out while the lease holds; once it ran out the runtime stops as for an outage
    /// (TGSM-SESSION-004: nobody took the account), not as for a takeover (TGSM-SESSION-002, "stop
    /// the other process"), and its calls say so.
    @Test func aLeaseTheStoreDoesNotLetBeRenewedStopsTheRuntimeAsAnOutage() async throws {
        let world = try await World.start()
        try await world.logIn()
        let impatient = try world.impatientStore()
        let runtime = world.runtime(store: impatient)
        _ = try await runtime.start()

        let lock = try SQLiteFileLock(path: world.directory.path + "/sessions.sqlite")
        await world.clock.untilSleeping()
        world.clock.advance(by: 10)            // a renewal fails; the lease holds another 20 s
        await world.clock.untilSleeping()
        #expect(await runtime.lease != nil, "still running while the lease holds")
        world.clock.advance(by: 10)
        await world.clock.untilSleeping()
        world.clock.advance(by: 10)            // 30 s: the lease ran out
        let reason = await runtime.waitUntilStopped()
        lock.release()
        guard case .leaseExpired(let cause) = reason else { Issue.record("stopped for \(reason)"); return }
        #expect(cause.contains("database is locked"), "\(cause)")
        do {
            _ = try await runtime.invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions())
            Issue.record("a runtime whose lease ran out still called")
        } catch {
            #expect(error.sessionManagerError?.code == "TGSM-SESSION-004")
        }
        try impatient.close()
        try await world.close()
    }

    /// A renewal the store holds up for longer than the lease has left (a locked file waits out its
    /// 10 s busy timeout) is given up when the lease runs out, and the runtime stops then, not when
    /// the store answers: from that moment another process may take the account, and two live
    /// connections on one key are what Telegram answers with AUTH_KEY_DUPLICATED.
    @Test func aRenewalTheStoreHoldsUpEndsWhenTheLeaseRunsOut() async throws {
        let world = try await World.start()
        try await world.logIn()
        let (_, reason) = try await world.runtimeStoppedByAStuckRenewal()
        guard case .leaseExpired(let cause) = reason else { Issue.record("stopped for \(reason)"); return }
        // Given up at the lease's end (the bound), not failed by the store's busy timeout.
        #expect(cause.contains("did not answer within the 2.0 s the lease had left"), "\(cause)")
        try await world.close()
    }

    @Test func theLeaseAGivenUpRenewalLeftInThisProcesssNameIsTakenBackByTheNextRuntimeOnly() async throws {
        let world = try await World.start()
        try await world.logIn()
        let (runtime, reason) = try await world.runtimeStoppedByAStuckRenewal()
        guard case .leaseExpired = reason else { Issue.record("not stopped as an outage"); return }
        let abandoned = try #require(await runtime.abandonedLease)
        // The renewal may land now: the lease stays in this process's name under the same token,
        // unexpired on the clock, as when the store answers before it runs out.
        let held = try #require(try await world.store.currentLease(account: "alice"))
        #expect(held.holder == abandoned.holder && held.token == abandoned.token && !held.isExpired(at: world.clock.now()))

        // Without knowing the lease was given up, the next runtime takes this process for another owner.
        await #expect(throws: SessionManagerError.self) { try await world.runtime().start() }
        let next = world.runtime()
        #expect(try await next.start(reclaiming: abandoned) == .valid(userID: 1001))
        #expect(await next.lease?.token == LeaseToken(abandoned.token.rawValue + 1))

        // Once taken, the given-up lease no longer lets anything take the account: not a runtime of
        // this process (the token moved on), not one of another process (not its holder).
        for pid: Int32 in [1, 2] {
            do {
                try await world.runtime(pid: pid).start(reclaiming: abandoned)
                Issue.record("a runtime with pid \(pid) took a running lease")
            } catch {
                #expect(error.code == "TGSM-SESSION-002")
            }
        }
        #expect(await next.lease != nil)
        await next.stop()
        try await world.close()
    }

    @Test func aHeartbeatRenewsTheLease() async throws {
        let world = try await World.start()
        try await world.logIn()
        let runtime = world.runtime()
        _ = try await runtime.start()
        let before = try #require(await runtime.lease)
        await world.clock.untilSleeping()
        world.clock.advance(by: 10)
        await world.clock.untilSleeping()      // the next beat is scheduled after the renewal
        let after = try #require(try await world.store.currentLease(account: "alice"))
        #expect(after.token == before.token)
        #expect(after.expiresAt.seconds == before.expiresAt.seconds + 10)
        await runtime.stop()
        try await world.close()
    }

    @Test func aRevokedSessionStopsTheRuntimeMarksTheAccountAndReleasesTheLease() async throws {
        let world = try await World.start()
        try await world.logIn()
        let runtime = world.runtime()
        #expect(try await runtime.start() == .valid(userID: 1001))
        _ = try world.dc.addFault(FaultRule(match: FaultMatch(method: "users.getUsers", count: 1), effect: FaultEffect(kind: .sessionRevoked)))
        do {
            _ = try await runtime.invoker.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]), options: InvokeOptions())
            Issue.record("the revoked call succeeded")
        } catch {
            #expect(error.sessionManagerError?.code == "TGSM-AUTH-002")
        }
        #expect(await runtime.waitUntilStopped() == .terminal(code: "TGSM-AUTH-002"))
        #expect(try await world.store.status(of: "alice")?.state == .revoked)
        #expect(try await world.store.currentLease(account: "alice") == nil)

        // A new runtime classifies the account without asking for a code (auth.sendCode never ran again).
        let sendCodes = try world.dc.addFault(FaultRule(match: FaultMatch(method: "auth.sendCode"), effect: .delay(milliseconds: 0))).id
        let next = world.runtime()
        // The first runtime's client saved the key as logged out: the check needs no network at all,
        // and names the mark's cause (revoked: find who), not its consequence (a key logged out).
        #expect(try await next.start() == .revoked)
        if case .stopped(.terminal) = await next.state {} else { Issue.record("the runtime of a revoked account kept running") }
        #expect(world.dc.core.withState { $0.faults.firedCount(rule: sendCodes) } == 0)
        try await world.close()
    }

    @Test func anAccountsStoredProxyIsUsedAndABadOneIsATypedError() async throws {
        let socks = try ProxySetting("socks5://user:secret@127.0.0.1:1080").clientProxy()
        guard case .socks5(let proxy) = socks else { Issue.record("not SOCKS5"); return }
        #expect(proxy.credentials?.username == "user")
        #expect(!"\(socks)".contains("secret"))
        let mtproxy = try ProxySetting("tg://proxy?server=10.0.0.1&port=443&secret=dd000102030405060708090a0b0c0d0e0f").clientProxy()
        guard case .mtproxy(let value) = mtproxy else { Issue.record("not an MTProxy"); return }
        #expect(value.secret.mode == .paddedIntermediate)
        #expect(throws: SessionStoreError.self) { try ProxySetting("tg://proxy?server=10.0.0.1&port=443&secret=zz").clientProxy() }
    }
}
