import Foundation
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Synchronization
import TestDC
import Workers

// SCAFFOLD until the runtime branch lands: the sandbox's accounts as plain clients on the store
// with the session manager's stack. Replaced by the live account runtime.

/// A demo account of the test DC's world that the sandbox logs in.
struct DemoAccount: Sendable {
    var account: AccountID
    var phone: String
    var userID: Int64
    var password: String?
    /// The DC the account lives on (the login starts on DC 1 and follows PHONE_MIGRATE).
    var homeDC: Int
}

final class SandboxSessions: AccountInvokers {
    private struct Live {
        var stacks: [AccountID: SessionStack] = [:]
        var clients: [AccountID: TelegramClient] = [:]
        var leases: [AccountID: Lease] = [:]
    }
    private let live = Mutex(Live())
    let store: SQLiteSessionStore
    let configuration: TelegramClientConfiguration
    let stackConfiguration: SessionStack.Configuration
    let logger: Logger

    init(store: SQLiteSessionStore, dc: RunningTestDC, stackConfiguration: SessionStack.Configuration, logger: Logger) throws {
        self.store = store
        let keys = try dc.publicKeyPEMs.values.map { pem throws(RSAError) in try RSAPublicKey(pem: pem) }
        var addresses: [Int: [DCAddress]] = [:]
        for (id, address) in dc.dcs { addresses[Int(id)] = [address] }
        configuration = TelegramClientConfiguration(
            apiID: 1, apiHash: "sandbox", serverKeys: keys, dcTable: DCTable(addresses), initialDC: 1, deviceModel: "tgsm sandbox",
            defaultTimeout: 10, handshakeTimeout: 10, reconnect: ReconnectPolicy(initialDelay: 0.05, maximumDelay: 0.5, maximumAttempts: 5, stableAfter: 1))
        self.stackConfiguration = stackConfiguration
        self.logger = logger
    }

    func start(_ account: AccountID) async throws -> TelegramClient {
        let lease = try await store.acquireLease(account: account, holder: .current(), now: SystemClock().now(), ttl: 60, holderIsDead: LeaseHolder.isDeadOnThisHost)
        let storage = AccountSessionStorage(store: store, account: account, lease: lease)
        let client = TelegramClient(configuration: configuration, storage: storage, logger: logger)
        let stack = SessionStack(account: account, client: client, ledgerStore: store, statuses: store, storage: storage,
                                 configuration: stackConfiguration, clock: SystemClock(), random: SystemRandomSource(), logger: logger)
        live.withLock {
            $0.stacks[account] = stack
            $0.clients[account] = client
            $0.leases[account] = lease
        }
        return client
    }

    func logIn(_ demo: DemoAccount, dc: RunningTestDC) async throws {
        let client = try await start(demo.account)
        let phone = demo.phone
        let password = demo.password
        _ = try await TelegramLogin(client: client).logIn(
            phoneNumber: phone, code: { _ in dc.loginCode(phone: phone) ?? "" }, password: { _ in password ?? "" })
    }

    func invoker(for account: AccountID) async throws -> any TelegramInvoking {
        guard let stack = live.withLock({ $0.stacks[account] }) else { throw NotStarted(account: account) }
        return stack.invoker
    }

    func statistics(_ account: AccountID) async -> ConnectionStatistics {
        guard let client = live.withLock({ $0.clients[account] }) else { return ConnectionStatistics() }
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
        live.withLock { live in live.stacks.mapValues { $0.health.snapshot } }
    }

    func shutdown() async {
        let (all, held) = live.withLock { live in
            defer { live = Live() }
            return (Array(live.clients.values), Array(live.leases.values))
        }
        for client in all { await client.close() }
        for lease in held { try? await store.releaseLease(lease) }
    }

    struct NotStarted: Error, CustomStringConvertible {
        let account: AccountID
        var description: String { "the sandbox has no session running for \(account)" }
    }
}
