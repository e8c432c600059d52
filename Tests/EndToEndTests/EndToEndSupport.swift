import Logging
import MTProto
import MTProtoCrypto
import TLSchema
import MTProtoNIO
import TestDC
@testable import MTProtoClient

/// A test DC cluster on ephemeral loopback ports plus clients configured for it.
struct Cluster {
    let dc: RunningTestDC
    let keys: [RSAPublicKey]
    let table: DCTable

    static func start(dcCount: Int = 3) async throws -> Cluster {
        let quiet = Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }
        let running = try await TestDCServer.start(TestDCConfiguration(dcCount: dcCount, controlEnabled: false, logger: quiet))
        let keys = try running.publicKeyPEMs.values.map { pem throws(RSAError) in try RSAPublicKey(pem: pem) }
        let addresses = Dictionary(uniqueKeysWithValues: running.dcs.map { (Int($0.key), [$0.value]) })
        return Cluster(dc: running, keys: keys, table: DCTable(addresses))
    }

    static let fastReconnect = ReconnectPolicy(initialDelay: 0.05, maximumDelay: 0.2, maximumAttempts: 4)

    func configuration(timeout: Double? = 10, reconnect: ReconnectPolicy = Cluster.fastReconnect) -> TelegramClientConfiguration {
        TelegramClientConfiguration(
            apiID: 1, apiHash: "test-api-hash", serverKeys: keys, dcTable: table, initialDC: 1,
            deviceModel: "EndToEndTests", defaultTimeout: timeout, handshakeTimeout: 10, reconnect: reconnect)
    }

    func client(
        storage: any SessionStorage = InMemorySessionStorage(), clock: any TelegramClock = SystemClock(),
        timeout: Double? = 10, reconnect: ReconnectPolicy = Cluster.fastReconnect
    ) -> TelegramClient {
        let quiet = Logger(label: "client") { _ in SwiftLogNoOpLogHandler() }
        return TelegramClient(configuration: configuration(timeout: timeout, reconnect: reconnect), storage: storage, clock: clock, logger: quiet)
    }

    /// Logs in by phone code, reading the code the test DC "sent".
    func logIn(_ client: TelegramClient, phone: String, password: String? = nil, signUpName: (String, String)? = nil) async throws -> Api.User {
        let login = TelegramLogin(client: client)
        let running = dc
        return try await login.logIn(
            phoneNumber: phone,
            code: { _ in running.loginCode(phone: phone) ?? "" },
            password: { _ in password ?? "" },
            signUpName: signUpName.map { (first: $0.0, last: $0.1) })
    }

    func shutdown() async {
        try? await dc.shutdown()
    }
}

/// A clock whose time stands still at the wall clock's time when it was made; its sleeps are real.
struct StoppedClock: TelegramClock {
    let stoppedAt = SystemClock().now()
    func now() -> UnixTime { stoppedAt }
    func sleep(for seconds: Double) async throws { try await SystemClock().sleep(for: seconds) }
}

/// A clock running ahead of (or behind) the wall clock, for clock-skew tests.
struct SkewedClock: TelegramClock {
    let skew: Double
    func now() -> UnixTime { UnixTime(seconds: SystemClock().now().seconds + skew) }
    func sleep(for seconds: Double) async throws { try await SystemClock().sleep(for: seconds) }
}

extension Api.User {
    var userID: Int64 {
        switch self {
        case .user(let user): user.id
        case .userEmpty(let empty): empty.id
        }
    }
}

let alice = (phone: "15550001", id: Int64(1001))
let bob = (phone: "15550002", id: Int64(1002), password: "hunter2", accessHash: Int64(0x0B0B))
let carol = (phone: "15550003", id: Int64(1003), home: 2)
