import Foundation
import Synchronization

// Swift's cooperative pool has one thread per core: two on a 2-core CI machine. A test that
// blocks one of them (a pipe read, a wait for a child process, a NIO future's `wait()`) or keeps
// it busy for seconds (a long CPU loop in a debug build) stalls every other test in the process
// for as long, and with them their real-time leases, timeouts and heartbeats: CI failed so, with
// leases run out under tests that never lost them, and with a PostgreSQL transaction ended by the
// server after 5 s idle. Blocking work in the tests goes through here, on a thread of its own;
// long CPU loops come here too or yield (`Task.yield()`) between pieces.

/// Runs `work` on a new thread and returns its result without holding a cooperative thread.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}

/// Runs throwing `work` on a new thread and returns or rethrows its outcome.
public func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

extension Process {
    /// Waits for the (started) process to exit and returns its status.
    @discardableResult
    public func exited() async -> Int32 {
        await offThePool { [self] in
            waitUntilExit()
            return terminationStatus
        }
    }
}

extension FileHandle {
    /// Everything until end of file.
    public func dataToEnd() async -> Data {
        await offThePool { [self] in readDataToEndOfFile() }
    }

    /// Bytes up to and without the next newline; nil at end of file before any byte.
    public func line() async -> String? {
        await offThePool { [self] in
            var collected = Data()
            while let byte = try? read(upToCount: 1), let first = byte.first {
                if first == UInt8(ascii: "\n") { return String(decoding: collected, as: UTF8.self) }
                collected.append(first)
            }
            return collected.isEmpty ? nil : String(decoding: collected, as: UTF8.self)
        }
    }
}

/// Ends a started child process that outlives `seconds` (SIGTERM, then SIGKILL 2 s later: a child
/// of the test process may inherit SIGTERM ignored), so a child that hangs fails its test with what
/// it printed instead of holding the whole run: CI once sat at its 90-minute limit on a wait like
/// this, and its log did not say which.
public final class ChildDeadline: Sendable {
    public let seconds: Double
    private let expired: Expired
    private let watcher: Task<Void, Never>

    private final class Expired: Sendable {
        let value = Mutex(false)
    }

    public init(_ process: Process, seconds: Double) {
        self.seconds = seconds
        let pid = process.processIdentifier
        let expired = Expired()
        self.expired = expired
        self.watcher = Task {
            guard (try? await Task.sleep(for: .seconds(seconds))) != nil else { return }
            expired.value.withLock { $0 = true }
            kill(pid, SIGTERM)
            guard (try? await Task.sleep(for: .seconds(2))) != nil else { return }
            kill(pid, SIGKILL)
        }
    }

    /// Call once the process exited: true when the deadline ended it.
    public func finish() -> Bool {
        watcher.cancel()
        return expired.value.withLock { $0 }
    }
}

/// A child process the deadline ended.
public struct ChildProcessTimedOut: Error, CustomStringConvertible {
    public let command: String
    public let seconds: Double
    public let output: String
    public let errors: String

    public init(command: String, seconds: Double, output: String, errors: String) {
        self.command = command
        self.seconds = seconds
        self.output = output
        self.errors = errors
    }

    public var description: String {
        "`\(command)` did not end within \(seconds) s and was killed; it printed:\n\(output)\n-- stderr:\n\(errors)"
    }
}

/// What a child process run to its end printed.
public struct ChildProcessOutcome: Sendable {
    public let status: Int32
    public let reason: Process.TerminationReason
    public let output: String
    public let errors: String
}

public enum ChildProcess {
    /// Runs `executable` to its end, feeding `input` to its standard input, reading both output
    /// pipes to their ends (a full pipe would block the child) off the cooperative pool.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                           directory: URL? = nil, input: Data? = nil, seconds: Double = 240) async throws -> ChildProcessOutcome {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = directory }
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let stdin = input.map { _ in Pipe() }
        process.standardInput = stdin ?? FileHandle.nullDevice
        try process.run()
        let deadline = ChildDeadline(process, seconds: seconds)
        if let stdin, let input {
            let writer = stdin.fileHandleForWriting
            Thread.detachNewThread {
                try? writer.write(contentsOf: input)
                try? writer.close()
            }
        }
        async let errors = stderr.fileHandleForReading.dataToEnd()
        let output = await stdout.fileHandleForReading.dataToEnd()
        let errorOutput = await errors
        let status = await process.exited()
        let outcome = ChildProcessOutcome(status: status, reason: process.terminationReason,
                                          output: String(decoding: output, as: UTF8.self), errors: String(decoding: errorOutput, as: UTF8.self))
        if deadline.finish() {
            throw ChildProcessTimedOut(command: ([executable.path] + arguments).joined(separator: " "), seconds: seconds,
                                       output: outcome.output, errors: outcome.errors)
        }
        return outcome
    }
}
