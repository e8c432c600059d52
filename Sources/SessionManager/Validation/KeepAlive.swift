import Logging
import MTProto
import MTProtoClient
import TLSchema

/// Keeps an idle account inside its authorization TTL: Telegram ends authorizations that stay
/// unused for the account's TTL (a week to a year, set in Settings > Devices), so an account a
/// worker only listens with, or not at all, must make a cheap authorized call now and then.
public struct KeepAlivePolicy: Sendable, Hashable {
    public enum Call: String, Sendable, Hashable {
        /// updates.getState: cheap, and tells whether updates were missed.
        case getState = "updates.getState"
        /// account.getAccountTTL: cheaper still, answers one int.
        case getAccountTTL = "account.getAccountTTL"
    }

    /// Seconds between calls when the account makes no other successful call.
    public var interval: Double
    /// The fraction of `interval` by which each period is shortened at random, so a fleet of
    /// accounts started together does not call together.
    public var jitter: Double
    public var call: Call
    public var timeout: Double

    public init(interval: Double = 12 * 3600, jitter: Double = 0.1, call: Call = .getState, timeout: Double = 30) {
        precondition(interval > 0 && (0..<1).contains(jitter), "a keep-alive needs a positive interval and a jitter in [0, 1)")
        self.interval = interval
        self.jitter = jitter
        self.call = call
        self.timeout = timeout
    }

    /// When the next call is due after the last success (`lastSuccess`, nil: never) at `now`.
    public func nextDue(lastSuccess: UnixTime?, now: UnixTime, unit: Double) -> UnixTime {
        guard let lastSuccess else { return now }
        return lastSuccess + interval * (1 - jitter * min(max(unit, 0), 1))
    }
}

/// What one keep-alive step did.
public enum KeepAliveOutcome: Sendable, Hashable {
    /// The account was active recently; nothing was sent. Next check at `next`.
    case skipped(next: UnixTime)
    /// The call went through in `rtt` seconds.
    case pinged(rtt: Double)
    /// The call failed (the session manager's code); the health monitor has it.
    case failed(code: String)
}

/// The keep-alive loop of one account. `step()` is one decision (tests drive it); `run()` loops
/// until cancelled, sleeping on the injected clock.
public struct KeepAlive: Sendable {
    public let account: AccountID
    public let policy: KeepAlivePolicy
    let invoker: any TelegramInvoking
    let health: AccountHealth
    let clock: any TelegramClock
    let random: any RandomSource
    let logger: Logger

    public init(account: AccountID, invoker: any TelegramInvoking, health: AccountHealth, policy: KeepAlivePolicy = KeepAlivePolicy(),
                clock: any TelegramClock, random: any RandomSource, logger: Logger) {
        self.account = account
        self.invoker = invoker
        self.health = health
        self.policy = policy
        self.clock = clock
        self.random = random
        self.logger = logger
    }

    /// Calls when due (no success for an interval), else says when to look again.
    public func step() async -> KeepAliveOutcome {
        let now = clock.now()
        let due = policy.nextDue(lastSuccess: health.snapshot.lastSuccess, now: now, unit: random.nextUnit())
        if due > now { return .skipped(next: due) }
        let options = InvokeOptions(timeout: policy.timeout, isIdempotent: true)
        do throws(TelegramError) {
            switch policy.call {
            case .getState: _ = try await invoker.invoke(Api.functions.updates.GetState(), options: options)
            case .getAccountTTL: _ = try await invoker.invoke(Api.functions.account.GetAccountTTL(), options: options)
            }
            let rtt = clock.now() - now
            health.recordPing(rtt: rtt)
            return .pinged(rtt: rtt)
        } catch {
            let guidance = error.guidance(account: account)
            // The summary too: a code alone does not tell an operator which of its causes it was.
            logger.warning("keep-alive call failed", metadata: ["account": "\(account)", "code": "\(guidance.code)", "reason": "\(guidance.summary)"])
            return .failed(code: guidance.code)
        }
    }

    /// Runs until the task is cancelled or the account turns terminal.
    public func run() async {
        while !Task.isCancelled {
            let outcome = await step()
            let now = clock.now()
            let pause: Double
            switch outcome {
            case .skipped(let next):
                pause = max(1, next - now)
            case .pinged:
                pause = policy.interval * (1 - policy.jitter * random.nextUnit())
            case .failed:
                if health.snapshot.state == .terminal { return }
                // Try again sooner than a full interval, but never hammer: a tenth of it.
                pause = max(60, policy.interval / 10)
            }
            do { try await clock.sleep(for: pause) } catch { return }
        }
    }
}
