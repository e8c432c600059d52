import MTProto
import MTProtoClient
import Prometheus
import SessionManager
import TL
import TLSchema
import Testing

/// The session manager's RPC metrics middleware, exported through a private Prometheus registry.
@Suite struct RPCMetricsMiddlewareTests {
    /// Answers help.getNearestDc after `latency` seconds of the test clock, or fails with `error`.
    struct SlowInvoker: TelegramInvoking {
        let clock: FixedClock
        let latency: Double
        let error: TelegramError?

        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            clock.advance(by: latency)
            if let error { throw error }
            guard let answer = Api.NearestDc.nearestDc(.init(country: "NL", thisDc: 2, nearestDc: 2)) as? Request.Result else {
                throw .undecodableResult(method: Request.tlName, reason: "only help.getNearestDc is scripted")
            }
            return answer
        }
    }

    @Test func callsAreCountedByMethodAndOutcomeAndTimedOnTheInjectedClock() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        let clock = FixedClock(1_800_000_000)
        let middleware = RPCMetricsMiddleware(account: "alice", clock: clock, factory: factory)
        let ok = SlowInvoker(clock: clock, latency: 0.3, error: nil).wrapped(in: [middleware])
        let flooded = SlowInvoker(clock: clock, latency: 0.02, error: .rpc(RPCError(code: 420, message: "FLOOD_WAIT_30"), method: "help.getNearestDc"))
            .wrapped(in: [middleware])

        for _ in 0..<2 { _ = try await ok.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions()) }
        await #expect(throws: TelegramError.self) { try await flooded.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions()) }

        let samples = try parsePrometheus(registry.emitToString())
        let method = "help.getNearestDc"
        #expect(samples.value("tgsm_rpc_total", ["account": "alice", "method": method, "outcome": "ok"]) == 2)
        // A FLOOD_WAIT no ledger recorded: the session manager's code for a server wait.
        #expect(samples.value("tgsm_rpc_total", ["account": "alice", "method": method, "outcome": "TGSM-RPC-003"]) == 1)
        #expect(samples.value("tgsm_rpc_duration_seconds_count", ["method": method, "outcome": "ok"]) == 2)
        let sum = try #require(samples.value("tgsm_rpc_duration_seconds_sum", ["method": method, "outcome": "ok"]))
        #expect(abs(sum - 0.6) < 1e-6)
        #expect(samples.value("tgsm_rpc_duration_seconds_bucket", ["method": method, "outcome": "ok", "le": "0.25"]) == 0)
        #expect(samples.value("tgsm_rpc_duration_seconds_bucket", ["method": method, "outcome": "ok", "le": "0.5"]) == 2)
        #expect(samples.value("tgsm_rpc_duration_seconds_bucket", ["method": method, "outcome": "TGSM-RPC-003", "le": "0.025"]) == 1)
    }
}
