// Session manager benchmark: what the middleware stack (metrics, health, flood verdicts, terminal
// guard, retry, breaker, flood ledger, send-code guard, rate gate, peer cache) adds to one `invoke`.
//
// "production stack" is the one `AccountRuntime` builds for `tgsm run`: every middleware including
// the peer cache, over the SQLite store (a real file on disk, under .build unless STOREBENCH_DIR
// says otherwise, at the production default synchronous=FULL), with the account's lease, its
// session storage and its peer cache on that store. "in-memory stores" is the same middlewares
// without the peer cache over the in-memory ledger and status stores (the row this bench had
// before): the difference between the two is what the store and the peer cache cost per call.
//
// 1. Against a no-op invoker (answers at once, in process): ns per call bare vs through each stack,
//    i.e. the stacks' own CPU cost with nothing else in the way.
// 2. Against the test DC (in a child process, loopback TCP, bot login): µs per sequential
//    help.getNearestDc. The production stack here is an `AccountRuntime` itself (lease, heartbeat,
//    its own client with the store as session storage); bare is that runtime's client, and the
//    in-memory stack wraps the same client. The three alternate round by round.
//
// The rate gate is given budgets far above the call rate here, so its bookkeeping is measured but
// it never sleeps (production's default budget for `other` would pace 2000 sequential calls).
// Load average is printed before and after: compare the ratios.
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
import BenchSupport

let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
let environment = ProcessInfo.processInfo.environment
let noopCalls = Int(environment["NOOP_CALLS"] ?? "") ?? 1_000_000
let dcCalls = Int(environment["DC_CALLS"] ?? "") ?? 2000
let rounds = Int(environment["ROUNDS"] ?? "") ?? 5

if TestDCChild.isRequested { try await TestDCChild.serve(TestDCConfiguration(dcCount: 1, controlEnabled: false, logger: quiet)) }

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

/// The stack with in-memory ledger and status stores and no peer cache (this bench's former row).
func stack(around client: any TelegramInvoking) -> SessionStack {
    SessionStack(
        account: "bench", client: client, ledgerStore: InMemoryFloodLedgerStore(), statuses: InMemoryAccountStatusStore(),
        configuration: SessionStack.Configuration(rateGate: benchPolicy), clock: SystemClock(), random: SystemRandomSource(), logger: quiet)
}

// On disk, not /tmp: /tmp is often tmpfs, where an fsync costs nothing (as StoreBench does).
let storeBase = environment["STOREBENCH_DIR"] ?? FileManager.default.currentDirectoryPath + "/.build"
let storeDirectory = storeBase + "/sessionmanagerbench-\(getpid())"
defer { try? FileManager.default.removeItem(atPath: storeDirectory) }
let store = try SQLiteSessionStore.open(directory: storeDirectory, options: SQLiteStoreOptions(logger: quiet))
print("store: \(store.path), synchronous level \(try store.synchronousLevel()) (2 = FULL, the production default)")

/// The stack exactly as `AccountRuntime.start` builds it over `store` (with the lease it holds),
/// around any invoker: for the no-op case, where no runtime can run.
func productionStack(around client: any TelegramInvoking, account: AccountID) async throws -> SessionStack {
    let now = SystemClock().now()
    let key = try AuthKey((0..<256).map { UInt8(truncatingIfNeeded: $0 &* 3) })
    try await store.saveSession(SessionState(homeDC: 1, dcs: [1: DCSessionState(authKey: key, isAuthorized: true)], userID: 1), account: account, fence: nil)
    let lease = try await store.acquireLease(account: account, holder: .current(), now: now, ttl: 3600, holderIsDead: { _ in false })
    let storage = AccountSessionStorage(store: store, account: account, lease: lease)
    let peers = PeerCache(account: account, store: store, fence: lease.token, clock: SystemClock(), logger: quiet)
    return SessionStack(account: account, client: client, ledgerStore: store, statuses: store, storage: storage, peerCache: peers,
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
let noopProduction = try await productionStack(around: noop, account: "bench-noop")
_ = try await nanosecondsPerCall(noop, calls: noopCalls / 10)
_ = try await nanosecondsPerCall(noopStack.invoker, calls: noopCalls / 10)
_ = try await nanosecondsPerCall(noopProduction.invoker, calls: noopCalls / 10)
var bareNoop: [Double] = []
var stackNoop: [Double] = []
var productionNoop: [Double] = []
for _ in 0..<rounds {
    bareNoop.append(try await nanosecondsPerCall(noop, calls: noopCalls))
    stackNoop.append(try await nanosecondsPerCall(noopStack.invoker, calls: noopCalls))
    productionNoop.append(try await nanosecondsPerCall(noopProduction.invoker, calls: noopCalls))
}
let noopBare = median(bareNoop)
let noopFull = median(stackNoop)
let noopProductionFull = median(productionNoop)
print(String(format: "no-op invoker:  bare %.0f ns/call, production stack %.0f ns/call, stack overhead %.0f ns/call (%d calls x %d rounds, medians)",
             noopBare, noopProductionFull, noopProductionFull - noopBare, noopCalls, rounds))
print(String(format: "no-op invoker:  in-memory stores, no peer cache: stack %.0f ns/call, overhead %.0f ns/call",
             noopFull, noopFull - noopBare))

// MARK: - 2. The test DC

let server = try TestDCChild.spawn()
let configuration = TelegramClientConfiguration(
    apiID: 1, apiHash: "bench", serverKeys: [try RSAPublicKey(pem: server.publicKeyPEM)], dcTable: DCTable([1: [DCAddress(host: server.host, port: server.port)]]),
    initialDC: 1, defaultTimeout: 60, fetchesConfigOnConnect: false)
// The account as `tgsm run` runs it: lease, store-backed session, identity, the full stack. Its
// first start finds no session (so no stop on that verdict), then the bot logs in through it.
let runtime = AccountRuntime(account: "bench", store: store, client: configuration,
                             configuration: AccountRuntimeConfiguration(stack: SessionStack.Configuration(rateGate: benchPolicy),
                                                                        keepAlive: nil, stopsOnTerminal: false),
                             environment: AccountRuntimeEnvironment(logger: quiet))
_ = try await runtime.start()
_ = try await TelegramLogin(invoker: runtime.invoker, apiID: 1, apiHash: "bench").signInBot(token: "1005:test-bot-token")
guard let client = await runtime.client else {
    print("the account runtime did not start a client")
    exit(1)
}
let production = runtime.invoker
let dcStack = stack(around: client)
_ = try await nanosecondsPerCall(client, calls: 300)
_ = try await nanosecondsPerCall(production, calls: 300)
_ = try await nanosecondsPerCall(dcStack.invoker, calls: 300)
var bareDC: [Double] = []
var productionDC: [Double] = []
var stackDC: [Double] = []
for _ in 0..<rounds {
    bareDC.append(try await nanosecondsPerCall(client, calls: dcCalls))
    productionDC.append(try await nanosecondsPerCall(production, calls: dcCalls))
    stackDC.append(try await nanosecondsPerCall(dcStack.invoker, calls: dcCalls))
}
let dcBare = median(bareDC)
let dcProduction = median(productionDC)
let dcFull = median(stackDC)
print(String(format: "test DC:        bare client %.1f us/call, production stack %.1f us/call, stack overhead %.1f us/call = %.1f%% (%d calls x %d rounds, medians)",
             dcBare / 1000, dcProduction / 1000, (dcProduction - dcBare) / 1000, (dcProduction - dcBare) / dcBare * 100, dcCalls, rounds))
print(String(format: "test DC:        in-memory stores, no peer cache: stack %.1f us/call, overhead %.1f us/call = %.1f%%",
             dcFull / 1000, (dcFull - dcBare) / 1000, (dcFull - dcBare) / dcBare * 100))
func listed(_ values: [Double]) -> String { values.map { String(format: "%.1f", $0 / 1000) }.joined(separator: " ") }
print("rounds (us/call) bare: \(listed(bareDC)); production: \(listed(productionDC)); in-memory: \(listed(stackDC))")
await runtime.stop()
try store.close()
server.stop()
print("load average after: \(loadAverage())")
