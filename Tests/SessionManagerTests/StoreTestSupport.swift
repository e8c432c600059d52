#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Synchronization

/// A fresh directory under the system temp dir, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String = "store") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("tgsm-\(label)-\(UUID().uuidString)").path
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// A clock tests move by hand.
final class ManualClock: TelegramClock, Sendable {
    private let current: Mutex<Double>

    init(_ start: Double = 1_800_000_000) { current = Mutex(start) }

    func now() -> UnixTime { UnixTime(seconds: current.withLock { $0 }) }
    func advance(by seconds: Double) { current.withLock { $0 += seconds } }
    func sleep(for seconds: Double) async throws { advance(by: seconds) }
}

enum Fixtures {
    static func key(_ seed: UInt8) -> AuthKey {
        // Deterministic key bytes: the tests compare what comes back with what went in.
        guard let key = try? AuthKey((0..<256).map { UInt8(truncatingIfNeeded: Int($0) &* 7 &+ Int(seed)) }) else {
            preconditionFailure("256 bytes always make a key")
        }
        return key
    }

    static func session(salt: Int64 = 42, user: Int64? = 1001) -> SessionState {
        SessionState(homeDC: 2, dcs: [
            1: DCSessionState(authKey: key(1), serverSalt: salt, timeOffset: -1.5, isAuthorized: false),
            2: DCSessionState(authKey: key(2), serverSalt: salt + 1, timeOffset: 0.25, isAuthorized: true),
            4: DCSessionState(authKey: nil, serverSalt: 0, timeOffset: 0, isAuthorized: false),
        ], userID: user, isBot: false)
    }

    /// A store in `directory` holding alice's session, closed, and the manual backup taken of it.
    static func aliceWithABackup(in directory: TemporaryDirectory, options: SQLiteStoreOptions) async throws -> BackupRecord {
        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        try await store.saveSession(session(), account: "alice", fence: nil)
        let backup = try store.backup(reason: .manual)
        try store.close()
        return backup
    }

    static func options(clock: ManualClock = ManualClock(), logger: Logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
                        encryption: StoreEncryption = .none, generations: Int = 3) -> SQLiteStoreOptions {
        SQLiteStoreOptions(backupGenerations: generations, backupInterval: 3600, encryption: encryption, clock: clock, logger: logger)
    }
}

/// Runs a child process of this package (the SessionStoreProbe) and reads its output line by line.
/// Unchecked: `Process` and `FileHandle` are not marked Sendable in corelibs Foundation; the handle
/// is read by one waiting thread at a time and the buffer is behind a mutex.
final class ChildProcess: @unchecked Sendable {
    let process: Process
    private let output: FileHandle
    private let buffer = Mutex<[UInt8]>([])

    static var probePath: String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return executable.deletingLastPathComponent().appendingPathComponent("SessionStoreProbe").path
    }

    /// `wrapper`: a command the probe runs under (e.g. `unshare --pid --fork`), its arguments after it.
    init(_ arguments: [String], under wrapper: [String] = []) throws {
        let process = Process()
        if let command = wrapper.first {
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = Array(wrapper.dropFirst()) + [Self.probePath] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Self.probePath)
            process.arguments = arguments
        }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        self.output = pipe.fileHandleForReading
    }

    var pid: Int32 { process.processIdentifier }

    /// The next line the child prints, or nil at end of output. Blocks a dedicated thread, not the test's executor.
    func nextLine() async -> String? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.readLineBlocking()) }
        }
    }

    private func readLineBlocking() -> String? {
        while true {
            let line: String? = buffer.withLock { bytes in
                guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                let line = String(decoding: bytes[..<newline], as: UTF8.self)
                bytes.removeSubrange(...newline)
                return line
            }
            if let line { return line }
            let data = output.availableData
            if data.isEmpty { return nil }
            buffer.withLock { $0 += Array(data) }
        }
    }

    /// Kills the child with SIGKILL and waits for it.
    func kill() async {
        Glibc.kill(pid, SIGKILL)
        await waitForExit()
    }

    @discardableResult
    func waitForExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                self.process.waitUntilExit()
                continuation.resume(returning: self.process.terminationStatus)
            }
        }
    }
}
