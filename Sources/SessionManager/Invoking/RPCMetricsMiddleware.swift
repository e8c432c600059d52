import MTProto
import MTProtoClient
import Metrics
import TL

/// Counts every call by method and outcome, and times it, through swift-metrics (the process
/// chooses the backend: `tgsm run` exports Prometheus). Outermost in `SessionStack`, so the time is
/// what the caller waited, retries and ledger waits included, and the outcome is what it got.
///
/// Dimensions: `account` (the account id, never a phone: the exporter masks anything phone-like),
/// `method` (the TL name) and `outcome`: `ok`, or the session manager's stable error code
/// (`TGSM-RATE-001`...), so the set of series stays small and every failure has a documented meaning.
public struct RPCMetricsMiddleware: InvocationMiddleware {
    public static let callsLabel = "tgsm_rpc_total"
    public static let durationLabel = "tgsm_rpc_duration_seconds"

    public let account: AccountID
    private let clock: any TelegramClock
    private let factory: (any MetricsFactory)?

    /// - Parameters:
    ///   - account: the `account` dimension of every series.
    ///   - clock: times each call.
    ///   - factory: where the metrics go; nil: the process's (`MetricsSystem.factory`),
    ///     looked up at each call, so a bootstrap after the stack was built still counts.
    public init(account: AccountID, clock: any TelegramClock, factory: (any MetricsFactory)? = nil) {
        self.account = account
        self.clock = clock
        self.factory = factory
    }

    public func wrap(_ next: any TelegramInvoking) -> any TelegramInvoking {
        Invoker(next: next, account: account, clock: clock, factory: factory)
    }

    /// The outcome dimension of a failed call.
    public static func outcome(of error: TelegramError, account: AccountID) -> String {
        if case .cancelled = error { return "cancelled" }
        return error.guidance(account: account).code
    }

    struct Invoker: TelegramInvoking {
        let next: any TelegramInvoking
        let account: AccountID
        let clock: any TelegramClock
        let factory: (any MetricsFactory)?

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            let started = clock.now()
            do {
                let result = try await next.invoke(request, options: options)
                record(Request.tlName, outcome: "ok", started: started)
                return result
            } catch {
                record(Request.tlName, outcome: RPCMetricsMiddleware.outcome(of: error, account: account), started: started)
                throw error
            }
        }

        private func record(_ method: String, outcome: String, started: UnixTime) {
            let factory = self.factory ?? MetricsSystem.factory
            Counter(label: RPCMetricsMiddleware.callsLabel, dimensions: [("account", account.rawValue), ("method", method), ("outcome", outcome)],
                    factory: factory).increment()
            Metrics.Timer(label: RPCMetricsMiddleware.durationLabel, dimensions: [("method", method), ("outcome", outcome)], factory: factory)
                .recordSeconds(max(0, clock.now() - started))
        }
    }
}
