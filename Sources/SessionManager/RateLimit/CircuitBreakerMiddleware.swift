import Logging
import MTProto
import MTProtoClient
import Metrics
import Synchronization
import TL

/// The breakers of one account, one per operation (TL method name).
public final class CircuitBreakerBoard: Sendable {
    public let account: AccountID
    public let policy: CircuitBreaker.Policy
    private let clock: any TelegramClock
    private let logger: Logger
    private let breakers = Mutex<[String: CircuitBreaker]>([:])

    public init(account: AccountID, policy: CircuitBreaker.Policy = CircuitBreaker.Policy(), clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    /// The state of one operation's breaker (closed when it never saw a flood).
    public func state(of operation: String) -> CircuitBreaker.State {
        breakers.withLock { $0[operation]?.state ?? .closed }
    }

    func admit(operation: String) throws(TelegramError) {
        let now = clock.now()
        let admission = breakers.withLock { breakers -> CircuitBreaker.Admission in
            // Operations that never flooded keep no breaker: the common path takes no allocation.
            guard var breaker = breakers[operation] else { return .allow }
            let admission = breaker.admit(now: now)
            breakers[operation] = breaker
            return admission
        }
        if case .refuse(let until, let floods) = admission {
            throw .middleware(SessionManagerError(.breakerOpen(account: account, operation: operation, floods: floods, until: until)))
        }
    }

    func record(operation: String, error: TelegramError?) {
        let now = clock.now()
        let transition = breakers.withLock { breakers -> CircuitBreaker.Transition in
            if let error {
                if case .rpc(let rpc, _) = error, case .wait(let seconds, let reason) = rpc.advice, reason == .flood || reason == .floodPremium {
                    var breaker = breakers[operation] ?? CircuitBreaker(policy: policy)
                    let transition = breaker.recordFlood(now: now, waitUntil: now + Double(seconds))
                    breakers[operation] = breaker
                    return transition
                }
                breakers[operation]?.releaseProbe(now: now)
                return .none
            }
            guard breakers[operation] != nil else { return .none }
            let transition = breakers[operation]?.recordSuccess() ?? .none
            breakers[operation] = nil
            return transition
        }
        switch transition {
        case .none:
            break
        case .opened(let until, let floods):
            logger.warning("circuit breaker opened after repeated flood waits", metadata: [
                "account": "\(account)", "operation": "\(operation)", "floods": "\(floods)", "seconds": "\(Int((until - now).rounded(.up)))",
            ])
            Counter(label: "tgsm_breaker_opened_total", dimensions: [("account", account.rawValue), ("operation", operation)]).increment()
        case .closed:
            logger.notice("circuit breaker closed", metadata: ["account": "\(account)", "operation": "\(operation)"])
            Counter(label: "tgsm_breaker_closed_total", dimensions: [("account", account.rawValue), ("operation", operation)]).increment()
        }
    }
}

public struct CircuitBreakerMiddleware: InvocationMiddleware {
    public let board: CircuitBreakerBoard

    public init(_ board: CircuitBreakerBoard) { self.board = board }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, board: board)
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let board: CircuitBreakerBoard

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            let operation = Request.tlName
            try board.admit(operation: operation)
            do {
                let result = try await next.invoke(request, options: options)
                board.record(operation: operation, error: nil)
                return result
            } catch {
                // Only Telegram's flood answers count; anything else (a refusal by the ledger below,
                // a network error) just frees the probe slot.
                board.record(operation: operation, error: error)
                throw error
            }
        }
    }
}
