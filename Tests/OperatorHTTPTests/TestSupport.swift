import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import OperatorHTTP
import SessionManager
import Synchronization
import Workers

/// A clock that stands still unless moved: every time the server prints is exact.
final class FixedClock: TelegramClock {
    private let current: Mutex<Double>

    init(_ now: Double) { current = Mutex(now) }

    func now() -> UnixTime { UnixTime(seconds: current.withLock { $0 }) }
    func advance(by seconds: Double) { current.withLock { $0 += seconds } }

    /// Moves the clock instead of waiting, so nothing here waits for time to pass.
    func sleep(for seconds: Double) async throws {
        advance(by: seconds)
        try Task.checkCancellation()
    }
}

let quietLogger: Logger = {
    var logger = Logger(label: "operator-http-tests")
    logger.logLevel = .critical
    return logger
}()

/// A real store and a real queue in a temporary folder, filled as an operator would find them:
/// two logged-in accounts (one whose id is a phone number, marked revoked), a flood wait recorded
/// through the ledger, and jobs completed, retried, deferred, dead, queued and running.
struct Fixture {
    static let now = 1_800_000_000.0
    /// An account id that is a phone number: it must never appear unmasked.
    static let phoneAccount: AccountID = "+79991234567"
    static let phoneDigits = "79991234567"
    static let maskedPhone = "+•••••••••67#6d58"
    static let floodMethod = "messages.sendMessage"
    static let floodSeconds = 1800.0

    let folder: URL
    let store: SQLiteSessionStore
    let queue: SQLiteJobQueue
    let clock: FixedClock
    /// Unique per fixture, so counters in the process-wide registry are this test's alone.
    let account: AccountID
    let deadJob: JobID

    static func make(tag: String = String(UUID().uuidString.filter(\.isLetter).prefix(8)).lowercased()) async throws -> Fixture {
        // Before any metric is made, as `tgsm run` does: the ledger's counters then reach /metrics.
        OperatorMetrics.bootstrap()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("operator-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try SQLiteSessionStore.open(directory: folder.path)
        let queue = try SQLiteJobQueue.open(path: folder.appendingPathComponent("jobs.sqlite").path)
        let clock = FixedClock(now)
        let account = AccountID("ops-\(tag)")
        let now = UnixTime(seconds: now)

        for (index, id) in [account, phoneAccount].enumerated() {
            let key = try AuthKey((0..<256).map { UInt8(truncatingIfNeeded: $0 * (index + 3) + 1) })
            _ = try await store.saveSession(
                SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key, isAuthorized: true)], userID: 1000 + Int64(index)),
                account: id, fence: nil)
        }
        try await store.setStatus(AccountStatus(state: .revoked, since: now + -300, cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: phoneAccount)

        // The flood wait as the stack records it when Telegram answers FLOOD_WAIT: through the ledger.
        let ledger = FloodLedger(account: account, store: store, clock: clock, logger: quietLogger)
        await ledger.record(FloodWait(account: account, method: floodMethod, kind: .floodWait, recordedAt: now + -120, until: now + floodSeconds))

        func enqueue(_ name: String) async throws -> JobID {
            try await queue.enqueue(try NewJob(kind: "resolve", account: account, json: ["username": name], maxAttempts: 2), now: now + -600).id
        }
        func claim() async throws -> ClaimedJob {
            let claimed = try await queue.claim(
                ClaimRequest(accounts: [account], limit: 1, perAccountLimit: 10, owner: "test", leaseSeconds: 60), now: now + -500)
            guard let first = claimed.first else { throw FixtureError.nothingClaimed }
            return first
        }
        // Claims take the oldest first: enqueue and claim one at a time.
        _ = try await enqueue("done")
        try await queue.complete(try await claim().claim, result: nil, now: now + -400)
        _ = try await enqueue("flaky")
        try await queue.retry(try await claim().claim, error: "TGSM-NET-002: no answer in time", retryAt: now + 30, now: now + -300)
        _ = try await enqueue("limited")
        try await queue.deferJob(try await claim().claim, until: now + floodSeconds, reason: "FLOOD_WAIT_1800 on contacts.resolveUsername", now: now + -200)
        let dead = try await enqueue("bad")
        let deadClaim = try await claim()
        try await queue.retry(deadClaim.claim, error: "USERNAME_INVALID for \(phoneAccount) <script>alert(1)</script>", retryAt: nil, now: now + -100)
        _ = try await enqueue("running")
        _ = try await claim()
        _ = try await enqueue("waiting")
        return Fixture(folder: folder, store: store, queue: queue, clock: clock, account: account, deadJob: dead)
    }

    /// The views wait up to 30 s for the store (3 s in production): with every suite starting at
    /// once on two cores, a read of this test's own store took longer, and /health answered
    /// "the store could not be read" with no accounts.
    func server(_ configuration: OperatorHTTPConfiguration, live: OperatorHTTPServer.LiveHealth? = nil,
                claimFailure: (@Sendable () -> ClaimFailure?)? = nil) throws -> OperatorHTTPServer {
        var patient = configuration
        patient.storeTimeout = 30
        return try OperatorHTTPServer(configuration: patient, store: store, queue: queue, liveHealth: live, claimFailure: claimFailure,
                                      clock: clock, logger: quietLogger)
    }

    /// The live view of a process that runs `account` and had a success a minute ago.
    func healthyLive() -> OperatorHTTPServer.LiveHealth {
        let account = account
        let lastSuccess = UnixTime(seconds: Fixture.now - 60)
        return {
            [account: HealthSnapshot(account: account, state: .healthy, lastSuccess: lastSuccess, consecutiveFailures: 0)]
        }
    }

    func remove() {
        try? store.close()
        try? FileManager.default.removeItem(at: folder)
    }
}

enum FixtureError: Error { case nothingClaimed, notHTTP }

/// Runs `server` in a task for the length of `body`, then cancels it and waits for it to end.
func withServer<T: Sendable>(_ server: OperatorHTTPServer, _ body: (Int) async throws -> T) async throws -> T {
    let task = Task { try await server.run() }
    do {
        let port = try await server.listeningPort()
        let result = try await body(port)
        task.cancel()
        _ = await task.result
        return result
    } catch {
        task.cancel()
        _ = await task.result
        throw error
    }
}

struct HTTPResult {
    var status: Int
    var headers: [String: String]
    var body: String
}

/// A GET over loopback, as a browser or Prometheus would send it.
func get(_ port: Int, _ path: String, bearer: String? = nil) async throws -> HTTPResult {
    guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else { throw FixtureError.notHTTP }
    var request = URLRequest(url: url)
    request.timeoutInterval = 30
    if let bearer { request.setValue("Bearer \(bearer)", forHTTPHeaderField: "Authorization") }
    let (data, response) = try await URLSession.shared.data(for: request)
    guard let http = response as? HTTPURLResponse else { throw FixtureError.notHTTP }
    var headers: [String: String] = [:]
    for (key, value) in http.allHeaderFields {
        if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
    }
    return HTTPResult(status: http.statusCode, headers: headers, body: String(decoding: data, as: UTF8.self))
}

/// One sample of the Prometheus text format: `name{label="value",...} number`.
struct PrometheusSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double
}

enum PrometheusTextError: Error, CustomStringConvertible {
    case malformed(line: String)
    var description: String {
        switch self { case .malformed(let line): "not a Prometheus sample line: \(line)" }
    }
}

/// Parses the text exposition format (0.0.4): comments skipped, label values unescaped.
func parsePrometheus(_ text: String) throws -> [PrometheusSample] {
    var samples: [PrometheusSample] = []
    for rawLine in text.split(separator: "\n") {
        let line = String(rawLine)
        if line.hasPrefix("#") || line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
        var name = ""
        var labels: [String: String] = [:]
        var rest = Substring(line)
        if let brace = line.firstIndex(of: "{") {
            name = String(line[..<brace])
            var index = line.index(after: brace)
            while index < line.endIndex, line[index] != "}" {
                guard let equals = line[index...].firstIndex(of: "="), line.index(after: equals) < line.endIndex,
                      line[line.index(after: equals)] == "\"" else { throw PrometheusTextError.malformed(line: line) }
                let key = String(line[index..<equals])
                var cursor = line.index(equals, offsetBy: 2)
                var value = ""
                while cursor < line.endIndex, line[cursor] != "\"" {
                    if line[cursor] == "\\", line.index(after: cursor) < line.endIndex {
                        cursor = line.index(after: cursor)
                        value.append(line[cursor] == "n" ? "\n" : line[cursor])
                    } else {
                        value.append(line[cursor])
                    }
                    cursor = line.index(after: cursor)
                }
                guard cursor < line.endIndex else { throw PrometheusTextError.malformed(line: line) }
                labels[key] = value
                index = line.index(after: cursor)
                if index < line.endIndex, line[index] == "," { index = line.index(after: index) }
            }
            guard index < line.endIndex else { throw PrometheusTextError.malformed(line: line) }
            rest = line[line.index(after: index)...]
        } else {
            guard let space = line.firstIndex(of: " ") else { throw PrometheusTextError.malformed(line: line) }
            name = String(line[..<space])
            rest = line[space...]
        }
        let fields = rest.split(separator: " ")
        guard let first = fields.first else { throw PrometheusTextError.malformed(line: line) }
        let number: Double? = switch first {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(first)
        }
        guard let value = number else { throw PrometheusTextError.malformed(line: line) }
        samples.append(PrometheusSample(name: name, labels: labels, value: value))
    }
    return samples
}

extension Array where Element == PrometheusSample {
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        first { $0.name == name && $0.labels == labels }?.value
    }
}

