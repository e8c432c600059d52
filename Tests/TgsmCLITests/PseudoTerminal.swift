#if canImport(Glibc)
import Glibc
#endif
import CTestPTY
import Foundation
import Synchronization

/// The built `tgsm` run on a pseudo-terminal, as a person at a terminal would: stdin, stdout and
/// stderr are the pty's slave side, so `isatty` is true and echo can be turned off; the test reads
/// everything the terminal shows from the master side and types answers into it.
final class PseudoTerminal: @unchecked Sendable {
    // Unchecked: Process is not Sendable in corelibs Foundation; it is started once and only read after.
    private let process = Process()
    private let master: Int32
    private let shared = Shared()

    /// What the reader thread and the termination handler write, and the test reads.
    final class Shared: Sendable {
        let buffer = Mutex(Data())
        let exit = Mutex<Int32?>(nil)
        /// The reader met the end of the terminal (every byte the process wrote is in `buffer`).
        let drained = Mutex(false)
    }

    init(arguments: [String], environment: [String: String], executable: String = CLI.binary) throws {
        var master: Int32 = -1
        var slave: Int32 = -1
        guard ctestpty_open(&master, &slave) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .ENOTTY) }
        self.master = master
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in ["TGSM_HOME", "TGSM_NOW", "NO_COLOR", "TGSM_KEY_FILE", "TGSM_API_ID", "TGSM_API_HASH", "TGSM_SERVER", "TGSM_CONFIG"] {
            env.removeValue(forKey: key)
        }
        env["NO_COLOR"] = "1"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let slaveHandle = FileHandle(fileDescriptor: slave, closeOnDealloc: true)
        process.standardInput = slaveHandle
        process.standardOutput = slaveHandle
        process.standardError = slaveHandle
        let shared = self.shared
        let fd = master
        process.terminationHandler = { process in shared.exit.withLock { $0 = process.terminationStatus } }
        let reader = Thread {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(fd, &chunk, chunk.count)
                if count <= 0 { break }
                shared.buffer.withLock { $0.append(contentsOf: chunk[0..<count]) }
            }
            shared.drained.withLock { $0 = true }
        }
        try process.run()
        try slaveHandle.close()
        reader.start()
    }

    /// Everything the terminal showed so far.
    var output: String { String(decoding: shared.buffer.withLock { $0 }, as: UTF8.self) }

    /// Waits until the output contains `text` (after `from` characters), or fails after `seconds`
    /// (a failure bound only: a debug `tgsm` starting beside the whole parallel suite on 2 cores
    /// has taken 30 s to show its first prompt).
    @discardableResult
    func expect(_ text: String, after from: Int = 0, seconds: Double = 60) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let shown = output
            if let range = shown.range(of: text, range: shown.index(shown.startIndex, offsetBy: min(from, shown.count))..<shown.endIndex) {
                return shown.distance(from: shown.startIndex, to: range.upperBound)
            }
            if shared.exit.withLock({ $0 }) != nil, !output.contains(text) {
                try await Task.sleep(for: .milliseconds(100))
                if !output.contains(text) { throw Failure(message: "the process ended without showing \"\(text)\"; it showed:\n\(output)") }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure(message: "no \"\(text)\" within \(seconds) s; the terminal showed:\n\(output)")
    }

    /// Types a line.
    func type(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
    }

    /// Sends a signal to the process (SIGTERM: what a service manager does to stop it).
    func signal(_ number: Int32) {
        kill(process.processIdentifier, number)
    }

    /// Whether the terminal echoes what is typed (its settings as the process left them).
    var echoes: Bool {
        var attributes = termios()
        guard tcgetattr(master, &attributes) == 0 else { return false }
        return attributes.c_lflag & tcflag_t(ECHO) != 0
    }

    /// Waits for the exit status.
    func status(seconds: Double = 30) async throws -> Int32 {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if let status = shared.exit.withLock({ $0 }) {
                // The exit can be seen before the reader took the last lines off the terminal.
                while !shared.drained.withLock({ $0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
                return status
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw Failure(message: "the process did not exit within \(seconds) s; it showed:\n\(output)")
    }

    struct Failure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    deinit {
        if process.isRunning { process.terminate() }
        close(master)
    }
}
