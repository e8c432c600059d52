import Foundation
import MTProto
import MTProtoClient

/// An error of the session manager as an operator or a worker sees it: a stable code, the facts
/// behind it and the steps a person can follow. Middlewares throw it inside
/// `TelegramError.middleware`; `TelegramError.guidance(account:)` gives the same shape for every
/// error the client or the server produced, so one switch covers both.
public struct SessionManagerError: TelegramMiddlewareError {
    public enum Category: String, Sendable, Hashable, CaseIterable {
        case rateLimit = "RATE"
        case session = "SESSION"
        case auth = "AUTH"
        case network = "NET"
        case rpc = "RPC"
    }

    /// What happened, with its typed facts.
    public enum Reason: Sendable {
        /// The flood ledger holds a wait for this call longer than the inline threshold: refused
        /// without touching the network (TGSM-RATE-001/002/003 by the wait's kind).
        case floodWait(FloodWait)
        /// auth.sendCode/auth.resendCode for this phone before its recorded deadline (TGSM-RATE-004).
        case sendCodeGuard(account: AccountID, method: String, deadline: UnixTime)
        /// The proactive rate gate would make the call wait beyond its inline limit (TGSM-RATE-005).
        case rateGate(account: AccountID, method: String, category: MethodCategory, peer: String?, until: UnixTime)
        /// The circuit breaker of this operation is open after repeated floods (TGSM-RATE-006).
        case breakerOpen(account: AccountID, operation: String, floods: Int, until: UnixTime)
        /// The account is marked dead (logged out, revoked, duplicated, deactivated): nothing is
        /// sent until an operator acts (TGSM-SESSION-001).
        case accountUnusable(account: AccountID, status: AccountStatus, method: String)
        /// Another process owns the account (TGSM-SESSION-002).
        case leaseHeld(account: AccountID, holder: String, expires: UnixTime?)
        /// The session or ledger store failed (TGSM-SESSION-003); `failure` is the database
        /// engine's kind of failure when the store said it, and chooses the recovery steps.
        case storageFailed(account: AccountID, reason: String, failure: DatabaseFailure? = nil)
        /// The store did not let the lease be renewed before it ran out (TGSM-SESSION-004): this
        /// process stopped using the account, since another one may take it from then on.
        case leaseExpired(account: AccountID, cause: String)
        /// The authorization is gone (401 family; TGSM-AUTH-001..004, USER_DEACTIVATED is TGSM-AUTH-005).
        case authorizationLost(account: AccountID, loss: AuthorizationLoss, method: String, dc: Int?)
        /// AUTH_KEY_DUPLICATED (TGSM-AUTH-006) or transport -404, the key unknown to the DC
        /// (TGSM-AUTH-007), with what was done about the key.
        case authKeyRejected(account: AccountID, dc: Int, duplicated: Bool, reset: AuthKeyResetOutcome)
        /// SESSION_PASSWORD_NEEDED outside a login (TGSM-AUTH-008).
        case passwordNeeded(account: AccountID, method: String)
        /// No connection within the reconnect budget (TGSM-NET-001).
        case connectionFailed(account: AccountID, dc: Int, attempts: Int, reason: String)
        /// No answer in time; the call may have run (TGSM-NET-002).
        case timeout(account: AccountID, method: String, seconds: Double)
        /// A transport error other than -404 (TGSM-NET-003).
        case transport(account: AccountID, dc: Int, code: Int32)
        /// The key exchange failed (TGSM-NET-004).
        case handshakeFailed(account: AccountID, dc: Int, reason: String)
        /// The server confirmed receiving the call, then its answer never came (or a new session lost it):
        /// it may have run (TGSM-NET-006). Unlike a timeout, the request certainly reached the server.
        case inDoubt(account: AccountID, method: String, reason: InDoubtReason)
        /// The account's proxy refused this client: its credentials or secret are wrong (TGSM-NET-005).
        /// A person must fix the link; the call is not retried (the link keeper tries again with backoff).
        case proxyRefused(account: AccountID, dc: Int, reason: String)
        /// 500 / -503: a server failure (TGSM-RPC-001).
        case serverError(account: AccountID, method: String, error: RPCError, idempotent: Bool?)
        /// The server refused the request as sent (400, 403, 404, 406: TGSM-RPC-002).
        case requestRefused(account: AccountID, method: String, error: RPCError)
        /// A server wait this layer did not record (FLOOD_WAIT from a stack without ledger,
        /// 2FA_CONFIRM_WAIT...: TGSM-RPC-003).
        case serverWait(account: AccountID, method: String, error: RPCError, seconds: Int)
        /// The caller cancelled the call (TGSM-RPC-004).
        case cancelled(account: AccountID, method: String)
        /// Anything else the client reported (TGSM-RPC-005): closed client, undecodable answer,
        /// migration loop, unknown DC, rejected message.
        case client(account: AccountID, error: TelegramError)
    }

    public let reason: Reason
    /// The client's error this one was made from, if any.
    public let underlying: TelegramError?

    public init(_ reason: Reason, underlying: TelegramError? = nil) {
        self.reason = reason
        self.underlying = underlying
    }

    public var category: Category {
        switch reason {
        case .floodWait, .sendCodeGuard, .rateGate, .breakerOpen: .rateLimit
        case .accountUnusable, .leaseHeld, .storageFailed, .leaseExpired: .session
        case .authorizationLost, .authKeyRejected, .passwordNeeded: .auth
        case .connectionFailed, .timeout, .transport, .handshakeFailed, .proxyRefused, .inDoubt: .network
        case .serverError, .requestRefused, .serverWait, .cancelled, .client: .rpc
        }
    }

    /// `.proxyRefused`'s code, for views that have only a health snapshot's `lastFailureCode`.
    public static let proxyRefusedCode = "TGSM-NET-005"

    /// The stable code, "TGSM-<CATEGORY>-<NNN>"; never reused for another meaning.
    public var code: String {
        let number: Int =
            switch reason {
            case .floodWait(let wait):
                switch wait.kind {
                case .floodWait: 1
                case .premiumFloodWait: 2
                case .slowmodeWait: 3
                }
            case .sendCodeGuard: 4
            case .rateGate: 5
            case .breakerOpen: 6
            case .accountUnusable: 1
            case .leaseHeld: 2
            case .storageFailed: 3
            case .leaseExpired: 4
            case .authorizationLost(_, let loss, _, _):
                switch loss {
                case .keyUnregistered: 1
                case .sessionRevoked: 2
                case .sessionExpired: 3
                case .keyInvalid: 4
                case .userDeactivated: 5
                case .passwordNeeded: 8
                }
            case .authKeyRejected(_, _, let duplicated, _): duplicated ? 6 : 7
            case .passwordNeeded: 8
            case .connectionFailed: 1
            case .timeout: 2
            case .transport: 3
            case .handshakeFailed: 4
            case .proxyRefused: 5
            case .inDoubt: 6
            case .serverError: 1
            case .requestRefused: 2
            case .serverWait: 3
            case .cancelled: 4
            case .client: 5
            }
        return "TGSM-\(category.rawValue)-" + String(repeating: "0", count: number < 10 ? 2 : 1) + String(number)
    }

    public var account: AccountID {
        switch reason {
        case .floodWait(let wait): wait.account
        case .sendCodeGuard(let account, _, _), .rateGate(let account, _, _, _, _), .breakerOpen(let account, _, _, _),
            .accountUnusable(let account, _, _), .leaseHeld(let account, _, _), .storageFailed(let account, _, _), .leaseExpired(let account, _),
            .authorizationLost(let account, _, _, _), .authKeyRejected(let account, _, _, _), .passwordNeeded(let account, _),
            .connectionFailed(let account, _, _, _), .timeout(let account, _, _), .inDoubt(let account, _, _), .transport(let account, _, _),
            .handshakeFailed(let account, _, _), .proxyRefused(let account, _, _), .serverError(let account, _, _, _), .requestRefused(let account, _, _),
            .serverWait(let account, _, _, _), .cancelled(let account, _), .client(let account, _):
            account
        }
    }

    /// The first instant at which repeating the call can succeed, when one is known.
    public var until: UnixTime? {
        switch reason {
        case .floodWait(let wait): wait.until
        case .sendCodeGuard(_, _, let deadline): deadline
        case .rateGate(_, _, _, _, let until), .breakerOpen(_, _, _, let until): until
        default: nil
        }
    }

    /// Whether this error stops the account until a person acts: reconnects stop, nothing is retried.
    public var isTerminal: Bool {
        switch reason {
        case .accountUnusable, .authorizationLost: true
        case .authKeyRejected(_, _, _, let reset): !reset.dropped
        default: false
        }
    }

    public var advice: RPCErrorAdvice? {
        if let underlying, let advice = underlying.advice { return advice }
        switch reason {
        case .floodWait(let wait):
            let reason: RPCErrorAdvice.WaitReason =
                switch wait.kind {
                case .floodWait: .flood
                case .premiumFloodWait: .floodPremium
                case .slowmodeWait: .slowMode
                }
            return .wait(seconds: Int((wait.until.seconds - wait.recordedAt.seconds).rounded(.up)), reason: reason)
        case .authorizationLost(_, let loss, _, _): return .reLogin(loss)
        case .authKeyRejected: return .newAuthKey
        case .serverError: return .retryLater
        case .requestRefused: return .fixRequest
        default: return nil
        }
    }

    /// The facts behind the error, in a fixed order, as name/value pairs safe to log (no secrets).
    public var facts: [(name: String, value: String)] {
        var facts: [(name: String, value: String)] = [("account", account.rawValue)]
        // ISO 8601 in UTC, rounded up to the second: a person reads it, and the operator views'
        // masking of phone-like digit runs leaves dates alone (Unix seconds were masked there).
        func time(_ value: UnixTime) -> String { Date(timeIntervalSince1970: value.seconds.rounded(.up)).ISO8601Format() }
        switch reason {
        case .floodWait(let wait):
            facts += [("method", wait.method), ("kind", wait.kind.rawValue), ("until", time(wait.until))]
            if let peer = wait.peer { facts.append(("peer", peer)) }
            if let dc = wait.dc { facts.append(("dc", String(dc))) }
        case .sendCodeGuard(_, let method, let deadline):
            facts += [("method", method), ("until", time(deadline))]
        case .rateGate(_, let method, let category, let peer, let until):
            facts += [("method", method), ("category", category.rawValue), ("until", time(until))]
            if let peer { facts.append(("peer", peer)) }
        case .breakerOpen(_, let operation, let floods, let until):
            facts += [("operation", operation), ("floods", String(floods)), ("until", time(until))]
        case .accountUnusable(_, let status, let method):
            facts += [("method", method), ("state", status.state.rawValue), ("since", time(status.since)), ("cause", status.cause)]
        case .leaseHeld(_, let holder, let expires):
            facts.append(("holder", holder))
            if let expires { facts.append(("expires", time(expires))) }
        case .storageFailed(_, let reason, _):
            facts.append(("reason", reason))
        case .leaseExpired(_, let cause):
            facts.append(("cause", cause))
        case .authorizationLost(_, let loss, let method, let dc):
            facts += [("method", method), ("error", loss.rawValue)]
            if let dc { facts.append(("dc", String(dc))) }
        case .authKeyRejected(_, let dc, let duplicated, let reset):
            facts += [("dc", String(dc)), ("error", duplicated ? "AUTH_KEY_DUPLICATED" : "transport -404"), ("key", reset.summary)]
        case .passwordNeeded(_, let method):
            facts.append(("method", method))
        case .connectionFailed(_, let dc, let attempts, let reason):
            facts += [("dc", String(dc)), ("attempts", String(attempts)), ("reason", reason)]
        case .timeout(_, let method, let seconds):
            facts += [("method", method), ("seconds", String(seconds))]
        case .inDoubt(_, let method, let reason):
            facts += [("method", method), ("reason", reason.code)]
        case .transport(_, let dc, let code):
            facts += [("dc", String(dc)), ("code", String(code))]
        case .handshakeFailed(_, let dc, let reason), .proxyRefused(_, let dc, let reason):
            facts += [("dc", String(dc)), ("reason", reason)]
        case .serverError(_, let method, let error, let idempotent):
            facts += [("method", method), ("error", "\(error.code) \(error.message)")]
            if let idempotent { facts.append(("idempotent", String(idempotent))) }
        case .requestRefused(_, let method, let error):
            facts += [("method", method), ("error", "\(error.code) \(error.message)")]
        case .serverWait(_, let method, let error, let seconds):
            facts += [("method", method), ("error", error.name), ("seconds", String(seconds))]
        case .cancelled(_, let method):
            facts.append(("method", method))
        case .client(_, let error):
            facts.append(("error", "\(error)"))
        }
        return facts
    }

    /// One sentence: what happened and why.
    public var summary: String {
        switch reason {
        case .floodWait(let wait):
            "\(wait.method) is rate-limited by Telegram (\(wait.kind.rawValue)\(wait.peer.map { " in \($0)" } ?? "")) until the recorded time; the call was not sent"
        case .sendCodeGuard(_, let method, _):
            "\(method) was refused locally: a login code was requested for this phone recently, and asking again would earn a long PHONE_NUMBER_FLOOD"
        case .rateGate(_, let method, let category, let peer, _):
            "\(method) would exceed the proactive rate gate for \(category.rawValue)\(peer.map { " in \($0)" } ?? "") beyond the inline wait limit; the call was not sent"
        case .breakerOpen(_, let operation, let floods, _):
            "the circuit breaker for \(operation) is open after \(floods) flood waits in a row; calls are refused until it cools down"
        case .accountUnusable(_, let status, let method):
            "\(method) was refused: the account is marked \(status.state.rawValue) since \(status.cause), so nothing is sent for it"
        case .leaseHeld(_, let holder, _):
            "the account is held by \(holder); two owners would make Telegram see AUTH_KEY_DUPLICATED"
        case .storageFailed(_, let reason, _):
            "the session store failed (\(reason))"
        case .leaseExpired:
            "the session store did not let this process renew the account's lease before it ran out, so the process stopped "
                + "using the account (another one may take it from now on)"
        case .authorizationLost(_, let loss, let method, _):
            "\(method) failed because \(loss)"
        case .authKeyRejected(_, let dc, let duplicated, let reset):
            (duplicated
                ? "DC \(dc) saw this auth key used by two connections at once (AUTH_KEY_DUPLICATED) and revoked it"
                : "DC \(dc) does not know this auth key (transport error -404)") + "; \(reset.summary)"
        case .passwordNeeded(_, let method):
            "\(method) failed: the account has a 2FA password and the login was not finished (SESSION_PASSWORD_NEEDED)"
        case .connectionFailed(_, let dc, let attempts, let reason):
            // No count: a bound ran out (a check), not the connection's budget.
            attempts == 0 ? reason : "no connection to DC \(dc) after \(attempts) attempts (\(reason))"
        case .timeout(_, let method, let seconds):
            "\(method) got no answer within \(seconds) s; it may still have run on the server"
        case .inDoubt(_, let method, let reason):
            "\(method) reached the server and may have run, but no answer came: \(reason)"
        case .transport(_, let dc, let code):
            "DC \(dc) closed the connection with transport error -\(abs(code))"
        case .handshakeFailed(_, let dc, let reason):
            "the key exchange with DC \(dc) failed (\(reason))"
        case .proxyRefused(_, let dc, let reason):
            "the account's proxy refused the connection to DC \(dc) (\(TelegramError.clause(reason)))"
        case .serverError(_, let method, let error, _):
            "\(method) hit a server failure (\(error.code) \(error.message)); it may or may not have run"
        case .requestRefused(_, let method, let error):
            "\(method) was refused by the server as sent (\(error.code) \(error.message))"
        case .serverWait(_, let method, let error, let seconds):
            "\(method) must wait \(seconds) s (\(error.name))"
        case .cancelled(_, let method):
            "\(method) was cancelled by its caller"
        case .client(_, let error):
            "the client failed: \(error)"
        }
    }

    /// Steps a person can follow, in order.
    public var recoverySteps: [String] {
        switch reason {
        case .floodWait(let wait):
            var steps = ["Wait until the time in `until` (UTC); the ledger refuses the same call until then, in every process on this store."]
            switch wait.kind {
            case .floodWait: steps.append(wait.rateAdvice)
            case .premiumFloodWait: steps.append("The limit is the free-account one for \(wait.method); spread the work over time (or use a Premium account).")
            case .slowmodeWait: steps.append("The chat has slow mode on: send to this chat at most once per slow-mode period.")
            }
            steps.append("Do not delete the ledger entry to get around it: Telegram will answer with a longer wait.")
            return steps
        case .sendCodeGuard:
            return [
                "Use the code already sent (check the Telegram app, SMS or call) before asking for another: `tgsm auth` run again "
                    + "asks for that code without a new request; a program finds its phone_code_hash for auth.signIn with `SendCodeGuard.pendingCode(phoneNumber:)`.",
                "Wait until `until`; a new request before then is refused locally, restarts included.",
                "If no code ever arrived and you are sure, a program may clear the deadline for this phone (`SendCodeGuard.clear`) and "
                    + "request once; the CLI has no command for it on purpose: wait the deadline out.",
            ]
        case .rateGate(_, _, let category, _, _):
            return [
                "Wait until `until` and repeat; the gate lets the call through then.",
                "If your workload needs more, raise the \(category.rawValue) bucket knowingly (`rateLimits` in tgsm's config file, RateGatePolicy in code): the defaults stay below Telegram's observed limits.",
            ]
        case .breakerOpen(_, let operation, _, _):
            return [
                "Wait until `until`: one probe call is then let through; success closes the breaker.",
                "Reduce the rate of \(operation); each reopening doubles the cool-down.",
            ]
        case .accountUnusable(let account, let status, _):
            return status.recoverySteps(account: account)
        case .leaseHeld(_, let holder, _):
            return [
                "Stop the other process (\(holder)) or wait for its lease to expire; never run two owners of one account.",
                "If the holder is dead, the lease is taken over automatically once its heartbeat expires.",
            ]
        case .storageFailed(_, _, .busy?):
            // A lock is not the disk's or the file's fault: the steps for those sent people the wrong way.
            return [
                "Another program holds the store file in a transaction (a `sqlite3` shell, a backup tool, a process stuck mid-write): "
                    + "let it finish or stop it, then try again. The store itself is fine.",
            ]
        case .storageFailed(_, _, .full?):
            return [
                "Free space on the disk holding the store; tgsm carries on once its writes succeed again.",
                "Nothing stored was lost and the file is not damaged: do not restore a backup for this (it would lose what changed since).",
            ]
        case .storageFailed(_, _, .notWritable?):
            return [
                "Make the store writable by the user running tgsm: a read-only mount, or a file or directory owned by another user "
                    + "(the store file is that user's, mode 0600). The store itself is fine.",
            ]
        case .storageFailed(_, _, .postgres?):
            return [
                "Check that the PostgreSQL server is up and reachable from this host, and that the URL, user and password "
                    + "($PGPASSWORD) are right; the reason says which step failed.",
            ]
        case .storageFailed:
            return [
                "Check the disk (space, permissions, the store file's owner and mode 0600).",
                "Run `tgsm check`: it says whether the file is damaged (then `tgsm session restore` puts the newest verified backup "
                    + "in place) or only cannot be written now (a full disk, permissions: fix that, nothing to restore).",
            ]
        case .leaseExpired:
            return [
                "Nothing to do once the store answers again: `tgsm run` takes the account back by itself (it tries every 10 s).",
                "If it repeats, find what holds the store up: the disk, a program keeping the SQLite file locked (a backup tool, "
                    + "an open `sqlite3` shell in a transaction), or the PostgreSQL server and the network to it.",
            ]
        case .authorizationLost(let account, let loss, _, _):
            return AccountStatus.steps(for: AccountStatus.State(loss), account: account)
        case .authKeyRejected(let account, _, let duplicated, let reset):
            if reset.dropped {
                return [
                    "Nothing to do by hand: the key was dropped where that is safe (\(reset.summary)); the next connection creates a new one.",
                    "Make sure only one process uses this account (the lease) so it does not happen again.",
                ]
            }
            return AccountStatus.steps(for: .duplicated, cause: AccountStatus.keyRejectedCause(duplicated: duplicated), account: account)
        case .passwordNeeded:
            return ["Finish the login with the account's 2FA password (checkPassword)."]
        case .connectionFailed:
            return [
                "Check the network and the DC address (help.getConfig updates it on connect).",
                "Calls marked idempotent are retried with backoff; others are left to you: check whether it ran before repeating.",
            ]
        case .timeout:
            return [
                "Check whether the call ran (e.g. read the chat) before repeating a call that is not idempotent.",
                "Raise the timeout if the call is known to be slow.",
            ]
        case .inDoubt(_, _, .sessionChanged), .inDoubt(_, _, .forgottenByServer):
            return [
                "Check whether the call took effect (e.g. read the chat) before repeating it: it reached the server.",
                "If running it twice does no harm, mark the method safe to repeat after a new session "
                    + "(TelegramClientConfiguration.resendPolicy), or the call idempotent (InvokeOptions.isIdempotent) for the retry policy.",
            ]
        case .inDoubt:
            return [
                "Check whether the call took effect (e.g. read the chat) before repeating it: it reached the server.",
                "Calls marked idempotent (InvokeOptions.isIdempotent) are repeated with backoff by the retry policy; if they end "
                    + "in doubt too, answers are being lost on the way back: check the network to the DC (or the account's proxy).",
            ]
        case .transport(_, _, let code):
            return code == 429 || code == -429
                ? ["Open fewer connections from this address; the client backs off and reconnects by itself."]
                : ["Reconnect later; the client reconnects with backoff by itself."]
        case .proxyRefused(let account, _, _):
            return [
                "Correct the account's proxy link (the user name and password of a SOCKS5 proxy, the secret of an MTProxy), or set "
                    + "another proxy or none: `tgsm session proxy --account \(account.rawValue) --set -` reads the link from stdin, `--clear` connects directly.",
                "A running `tgsm run` picks the change up at its next lease renewal and connects through the new proxy at once; "
                    + "jobs wait for it meanwhile without spending attempts.",
            ]
        case .handshakeFailed:
            return ["Check the configured server RSA keys and the DC address; a genuine DC never fails the key exchange."]
        case .serverError(_, _, _, let idempotent):
            return idempotent == true
                ? ["The call was retried with backoff and still failed: try again later."]
                : ["Check whether the call ran before repeating it; mark calls idempotent (InvokeOptions.isIdempotent) to let the retry policy repeat them."]
        case .requestRefused(_, _, let error) where error.message == "PEER_FLOOD":
            return ["Telegram limits this account (PEER_FLOOD, usually after spam reports): stop sending it jobs that start chats "
                + "with people who have not written to it; ask @SpamBot from the account for the limit's end, and resume after it."]
        case .requestRefused(_, _, let error) where error.isAccountFrozen:
            return ["Telegram has frozen this account (\(error.message)): it is read-only until an appeal is accepted. Stop sending it "
                + "write jobs; call help.getAppConfig for freeze_appeal_url (where to appeal) and freeze_until_date (when the account "
                + "is deleted unless the appeal succeeds), and appeal from an official app."]
        case .requestRefused:
            return ["Change the request (see the error message in api/errors); repeating it unchanged fails again."]
        case .serverWait(_, _, _, let seconds):
            return ["Wait \(seconds) s before repeating; put the flood ledger in the stack to have this enforced for you."]
        case .cancelled:
            return ["Nothing to do; the server was asked to drop the answer, but the call may still have run."]
        case .client:
            return ["See the client's message above; update the client if it names a protocol or layer problem."]
        }
    }

    public var description: String {
        let facts = facts.map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        let steps = recoverySteps.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: " ")
        return "[\(code)] \(summary) (\(facts)). What to do: \(steps)"
    }
}

extension TelegramError {
    /// The session manager's view of this error: its stable code, facts and recovery steps.
    public func guidance(account: AccountID, dc: Int? = nil, idempotent: Bool? = nil) -> SessionManagerError {
        switch self {
        case .middleware(let error as SessionManagerError):
            return error
        case .middleware(let other):
            return SessionManagerError(.client(account: account, error: .middleware(other)), underlying: self)
        case .rpc(let rpc, let method):
            if case .wait(let seconds, _) = rpc.advice {
                return SessionManagerError(.serverWait(account: account, method: method, error: rpc, seconds: seconds), underlying: self)
            }
            if let loss = rpc.authorizationLoss {
                return SessionManagerError(.authorizationLost(account: account, loss: loss, method: method, dc: dc), underlying: self)
            }
            if rpc.message == "SESSION_PASSWORD_NEEDED" {
                return SessionManagerError(.passwordNeeded(account: account, method: method), underlying: self)
            }
            if rpc.message == "AUTH_KEY_DUPLICATED" {
                return SessionManagerError(.authKeyRejected(account: account, dc: dc ?? 0, duplicated: true, reset: .notAttempted), underlying: self)
            }
            switch rpc.advice {
            case .retryLater:
                return SessionManagerError(.serverError(account: account, method: method, error: rpc, idempotent: idempotent), underlying: self)
            default:
                return SessionManagerError(.requestRefused(account: account, method: method, error: rpc), underlying: self)
            }
        case .floodWaitHeld(let method, let seconds, _):
            // The connection held the call back for a FLOOD_WAIT the DC answered: the same wait.
            let wait = RPCError(code: 420, message: "FLOOD_WAIT_\(seconds)")
            return SessionManagerError(.serverWait(account: account, method: method, error: wait, seconds: seconds), underlying: self)
        case .transport(let code, let dc):
            if code.rawValue == -404 {
                return SessionManagerError(.authKeyRejected(account: account, dc: dc, duplicated: false, reset: .notAttempted), underlying: self)
            }
            return SessionManagerError(.transport(account: account, dc: dc, code: code.rawValue), underlying: self)
        case .connectionFailed(let dc, let attempts, let reason, _):
            return SessionManagerError(.connectionFailed(account: account, dc: dc, attempts: attempts, reason: reason), underlying: self)
        case .handshakeFailed(let dc, let reason):
            return SessionManagerError(.handshakeFailed(account: account, dc: dc, reason: reason), underlying: self)
        case .proxyRefused(let dc, let reason, _):
            return SessionManagerError(.proxyRefused(account: account, dc: dc, reason: reason), underlying: self)
        case .timeout(let method, let seconds, _):
            return SessionManagerError(.timeout(account: account, method: method, seconds: seconds), underlying: self)
        case .cancelled(let method, _):
            return SessionManagerError(.cancelled(account: account, method: method), underlying: self)
        case .storage(let reason, let cause):
            return SessionManagerError(.storageFailed(account: account, reason: reason, failure: cause.flatMap(DatabaseFailure.of)), underlying: self)
        case .inDoubt(let method, let reason):
            return SessionManagerError(.inDoubt(account: account, method: method, reason: reason), underlying: self)
        case .undecodableResult, .rejected, .closed, .unknownDC, .migrationLoop:
            return SessionManagerError(.client(account: account, error: self), underlying: self)
        }
    }

    /// The session manager's error inside `.middleware`, if this is one.
    public var sessionManagerError: SessionManagerError? {
        if case .middleware(let error as SessionManagerError) = self { return error }
        return nil
    }
}
