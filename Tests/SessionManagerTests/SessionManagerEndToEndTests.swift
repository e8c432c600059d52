import Logging
import struct MTProtoClient.DCAddress
import struct MTProtoClient.DCTable
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import TLSchema
import TestDC
import Testing

/// The stack around a real client against the in-process test DC over loopback TCP, with the DC's
/// fault engine injecting floods, errors and revocations. Fault rules count how often a method
/// reached the DC, which is how "without touching the network" is asserted.
@Suite struct SessionManagerEndToEndTests {
    static let alice = (phone: "15550001", id: Int64(1001))
    static let bob = (id: Int64(1002), accessHash: Int64(0x0B0B))
    static let carol = (id: Int64(1003), accessHash: Int64(0x0CA201))

    struct Cluster {
        let dc: RunningTestDC
        let keys: [RSAPublicKey]
        let table: DCTable

        static func start() async throws -> Cluster {
            let running = try await TestDCServer.start(TestDCConfiguration(dcCount: 2, controlEnabled: false, logger: quietLogger))
            let keys = try running.publicKeyPEMs.values.map { pem throws(RSAError) in try RSAPublicKey(pem: pem) }
            var addresses: [Int: [DCAddress]] = [:]
            for (id, address) in running.dcs { addresses[Int(id)] = [address] }
            return Cluster(dc: running, keys: keys, table: DCTable(addresses))
        }

        func client(storage: any SessionStorage) -> TelegramClient {
            let configuration = TelegramClientConfiguration(
                apiID: 1, apiHash: "test-api-hash", serverKeys: keys, dcTable: table, initialDC: 1, deviceModel: "SessionManagerTests",
                defaultTimeout: 10, handshakeTimeout: 10, reconnect: ReconnectPolicy(initialDelay: 0.05, maximumDelay: 0.2, maximumAttempts: 3))
            return TelegramClient(configuration: configuration, storage: storage, logger: quietLogger)
        }

        /// Counts the calls of `method` that reach the DC (a 0 ms delay rule fires on each).
        func counter(_ method: String) throws -> Int {
            try dc.addFault(FaultRule(match: FaultMatch(method: method), effect: .delay(milliseconds: 0))).id
        }

        func fired(_ rule: Int) -> Int { dc.core.withState { $0.faults.firedCount(rule: rule) } }

        func fault(_ method: String, _ effect: FaultEffect, count: Int? = 1) throws -> Int {
            try dc.addFault(FaultRule(match: FaultMatch(method: method, count: count), effect: effect)).id
        }
    }

    /// One account: a client on `storage` behind the standard stack, on shared stores.
    struct Account {
        let client: TelegramClient
        let stack: SessionStack
        let storage: InMemorySessionStorage
        let clock: TestClock

        init(_ cluster: Cluster, storage: InMemorySessionStorage = InMemorySessionStorage(), ledger: InMemoryFloodLedgerStore = InMemoryFloodLedgerStore(),
             statuses: InMemoryAccountStatusStore = InMemoryAccountStatusStore(), clock: TestClock = TestClock()) {
            self.storage = storage
            self.clock = clock
            client = cluster.client(storage: storage)
            stack = SessionStack(account: "alice", client: client, ledgerStore: ledger, statuses: statuses, storage: storage,
                                 clock: clock, random: SeededRandomSource(seed: 1), logger: quietLogger)
        }

        func logIn(_ cluster: Cluster) async throws(LoginError) {
            let login = TelegramLogin(invoker: stack.invoker, apiID: 1, apiHash: "test-api-hash")
            let dc = cluster.dc
            _ = try await login.logIn(phoneNumber: SessionManagerEndToEndTests.alice.phone, code: { _ in dc.loginCode(phone: SessionManagerEndToEndTests.alice.phone) ?? "" },
                                      password: { _ in "" })
        }
    }

    @Test func aFloodWaitIsRecordedAndLaterCallsFailFastWithoutReachingTheDC() async throws {
        let cluster = try await Cluster.start()
        let ledger = InMemoryFloodLedgerStore()
        let account = Account(cluster, ledger: ledger)
        try await account.logIn(cluster)
        let rule = try cluster.fault("users.getUsers", .floodWait(3600), count: nil)
        let request = Api.functions.users.GetUsers(id: [.inputUserSelf(.init())])
        let first = try #require(await failure(account.stack.invoker, request, options: InvokeOptions(isIdempotent: true)))
        // Already the recorded rate limit, with the DC's answer underneath.
        #expect(first.sessionManagerError?.code == "TGSM-RATE-001")
        #expect(first.sessionManagerError?.underlying?.rpcError?.waitSeconds == 3600)
        let recorded = await ledger.activeFloodWaits(account: "alice", at: account.clock.now())
        #expect(recorded.map(\.method) == ["users.getUsers"] && recorded.first?.until == account.clock.now() + 3600)
        for _ in 0..<3 {
            let again = try #require(await failure(account.stack.invoker, request, options: InvokeOptions(isIdempotent: true)))
            #expect(again.sessionManagerError?.code == "TGSM-RATE-001")
        }
        #expect(cluster.fired(rule) == 1)
        // A second process on the same ledger store refuses too, before connecting at all.
        let other = Account(cluster, ledger: ledger, clock: account.clock)
        #expect(await failure(other.stack.invoker, request)?.sessionManagerError?.code == "TGSM-RATE-001")
        #expect(await other.client.statistics().isEmpty)
        await account.client.close()
        await other.client.close()
        try await cluster.dc.shutdown()
    }

    @Test func slowModeHoldsBackOneChatOnly() async throws {
        let cluster = try await Cluster.start()
        let account = Account(cluster)
        try await account.logIn(cluster)
        _ = try cluster.fault("messages.sendMessage", FaultEffect(kind: .slowmodeWait, seconds: 600))
        let sends = try cluster.counter("messages.sendMessage")
        func send(to user: (id: Int64, accessHash: Int64), _ text: String) -> Api.functions.messages.SendMessage {
            Api.functions.messages.SendMessage(peer: .inputPeerUser(.init(userId: user.id, accessHash: user.accessHash)), message: text, randomId: Int64(text.hashValue))
        }
        // The slow-mode answer itself already comes as the recorded wait, the DC's error underneath.
        let first = await failure(account.stack.invoker, send(to: Self.bob, "one"))
        #expect(first?.sessionManagerError?.code == "TGSM-RATE-003")
        #expect(first?.sessionManagerError?.underlying?.rpcError?.name == "SLOWMODE_WAIT_X")
        #expect(await failure(account.stack.invoker, send(to: Self.bob, "two"))?.sessionManagerError?.code == "TGSM-RATE-003")
        let third = await failure(account.stack.invoker, send(to: Self.carol, "three"))
        #expect(third == nil, "\(String(describing: third))")
        #expect(cluster.fired(sends) == 2)
        await account.client.close()
        try await cluster.dc.shutdown()
    }

    /// A frozen account (the test DC refuses its writes with FROZEN_METHOD_INVALID, as Telegram):
    /// the stack reads help.getAppConfig once and the health says since when, when Telegram deletes
    /// the account unless an appeal is accepted, and where to appeal; reads still work.
    @Test func aFrozenAccountsDeletionDateAndAppealComeFromTheAppConfig() async throws {
        let cluster = try await Cluster.start()
        let account = Account(cluster)
        try await account.logIn(cluster)
        let freeze = World.User.Freeze(since: 1_790_000_000, until: 1_792_592_000, appealURL: "https://t.me/spambot")
        cluster.dc.core.withState { state in
            if let index = state.world.users.firstIndex(where: { $0.id == Self.alice.id }) { state.world.users[index].frozen = freeze }
        }
        let configs = try cluster.counter("help.getAppConfig")
        let send = Api.functions.messages.SendMessage(peer: .inputPeerUser(.init(userId: Self.bob.id, accessHash: Self.bob.accessHash)),
                                                      message: "from a frozen account", randomId: 77)
        for _ in 0..<2 {
            let refused = await failure(account.stack.invoker, send)
            #expect(refused?.rpcError?.name == "FROZEN_METHOD_INVALID", "\(String(describing: refused))")
        }
        let health = account.stack.health.snapshot
        #expect(health.state == .degraded && health.frozenSince != nil)
        #expect(health.freeze == AccountFreeze(since: UnixTime(seconds: 1_790_000_000), deletedAfter: UnixTime(seconds: 1_792_592_000),
                                               appealURL: "https://t.me/spambot"))
        #expect(cluster.fired(configs) == 1, "read once")
        #expect(await failure(account.stack.invoker, Api.functions.updates.GetState(), options: InvokeOptions(isIdempotent: true)) == nil, "reads work")
        await account.client.close()
        try await cluster.dc.shutdown()
    }

    @Test func aRestartedProcessNeverAsksForASecondLoginCode() async throws {
        let cluster = try await Cluster.start()
        let ledger = InMemoryFloodLedgerStore()
        let codes = try cluster.counter("auth.sendCode")
        let signIns = try cluster.counter("auth.signIn")
        let first = Account(cluster, ledger: ledger)
        try await first.logIn(cluster)
        await first.client.close()
        // Without a future auth token (its answer had none, or it was spent): the process restarts
        // with a lost session (say its file was deleted) and tries to log in again, in a loop.
        let phoneKey = ledger.phoneKey(for: Self.alice.phone)
        let kept = await ledger.futureAuthTokens(phoneKey: phoneKey)
        await ledger.removeFutureAuthTokens(phoneKey: phoneKey)
        for _ in 0..<3 {
            let restarted = Account(cluster, ledger: ledger, clock: first.clock)
            do {
                try await restarted.logIn(cluster)
                Issue.record("a second code was requested")
            } catch {
                guard case .request(let underlying) = error else {
                    Issue.record("expected the guard's refusal, got \(error)")
                    continue
                }
                #expect(underlying.sessionManagerError?.code == "TGSM-RATE-004")
            }
            await restarted.client.close()
        }
        #expect(cluster.fired(codes) == 1)
        // With the token its login got: each restart logs in by the token of the login before it,
        // and Telegram sends no code (the one code was typed once).
        for token in kept { await ledger.addFutureAuthToken(token, account: "alice", phoneKey: phoneKey) }
        for _ in 0..<2 {
            let restarted = Account(cluster, ledger: ledger, clock: first.clock)
            try await restarted.logIn(cluster)
            await restarted.client.close()
        }
        #expect(cluster.fired(codes) == 3)
        #expect(cluster.fired(signIns) == 1)
        #expect(cluster.dc.loginCode(phone: Self.alice.phone) == nil, "no code outstanding")
        try await cluster.dc.shutdown()
    }

    @Test func aRevokedSessionIsMarkedAndNothingMoreIsSent() async throws {
        let cluster = try await Cluster.start()
        let statuses = InMemoryAccountStatusStore()
        let account = Account(cluster, statuses: statuses)
        try await account.logIn(cluster)
        _ = try cluster.fault("updates.getState", FaultEffect(kind: .sessionRevoked))
        let reached = try cluster.counter("help.getNearestDc")
        let error = try #require(await failure(account.stack.invoker, Api.functions.updates.GetState(), options: InvokeOptions(isIdempotent: true)))
        #expect(error.sessionManagerError?.code == "TGSM-AUTH-002")
        #expect(await statuses.status(of: "alice")?.state == .revoked)
        #expect(await failure(account.stack.invoker, nearest)?.sessionManagerError?.code == "TGSM-SESSION-001")
        #expect(cluster.fired(reached) == 0)
        #expect(await SessionValidator(account: "alice", invoker: account.stack.invoker, storage: account.storage, clock: account.clock).validate().needsLogin)
        // A person logs the account in again (once the send-code guard allows a new code): the mark goes.
        account.clock.advance(by: 600)
        try await account.logIn(cluster)
        #expect(await statuses.status(of: "alice")?.state == .active)
        #expect(await failure(account.stack.invoker, nearest) == nil)
        #expect(cluster.fired(reached) == 1)
        await account.client.close()
        try await cluster.dc.shutdown()
    }

    @Test func aDuplicatedHomeKeyIsKeptAndSaysSo() async throws {
        let cluster = try await Cluster.start()
        let account = Account(cluster)
        try await account.logIn(cluster)
        let keyBefore = await account.storage.load()?.dcs[1]?.authKey
        _ = try cluster.fault("users.getUsers", FaultEffect(kind: .authKeyDuplicated))
        let error = try #require(await failure(account.stack.invoker, Api.functions.users.GetUsers(id: [.inputUserSelf(.init())])))
        let typed = try #require(error.sessionManagerError)
        #expect(typed.code == "TGSM-AUTH-006" && typed.isTerminal)
        #expect(typed.description.contains("was kept"))
        #expect(await account.storage.load()?.dcs[1]?.authKey == keyBefore)
        #expect(await account.stack.terminalGuard.status().state == .duplicated)
        await account.client.close()
        try await cluster.dc.shutdown()
    }

    @Test func validationClassifiesSessionsWithoutAskingForACode() async throws {
        let cluster = try await Cluster.start()
        let good = Account(cluster)
        try await good.logIn(cluster)
        #expect(await SessionValidator(account: "alice", invoker: good.stack.invoker, storage: good.storage, clock: good.clock).validate() == .valid(userID: Self.alice.id))
        guard let stored = await good.storage.load() else {
            Issue.record("the login was not stored")
            return
        }
        // A key that never logged in: the check goes out, the DC says AUTH_KEY_UNREGISTERED.
        let fresh = Account(cluster)
        try await fresh.client.connect()
        let codes = try cluster.counter("auth.sendCode")
        let verdict = await SessionValidator(account: "alice", invoker: fresh.stack.invoker, clock: fresh.clock).validate()
        #expect(verdict == .unauthorized(cause: "AUTH_KEY_UNREGISTERED"))
        #expect(cluster.fired(codes) == 0)
        _ = try cluster.fault("updates.getState", FaultEffect(kind: .userDeactivated))
        #expect(await SessionValidator(account: "alice", invoker: good.stack.invoker, clock: good.clock).validate() == .deactivated)
        await good.client.close()
        await fresh.client.close()
        // The DC goes away: network down, which says nothing about the session. (Its addresses now
        // refuse connections: the port of a DC shut down may already serve another test's DC.)
        try await cluster.dc.shutdown()
        let refusing = try RefusingPort()
        let down = DCTable(Dictionary(uniqueKeysWithValues: cluster.table.dcIDs.map { ($0, [DCAddress(host: "127.0.0.1", port: refusing.port)]) }))
        let offline = Account(Cluster(dc: cluster.dc, keys: cluster.keys, table: down), storage: InMemorySessionStorage(stored))
        let offlineVerdict = await SessionValidator(account: "alice", invoker: offline.stack.invoker, storage: offline.storage, clock: offline.clock).validate()
        withExtendedLifetime(refusing) {}
        guard case .networkDown(let code, let reason) = offlineVerdict else { Issue.record("not network down: \(offlineVerdict)"); return }
        #expect(code == "TGSM-NET-001")
        #expect(reason.contains("no connection to DC"))
        await offline.client.close()
    }

    @Test func anIdempotentCallSurvivesA500AndADroppedConnection() async throws {
        let cluster = try await Cluster.start()
        let account = Account(cluster)
        try await account.logIn(cluster)
        let serverFailure = try cluster.fault("updates.getState", FaultEffect(kind: .internalError))
        _ = try await account.stack.invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions(isIdempotent: true))
        #expect(cluster.fired(serverFailure) == 1)
        #expect(account.clock.sleeps.count == 1)
        // The same failure on a call not marked idempotent reaches the caller.
        _ = try cluster.fault("updates.getState", FaultEffect(kind: .internalError))
        #expect(await failure(account.stack.invoker, Api.functions.updates.GetState())?.rpcError?.code == 500)
        _ = try cluster.fault("updates.getState", .dropBeforeAnswer)
        _ = try await account.stack.invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions(isIdempotent: true))
        #expect(account.stack.health.snapshot.state == .healthy)
        await account.client.close()
        try await cluster.dc.shutdown()
    }

    @Test func theKeepAlivePingsAnIdleAccount() async throws {
        let cluster = try await Cluster.start()
        let account = Account(cluster)
        try await account.logIn(cluster)
        let pings = try cluster.counter("updates.getState")
        let keepAlive = KeepAlive(account: "alice", invoker: account.stack.invoker, health: account.stack.health,
                                  policy: KeepAlivePolicy(interval: 3600, jitter: 0, call: .getState), clock: account.clock,
                                  random: SeededRandomSource(seed: 1), logger: quietLogger)
        // The login just succeeded: not due.
        guard case .skipped = await keepAlive.step() else {
            Issue.record("a fresh account should not be pinged")
            return
        }
        account.clock.advance(by: 3600)
        let outcome = await keepAlive.step()
        #expect(cluster.fired(pings) == 1)
        #expect(outcome == .pinged(rtt: 0))
        await account.client.close()
        try await cluster.dc.shutdown()
    }
}
