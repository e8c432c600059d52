// Store writes per second with fsync on: flood-ledger records and salt updates, each its own
// transaction as in production, at synchronous=FULL and NORMAL (WAL), against the same kind of
// loop in Python's sqlite3 (peer.py; what Telethon's SQLiteSession does per save).
//
//   swift run -c release StoreBench [WRITES]
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager

let writes = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 2000 : 2000
let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = start.duration(to: .now).components
    return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

print("store writes, \(writes) per case, one transaction each; load average \(loadAverage())")
print("case                          writes/s")
for synchronous in [SQLiteStoreOptions.Synchronous.full, .normal] {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("storebench-\(getpid())-\(synchronous.rawValue)").path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try SQLiteSessionStore.open(directory: directory, options: SQLiteStoreOptions(synchronous: synchronous, logger: quiet))
    let key = try AuthKey((0..<256).map { UInt8(truncatingIfNeeded: $0) })
    try await store.saveSession(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key)]), account: "bench", fence: nil)
    let now = SystemClock().now()
    let ledger = try await seconds {
        for i in 0..<writes {
            try await store.recordFloodWait(FloodWait(account: "bench", method: "messages.sendMessage", peer: "user:\(i)",
                                                      kind: .floodWait, recordedAt: now, until: now + 30, dc: 2))
        }
    }
    let salts = try await seconds {
        for i in 0..<writes {
            try await store.updateServerSalt(Int64(i), dc: 2, account: "bench", fence: nil)
        }
    }
    try store.close()
    print("tgsm ledger  \(synchronous.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0))          \(Int(Double(writes) / ledger))")
    print("tgsm salt    \(synchronous.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0))          \(Int(Double(writes) / salts))")
}

let python = ".build/venv/bin/python"
let script = "Benchmarks/StoreBench/peer.py"
if FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) {
    let peer = Process()
    peer.executableURL = URL(fileURLWithPath: python)
    peer.arguments = [script, String(writes)]
    try peer.run()
    peer.waitUntilExit()
} else {
    print("(peer skipped: run from the repository root after scripts/setup-python)")
}
print("load average after: \(loadAverage())")
