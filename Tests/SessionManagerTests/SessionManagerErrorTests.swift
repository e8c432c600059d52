import MTProto
import MTProtoClient
import MTProtoNIO
import SessionManager
import Testing

@Suite struct SessionManagerErrorTests {
    static let t = UnixTime(seconds: 1_800_000_000)

    /// One error of every reason, with the code each must keep forever.
    static let catalogue: [(SessionManagerError, String)] = {
        let a: AccountID = "alice"
        func wait(_ kind: FloodWait.Kind) -> SessionManagerError {
            SessionManagerError(.floodWait(FloodWait(account: a, method: "messages.sendMessage", peer: "user:1", kind: kind, recordedAt: t, until: t + 60, dc: 2)))
        }
        let deactivated = AccountStatus(state: .deactivated, since: t, cause: "USER_DEACTIVATED", code: "TGSM-AUTH-005")
        return [
            (wait(.floodWait), "TGSM-RATE-001"),
            (wait(.premiumFloodWait), "TGSM-RATE-002"),
            (wait(.slowmodeWait), "TGSM-RATE-003"),
            (SessionManagerError(.sendCodeGuard(account: a, method: "auth.sendCode", deadline: t + 600)), "TGSM-RATE-004"),
            (SessionManagerError(.rateGate(account: a, method: "contacts.resolveUsername", category: .resolve, peer: nil, until: t + 450)), "TGSM-RATE-005"),
            (SessionManagerError(.breakerOpen(account: a, operation: "messages.sendMessage", floods: 3, until: t + 300)), "TGSM-RATE-006"),
            (SessionManagerError(.accountUnusable(account: a, status: deactivated, method: "updates.getState")), "TGSM-SESSION-001"),
            (SessionManagerError(.leaseHeld(account: a, holder: "host-b pid 4242", expires: t + 30)), "TGSM-SESSION-002"),
            (SessionManagerError(.storageFailed(account: a, reason: "disk full")), "TGSM-SESSION-003"),
            (SessionManagerError(.authorizationLost(account: a, loss: .keyUnregistered, method: "m", dc: 2)), "TGSM-AUTH-001"),
            (SessionManagerError(.authorizationLost(account: a, loss: .sessionRevoked, method: "m", dc: 2)), "TGSM-AUTH-002"),
            (SessionManagerError(.authorizationLost(account: a, loss: .sessionExpired, method: "m", dc: 2)), "TGSM-AUTH-003"),
            (SessionManagerError(.authorizationLost(account: a, loss: .keyInvalid, method: "m", dc: 2)), "TGSM-AUTH-004"),
            (SessionManagerError(.authorizationLost(account: a, loss: .userDeactivated, method: "m", dc: 2)), "TGSM-AUTH-005"),
            (SessionManagerError(.authKeyRejected(account: a, dc: 2, duplicated: true, reset: .keptLoggedInHomeKey(dc: 2))), "TGSM-AUTH-006"),
            (SessionManagerError(.authKeyRejected(account: a, dc: 4, duplicated: false, reset: .dropped(dc: 4))), "TGSM-AUTH-007"),
            (SessionManagerError(.passwordNeeded(account: a, method: "m")), "TGSM-AUTH-008"),
            (SessionManagerError(.connectionFailed(account: a, dc: 2, attempts: 6, reason: "refused")), "TGSM-NET-001"),
            (SessionManagerError(.timeout(account: a, method: "m", seconds: 10)), "TGSM-NET-002"),
            (SessionManagerError(.transport(account: a, dc: 2, code: -429)), "TGSM-NET-003"),
            (SessionManagerError(.handshakeFailed(account: a, dc: 2, reason: "bad key")), "TGSM-NET-004"),
            (SessionManagerError(.proxyRefused(account: a, dc: 2, reason: "wrong password")), "TGSM-NET-005"),
            (SessionManagerError(.inDoubt(account: a, method: "m", reason: .noAnswerAfterReceipt(waited: 20))), "TGSM-NET-006"),
            (SessionManagerError(.serverError(account: a, method: "m", error: RPCError(code: 500, message: "INTERNAL"), idempotent: false)), "TGSM-RPC-001"),
            (SessionManagerError(.requestRefused(account: a, method: "m", error: RPCError(code: 400, message: "PEER_ID_INVALID"))), "TGSM-RPC-002"),
            (SessionManagerError(.serverWait(account: a, method: "m", error: RPCError(code: 420, message: "FLOOD_WAIT_3"), seconds: 3)), "TGSM-RPC-003"),
            (SessionManagerError(.cancelled(account: a, method: "m")), "TGSM-RPC-004"),
            (SessionManagerError(.client(account: a, error: .closed)), "TGSM-RPC-005"),
        ]
    }()

    @Test func everyErrorHasItsStableCodeFactsAndRecoverySteps() {
        var seen = Set<String>()
        for (error, code) in Self.catalogue {
            #expect(error.code == code)
            #expect(seen.insert(code).inserted, "code \(code) is used twice")
            #expect(error.code.hasPrefix("TGSM-\(error.category.rawValue)-"))
            #expect(error.facts.first?.name == "account" && error.facts.count >= 2, "\(code) names its facts")
            #expect(!error.recoverySteps.isEmpty && error.recoverySteps.allSatisfy { $0.count > 20 }, "\(code) says what to do")
            // A command in a step is one a person can run as it is: the account named, not a placeholder.
            #expect(!error.recoverySteps.joined().contains("--account NAME"), "\(code) names the account in its commands")
            #expect(error.description.hasPrefix("[\(code)] ") && error.description.contains("What to do: 1."))
        }
    }

    @Test func rateLimitsCarryTheirUntilAndTheLeaseItsHolder() {
        let byCode = Dictionary(uniqueKeysWithValues: Self.catalogue.map { ($0.1, $0.0) })
        #expect(byCode["TGSM-RATE-001"]?.until == Self.t + 60)
        #expect(byCode["TGSM-RATE-001"]?.facts.contains { $0.name == "until" && $0.value == "2027-01-15T08:01:00Z" } == true)
        #expect(byCode["TGSM-RATE-001"]?.facts.contains { $0.name == "dc" && $0.value == "2" } == true)
        #expect(byCode["TGSM-RATE-001"]?.advice == .wait(seconds: 60, reason: .flood))
        #expect(byCode["TGSM-SESSION-002"]?.facts.contains { $0.name == "holder" && $0.value == "host-b pid 4242" } == true)
        #expect(byCode["TGSM-AUTH-006"]?.description.contains("was kept") == true)
        #expect(byCode["TGSM-AUTH-007"]?.description.contains("was dropped") == true)
    }

    /// A store another program holds locked is not the disk's fault: its steps say so, and the lease
    /// error's steps name the holder (before: "see `holder`", a field the CLI never shows).
    @Test func stepsFollowTheCauseAndNameTheHolder() {
        let locked = SessionManagerError(.storageFailed(account: "alice", reason: "the session store failed to save: database is locked", failure: .busy))
        #expect(locked.recoverySteps.joined().contains("Another program holds the store file") && !locked.recoverySteps.joined().contains("Check the disk"))
        let full = SessionManagerError(.storageFailed(account: "alice", reason: "the session store failed to save: database or disk is full", failure: .full))
        #expect(full.recoverySteps.joined().contains("Free space") && !full.recoverySteps.joined().contains("tgsm session restore"), "\(full.recoverySteps)")
        let unknown = SessionManagerError(.storageFailed(account: "alice", reason: "something else"))
        #expect(unknown.recoverySteps.joined().contains("Check the disk") && !unknown.recoverySteps.joined().contains("restores its newest verified backup"))
        // The kind travels from the store through the client's storage error.
        let fromClient = TelegramError.storage(reason: "locked", cause: SessionStoreError.database(operation: "save", reason: "database is locked", failure: .busy))
            .guidance(account: "alice")
        #expect(fromClient.recoverySteps.joined().contains("Another program holds the store file"), "\(fromClient.recoverySteps)")
        let held = SessionManagerError(.leaseHeld(account: "alice", holder: "pid 7 on host-b", expires: nil))
        #expect(held.recoverySteps.first?.contains("(pid 7 on host-b)") == true, "\(held.recoverySteps)")
    }

    /// A lost session's steps give the command that logs this account in, never a placeholder.
    @Test func aLostSessionsStepsNameTheAccountsLoginCommand() {
        let lost: [SessionManagerError] = [
            SessionManagerError(.authorizationLost(account: "alice", loss: .keyUnregistered, method: "m", dc: 2)),
            SessionManagerError(.authorizationLost(account: "alice", loss: .sessionRevoked, method: "m", dc: 2)),
            SessionManagerError(.authKeyRejected(account: "alice", dc: 2, duplicated: true, reset: .keptLoggedInHomeKey(dc: 2))),
            SessionManagerError(.accountUnusable(account: "alice", status: AccountStatus(state: .unauthorized, since: UnixTime(seconds: 0),
                                                                                       cause: "AUTH_KEY_UNREGISTERED", code: "TGSM-AUTH-001"), method: "m")),
        ]
        for error in lost {
            let steps = error.recoverySteps.joined(separator: " ")
            #expect(steps.contains("`tgsm auth --account alice`") && !steps.contains("NAME"), "\(error.code): \(steps)")
        }
        // A key the DC does not know (-404) proves no second client: an imported session may only
        // name the wrong DC.
        let unknown = SessionManagerError(.authKeyRejected(account: "alice", dc: 2, duplicated: false, reset: .keptLoggedInHomeKey(dc: 2)))
        let steps = unknown.recoverySteps.joined(separator: " ")
        #expect(steps.contains("The DC does not know this key") && steps.contains("wrong DC") && !steps.contains("Stop every other process"), "\(steps)")
        #expect(AccountStatus(state: .duplicated, since: UnixTime(seconds: 0), cause: "AUTH_KEY_UNKNOWN", code: "TGSM-AUTH-007")
            .recoverySteps(account: "alice").joined().contains("wrong DC"))
    }

    @Test func terminalErrorsAreMarkedSo() {
        let terminal = Self.catalogue.filter { $0.0.isTerminal }.map(\.1)
        #expect(terminal == ["TGSM-SESSION-001", "TGSM-AUTH-001", "TGSM-AUTH-002", "TGSM-AUTH-003", "TGSM-AUTH-004", "TGSM-AUTH-005", "TGSM-AUTH-006"])
    }

    @Test func clientErrorsAreClassified() {
        let cases: [(TelegramError, String)] = [
            (rpc(420, "FLOOD_WAIT_3"), "TGSM-RPC-003"),
            (rpc(401, "SESSION_REVOKED"), "TGSM-AUTH-002"),
            (rpc(401, "USER_DEACTIVATED_BAN"), "TGSM-AUTH-005"),
            (rpc(406, "AUTH_KEY_DUPLICATED"), "TGSM-AUTH-006"),
            (rpc(401, "SESSION_PASSWORD_NEEDED"), "TGSM-AUTH-008"),
            (rpc(500, "INTERNAL"), "TGSM-RPC-001"),
            (rpc(400, "PEER_ID_INVALID"), "TGSM-RPC-002"),
            (.transport(TransportErrorCode(rawValue: -404), dc: 2), "TGSM-AUTH-007"),
            (.transport(TransportErrorCode(rawValue: -429), dc: 2), "TGSM-NET-003"),
            (.connectionFailed(dc: 2, attempts: 6, reason: "x"), "TGSM-NET-001"),
            (.timeout(method: "m", seconds: 3, delivery: .sent), "TGSM-NET-002"),
            (.handshakeFailed(dc: 2, reason: "x"), "TGSM-NET-004"),
            (.proxyRefused(dc: 2, reason: "x"), SessionManagerError.proxyRefusedCode),
            (.cancelled(method: "m", delivery: .notSent), "TGSM-RPC-004"),
            (.storage(reason: "x"), "TGSM-SESSION-003"),
            // Reached the server, no answer: a network outcome like a timeout, not a client failure.
            (.inDoubt(method: "m", reason: .noAnswerAfterReceipt(waited: 20)), "TGSM-NET-006"),
            (.inDoubt(method: "m", reason: .sessionChanged), "TGSM-NET-006"),
            (.closed, "TGSM-RPC-005"),
            (.migrationLoop(method: "m", dcs: [1, 2, 1]), "TGSM-RPC-005"),
        ]
        for (error, code) in cases {
            #expect(error.guidance(account: "alice").code == code, "\(error)")
        }
        // A frozen account's refusal says what it is and where to appeal, not "change the request".
        let frozen = rpc(420, "FROZEN_METHOD_INVALID").guidance(account: "alice")
        #expect(frozen.code == "TGSM-RPC-002")
        #expect(frozen.recoverySteps.joined().contains("freeze_appeal_url") && !frozen.recoverySteps.joined().contains("Change the request"))
        #expect(rpc(400, "PEER_FLOOD").guidance(account: "alice").recoverySteps.joined().contains("@SpamBot"))
        // A flood error not named *_WAIT_X is a server wait with its seconds, not a refusal.
        let takeout = rpc(420, "TAKEOUT_INIT_DELAY_86400").guidance(account: "alice")
        #expect(takeout.code == "TGSM-RPC-003" && takeout.description.contains("86400"))
        let wrapped = TelegramError.middleware(Self.catalogue[0].0)
        #expect(wrapped.guidance(account: "bob").code == "TGSM-RATE-001")
        #expect(wrapped.description.hasPrefix("[TGSM-RATE-001]"))
        #expect(wrapped.advice == .wait(seconds: 60, reason: .flood))
    }

    @Test func noSecretReachesADescription() {
        let error = SessionManagerError(.sendCodeGuard(account: "alice", method: "auth.sendCode", deadline: Self.t))
        #expect(!error.description.contains("5550001"))
    }
}
