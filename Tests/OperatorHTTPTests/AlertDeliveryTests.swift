#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import MTProto
import OffThePool
import OperatorHTTP
import SessionManager
import StoreTestSupport
import Synchronization
import Testing
import WebhookTestSupport

/// Alerts posted to a real HTTP receiver on loopback; the clock is moved, never waited on.
@Suite struct AlertDeliveryTests {
    static func alert(_ n: Int) -> Alert {
        Alert(event: .accountNeedsAttention, severity: .critical, account: "acct-\(n)", at: "2027-01-15T08:00:00Z", host: "host-a",
              summary: "acct-\(n) needs a person", steps: ["log in (`tgsm auth`)"], codes: ["not_logged_in"])
    }

    @Test func alertsArePostedInOrderAsSignedJSON() async throws {
        let receiver = WebhookReceiver()
        let port = await receiver.start()
        let url = try WebhookURL("http://127.0.0.1:\(port)/hooks/T0/B0/s3cret?x=1")
        let delivery = AlertDelivery(url: url, secret: "shared-secret", clock: FixedClock(Fixture.now), logger: quietLogger)
        await delivery.send([Self.alert(1), Self.alert(2)])
        await delivery.flush(within: 30)
        await receiver.stop()
        let requests = receiver.requests
        #expect(requests.map(\.path) == ["/hooks/T0/B0/s3cret?x=1", "/hooks/T0/B0/s3cret?x=1"])
        let decoded = try requests.map { try JSONDecoder().decode(Alert.self, from: $0.body) }
        #expect(decoded == [Self.alert(1), Self.alert(2)])
        let first = try #require(requests.first)
        #expect(first.headers["content-type"] == "application/json" && first.headers["user-agent"] == "tgsm")
        let mac = HMAC<SHA256>.authenticationCode(for: first.body, using: SymmetricKey(data: Data("shared-secret".utf8)))
        #expect(first.headers["x-tgsm-signature"] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        // What a chat webhook shows, and the fields a machine routes on.
        let object = try #require(try JSONSerialization.jsonObject(with: first.body) as? [String: Any])
        #expect(object["text"] as? String == "[critical] tgsm on host-a: acct-1 needs a person — log in (`tgsm auth`).")
        #expect(object["event"] as? String == "account_needs_attention" && object["source"] as? String == "tgsm")
        #expect(await delivery.pending == 0)
    }

    @Test func aReceiverThatFailsIsRetriedWithBackoffAndARefusalIsNot() async throws {
        let receiver = WebhookReceiver(statuses: [500, 429, 200, 404])
        let port = await receiver.start()
        let clock = FixedClock(Fixture.now)
        let delivery = AlertDelivery(url: try WebhookURL("http://127.0.0.1:\(port)/hook"), clock: clock, logger: quietLogger)
        await delivery.send([Self.alert(1), Self.alert(2), Self.alert(3)])
        await delivery.flush(within: 600)
        await receiver.stop()
        let bodies = try receiver.requests.map { try JSONDecoder().decode(Alert.self, from: $0.body).account }
        // The first alert: 500, 429, then 200 (retried after 1 s, then 2 s). The second: 404, dropped
        // at once. The third goes through.
        #expect(bodies == ["acct-1", "acct-1", "acct-1", "acct-2", "acct-3"])
        #expect(clock.now().seconds == Fixture.now + 3, "backoff 1 s then 2 s: \(clock.now().seconds - Fixture.now)")
    }

    /// Only what the receiver took is remembered (`onDelivered`): a refused alert is said again by
    /// the next process.
    @Test func onlyDeliveredAlertsAreRemembered() async throws {
        let receiver = WebhookReceiver(statuses: [404, 200])
        let port = await receiver.start()
        let remembered = Mutex<[String]>([])
        var refused = Self.alert(1), taken = Self.alert(2)
        refused.memoryKeys = ["account:acct-1:not_logged_in"]
        taken.memoryKeys = ["account:acct-2:not_logged_in"]
        let delivery = AlertDelivery(url: try WebhookURL("http://127.0.0.1:\(port)/hook"), clock: FixedClock(Fixture.now), logger: quietLogger,
                                     onDelivered: { keys, _ in remembered.withLock { $0 += keys } })
        await delivery.send([refused, taken])
        await delivery.flush(within: 30)
        await receiver.stop()
        #expect(receiver.requests.count == 2)
        #expect(remembered.withLock { $0 } == ["account:acct-2:not_logged_in"])
    }

    /// A delivered alert the store could not remember (its file held locked, as a backup tool or a
    /// stalled disk can) is remembered once the store answers: before, it was lost, and a process
    /// started after never said that the incident was over ("ready again").
    @Test func anAlertTheStoreCouldNotRememberIsRememberedOnceItAnswers() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("alert-memory-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteSessionStore.open(directory: folder, options: SQLiteStoreOptions(busyTimeout: 0.2))
        defer { try? store.close() }
        let receiver = WebhookReceiver(statuses: [200])
        let port = await receiver.start()
        var alert = Self.alert(1)
        alert.memoryKeys = ["account:acct-1:down"]
        let now = UnixTime(seconds: Fixture.now)
        let delivery = AlertDelivery(url: try WebhookURL("http://127.0.0.1:\(port)/hook"), clock: FixedClock(Fixture.now), logger: quietLogger,
                                     onDelivered: AlertService.remembering(in: store, logger: quietLogger))
        let lock = try SQLiteFileLock(path: folder + "/sessions.sqlite")
        await delivery.send([alert])
        await delivery.flush(within: 30)
        await receiver.stop()
        #expect(receiver.requests.count == 1)
        #expect(try await store.recentlySent(now: now).isEmpty, "the store was locked")
        await delivery.rememberPending()
        #expect(try await store.recentlySent(now: now).isEmpty, "still locked: kept for the next look")
        lock.release()
        await delivery.rememberPending()
        #expect(try await store.recentlySent(now: now).keys.sorted() == ["account:acct-1:down"])
    }

    @Test func anUnreachableReceiverIsGivenUpOnAfterItsTriesAndItsTime() async throws {
        // A port that was just listening and is closed now: connections are refused.
        let receiver = WebhookReceiver()
        let port = await receiver.start()
        await receiver.stop()
        let clock = FixedClock(Fixture.now)
        let policy = AlertDelivery.Policy(maximumAttempts: 4, firstBackoff: 5, maximumBackoff: 8, timeout: 2, giveUpAfter: 40)
        let delivery = AlertDelivery(url: try WebhookURL("http://127.0.0.1:\(port)/hook"), policy: policy, clock: clock, logger: quietLogger)
        await delivery.send([Self.alert(1)])
        await delivery.flush(within: 3600)
        #expect(await delivery.pending == 0)
        // Four quick tries (backoff 5, then doubled up to 8: at 0, 5, 13, 21), then every 8 s while
        // within 40 s of the first (29, 37).
        #expect(clock.now().seconds == Fixture.now + 37, "\(clock.now().seconds - Fixture.now)")
    }

    /// A receiver down for longer than the quick tries (a redeploy) still gets the alert when it is
    /// back: before, the alert was dropped after 8 tries (about two minutes) and the account that
    /// needed a person was not reported again for a day.
    @Test func aReceiverBackAfterAnOutageStillGetsTheAlert() async throws {
        let receiver = WebhookReceiver(statuses: [503, 503, 503, 503, 503, 503, 200])
        let port = await receiver.start()
        let clock = FixedClock(Fixture.now)
        let remembered = Mutex<[String]>([])
        var alert = Self.alert(1)
        alert.memoryKeys = ["account:acct-1:not_logged_in"]
        let policy = AlertDelivery.Policy(maximumAttempts: 3, firstBackoff: 1, maximumBackoff: 60)
        let delivery = AlertDelivery(url: try WebhookURL("http://127.0.0.1:\(port)/hook"), policy: policy, clock: clock, logger: quietLogger,
                                     onDelivered: { keys, _ in remembered.withLock { $0 += keys } })
        await delivery.send([alert])
        await delivery.flush(within: 60)
        await receiver.stop()
        #expect(receiver.requests.count == 7)
        #expect(remembered.withLock { $0 } == ["account:acct-1:not_logged_in"])
        // 1 + 2 quick, then 4, 8, 16, 32 as the backoff grows to its ceiling.
        #expect(clock.now().seconds == Fixture.now + 63, "\(clock.now().seconds - Fixture.now)")
    }

    /// An alert being retried while newer ones push it out of a full queue stops being tried: the
    /// newer ones go next, not after a day of tries of the old one.
    @Test func anAlertPushedOutWhileRetriedIsTriedNoMore() async throws {
        let transport = RefusingTransport(refusing: "acct-1")
        let policy = AlertDelivery.Policy(maximumQueued: 1, maximumAttempts: 1, firstBackoff: 1)
        let delivery = AlertDelivery(url: try WebhookURL("http://127.0.0.1:1/hook"), policy: policy, transport: transport,
                                     clock: FixedClock(Fixture.now), logger: quietLogger)
        transport.duringFirstRefusal { await delivery.send([Self.alert(2)]) }
        await delivery.send([Self.alert(1)])
        await delivery.flush(within: 60)
        #expect(transport.accounts == ["acct-1", "acct-2"])
        #expect(await delivery.pending == 0)
    }

    /// A receiver that stays behind: the queue keeps the newest `maximumQueued` alerts.
    @Test func aFullQueueLetsTheOldestGo() async throws {
        let gate = GatedTransport()
        let policy = AlertDelivery.Policy(maximumQueued: 2)
        let delivery = AlertDelivery(url: try WebhookURL("http://127.0.0.1:1/hook"), policy: policy, transport: gate, clock: FixedClock(Fixture.now),
                                     logger: quietLogger)
        await delivery.send([Self.alert(1)])
        await gate.waitForFirstPost()
        await delivery.send([Self.alert(2), Self.alert(3), Self.alert(4)])
        #expect(await delivery.pending == 2)
        gate.open()
        await delivery.flush(within: 60)
        // The one in flight goes out; of those queued behind it only the two newest.
        #expect(gate.accounts == ["acct-1", "acct-3", "acct-4"])
    }

    /// https: the certificate is checked (a receiver whose CA is not trusted gets nothing), and
    /// with its CA given the alert goes through. The receiver is Python's own TLS server.
    @Test func anHTTPSReceiverIsReachedOnlyWithItsCertificateTrusted() async throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/webhook-tls")
        let certificate = fixtures.appendingPathComponent("webhook-test.crt").path
        let key = fixtures.appendingPathComponent("webhook-test.key").path
        let script = """
            import http.server, json, ssl, sys
            class Hook(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                    print(json.dumps({"path": self.path, "body": body.decode()}), flush=True)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                def log_message(self, *args):
                    pass
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(sys.argv[1], sys.argv[2])
            # Each connection's handshake in its own thread: a client that gives up mid-way holds up no other.
            server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, certificate, key]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // SIGKILL: a process that trapped SIGTERM (service-lifecycle tests do) leaves it ignored in its children.
        defer { kill(process.processIdentifier, SIGKILL) }
        let port = try #require(await output.fileHandleForReading.line().flatMap { Int($0) }, "the receiver did not start")

        let untrusted = AlertDelivery(url: try WebhookURL("https://localhost:\(port)/tls-hook"), policy: .init(maximumAttempts: 2, timeout: 5, giveUpAfter: 0),
                                      clock: FixedClock(Fixture.now), logger: quietLogger)
        await untrusted.send([Self.alert(1)])
        await untrusted.flush(within: 30)


        let trusted = AlertDelivery(url: try WebhookURL("https://localhost:\(port)/tls-hook"), policy: .init(timeout: 5),
                                    transport: NIOWebhookTransport(extraTrustRoots: [certificate]), clock: FixedClock(Fixture.now), logger: quietLogger)
        await trusted.send([Self.alert(2)])
        await trusted.flush(within: 30)
        // What the receiver printed: one line per request it took.
        let handle = output.fileHandleForReading
        let printed = await offThePool { handle.availableData }
        let line = try #require(String(decoding: printed, as: UTF8.self).split(separator: "\n").first.map(String.init), "the trusted alert did not arrive")
        let received = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(received["path"] == "/tls-hook")
        let alert = try JSONDecoder().decode(Alert.self, from: Data((received["body"] ?? "").utf8))
        #expect(alert.account == "acct-2", "only the alert sent with the CA trusted arrives")
        kill(process.processIdentifier, SIGKILL)
        await process.exited()
    }

    @Test func webhookURLsAreCheckedAndNeverShownWhole() throws {
        let url = try WebhookURL("https://hooks.slack.com/services/T0/B0/XyZsecret")
        #expect(url.isTLS && url.port == 443 && url.target == "/services/T0/B0/XyZsecret")
        #expect(url.redacted == "https://hooks.slack.com:443/…" && "\(url)" == url.redacted)
        #expect(try WebhookURL("http://[::1]:8080").target == "/")
        #expect(throws: WebhookURL.ParseError.self) { try WebhookURL("ftp://example.com/x") }
        #expect(throws: WebhookURL.ParseError.self) { try WebhookURL("https://user:pw@example.com/x") }
        #expect(throws: WebhookURL.ParseError.self) { try WebhookURL("not a url") }
        #expect(throws: WebhookURL.ParseError.self) { try WebhookURL("https:///path") }
    }
}

/// Holds every post until opened (a receiver that is behind), recording the accounts in order.
final class GatedTransport: WebhookTransport {
    private struct State {
        var isOpen = false
        var accounts: [String] = []
        var waiting: [CheckedContinuation<Void, Never>] = []
        var firstPost: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    var accounts: [String] { state.withLock { $0.accounts } }

    func post(_ body: [UInt8], headers: [(String, String)], to url: WebhookURL, timeout: Double) async throws -> Int {
        let account = (try? JSONDecoder().decode(Alert.self, from: Data(body)).account) ?? nil
        await withCheckedContinuation { continuation in
            let (go, first) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                state.accounts.append(account ?? "-")
                defer { state.firstPost = [] }
                if state.isOpen { return (true, state.firstPost) }
                state.waiting.append(continuation)
                return (false, state.firstPost)
            }
            for waiter in first { waiter.resume() }
            if go { continuation.resume() }
        }
        return 200
    }

    func waitForFirstPost() async {
        await withCheckedContinuation { continuation in
            let posted = state.withLock { state in
                if !state.accounts.isEmpty { return true }
                state.firstPost.append(continuation)
                return false
            }
            if posted { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state in
            state.isOpen = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in waiting { waiter.resume() }
    }
}


/// Answers 503 to one account's alerts and 200 to the rest; runs a step during the first refusal.
final class RefusingTransport: WebhookTransport {
    private let refused: String
    private let state = Mutex<(accounts: [String], step: (@Sendable () async -> Void)?)>(([], nil))

    init(refusing account: String) { refused = account }

    var accounts: [String] { state.withLock { $0.accounts } }

    func duringFirstRefusal(_ step: @escaping @Sendable () async -> Void) { state.withLock { $0.step = step } }

    func post(_ body: [UInt8], headers: [(String, String)], to url: WebhookURL, timeout: Double) async throws -> Int {
        let account = ((try? JSONDecoder().decode(Alert.self, from: Data(body)).account) ?? nil) ?? "-"
        let step = state.withLock { state -> (@Sendable () async -> Void)? in
            state.accounts.append(account)
            guard account == refused else { return nil }
            defer { state.step = nil }
            return state.step
        }
        await step?()
        return account == refused ? 503 : 200
    }
}
