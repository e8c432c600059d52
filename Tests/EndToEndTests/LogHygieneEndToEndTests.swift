import Logging
import MTProto
import Synchronization
import TLSchema
import TestDC
import Testing
import class MTProtoClient.TelegramClient
@testable import MTProtoClient

/// Collects every log line (message and metadata) a client writes, at trace level.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])

    var text: String { lines.withLock { $0.joined(separator: "\n") } }

    func handler(label: String) -> any LogHandler { Handler(log: self) }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            log.append("\(event.level) \(event.message) \(all)")
        }
    }
}

@Suite struct LogHygieneEndToEndTests {
    /// A full 2FA login plus a FLOOD_WAIT, a migration and a dropped connection, logged at trace
    /// level: the phone number, the login code, the password and the key never appear.
    @Test func secretsNeverReachTheLogs() async throws {
        let cluster = try await Cluster.start()
        let capture = CapturedLog()
        let storage = InMemorySessionStorage()
        let client = TelegramClient(
            configuration: cluster.configuration(), storage: storage,
            logger: Logger(label: "client", factory: capture.handler))
        try await client.connect()
        let seenCode = Mutex<String?>(nil)
        let running = cluster.dc
        _ = try await TelegramLogin(client: client).logIn(
            phoneNumber: bob.phone,
            code: { _ in
                let code = running.loginCode(phone: bob.phone) ?? ""
                seenCode.withLock { $0 = code }
                return code
            },
            password: { _ in bob.password })
        let code = try #require(seenCode.withLock { $0 })
        #expect(code.count >= 5)
        try cluster.dc.addFault(FaultRule(match: FaultMatch(method: "help.getNearestDc", count: 1), effect: .floodWait(3)))
        _ = try? await client.invoke(Api.functions.help.GetNearestDc())
        try cluster.dc.addFault(FaultRule(match: FaultMatch(method: "users.getUsers", count: 1), effect: .dropBeforeAnswer))
        _ = try await client.invoke(Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]))
        await client.sessionSaved()
        let key = try #require(await storage.load()?.dcs[1]?.authKey)
        await client.close()
        await cluster.shutdown()

        let text = capture.text
        #expect(!text.isEmpty)
        #expect(text.contains("logged in"))
        for secret in [bob.phone, bob.password, code] {
            #expect(!text.contains(secret), "a secret reached the logs")
        }
        let keyHex = key.bytes.prefix(8).map { String($0, radix: 16) }.joined()
        #expect(!text.contains(keyHex))
        #expect(!text.contains("\(key.bytes.prefix(8))"))
    }
}
