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
// On disk, not /tmp: /tmp is often tmpfs, where an fsync costs nothing and FULL would look free.
let base = ProcessInfo.processInfo.environment["STOREBENCH_DIR"] ?? FileManager.default.currentDirectoryPath + "/.build"

/// Unbuffered, so the lines keep their order with the peer's output.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = start.duration(to: .now).components
    return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

say("store writes, \(writes) per case, one transaction each; load average \(loadAverage())")
say("case                          writes/s")
for synchronous in [SQLiteStoreOptions.Synchronous.full, .normal] {
    let directory = base + "/storebench-\(getpid())-\(synchronous.rawValue)"
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
    say("tgsm ledger  \(synchronous.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0))          \(Int(Double(writes) / ledger))")
    say("tgsm salt    \(synchronous.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0))          \(Int(Double(writes) / salts))")
}

let python = ".build/venv/bin/python"
let script = "Benchmarks/StoreBench/peer.py"
if FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) {
    let peer = Process()
    peer.executableURL = URL(fileURLWithPath: python)
    peer.arguments = [script, String(writes), base]
    try peer.run()
    peer.waitUntilExit()
} else {
    say("(peer skipped: run from the repository root after scripts/setup-python)")
}
say("load average after: \(loadAverage())")
