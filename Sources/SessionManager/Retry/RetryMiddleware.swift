import Logging
import MTProtoClient
import Metrics
import TL

/// Repeats failed calls the `RetryPolicy` says may be repeated, sleeping on the injected clock
/// (cancellable) with jitter from the injected random source.
public struct RetryMiddleware: InvocationMiddleware {
    public let account: AccountID
    public let policy: RetryPolicy
    let clock: any TelegramClock
    let random: any RandomSource
    let logger: Logger

    public init(account: AccountID, policy: RetryPolicy = RetryPolicy(), clock: any TelegramClock, random: any RandomSource, logger: Logger) {
        self.account = account
        self.policy = policy
        self.clock = clock
        self.random = random
        self.logger = logger
    }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, settings: self)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let settings: RetryMiddleware

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            var attempt = 1
            while true {
                do {
                    return try await next.invoke(request, options: options)
                } catch {
                    guard options.mayRetry, attempt < settings.policy.maximumAttempts else { throw error }
                    let delay: Double
                    switch settings.policy.classify(error, idempotent: options.isIdempotent) {
                    case .giveUp: throw error
                    case .after(let seconds): delay = seconds
                    case .backoff: delay = settings.policy.backoff(beforeRetry: attempt, unit: settings.random.nextUnit())
                    }
                    settings.logger.debug("retrying", metadata: [
                        "account": "\(settings.account)", "method": "\(Request.tlName)", "attempt": "\(attempt + 1)", "delay": "\(delay)",
                    ])
                    Counter(label: "tgsm_retries_total", dimensions: [("account", settings.account.rawValue), ("method", Request.tlName)]).increment()
                    try await sleepCancellable(settings.clock, seconds: delay, method: Request.tlName)
                    attempt += 1
                }
            }
        }
    }
}
