import MTProto
import MTProtoClient
import MTProtoCrypto
import MTProtoNIO
import SessionManager
import Testing
import TL

@Suite struct SessionValidatorTests {
    private static func loggedIn() throws -> InMemorySessionStorage {
        InMemorySessionStorage(SessionState(homeDC: 1, dcs: [1: DCSessionState(authKey: try AuthKey([UInt8](repeating: 3, count: 256)), isAuthorized: true)], userID: 1001))
    }

    @Test(arguments: [
        (ScriptedInvoker.Outcome.success(ScriptedInvoker.state), "valid"),
        (.failure(rpc(401, "AUTH_KEY_UNREGISTERED", method: "updates.getState")), "unauthorized"),
        (.failure(rpc(401, "SESSION_REVOKED", method: "updates.getState")), "revoked"),
        (.failure(rpc(406, "AUTH_KEY_DUPLICATED", method: "updates.getState")), "duplicated"),
        (.failure(.transport(TransportErrorCode(rawValue: -404), dc: 1)), "key unknown to the DC"),
        (.failure(rpc(401, "USER_DEACTIVATED_BAN", method: "updates.getState")), "deactivated"),
        (.failure(.connectionFailed(dc: 1, attempts: 6, reason: "refused")), "network down"),
        (.failure(.timeout(method: "updates.getState", seconds: 15, delivery: .sent)), "network down"),
        (.failure(rpc(420, "FLOOD_WAIT_30", method: "updates.getState")), "rate limited"),
    ])
    func eachAnswerIsClassified(outcome: ScriptedInvoker.Outcome, label: String) async throws {
        let client = ScriptedInvoker()
        client.script("updates.getState", outcome)
        let storage = try Self.loggedIn()
        let validator = SessionValidator(account: "alice", invoker: client, storage: storage, clock: TestClock())
        let verdict = await validator.validate()
        #expect(verdict.label == label)
        #expect(client.calls.map(\.method) == ["updates.getState"])
        #expect(client.calls.first?.options.isIdempotent == true)
        if label == "valid" { #expect(verdict == .valid(userID: 1001)) }
    }

    @Test func aSessionWithoutALoggedInKeyIsClassifiedWithoutTheNetwork() async throws {
        let client = ScriptedInvoker()
        for storage in [InMemorySessionStorage(), InMemorySessionStorage(SessionState(homeDC: 2)),
                        InMemorySessionStorage(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: try AuthKey([UInt8](repeating: 1, count: 256)))]))] {
            let verdict = await SessionValidator(account: "alice", invoker: client, storage: storage, clock: TestClock()).validate()
            #expect(verdict.needsLogin)
        }
        #expect(client.calls.isEmpty)
        // A key no login was finished on (an abandoned `tgsm auth`) is told from a session lost
        // later: its steps are to finish the login or remove the account, not to look for a logout.
        let key = try AuthKey([UInt8](repeating: 1, count: 256))
        let abandoned = await SessionValidator(account: "alice", invoker: client,
                                               storage: InMemorySessionStorage(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key)])),
                                               clock: TestClock()).validate()
        guard case .unauthorized(let cause) = abandoned else { Issue.record("\(abandoned)"); return }
        let steps = AccountStatus(state: .unauthorized, since: UnixTime(seconds: 0), cause: cause, code: "TGSM-AUTH-001").recoverySteps
        #expect(cause.hasPrefix(AccountStatus.noLoginFinished) && steps.contains { $0.contains("tgsm session remove") }, "\(cause) \(steps)")
        let lost = await SessionValidator(account: "alice", invoker: client,
                                          storage: InMemorySessionStorage(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key)], userID: 1001)),
                                          clock: TestClock()).validate()
        guard case .unauthorized(let lostCause) = lost else { Issue.record("\(lost)"); return }
        #expect(!lostCause.hasPrefix(AccountStatus.noLoginFinished))
    }

    /// A DC or proxy that never lets a connection up: the check ends at its bound as "network down",
    /// whatever the connection's own reconnect budget and the retries below would have waited (a
    /// start-up, `tgsm auth` and /health coming up waited over 30 s for them).
    @Test func aCheckThatGetsNoAnswerEndsAtItsBoundAsNetworkDown() async throws {
        struct Unanswered: TelegramInvoking {
            func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
                do { try await Task.sleep(for: .seconds(3600)) } catch { throw .cancelled(method: Request.tlName, delivery: .notSent) }
                throw .cancelled(method: Request.tlName, delivery: .notSent)
            }
        }
        let verdict = await SessionValidator(account: "alice", invoker: Unanswered(), clock: TestClock(), timeout: 0.2).validate()
        guard case .networkDown(let code, let reason) = verdict else { Issue.record("\(verdict)"); return }
        #expect(code == "TGSM-NET-001" && reason.contains("no connection was made in time"), "\(reason)")
    }

    /// Both kinds of `duplicated` mark keep their meaning: a key used twice, or a key the DC does
    /// not know (-404), which proves no second client.
    @Test(arguments: [
        (AccountStatus(state: .revoked, since: UnixTime(seconds: 1), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), SessionVerdict.revoked),
        (AccountStatus(state: .duplicated, since: UnixTime(seconds: 1), cause: "AUTH_KEY_DUPLICATED", code: "TGSM-AUTH-006"), .duplicated),
        (AccountStatus(state: .duplicated, since: UnixTime(seconds: 1), cause: AccountStatus.keyUnknownCause, code: "TGSM-AUTH-007"), .keyUnknown),
    ])
    func aMarkedAccountIsClassifiedByItsMarkWithoutTheNetwork(mark: AccountStatus, expected: SessionVerdict) async throws {
        let statuses = InMemoryAccountStatusStore(["alice": mark])
        let client = ScriptedInvoker()
        let stack = SessionStack(account: "alice", client: client, ledgerStore: InMemoryFloodLedgerStore(), statuses: statuses,
                                 clock: TestClock(), random: SeededRandomSource(seed: 1), logger: quietLogger)
        let verdict = await SessionValidator(account: "alice", invoker: stack.invoker, storage: try Self.loggedIn(), clock: TestClock()).validate()
        #expect(verdict == expected)
        #expect(verdict.needsLogin)
        #expect(client.calls.isEmpty)
    }

    @Test func manySessionsAreCheckedAtOnce() async throws {
        let good = ScriptedInvoker()
        let revoked = ScriptedInvoker()
        revoked.script("updates.getState", .failure(rpc(401, "SESSION_REVOKED", method: "updates.getState")))
        let verdicts = await SessionValidator.validateAll([
            SessionValidator(account: "alice", invoker: good, storage: try Self.loggedIn(), clock: TestClock()),
            SessionValidator(account: "bob", invoker: revoked, clock: TestClock()),
        ])
        #expect(verdicts == ["alice": .valid(userID: 1001), "bob": .revoked])
    }
}
