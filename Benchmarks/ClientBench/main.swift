// Client benchmark: round trips per second and p50/p99 latency of help.getNearestDc (1 and 64 in
// flight) and a 100-message messages.getHistory, ours vs Telethon 1.45 against the same test DC in
// one run; then resident memory per idle connected client after each logged in and fetched a
// 100-message history (ours: 1,000 in one process; Telethon: `TELETHON_CLIENTS` in one process). The test DC runs in a child process (this executable with
// `serve`), so neither side's memory figure includes the server.
//
// usage: ClientBench [python]   (run in release: scripts/bench-client)
import Foundation
import Logging
import MTProtoCrypto
import MTProtoNIO
import TLSchema
import MTProtoClient
import TestDC
import BenchSupport

#if canImport(Glibc)
import Glibc
#endif

/// glibc keeps freed heap pages; trimming before reading RSS counts only what is live.
@_silgen_name("malloc_trim") func trimHeap(_ pad: Int) -> Int32

let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
let environment = ProcessInfo.processInfo.environment
let sequentialCalls = Int(environment["CALLS"] ?? "") ?? 3000
let parallelCalls = Int(environment["PARALLEL_CALLS"] ?? "") ?? 12800
let historyCalls = Int(environment["HISTORY_CALLS"] ?? "") ?? 1000
/// NO_MEMORY=1 runs the round trips only (no idle clients, no capacity row): for the extra
/// configurations scripts/bench-client runs after the full one.
let noMemory = environment["NO_MEMORY"] == "1"
let idleClients = noMemory ? 0 : Int(environment["IDLE_CLIENTS"] ?? "") ?? 1000
let telethonClients = noMemory ? 0 : Int(environment["TELETHON_CLIENTS"] ?? "") ?? 200
let botToken = "1005:test-bot-token"
/// ONLY_MEMORY=1 leaves out Telethon and the capacity row, to iterate on the memory figure in
/// seconds. Our throughput rows still run: the heap they leave behind is part of the memory
/// figure's starting point, so the figure stays comparable with a full run.
let onlyMemory = environment["ONLY_MEMORY"] == "1"
/// MALLOC_STATS=1 also prints the live heap bytes per idle client (glibc's mallinfo2), which the
/// free heap left by earlier phases does not hide as it does in the RSS delta.
let mallocStats = environment["MALLOC_STATS"] == "1"
/// malloc.h is not in the Glibc module; malloc_info writes the allocator's state as XML.
@_silgen_name("malloc_info") func mallocInfo(_ options: Int32, _ stream: UnsafeMutablePointer<FILE>) -> Int32
/// Bytes the heap took from the system minus its free chunks (the last <total>/<system> lines of
/// malloc_info cover every arena).
func liveHeapBytes() -> Int {
    var buffer: UnsafeMutablePointer<CChar>?
    var size = 0
    guard let stream = open_memstream(&buffer, &size) else { return 0 }
    _ = mallocInfo(0, stream)
    fclose(stream)
    guard let buffer else { return 0 }
    defer { free(buffer) }
    var free = 0
    var system = 0
    var mmapped = 0
    // The lines after the last </heap> are the totals of all arenas.
    let text = String(cString: buffer)
    guard let tail = text.components(separatedBy: "</heap>").last else { return 0 }
    func attribute(_ name: String, in line: Substring) -> Int {
        guard let range = line.range(of: name + "=\"") else { return 0 }
        return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }
    for line in tail.split(separator: "\n") {
        if line.contains("<total type=\"fast\"") || line.contains("<total type=\"rest\"") { free += attribute("size", in: line) }
        if line.contains("<total type=\"mmap\"") { mmapped += attribute("size", in: line) }
        if line.contains("<system type=\"current\"") { system += attribute("size", in: line) }
    }
    return system - free + mmapped
}

// MARK: - CPU placement

@_silgen_name("sched_setaffinity") func setAffinity(_ pid: Int32, _ size: Int, _ mask: UnsafeRawPointer) -> Int32

/// Pins every thread of this process to the CPUs in `list` ("0", "1", "0,1"); threads made later
/// inherit it. CLIENT_CPUS pins this process (and Telethon, its child), SERVER_CPUS the test DC:
/// on this VM a wake-up across CPUs costs tens of microseconds (docs/BENCHMARKS.md), so where
/// each side runs decides the 1-in-flight latency more than either side's code does.
func pin(toCPUs list: String) {
    var mask = [UInt8](repeating: 0, count: 128)
    for item in list.split(separator: ",") {
        guard let cpu = Int(item), cpu >= 0, cpu < mask.count * 8 else { continue }
        mask[cpu / 8] |= UInt8(1) << UInt8(cpu % 8)
    }
    let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    for thread in threads.compactMap({ Int32($0) }) where setAffinity(thread, mask.count, mask) != 0 {
        print("could not pin thread \(thread) to CPUs \(list)")
    }
}
let clientCPUs = environment["CLIENT_CPUS"]
let serverCPUs = environment["SERVER_CPUS"]

// MARK: - Server mode

/// A world with a 150-message channel, so getHistory(limit: 100) returns a full page.
func benchWorld() -> World {
    var world = World.default
    let base: Int32 = 1_700_000_000
    world.channels.append(World.Channel(
        id: 3001, accessHash: 0x3001, title: "Bench", username: "bench", broadcast: true, creatorID: 1001,
        messages: (1...150).map { World.Message(id: Int32($0), date: base + Int32($0), text: "bench message number \($0) with some text") }))
    return world
}

if TestDCChild.isRequested {
    if let serverCPUs { pin(toCPUs: serverCPUs) }
    var configuration = TestDCConfiguration(dcCount: 1, controlEnabled: false, world: benchWorld(), logger: quiet)
    // ANSWERS_APART=1: each answer in a packet of its own (the test DC before 2026-12-04), where a
    // client pays its per-packet cost on every call; by default answers leave together, as Telegram's do.
    configuration.answersTogether = environment["ANSWERS_APART"] != "1"
    try await TestDCChild.serve(configuration)
}

// MARK: - Measurements

func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
func processCPUSeconds(_ pid: String) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // After the command: state is field 3, utime 14 and stime 15 (1-based, as in proc(5)).
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The whole machine's CPU ticks so far from /proc/stat: those the hypervisor gave to other guests
/// (steal) and all of them. On a shared VM a phase's figures move with the share stolen during it.
func hostCPUTicks() -> (stolen: Double, total: Double) {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
          let line = text.split(separator: "\n").first else { return (0, 0) }
    // user nice system idle iowait irq softirq steal (guest time is counted in user already).
    let fields = line.split(separator: " ").dropFirst().prefix(8).compactMap { Double($0) }
    guard fields.count == 8 else { return (0, 0) }
    return (fields[7], fields.reduce(0, +))
}

func stolenShare(since before: (stolen: Double, total: Double)) -> Double {
    let after = hostCPUTicks()
    let total = after.total - before.total
    return total > 0 ? (after.stolen - before.stolen) / total : 0
}

struct Figures {
    var name: String
    var calls: Int
    var seconds: Double
    var latencies: [Double]
    /// CPU seconds this process (client and benchmark tasks) and the test DC used in the phase.
    var clientCPU = 0.0
    var serverCPU = 0.0
    /// The share of the machine's CPU time the hypervisor took during the phase.
    var stolen = 0.0

    var perSecond: Double { Double(calls) / seconds }
    func percentile(_ p: Double) -> Double {
        let sorted = latencies.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
}

/// TIMELINE=1 also prints, for each phase with many calls in flight, the calls completed in each
/// 0.1 s: on a 2-vCPU VM the rate within one phase swings by a factor of two as the scheduler
/// places the four busy threads (docs/BENCHMARKS.md), which a phase's average hides.
let printsTimeline = environment["TIMELINE"] == "1"

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

// MARK: - Run

let python = CommandLine.arguments.dropFirst().first ?? ".build/venv/bin/python"
if let clientCPUs { pin(toCPUs: clientCPUs) }
let server = try TestDCChild.spawn()
/// Each phase reports both sides' CPU per call.
let serverPID = String(server.pid)

func measure(_ name: String, calls: Int, inFlight: Int, _ body: @escaping @Sendable () async throws -> Void) async throws -> Figures {
    let perWorker = calls / inFlight
    let clientCPUBefore = processCPUSeconds("self")
    let hostBefore = hostCPUTicks()
    let serverCPUBefore = processCPUSeconds(serverPID)
    let start = now()
    let (latencies, ends) = try await withThrowingTaskGroup(of: (latencies: [Double], ends: [Double]).self) { group in
        for _ in 0..<inFlight {
            group.addTask {
                var mine: [Double] = []
                var ends: [Double] = []
                mine.reserveCapacity(perWorker)
                if printsTimeline { ends.reserveCapacity(perWorker) }
                for _ in 0..<perWorker {
                    let begin = now()
                    try await body()
                    let end = now()
                    mine.append(end - begin)
                    if printsTimeline { ends.append(end) }
                }
                return (mine, ends)
            }
        }
        var all: [Double] = []
        var ends: [Double] = []
        for try await part in group {
            all += part.latencies
            ends += part.ends
        }
        return (all, ends)
    }
    let seconds = now() - start
    if printsTimeline, inFlight > 1 {
        var perTenth = [Int](repeating: 0, count: Int(seconds * 10) + 1)
        for end in ends { perTenth[min(perTenth.count - 1, max(0, Int((end - start) * 10)))] += 1 }
        print("\(name): thousands of calls per second in each 0.1 s: " + perTenth.map { String($0 / 100) }.joined(separator: " "))
    }
    return Figures(name: name, calls: perWorker * inFlight, seconds: seconds, latencies: latencies,
                   clientCPU: processCPUSeconds("self") - clientCPUBefore, serverCPU: processCPUSeconds(serverPID) - serverCPUBefore,
                   stolen: stolenShare(since: hostBefore))
}

let key = try RSAPublicKey(pem: server.publicKeyPEM)
let serverAddress = DCAddress(host: server.host, port: server.port)
func configuration() -> TelegramClientConfiguration {
    TelegramClientConfiguration(
        apiID: 1, apiHash: "bench", serverKeys: [key], dcTable: DCTable([1: [serverAddress]]), initialDC: 1,
        defaultTimeout: 60, fetchesConfigOnConnect: false)
}

let client = TelegramClient(configuration: configuration(), logger: quiet)
try await client.connect()
_ = try await TelegramLogin(client: client).signInBot(token: botToken)
let channel = Api.InputPeer.inputPeerChannel(.init(channelId: 3001, accessHash: 0x3001))
let history = Api.functions.messages.GetHistory(peer: channel, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 100, maxId: 0, minId: 0, hash: 0)
if case .channelMessages(let page) = try await client.invoke(history) {
    precondition(page.messages.count == 100, "getHistory returned \(page.messages.count) messages, not 100")
}
_ = try await measure("warm-up", calls: 200, inFlight: 8) { _ = try await client.invoke(Api.functions.help.GetNearestDc()) }

var ours: [Figures] = []
ours.append(try await measure("help.getNearestDc x1", calls: sequentialCalls, inFlight: 1) { _ = try await client.invoke(Api.functions.help.GetNearestDc()) })
ours.append(try await measure("help.getNearestDc x64", calls: parallelCalls, inFlight: 64) { _ = try await client.invoke(Api.functions.help.GetNearestDc()) })
ours.append(try await measure("messages.getHistory(100) x1", calls: historyCalls, inFlight: 1) { _ = try await client.invoke(history) })
// The same with the calling tasks on the client's event loop (`TelegramClient.taskExecutor`): the
// caller is resumed on the thread that read the answer. Compared with Telethon's same workload.
let onLoop = try await withTaskExecutorPreference(client.taskExecutor) {
    [
        try await measure("getNearestDc x1, caller on loop", calls: sequentialCalls, inFlight: 1) { _ = try await client.invoke(Api.functions.help.GetNearestDc()) },
        try await measure("getNearestDc x64, caller on loop", calls: parallelCalls, inFlight: 64) { _ = try await client.invoke(Api.functions.help.GetNearestDc()) },
        try await measure("getHistory(100) x1, caller on loop", calls: historyCalls, inFlight: 1) { _ = try await client.invoke(history) },
    ]
}
ours += onLoop
await client.close()

// Telethon against the same DC.
let pemFile = FileManager.default.temporaryDirectory.appendingPathComponent("clientbench-\(getpid()).pem")
var peerData = Data()
var peerResult: [String: Any]?
var telethonStolen = 0.0
if !onlyMemory {
    try server.publicKeyPEM.write(to: pemFile, atomically: true, encoding: .utf8)
    let hostBefore = hostCPUTicks()
    let peer = Process()
    peer.executableURL = URL(fileURLWithPath: python)
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("telethon_peer.py").path
    peer.arguments = [script, server.host, String(server.port), pemFile.path, botToken, String(sequentialCalls), String(parallelCalls), String(historyCalls), String(telethonClients)]
    let peerOut = Pipe()
    peer.standardOutput = peerOut
    try peer.run()
    peerData = peerOut.fileHandleForReading.readDataToEndOfFile()
    peer.waitUntilExit()
    peerResult = (try? JSONSerialization.jsonObject(with: peerData)) as? [String: Any]
    telethonStolen = stolenShare(since: hostBefore)
}

// Memory: 1,000 of ours in this process, idle and connected after each logged in and fetched a
// 100-message history (so the buffers a real page grows are counted).
let before = residentBytes()
let heapBefore = liveHeapBytes()
var idle: [TelegramClient] = []
var index = 0
while index < idleClients {
    let batch = min(50, idleClients - index)
    let made = (0..<batch).map { _ in TelegramClient(configuration: configuration(), logger: quiet) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for one in made {
            group.addTask {
                try await one.connect()
                _ = try await TelegramLogin(client: one).signInBot(token: botToken)
                _ = try await one.invoke(history)
            }
        }
        try await group.waitForAll()
    }
    idle += made
    index += batch
}
try await Task.sleep(for: .seconds(1))
_ = trimHeap(0)
let after = residentBytes()
let oursPerClient = Double(after - before) / Double(idleClients) / 1024
if mallocStats {
    print(String(format: "idle connected client live heap: %.2f KiB (malloc_info in use, delta / clients)",
                 Double(liveHeapBytes() - heapBefore) / Double(idleClients) / 1024))
}

// The test DC's capacity: every idle client calls at once (one call in flight each), and the
// server's CPU time (from /proc) gives requests per second per core of the server alone.
func serverCPUSeconds() -> Double { processCPUSeconds(serverPID) }
let capacityCallsPerClient = onlyMemory ? 0 : Int(environment["CAPACITY_CALLS"] ?? "") ?? 50
let cpuBefore = serverCPUSeconds()
let capacityStart = now()
try await withThrowingTaskGroup(of: Void.self) { group in
    for one in idle {
        group.addTask { for _ in 0..<capacityCallsPerClient { _ = try await one.invoke(Api.functions.help.GetNearestDc()) } }
    }
    try await group.waitForAll()
}
let capacitySeconds = now() - capacityStart
let capacityCalls = Double(capacityCallsPerClient * idle.count)
let serverSeconds = serverCPUSeconds() - cpuBefore
for one in idle { await one.close() }

// MARK: - Report

func ms(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1000) }
#if DEBUG
let buildKind = "DEBUG build: figures are not meaningful, run scripts/bench-client"
#else
let buildKind = "release build"
#endif
func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : String(repeating: " ", count: width - text.count) + text }
func number(_ value: Double) -> String { String(format: "%.0f", value) }
print("ClientBench: loopback, test DC in a child process (answers \(environment["ANSWERS_APART"] == "1" ? "each in a packet of its own" : "of one read together, as Telegram's")), "
      + "client on CPUs [\(clientCPUs ?? "any")], test DC on CPUs [\(serverCPUs ?? "any")], \(buildKind)")
print("workload".padding(toLength: 30, withPad: " ", startingAt: 0) + pad("ours rps", 10) + pad("p50 ms", 9) + pad("p99 ms", 9)
      + " |" + pad("telethon rps", 13) + pad("p50 ms", 9) + pad("p99 ms", 9) + " |" + pad("rps ratio", 10))
let peerRows = peerResult?["rows"] as? [[String: Any]] ?? []
for (offset, row) in ours.enumerated() {
    let peerOffset = offset % 3
    let theirs = peerOffset < peerRows.count ? peerRows[peerOffset] : [:]
    let theirRPS = theirs["rps"] as? Double ?? 0
    let ratio = theirRPS > 0 ? String(format: "%.2fx", row.perSecond / theirRPS) : "n/a"
    print(row.name.padding(toLength: 30, withPad: " ", startingAt: 0) + pad(number(row.perSecond), 10) + pad(ms(row.percentile(0.5)), 9)
          + pad(ms(row.percentile(0.99)), 9) + " |" + pad(number(theirRPS), 13) + pad(ms(theirs["p50"] as? Double ?? 0), 9)
          + pad(ms(theirs["p99"] as? Double ?? 0), 9) + " |" + pad(ratio, 10))
}
// Where a call's CPU goes: this process (client and the benchmark's tasks), the test DC, and
// Telethon's process in its own run of the same workload.
print("CPU per call, µs".padding(toLength: 30, withPad: " ", startingAt: 0) + pad("ours", 10) + pad("test DC", 9) + " |" + pad("telethon", 13) + " |" + pad("ratio", 10)
      + " |" + pad("host CPU stolen", 16))
for (offset, row) in ours.enumerated() {
    let theirs = offset % 3 < peerRows.count ? peerRows[offset % 3] : [:]
    let theirCPU = (theirs["cpu_per_call"] as? Double ?? 0) * 1e6
    let oursCPU = row.clientCPU / Double(row.calls) * 1e6
    print(row.name.padding(toLength: 30, withPad: " ", startingAt: 0) + pad(String(format: "%.1f", oursCPU), 10)
          + pad(String(format: "%.1f", row.serverCPU / Double(row.calls) * 1e6), 9) + " |" + pad(String(format: "%.1f", theirCPU), 13)
          + " |" + pad(oursCPU > 0 && theirCPU > 0 ? String(format: "%.2fx", theirCPU / oursCPU) : "n/a", 10)
          + " |" + pad(String(format: "%.0f%%", row.stolen * 100), 16))
}
if peerResult != nil {
    print(String(format: "host CPU stolen by the hypervisor (/proc/stat steal) during Telethon's run: %.0f%%", telethonStolen * 100))
}
let theirKiB = peerResult?["kib_per_client"] as? Double ?? 0
if !noMemory {
print(String(format: "idle connected client RSS: ours %.1f KiB (%d clients), telethon %.1f KiB (%d clients): ours is %.2fx telethon's",
             oursPerClient, idleClients, theirKiB, peerResult?["clients"] as? Int ?? 0, theirKiB > 0 ? oursPerClient / theirKiB : 0))
print(String(format: "test DC capacity: %.0f requests/s served to %d clients at once (1 in flight each, clients in the same 2 cores); server CPU %.1f s = %.0f requests per server CPU second",
             capacityCalls / capacitySeconds, idle.count, serverSeconds, serverSeconds > 0 ? capacityCalls / serverSeconds : 0))
}
if !onlyMemory, peerResult == nil { print("telethon peer failed: \(String(decoding: peerData, as: UTF8.self))") }
server.stop()
try? FileManager.default.removeItem(at: pemFile)
