import MTProto
import MTProtoNIO
import MTProtoClient
import SessionManager
import Testing
@testable import Workers

@Suite struct JobErrorClassifierTests {
    func rpc(_ code: Int32, _ message: String, method: String = "messages.getHistory") -> TelegramError {
        .rpc(RPCError(code: code, message: message), method: method)
    }

    @Test func aFloodWaitDefersByItsSecondsForItsMethod() {
        #expect(JobErrorClassifier.classify(rpc(420, "FLOOD_WAIT_30"))
            == .deferFloodWait(method: "messages.getHistory", seconds: 30, until: nil, reason: rpc(420, "FLOOD_WAIT_30").description))
        guard case .deferFloodWait(_, let seconds, _, _) = JobErrorClassifier.classify(rpc(420, "SLOWMODE_WAIT_15")) else {
            Issue.record("SLOWMODE_WAIT should defer")
            return
        }
        #expect(seconds == 15)
        // Held back by the connection during a wait it saw: deferred like the wait, for its method.
        let held = TelegramError.floodWaitHeld(method: "users.getFullUser", seconds: 9, mayHaveRun: false)
        #expect(JobErrorClassifier.classify(held) == .deferFloodWait(method: "users.getFullUser", seconds: 9, until: nil, reason: held.description))
    }

    /// What a `SessionStack` caller sees: the ledger recorded the wait and the stack answers with its RATE error.
    @Test func aWaitTheLedgerRecordedDefersToItsUntilTimeForItsMethodWithoutSpendingTheAttempt() {
        let wait = FloodWait(account: "alice", method: "contacts.resolveUsername", kind: .floodWait, recordedAt: UnixTime(seconds: 1_000), until: UnixTime(seconds: 1_030))
        let error = TelegramError.middleware(SessionManagerError(.floodWait(wait), underlying: rpc(420, "FLOOD_WAIT_30", method: "contacts.resolveUsername")))
        #expect(JobErrorClassifier.classify(error)
            == .deferFloodWait(method: "contacts.resolveUsername", seconds: nil, until: UnixTime(seconds: 1_030), reason: error.description))
        #expect(JobErrorClassifier.provesNotPerformed(error))
    }

    /// The breaker and the proactive gate refuse before sending and know when the call may go:
    /// the job waits for that, it does not die (the chaos storm found `me` jobs dead on an open breaker).
    @Test func anOpenBreakerOrTheRateGateDefersTheJobToTheirTime() {
        let breaker = TelegramError.middleware(SessionManagerError(.breakerOpen(account: "alice", operation: "users.getFullUser", floods: 3, until: UnixTime(seconds: 2_000))))
        #expect(JobErrorClassifier.classify(breaker)
            == .deferFloodWait(method: "users.getFullUser", seconds: nil, until: UnixTime(seconds: 2_000), reason: breaker.description))
        let gate = TelegramError.middleware(SessionManagerError(.rateGate(account: "alice", method: "messages.sendMessage", category: .send, peer: "user:1002", until: UnixTime(seconds: 1_001))))
        #expect(JobErrorClassifier.classify(gate)
            == .deferFloodWait(method: "messages.sendMessage", seconds: nil, until: UnixTime(seconds: 1_001), reason: gate.description))
    }

    @Test(arguments: ["SESSION_REVOKED", "AUTH_KEY_UNREGISTERED", "SESSION_EXPIRED", "USER_DEACTIVATED", "USER_DEACTIVATED_BAN", "AUTH_KEY_INVALID"])
    func lostAuthorizationStopsTheAccount(message: String) {
        guard case .stopAccount(_, let guidance) = JobErrorClassifier.classify(rpc(401, message)) else {
            Issue.record("\(message) should stop the account")
            return
        }
        #expect(guidance.contains("login again") || guidance.contains("log in again") || guidance.contains("do not retry"))
    }

    @Test func aDuplicatedOrUnknownKeyStopsTheAccount() {
        guard case .stopAccount(let name, let guidance) = JobErrorClassifier.classify(rpc(406, "AUTH_KEY_DUPLICATED")) else {
            Issue.record("AUTH_KEY_DUPLICATED should stop the account")
            return
        }
        #expect(name == "AUTH_KEY_DUPLICATED" && guidance.contains("new auth key"))
        guard case .stopAccount(let transport, _) = JobErrorClassifier.classify(TelegramError.transport(TransportErrorCode(rawValue: -404), dc: 2)) else {
            Issue.record("transport -404 should stop the account")
            return
        }
        #expect(transport == "transport error -404")
    }

    @Test func aRefusalOfTheTerminalGuardStopsTheAccountInsteadOfSpendingAttempts() {
        let status = AccountStatus(state: .revoked, since: UnixTime(seconds: 1), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002")
        let refusal = TelegramError.middleware(SessionManagerError(.accountUnusable(account: "alice", status: status, method: "messages.getHistory")))
        guard case .stopAccount(let name, let guidance) = JobErrorClassifier.classify(refusal) else {
            Issue.record("a refused call of a marked account should stop its workers")
            return
        }
        #expect(name == "SESSION_REVOKED" && guidance.contains("terminated this session"))
        // The mark the workers would write is the one already there.
        #expect(AccountStatus.terminal(after: refusal, account: "alice", at: UnixTime(seconds: 9)) == status)
    }

    /// A call sent, then no connection for the whole reconnect budget: a network outage, not the
    /// job's failure; it waits without spending an attempt (before, 40 s of dropped connections
    /// dead-lettered a `me` job).
    @Test func aConnectionLostAfterTheCallWasSentDefersWithoutSpendingAnAttempt() {
        let lost = TelegramError.connectionFailed(dc: 2, attempts: 6, reason: "connection reset", delivery: .sent)
        #expect(JobErrorClassifier.classify(lost) == .deferOutage(seconds: JobErrorClassifier.unsentRetryDelay, reason: lost.description))
        let unknown = TelegramError.connectionFailed(dc: 2, attempts: 6, reason: "connection reset")
        #expect(JobErrorClassifier.classify(unknown) == .deferOutage(seconds: JobErrorClassifier.unsentRetryDelay, reason: unknown.description))
        #expect(!JobErrorClassifier.provesNotPerformed(lost), "it may have run: a send's mark still resolves the doubt")
    }

    @Test func serverFailuresAndTimeoutsRetryRefusedRequestsDie() {
        #expect(JobErrorClassifier.classify(rpc(500, "INTERNAL")) == .retry(reason: rpc(500, "INTERNAL").description))
        let timeout = TelegramError.timeout(method: "messages.getHistory", seconds: 10, delivery: .sent)
        #expect(JobErrorClassifier.classify(timeout) == .retry(reason: timeout.description))
        #expect(JobErrorClassifier.classify(rpc(400, "USERNAME_NOT_OCCUPIED")) == .dead(reason: rpc(400, "USERNAME_NOT_OCCUPIED").description))
        guard case .release = JobErrorClassifier.classify(CancellationError()) else {
            Issue.record("a cancelled job is released")
            return
        }
    }

    @Test func aHandlerDecidesWithJobFailure() {
        #expect(JobErrorClassifier.classify(JobFailure.permanent("bad payload")) == .dead(reason: "bad payload"))
        #expect(JobErrorClassifier.classify(JobFailure.retry("later")) == .retry(reason: "later"))
        let until = UnixTime(seconds: 100)
        #expect(JobErrorClassifier.classify(JobFailure.deferred(until: until, reason: "r")) == .deferFloodWait(method: nil, seconds: nil, until: until, reason: "r"))
        guard case .dead(let reason) = JobErrorClassifier.classify(JobFailure.inDoubt(step: "messages.sendMessage", job: JobID(3))) else {
            Issue.record("an in-doubt step is a dead letter")
            return
        }
        #expect(reason.contains("may already have happened"))
    }

    struct GateRefusal: RateLimitRefusal {
        var method: String
        var retryNotBefore: UnixTime
    }

    @Test func aGateRefusalDefersToItsTimeAndProvesNothingWasSent() {
        let refusal = GateRefusal(method: "messages.sendMessage", retryNotBefore: UnixTime(seconds: 500))
        guard case .deferFloodWait(let method, nil, let until, _) = JobErrorClassifier.classify(refusal) else {
            Issue.record("a refusal defers")
            return
        }
        #expect(method == "messages.sendMessage" && until == UnixTime(seconds: 500))
        #expect(JobErrorClassifier.provesNotPerformed(refusal))
    }

    @Test func onlyAnAnswerOrARefusalProvesACallDidNotHappen() {
        #expect(JobErrorClassifier.provesNotPerformed(rpc(400, "PEER_ID_INVALID")))
        #expect(JobErrorClassifier.provesNotPerformed(rpc(420, "FLOOD_WAIT_3")))
        #expect(!JobErrorClassifier.provesNotPerformed(rpc(500, "INTERNAL")))
        #expect(!JobErrorClassifier.provesNotPerformed(TelegramError.timeout(method: "m", seconds: 1, delivery: .sent)))
        #expect(!JobErrorClassifier.provesNotPerformed(TelegramError.inDoubt(method: "m", reason: .sessionChanged)))
        #expect(JobErrorClassifier.provesNotPerformed(TelegramError.timeout(method: "m", seconds: 1, delivery: .notSent)))
        #expect(JobErrorClassifier.provesNotPerformed(TelegramError.floodWaitHeld(method: "m", seconds: 2, mayHaveRun: false)))
        #expect(!JobErrorClassifier.provesNotPerformed(TelegramError.floodWaitHeld(method: "m", seconds: 2, mayHaveRun: true)))
        #expect(!JobErrorClassifier.provesNotPerformed(TelegramError.connectionFailed(dc: 1, attempts: 3, reason: "refused")))
        #expect(JobErrorClassifier.provesNotPerformed(TelegramError.connectionFailed(dc: 1, attempts: 3, reason: "refused", delivery: .notSent)))
        #expect(!JobErrorClassifier.provesNotPerformed(CancellationError()))
    }
}
