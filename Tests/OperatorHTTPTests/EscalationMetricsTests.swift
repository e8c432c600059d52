import Foundation
import Logging
import MTProto
import MTProtoClient
import OperatorHTTP
import SessionManager
import Synchronization
import TL
import TLSchema
import StoreTestSupport
import Testing

/// The escalation steps an operator must see without reading code: a circuit breaker opening
/// and the rate gate refusing a call each move their counter on /metrics (the process-wide
/// registry `tgsm run` exports, bootstrapped as it does) and log a warning naming the account
/// and the operation.
@Suite struct EscalationMetricsTests {
    /// Answers every call with Telegram's FLOOD_WAIT, as a server does under load.
    final class FloodingInvoker: TelegramInvoking, Sendable {
        let calls = Mutex(0)
        func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
            calls.withLock { $0 += 1 }
            throw .rpc(RPCError(code: 420, message: "FLOOD_WAIT_5"), method: Request.tlName)
        }
    }

    /// Unique per test: the registry is process-wide, so each test reads its own series.
    static func account() -> AccountID { AccountID("esc-" + String(UUID().uuidString.filter(\.isLetter).prefix(8)).lowercased()) }

    static func counter(_ registry: String, _ name: String, _ labels: [String: String]) throws -> Double {
        try parsePrometheus(registry).value(name, labels) ?? 0
    }

    @Test func aBreakerOpeningCountsOnMetricsAndLogsAWarning() async throws {
        let registry = OperatorMetrics.bootstrap()
        let account = Self.account()
        let clock = FixedClock(1_800_000_000)
        let logs = LogCapture()
        let board = CircuitBreakerBoard(account: account, policy: .init(floodsToOpen: 2), clock: clock, logger: logs.logger)
        let server = FloodingInvoker()
        let invoker = server.wrapped(in: [CircuitBreakerMiddleware(board)])
        let method = "help.getNearestDc"
        let labels = ["account": account.rawValue, "operation": method]
        #expect(try Self.counter(registry.emitToString(), "tgsm_breaker_opened_total", labels) == 0)

        // One flood: still closed, nothing counted or warned.
        await #expect(throws: TelegramError.self) { try await invoker.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions()) }
        #expect(try Self.counter(registry.emitToString(), "tgsm_breaker_opened_total", labels) == 0)
        #expect(!logs.all.contains { $0.level == .warning })
        // The second within the window opens it: counted once, one warning with the account and operation.
        await #expect(throws: TelegramError.self) { try await invoker.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions()) }
        #expect(try Self.counter(registry.emitToString(), "tgsm_breaker_opened_total", labels) == 1)
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        let warning = try #require(warnings.first)
        #expect(warning.message.contains("circuit breaker opened"))
        #expect(warning.metadata["account"] == account.rawValue && warning.metadata["operation"] == method)
        #expect(warning.metadata["floods"] == "2")

        // While open the breaker refuses without the network, and refusing is no new opening.
        do {
            _ = try await invoker.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions())
            Issue.record("an open breaker let a call through")
        } catch {
            #expect(error.sessionManagerError?.code == "TGSM-RATE-006", "\(error)")
        }
        #expect(server.calls.withLock { $0 } == 2)
        #expect(try Self.counter(registry.emitToString(), "tgsm_breaker_opened_total", labels) == 1)

        // After the cool-down the probe floods again: the breaker reopens, counted again.
        clock.advance(by: 300)
        await #expect(throws: TelegramError.self) { try await invoker.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions()) }
        #expect(try Self.counter(registry.emitToString(), "tgsm_breaker_opened_total", labels) == 2)
        #expect(logs.all.filter { $0.level == .warning }.count == 2)
    }

    @Test func aRateGateRefusalCountsOnMetricsAndLogsAWarning() async throws {
        let registry = OperatorMetrics.bootstrap()
        let account = Self.account()
        let clock = FixedClock(1_800_000_000)
        let logs = LogCapture()
        // Resolves: a burst of 3, then one per 450 s, beyond a 30 s inline wait.
        let gate = RateGate(account: account, policy: RateGatePolicy(maximumInlineWait: 30), clock: clock, logger: logs.logger)
        let server = FloodingInvoker()
        let invoker = server.wrapped(in: [RateGateMiddleware(gate)])
        let labels = ["account": account.rawValue, "category": "resolve"]
        let resolve = Api.functions.contacts.ResolveUsername(username: "someone")

        for _ in 0..<3 {
            do { _ = try await invoker.invoke(resolve, options: InvokeOptions()) } catch {
                #expect(error.sessionManagerError == nil, "the gate let it through to the server: \(error)")
            }
        }
        #expect(try Self.counter(registry.emitToString(), "tgsm_rate_gate_refusals_total", labels) == 0)
        #expect(!logs.all.contains { $0.level == .warning })

        do {
            _ = try await invoker.invoke(resolve, options: InvokeOptions())
            Issue.record("the gate let a fourth resolve through")
        } catch {
            #expect(error.sessionManagerError?.code == "TGSM-RATE-005", "\(error)")
        }
        #expect(server.calls.withLock { $0 } == 3, "a refusal never reaches the network")
        #expect(try Self.counter(registry.emitToString(), "tgsm_rate_gate_refusals_total", labels) == 1)
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 1)
        let warning = try #require(warnings.first)
        #expect(warning.message.contains("rate gate refused"))
        #expect(warning.metadata["account"] == account.rawValue)
        #expect(warning.metadata["method"] == "contacts.resolveUsername" && warning.metadata["category"] == "resolve")
        // No waits were slept: the budget was beyond the inline limit, so nothing counts as a wait.
        #expect(try Self.counter(registry.emitToString(), "tgsm_rate_gate_waits_total", labels) == 0)
    }
}
