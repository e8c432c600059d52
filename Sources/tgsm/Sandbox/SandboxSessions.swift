import Foundation
import Logging
import MTProto
import MTProtoClient
import SessionManager
import Synchronization
import TestDC
import Workers

/// A demo account of the test DC's world that the sandbox logs in.
struct DemoAccount: Sendable {
    var account: AccountID
    var phone: String
    var userID: Int64
    var password: String?
    /// The DC the account lives on (the login starts on DC 1 and follows PHONE_MIGRATE).
    var homeDC: Int
}

/// The sandbox's accounts on the session manager's live runtime, exactly as `tgsm auth` and
/// `tgsm run` use it: the connection profile read from the test DC's `dcs.json` (as a person
/// would point tgsm at `tgsm testdc`), one `AccountRuntime` per account (lease, client, stack,
/// start-up check), and `AccountRuntimes` as the workers' invokers.
final class SandboxSessions: Sendable {
    static let apiID: Int32 = 1
    static let apiHash = "tgsm-sandbox"

    let store: SQLiteSessionStore
    let client: TelegramClientConfiguration
    let configuration: AccountRuntimeConfiguration
    let runtimes: AccountRuntimes
    let logger: Logger

    /// - Parameter cluster: the test DC's state directory (its `dcs.json`).
    init(store: SQLiteSessionStore, cluster: String, stack: SessionStack.Configuration, logger: Logger) throws {
        self.store = store
        client = try ConnectionProfile.testDC(cluster: cluster).clientConfiguration(apiID: Self.apiID, apiHash: Self.apiHash)
        // No keep-alive: the run is shorter than any keep-alive interval.
        let configuration = AccountRuntimeConfiguration(stack: stack, keepAlive: nil)
        self.configuration = configuration
        self.logger = logger
        let client = self.client
        runtimes = AccountRuntimes(logger: logger) { account in
            AccountRuntime(account: account, store: store, client: client, configuration: configuration,
                           environment: AccountRuntimeEnvironment(logger: logger))
        }
    }

    /// Logs `demo` in as `tgsm auth` does: a runtime that does not stop on "unauthorized", a code
    /// login through its stack (the send-code guard writes the phone's deadline), then stopped.
    /// Returns whether a code was asked for (not when a kept future auth token logged it in).
    @discardableResult
    func logIn(_ demo: DemoAccount, dc: RunningTestDC) async throws -> Bool {
        var once = configuration
        once.stopsOnTerminal = false
        let runtime = AccountRuntime(account: demo.account, store: store, client: client, configuration: once,
                                     environment: AccountRuntimeEnvironment(logger: logger))
        _ = try await runtime.start(validate: true)
        let phone = demo.phone
        let password = demo.password
        let codeAsked = Mutex(false)
        do {
            _ = try await TelegramLogin(invoker: runtime.invoker, apiID: Self.apiID, apiHash: Self.apiHash).logIn(
                phoneNumber: phone,
                code: { _ in
                    codeAsked.withLock { $0 = true }
                    return dc.loginCode(phone: phone) ?? ""
                },
                password: { _ in password ?? "" })
        } catch {
            await runtime.stop()
            throw error
        }
        await runtime.stop()
        return codeAsked.withLock { $0 }
    }

    /// Starts the accounts' runtimes (each validates its stored session without asking for a code).
    func start(_ accounts: [AccountID]) async -> [AccountID: AccountRuntimes.StartOutcome] {
        await runtimes.start(accounts)
    }

    /// What an account's connections did (all DCs together).
    func statistics(_ account: AccountID) async -> ConnectionStatistics {
        guard let runtime = runtimes.existingRuntime(for: account), let client = await runtime.client else { return ConnectionStatistics() }
        var total = ConnectionStatistics()
        for (_, one) in await client.statistics() {
            total.connections += one.connections
            total.connectionsLost += one.connectionsLost
            total.requestsInDoubt += one.requestsInDoubt
        }
        return total
    }

    /// The live health of each running account, for the dashboard.
    func health() async -> [AccountID: HealthSnapshot] {
        var result: [AccountID: HealthSnapshot] = [:]
        for runtime in runtimes.runtimes {
            if let health = await runtime.health { result[runtime.account] = health.snapshot }
        }
        return result
    }

    /// Every runtime stopped: clients closed, leases released.
    func shutdown() async {
        for runtime in runtimes.runtimes { await runtime.stop() }
    }
}
