// Session manager benchmark: what the standard middleware stack (health, terminal guard, retry,
// breaker, flood ledger, send-code guard, rate gate) adds to one `invoke`.
//
// 1. Against a no-op invoker (answers at once, in process): ns per call bare vs through the stack,
//    i.e. the stack's own CPU cost with nothing else in the way.
// 2. Against the test DC (in a child process, loopback TCP, bot login): µs per sequential
//    help.getNearestDc, bare client vs the same client through the stack, in alternating rounds.
//
// The rate gate is given budgets far above the call rate here, so its bookkeeping is measured but
// it never sleeps; the ledger and status stores are the in-memory ones (the SQLite store's cost
// is the store's own benchmark). Load average is printed before and after: compare the ratios.
//
// usage: SessionManagerBench   (run in release: scripts/bench-session-manager)
import Foundation
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import TL
import TLSchema
import TestDC

let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
let environment = ProcessInfo.processInfo.environment
let noopCalls = Int(environment["NOOP_CALLS"] ?? "") ?? 1_000_000
let dcCalls = Int(environment["DC_CALLS"] ?? "") ?? 2000
let rounds = Int(environment["ROUNDS"] ?? "") ?? 5

if CommandLine.arguments.dropFirst().first == "serve" {
    let cluster = try await TestDCServer.start(TestDCConfiguration(dcCount: 1, controlEnabled: false, logger: quiet))
    guard let entry = cluster.table.dcs.first else { exit(1) }
    let line: [String: Any] = ["host": entry.host, "port": entry.port, "pem": entry.publicKeyPEM]
    FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: line) + Data("\n".utf8))
    while let _ = readLine() {}
    exit(0)
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

func monotonicNanoseconds() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Answers every call at once with a fixed value: the cost of the seam itself.
struct NoopInvoker: TelegramInvoking {
    static let answer = Api.NearestDc.nearestDc(.init(country: "NL", thisDc: 1, nearestDc: 1))

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        guard let result = Self.answer as? Request.Result else { throw .undecodableResult(method: Request.tlName, reason: "bench") }
        return result
    }
}

let generous = TokenBucket.Rate(capacity: 1e12, refillPerSecond: 1e12)
let benchPolicy = RateGatePolicy(
    perAccount: Dictionary(uniqueKeysWithValues: MethodCategory.allCases.map { ($0, generous) }),
    perPeer: [.send: generous])

func stack(around client: any TelegramInvoking) -> SessionStack {
    SessionStack(
        account: "bench", client: client, ledgerStore: InMemoryFloodLedgerStore(), statuses: InMemoryAccountStatusStore(),
        configuration: SessionStack.Configuration(rateGate: benchPolicy), clock: SystemClock(), random: SystemRandomSource(), logger: quiet)
}

/// Nanoseconds per call of `calls` sequential help.getNearestDc through `invoker`.
func nanosecondsPerCall(_ invoker: any TelegramInvoking, calls: Int) async throws -> Double {
    let request = Api.functions.help.GetNearestDc()
    let start = monotonicNanoseconds()
    for _ in 0..<calls { _ = try await invoker.invoke(request) }
    return Double(monotonicNanoseconds() - start) / Double(calls)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
}

print("load average before: \(loadAverage())")

// MARK: - 1. No-op invoker

let noop = NoopInvoker()
let noopStack = stack(around: noop)
_ = try await nanosecondsPerCall(noop, calls: noopCalls / 10)
_ = try await nanosecondsPerCall(noopStack.invoker, calls: noopCalls / 10)
var bareNoop: [Double] = []
var stackNoop: [Double] = []
for _ in 0..<rounds {
    bareNoop.append(try await nanosecondsPerCall(noop, calls: noopCalls))
    stackNoop.append(try await nanosecondsPerCall(noopStack.invoker, calls: noopCalls))
}
let noopBare = median(bareNoop)
let noopFull = median(stackNoop)
print(String(format: "no-op invoker:  bare %.0f ns/call, full stack %.0f ns/call, stack overhead %.0f ns/call (%d calls x %d rounds, medians)",
             noopBare, noopFull, noopFull - noopBare, noopCalls, rounds))

// MARK: - 2. The test DC

let server = Process()
server.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
server.arguments = ["serve"]
let serverIn = Pipe()
let serverOut = Pipe()
server.standardInput = serverIn
server.standardOutput = serverOut
try server.run()
guard let firstLine = String(decoding: serverOut.fileHandleForReading.availableData, as: UTF8.self).split(separator: "\n").first,
      let info = try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any],
      let host = info["host"] as? String, let port = info["port"] as? Int, let pem = info["pem"] as? String
else {
    print("the test DC child did not report its address")
    exit(1)
}
let configuration = TelegramClientConfiguration(
    apiID: 1, apiHash: "bench", serverKeys: [try RSAPublicKey(pem: pem)], dcTable: DCTable([1: [DCAddress(host: host, port: port)]]),
    initialDC: 1, defaultTimeout: 60, fetchesConfigOnConnect: false)
let client = TelegramClient(configuration: configuration, logger: quiet)
try await client.connect()
_ = try await TelegramLogin(client: client).signInBot(token: "1005:test-bot-token")
let dcStack = stack(around: client)
_ = try await nanosecondsPerCall(client, calls: 300)
_ = try await nanosecondsPerCall(dcStack.invoker, calls: 300)
var bareDC: [Double] = []
var stackDC: [Double] = []
for _ in 0..<rounds {
    bareDC.append(try await nanosecondsPerCall(client, calls: dcCalls))
    stackDC.append(try await nanosecondsPerCall(dcStack.invoker, calls: dcCalls))
}
let dcBare = median(bareDC)
let dcFull = median(stackDC)
print(String(format: "test DC:        bare client %.1f us/call, full stack %.1f us/call, stack overhead %.1f us/call = %.1f%% (%d calls x %d rounds, medians)",
             dcBare / 1000, dcFull / 1000, (dcFull - dcBare) / 1000, (dcFull - dcBare) / dcBare * 100, dcCalls, rounds))
print("rounds (us/call) bare: \(bareDC.map { String(format: "%.1f", $0 / 1000) }.joined(separator: " ")); stack: \(stackDC.map { String(format: "%.1f", $0 / 1000) }.joined(separator: " "))")
await client.close()
try serverIn.fileHandleForWriting.close()
server.waitUntilExit()
print("load average after: \(loadAverage())")
