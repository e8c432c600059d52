import Logging
import MTProto
import TLSchema
import TL
import TestDC
import Testing
import class MTProtoClient.TelegramClient
@testable import MTProtoClient

/// Every fault kind of the test DC, each asserting what the client did about it.
@Suite struct FaultEndToEndTests {
    private static let nearest = Api.functions.help.GetNearestDc()

    private func loggedIn(_ cluster: Cluster, storage: InMemorySessionStorage = InMemorySessionStorage(), timeout: Double? = 10) async throws -> TelegramClient {
        let client = cluster.client(storage: storage, timeout: timeout)
        try await client.connect()
        _ = try await cluster.logIn(client, phone: alice.phone)
        return client
    }

    private func fault(_ cluster: Cluster, method: String, dc: Int32? = nil, count: Int? = 1, _ effect: FaultEffect) throws {
        try cluster.dc.addFault(FaultRule(match: FaultMatch(dc: dc, method: method, count: count), effect: effect))
    }

    private func rpcFailure<R: TLFunction>(_ client: TelegramClient, _ request: R, options: InvokeOptions = InvokeOptions()) async -> TelegramError? {
        do throws(TelegramError) {
            _ = try await client.invoke(request, options: options)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        (FaultEffect.Kind.floodWait, RPCErrorAdvice.WaitReason.flood),
        (.slowmodeWait, .slowMode),
        (.floodPremiumWait, .floodPremium),
    ])
    func waitsSurfaceWithTheirSeconds(kind: FaultEffect.Kind, reason: RPCErrorAdvice.WaitReason) async throws {
        let cluster = try await Cluster.start()
        // The client's time stands still, so the wait held back is exactly what the DC said however
        // slowly a loaded machine gets from one call to the next.
        let client = cluster.client(clock: StoppedClock())
        try await client.connect()
        _ = try await cluster.logIn(client, phone: alice.phone)
        try fault(cluster, method: "help.getNearestDc", FaultEffect(kind: kind, seconds: 17))
        let error = try #require(await rpcFailure(client, Self.nearest))
        #expect(error.rpcError?.waitSeconds == 17)
        #expect(error.advice == .wait(seconds: 17, reason: reason))
        #expect(error.description.contains("17 s"))
        // The client does not sleep. A FLOOD_WAIT holds the method back on its connection until
        // the wait ends (the next call fails at once, unsent); the other waits are per chat or per
        // upload, the caller's (a middleware's ledger) to honour.
        if kind == .floodWait {
            guard case .floodWaitHeld(let method, let seconds, false) = await rpcFailure(client, Self.nearest) else {
                Issue.record("expected the next call held back")
                return
            }
            #expect(method == "help.getNearestDc" && seconds == 17)
        } else {
            _ = try await client.invoke(Self.nearest)
        }
        await client.close()
        await cluster.shutdown()
    }

    @Test func droppedBeforeTheAnswerIsRecoveredAfterReconnect() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "users.getUsers", .dropBeforeAnswer)
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        let statistics = try #require(await client.statistics()[1])
        #expect(statistics.connections == 2 && statistics.connectionsLost == 1 && statistics.requestsInDoubt == 1)
        await client.close()
        await cluster.shutdown()
    }

    @Test func droppedAfterTheAnswerDeliversItAndReconnectsForTheNext() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "help.getNearestDc", .dropAfterAnswer)
        _ = try await client.invoke(Self.nearest)
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        // The next call may race the server's close (then it is in doubt and recovered); either way
        // it runs on a second connection.
        #expect(await client.statistics()[1]?.connections == 2)
        await client.close()
        await cluster.shutdown()
    }

    @Test func aDelayWithinTheTimeoutIsWaitedForAndOneBeyondTimesOut() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "help.getNearestDc", .delay(milliseconds: 100))
        _ = try await client.invoke(Self.nearest, options: InvokeOptions(timeout: 5))
        try fault(cluster, method: "help.getNearestDc", .delay(milliseconds: 3000))
        let error = try #require(await rpcFailure(client, Self.nearest, options: InvokeOptions(timeout: 0.3)))
        guard case .timeout(let method, let seconds, let delivery) = error else {
            Issue.record("expected a timeout, got \(error)")
            return
        }
        #expect(method == "help.getNearestDc" && seconds == 0.3 && delivery != .notSent)
        #expect(await client.statistics()[1]?.timeouts == 1)
        // The connection is still usable.
        _ = try await client.invoke(Self.nearest)
        await client.close()
        await cluster.shutdown()
    }

    /// A DC that accepts the connection and kills it before every answer would, if each
    /// established connection restarted the budget, be reconnected to forever: connections that
    /// die within `stableAfter` seconds count as failed attempts, so the call ends.
    @Test func aConnectionThatKeepsDyingWithinSecondsExhaustsTheBudget() async throws {
        let cluster = try await Cluster.start()
        // The call's own timeout far away: what ends it must be the budget, even on a loaded machine
        // where five reconnects can take longer than the usual 10 s.
        let client = try await loggedIn(cluster, timeout: 120)
        try fault(cluster, method: "users.getUsers", count: nil, .dropBeforeAnswer)
        let error = try #require(await rpcFailure(client, Api.functions.users.GetUsers(id: [.inputUserSelf(.init())])))
        guard case .connectionFailed(let dc, let attempts, let reason, _) = error else {
            Issue.record("expected the reconnect budget to run out, got \(error)")
            return
        }
        #expect(dc == 1 && attempts == Cluster.fastReconnect.maximumAttempts)
        #expect(reason.contains("died"))
        // The first connection plus one per attempt of the budget after it; more only when a loaded
        // machine stalled a doomed link past `stableAfter` (real time here), which rightly restarts the budget.
        #expect((await client.statistics()[1]?.connections ?? 0) >= Cluster.fastReconnect.maximumAttempts)
        await client.close()
        await cluster.shutdown()
    }

    @Test func badServerSaltIsRetriedTransparently() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "users.getUsers", FaultEffect(kind: .badServerSalt))
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        await client.close()
        await cluster.shutdown()
    }

    @Test func aServerClockOffsetIsCorrectedTransparently() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let client = try await loggedIn(cluster, storage: storage)
        await client.close()
        // The server's clock jumps 10 minutes ahead: the stored offset is now wrong, msg_ids are
        // "too low" (16) until the session machine corrects its offset from the notification.
        cluster.dc.core.withState { $0.faults.setClockOffset(600, dc: 1) }
        let again = cluster.client(storage: storage)
        let users = try await again.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        await again.close()
        await cluster.shutdown()
    }

    @Test func aLocalClockSkewIsCorrectedTransparently() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let client = try await loggedIn(cluster, storage: storage)
        await client.close()
        let skewed = cluster.client(storage: storage, clock: SkewedClock(skew: -900))
        let users = try await skewed.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        await skewed.close()
        await cluster.shutdown()
    }

    /// Decision: 500 is surfaced, not retried: the request may have run, and only the caller knows
    /// whether it is safe to repeat (`advice == .retryLater`).
    @Test func internalErrorIsSurfacedAsRetryLater() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "help.getNearestDc", FaultEffect(kind: .internalError))
        let error = try #require(await rpcFailure(client, Self.nearest))
        #expect(error.rpcError?.code == 500)
        #expect(error.advice == .retryLater)
        await client.close()
        await cluster.shutdown()
    }

    @Test(arguments: [429, 503])
    func transientTransportErrorsReconnectAndRecover(code: Int32) async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "users.getUsers", .transportError(code))
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        let statistics = try #require(await client.statistics()[1])
        #expect(statistics.transportErrors == 1 && statistics.connections == 2 && statistics.requestsInDoubt == 1)
        await client.close()
        await cluster.shutdown()
    }

    @Test func authKeyNotFoundFailsWithTypedTransportError() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "users.getUsers", .transportError(404))
        let error = try #require(await rpcFailure(client, Api.functions.users.GetUsers(id: [.inputUserSelf(.init())])))
        guard case .transport(let transportCode, let dc) = error else {
            Issue.record("expected a transport error, got \(error)")
            return
        }
        #expect(transportCode.rawValue == -404 && dc == 1)
        #expect(error.advice == .newAuthKey)
        await client.close()
        await cluster.shutdown()
    }

    @Test func fileMigrateReinvokesOnTheOtherDCWithAnImportedAuthorization() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let client = try await loggedIn(cluster, storage: storage)
        try fault(cluster, method: "users.getUsers", dc: 1, FaultEffect.migrate(.file, to: 2))
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        await client.sessionSaved()
        let stored = try #require(await storage.load())
        #expect(stored.homeDC == 1)
        #expect(stored.dcs[2]?.isAuthorized == true)
        #expect(stored.dcs[2]?.authKey != nil)
        #expect(await client.statistics()[2]?.keyExchanges == 1)
        await client.close()
        await cluster.shutdown()
    }

    @Test func userMigrateAfterLoginReinvokesWithImportedAuthorization() async throws {
        let cluster = try await Cluster.start()
        let storage = InMemorySessionStorage()
        let client = try await loggedIn(cluster, storage: storage)
        try fault(cluster, method: "users.getUsers", dc: 1, FaultEffect.migrate(.user, to: 3))
        let users = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        #expect(users.map(\.userID) == [alice.id])
        await client.sessionSaved()
        #expect(try #require(await storage.load()).dcs[3]?.isAuthorized == true)
        await client.close()
        await cluster.shutdown()
    }

    @Test(arguments: [
        (FaultEffect.Kind.authKeyUnregistered, AuthorizationLoss.keyUnregistered),
        (.sessionRevoked, .sessionRevoked),
        (.userDeactivated, .userDeactivated),
    ])
    func lostAuthorizationTellsTheOperatorToLogInAgain(kind: FaultEffect.Kind, loss: AuthorizationLoss) async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "users.getUsers", FaultEffect(kind: kind))
        let error = try #require(await rpcFailure(client, Api.functions.users.GetUsers(id: [.inputUserSelf(.init())])))
        #expect(error.advice == .reLogin(loss))
        #expect(error.description.contains("log in again") || error.description.contains("deactivated") || error.description.contains("banned"))
        #expect(await client.isAuthorized == false)
        await client.close()
        await cluster.shutdown()
    }

    @Test func authKeyDuplicatedAsksForANewKey() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        try fault(cluster, method: "users.getUsers", FaultEffect(kind: .authKeyDuplicated))
        let error = try #require(await rpcFailure(client, Api.functions.users.GetUsers(id: [.inputUserSelf(.init())])))
        #expect(error.rpcError?.message == "AUTH_KEY_DUPLICATED")
        #expect(error.advice == .newAuthKey)
        await client.close()
        await cluster.shutdown()
    }

    /// Issue 12 point 4 end to end: the DC takes the request and never answers; the client asks
    /// (msgs_state_req), hears "received" (still running), asks for the answer (msg_resend_ans_req)
    /// until `runningWait` has passed, then fails the call as in doubt well before its own timeout.
    @Test func aSwallowedAnswerEndsInDoubtNotInATimeout() async throws {
        let cluster = try await Cluster.start()
        var configuration = cluster.configuration(timeout: 30)
        configuration.inDoubt = InDoubtPolicy(stateCheckDelay: 0.2, answerWait: 0.2, runningWait: 0.6)
        let quiet = Logger(label: "client") { _ in SwiftLogNoOpLogHandler() }
        let client = TelegramClient(configuration: configuration, logger: quiet)
        try await client.connect()
        _ = try await cluster.logIn(client, phone: alice.phone)
        try fault(cluster, method: "messages.sendMessage", .swallowAnswer)
        let send = Api.functions.messages.SendMessage(
            peer: .inputPeerUser(.init(userId: bob.id, accessHash: bob.accessHash)), message: "in doubt", randomId: 77)
        let error = try #require(await rpcFailure(client, send))
        guard case .inDoubt(let method, .noAnswerAfterReceipt) = error else {
            Issue.record("expected in doubt, got \(error)")
            return
        }
        #expect(method == "messages.sendMessage" && error.delivery == .received)
        let statistics = try #require(await client.statistics()[1])
        // How many answer requests fit in runningWait depends on how fast replies cross a loaded
        // machine; the exact sequence is DCConnectionStateMachineTests' (injected clock).
        #expect(statistics.stateChecks >= 1 && statistics.answerResendRequests >= 1 && statistics.inDoubtFailures == 1, "\(statistics)")
        #expect(statistics.stillRunningReports >= 1, "the test DC said it still runs: \(statistics)")
        // The connection is still usable.
        _ = try await client.invoke(Self.nearest)
        await client.close()
        await cluster.shutdown()
    }

    @Test func cancellingACallEndsItWithCancelled() async throws {
        let cluster = try await Cluster.start()
        let client = try await loggedIn(cluster)
        let delay = try cluster.dc.addFault(FaultRule(match: FaultMatch(method: "help.getNearestDc", count: 1), effect: .delay(milliseconds: 5000)))
        let call = Task { () -> TelegramError? in
            do throws(TelegramError) {
                _ = try await client.invoke(Self.nearest, options: InvokeOptions(timeout: 30))
                return nil
            } catch {
                return error
            }
        }
        // Cancel only once the request has reached the server (the delay rule fired): on a loaded
        // 2-core machine the task may not even have sent it by the time another call returns.
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while cluster.dc.faultFiredCount(rule: delay.id) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        try #require(cluster.dc.faultFiredCount(rule: delay.id) == 1)
        call.cancel()
        let error = await call.value
        guard case .cancelled(let method, let delivery) = error else {
            Issue.record("expected cancellation, got \(String(describing: error))")
            return
        }
        #expect(method == "help.getNearestDc" && delivery != .notSent)
        #expect(await client.statistics()[1]?.cancellations == 1)
        _ = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        await client.close()
        await cluster.shutdown()
    }
}
