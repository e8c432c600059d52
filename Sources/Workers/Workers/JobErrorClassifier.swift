import MTProto
import MTProtoClient
import SessionManager

/// Why an account's workers stopped, with what the operator should do. `status` is the mark
/// written to the session manager's `AccountStatusStore` (the same one its terminal guard writes,
/// so `tgsm status`, the guard and every worker process agree) and shown by `tgsm status`.
public struct AccountStop: Sendable, Hashable, CustomStringConvertible {
    /// The error's name ("SESSION_REVOKED", "AUTH_KEY_DUPLICATED", "transport -404").
    public var error: String
    /// What to do about it.
    public var guidance: String
    /// The account's mark: state, cause, the session manager's error code, since when.
    public var status: AccountStatus
    /// Whether `status` is written to the account (a dead session). False when this process only
    /// lost the account to another one (its lease was taken over): the session is fine there.
    public var marksAccount: Bool
    /// Whether the store let the account's lease run out (TGSM-SESSION-004): nobody took the account,
    /// and this process takes it back once the store answers.
    public var storeOutage: Bool
    /// When the workers stopped.
    public var at: UnixTime { status.since }

    public init(error: String, guidance: String, status: AccountStatus, marksAccount: Bool = true, storeOutage: Bool = false) {
        self.error = error
        self.guidance = guidance
        self.status = status
        self.marksAccount = marksAccount
        self.storeOutage = storeOutage
    }

    public var description: String { "stopped by \(error): \(guidance)" }
}

/// What happens to a job after a failed attempt.
public enum JobDisposition: Sendable, Hashable {
    /// Again after the backoff, spending the attempt.
    case retry(reason: String)
    /// To the dead letters now.
    case dead(reason: String)
    /// Again no earlier than `seconds` from now (or `until`), without spending the attempt: a
    /// flood wait. `method` names the call, so the ledger's until-time for it can be used.
    case deferFloodWait(method: String?, seconds: Double?, until: UnixTime?, reason: String)
    /// The account's session is unusable: give the job back and stop the account's workers.
    case stopAccount(error: String, guidance: String)
    /// Back to the queue now without spending the attempt (the worker gave up the job, not the job failing).
    case release(reason: String)
    /// Again after `seconds` without spending the attempt: the call never reached a connection (the
    /// network, the DC or the proxy is down), so the attempt says nothing about the job. An outage
    /// of any length leaves jobs waiting, never dead-lettered.
    case deferUnsent(seconds: Double, reason: String)
    /// Again after `seconds` without spending the attempt: the call was sent, then the connection
    /// and every reconnect failed (the network, the DC or the proxy). Whether it ran is found out
    /// by the next attempt (a send's mark makes its repeat a duplicate Telegram refuses); before,
    /// 40 s of a network blip spent every attempt and dead-lettered the job.
    case deferOutage(seconds: Double, reason: String)
}

/// The decision for a failed attempt, as a pure function: unit-tested case by case.
public enum JobErrorClassifier {
    public static func classify(_ error: any Error) -> JobDisposition {
        switch error {
        case let failure as JobFailure:
            switch failure {
            case .permanent(let reason): return .dead(reason: reason)
            case .retry(let reason): return .retry(reason: reason)
            case .deferred(let until, let reason): return .deferFloodWait(method: nil, seconds: nil, until: until, reason: reason)
            case .inDoubt: return .dead(reason: failure.description)
            }
        case let refusal as any RateLimitRefusal:
            return .deferFloodWait(
                method: refusal.method, seconds: nil, until: refusal.retryNotBefore,
                reason: "\(refusal.method) is rate-limited until \(refusal.retryNotBefore) (refused before sending)")
        case let telegram as TelegramError:
            return classify(telegram)
        case is CancellationError:
            return .release(reason: "the worker was cancelled mid-job (shutdown or account stopped)")
        case let queue as JobQueueError:
            return .retry(reason: queue.description)
        default:
            return .retry(reason: "\(error)")
        }
    }

    /// How long a job whose call found no connection waits before it is tried again.
    public static let unsentRetryDelay: Double = 30

    static func classify(_ error: TelegramError) -> JobDisposition {
        if case .cancelled = error {
            return .release(reason: error.description)
        }
        switch error {
        case .connectionFailed(_, _, _, .notSent?), .proxyRefused(_, _, .notSent?), .timeout(_, _, .notSent):
            // It did not run; waiting for the network (or a person fixing the proxy) spends no attempt.
            return .deferUnsent(seconds: unsentRetryDelay, reason: error.description)
        case .connectionFailed:
            return .deferOutage(seconds: unsentRetryDelay, reason: error.description)
        default:
            break
        }
        if let managed = error.sessionManagerError {
            switch managed.reason {
            case .accountUnusable(let account, let status, _):
                // The terminal guard refused the call: the account is already marked (by this process
                // or another); repeating would spend the job's attempts on a dead session.
                return .stopAccount(error: status.cause, guidance: status.recoverySteps(account: account).joined(separator: " "))
            case .floodWait(let wait):
                // A wait the ledger recorded: its method and exact until-time, so the job comes back
                // when the ledger lets that call go again.
                return .deferFloodWait(method: wait.method, seconds: nil, until: wait.until, reason: error.description)
            case .breakerOpen(_, let operation, _, let until):
                // Refused before sending, with the time the call may go again: the job waits for it
                // like for a flood, without spending an attempt.
                return .deferFloodWait(method: operation, seconds: nil, until: until, reason: error.description)
            case .rateGate(_, let method, _, _, let until):
                return .deferFloodWait(method: method, seconds: nil, until: until, reason: error.description)
            case .leaseHeld, .leaseExpired:
                // Another process owns the account now (this one's lease was taken over), or may take it
                // (the store let the lease run out): its jobs go back to the queue, and this process's
                // loop for the account stops unmarked.
                return .stopAccount(error: managed.code, guidance: managed.recoverySteps.joined(separator: " "))
            default:
                break
            }
        }
        guard let advice = error.advice else {
            // closed, rejected, undecodable, unknown DC, migration loop, storage: nothing the
            // session as a whole lost, and nothing that proves repeating is useless.
            return .retry(reason: error.description)
        }
        switch advice {
        case .wait(let seconds, _):
            let method: String? =
                switch error {
                case .rpc(_, let method), .floodWaitHeld(let method, _, _): method
                default: nil
                }
            return .deferFloodWait(method: method, seconds: Double(seconds), until: nil, reason: error.description)
        case .reLogin(let loss):
            return .stopAccount(error: loss.rawValue, guidance: loss.description)
        case .newAuthKey:
            let name: String =
                if case .rpc(let rpc, _) = error { rpc.message } else if case .transport(let code, _) = error { "transport error \(code.rawValue)" } else {
                    "auth key refused"
                }
            return .stopAccount(
                error: name,
                guidance: "the server refuses this account's auth key (\(error.description)); another process or device may be "
                    + "using the same session: stop it, then create a new auth key and log in again before resuming the workers")
        case .retryLater, .migrate:
            return .retry(reason: error.description)
        case .fixRequest:
            return .dead(reason: error.description)
        }
    }

    /// Whether the error proves the call did not take effect: Telegram answered it with an error
    /// (other than a server-side failure, after which it may or may not have run), or a gate
    /// refused it before it was sent. Timeouts, lost connections and crashes prove nothing.
    public static func provesNotPerformed(_ error: any Error) -> Bool {
        switch error {
        case is any RateLimitRefusal:
            return true
        case let telegram as TelegramError:
            switch telegram {
            case .rpc(let rpc, _):
                return rpc.advice != .retryLater
            default:
                // The client knows how far the request got: only one that never left it proves it.
                return telegram.delivery == .notSent
            }
        default:
            return false
        }
    }
}
