// Soak benchmark: one client kept busy for SOAK_MINUTES (default 10) against the test DC, with
// answered, cancelled and timed-out calls mixed, reporting resident memory (after malloc_trim)
// at the start, every minute and at the end, plus the connection's gauges (calls waiting, the
// session's tracked messages and requests). Flat figures mean nothing leaks per call. The test DC
// runs in a child process (this executable with `serve`), so the client's RSS is its own; the
// child's RSS is reported too.
//
// usage: SoakBench   (run in release: swift build -c release --product SoakBench)
import Foundation
import Logging
import MTProtoClient
import MTProtoCrypto
import MTProtoNIO
import TLSchema
import TestDC
import BenchSupport

#if canImport(Glibc)
import Glibc
#endif

@_silgen_name("malloc_trim") func trimHeap(_ pad: Int) -> Int32

let quiet = Logger(label: "soak") { _ in SwiftLogNoOpLogHandler() }
let environment = ProcessInfo.processInfo.environment
let minutes = Double(environment["SOAK_MINUTES"] ?? "") ?? 10
let workers = Int(environment["SOAK_WORKERS"] ?? "") ?? 8

if TestDCChild.isRequested { try await TestDCChild.serve(TestDCConfiguration(dcCount: 1, controlEnabled: false, logger: quiet)) }

func residentKiB(pid: String = "self") -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

let server = try TestDCChild.spawn()
let serverPID = server.pid

let configuration = TelegramClientConfiguration(
    apiID: 1, apiHash: "soak", serverKeys: [try RSAPublicKey(pem: server.publicKeyPEM)], dcTable: DCTable([1: [DCAddress(host: server.host, port: server.port)]]),
    initialDC: 1, defaultTimeout: 60, fetchesConfigOnConnect: false)
let client = TelegramClient(configuration: configuration, logger: quiet)
try await client.connect()

/// Outcome counters shared by the workers.
actor Tally {
    var answered = 0, cancelled = 0, timedOut = 0, other = 0
    func add(_ result: Result<Void, TelegramError>) {
        switch result {
        case .success: answered += 1
        case .failure(.cancelled): cancelled += 1
        case .failure(.timeout): timedOut += 1
        case .failure: other += 1
        }
    }
    var summary: String { "answered \(answered), cancelled \(cancelled), timed out \(timedOut), other errors \(other)" }
}

let tally = Tally()
let nearest = Api.functions.help.GetNearestDc()
let startedAt = Date()
let deadline = startedAt.addingTimeInterval(minutes * 60)

func snapshot(_ label: String) async {
    _ = trimHeap(0)
    let statistics = await client.statistics()[1] ?? ConnectionStatistics()
    let elapsed = Date().timeIntervalSince(startedAt)
    print(String(format: "%@ t=%5.0fs client RSS %6d KiB | test DC RSS %6d KiB | waiting %d, tracked messages %d, tracked requests %d | %@",
                 label, elapsed, residentKiB(), residentKiB(pid: String(serverPID)), statistics.pendingCalls,
                 statistics.trackedMessages, statistics.trackedRequests, await tally.summary))
}

// Warm up so the start figure includes the steady-state buffers, not their first allocation.
for _ in 0..<2000 { _ = try await client.invoke(nearest) }
await snapshot("start")
let startKiB = residentKiB()

let reporter = Task {
    while Date() < deadline {
        try? await Task.sleep(for: .seconds(60))
        if Date() < deadline { await snapshot("      ") }
    }
}

await withTaskGroup(of: Void.self) { group in
    for worker in 0..<workers {
        group.addTask {
            var count = 0
            while Date() < deadline {
                count += 1
                if count % 50 == worker % 50 {
                    // Cancelled while in flight.
                    let call = Task { () -> Result<Void, TelegramError> in
                        do throws(TelegramError) { _ = try await client.invoke(nearest); return .success(()) } catch { return .failure(error) }
                    }
                    await Task.yield()
                    call.cancel()
                    await tally.add(await call.value)
                } else if count % 50 == (worker + 25) % 50 {
                    // Times out at once.
                    do throws(TelegramError) {
                        _ = try await client.invoke(nearest, options: InvokeOptions(timeout: 0.000_001))
                        await tally.add(.success(()))
                    } catch {
                        await tally.add(.failure(error))
                    }
                } else {
                    do throws(TelegramError) {
                        _ = try await client.invoke(nearest)
                        await tally.add(.success(()))
                    } catch {
                        await tally.add(.failure(error))
                    }
                }
            }
        }
    }
}
reporter.cancel()
// Let rpc_drop_answer replies and the session's housekeeping run before the last figure.
try await Task.sleep(for: .seconds(12))
await snapshot("end  ")
let endKiB = residentKiB()
#if DEBUG
let buildKind = "DEBUG build: run it in release"
#else
let buildKind = "release build"
#endif
print(String(format: "SoakBench (%@): %.0f min, %d workers, client RSS start %d KiB, end %d KiB (%+d KiB)",
             buildKind, minutes, workers, startKiB, endKiB, endKiB - startKiB))
await client.close()
server.stop()
