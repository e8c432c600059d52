import Foundation

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
                           directory: URL? = nil, input: Data? = nil) async throws -> ChildProcessOutcome {
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
        return ChildProcessOutcome(status: status, reason: process.terminationReason,
                                   output: String(decoding: output, as: UTF8.self), errors: String(decoding: errorOutput, as: UTF8.self))
    }
}
