import Foundation
import OffThePool
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// Runs the built `tgsm` binary (beside the test bundle in the build products) as a person would.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// True when the process ended by a signal (a crash), not an exit.
        var crashed: Bool

        func json<T: Decodable>(_ type: T.Type) throws -> T {
            try JSONDecoder().decode(type, from: Data(stdout.utf8))
        }

        func jsonObject() throws -> Any { try JSONSerialization.jsonObject(with: Data(stdout.utf8)) }
    }

    static var binary: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("tgsm").path
    }

    let store: String
    var environment: [String: String] = [:]

    /// A fresh, empty temporary directory; `store` is a not-yet-existing folder inside it.
    static func temporary() throws -> (root: String, cli: CLI) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("tgsm-cli-\(UInt64.random(in: 0...UInt64.max))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return (root, CLI(store: root + "/store"))
    }

    /// Reads a pipe to its end on a thread of its own: a blocking read on a task would hold one of
    /// the cooperative pool's threads (two on a 2-core machine), and two such reads starve the test.
    static func readToEnd(_ handle: FileHandle) async -> Data {
        await handle.dataToEnd()
    }

    /// Runs `tgsm ARGS --store STORE` (the store option goes last so subcommand parsing sees it).
    /// Gives up after `seconds` (the process is killed and the test fails with what it printed).
    func run(_ arguments: [String], stdin: String? = nil, stdinBytes: [UInt8]? = nil, executable: String = CLI.binary,
             withStore: Bool = true, seconds: Double = 240) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + (withStore ? ["--store", store] : [])
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "TGSM_HOME")
        env.removeValue(forKey: "TGSM_NOW")
        env.removeValue(forKey: "NO_COLOR")
        env.removeValue(forKey: "TGSM_KEY_FILE")
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        let finished = AsyncStream.makeStream(of: (Int32, Process.TerminationReason).self)
        process.terminationHandler = { process in
            finished.continuation.yield((process.terminationStatus, process.terminationReason))
            finished.continuation.finish()
        }
        try process.run()
        let deadline = ChildDeadline(process, seconds: seconds)
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        if let stdinBytes { input.fileHandleForWriting.write(Data(stdinBytes)) }
        try input.fileHandleForWriting.close()
        // Both pipes are drained before waiting: a full pipe would block the child.
        async let errors = CLI.readToEnd(err.fileHandleForReading)
        let output = await CLI.readToEnd(out.fileHandleForReading)
        let errorOutput = await errors
        var iterator = finished.stream.makeAsyncIterator()
        let (status, reason) = await iterator.next() ?? (-1, .uncaughtSignal)
        let result = Result(status: status, stdout: String(decoding: output, as: UTF8.self), stderr: String(decoding: errorOutput, as: UTF8.self),
                            crashed: reason == .uncaughtSignal)
        if deadline.finish() {
            throw ChildProcessTimedOut(command: ([executable] + (process.arguments ?? [])).joined(separator: " "), seconds: seconds,
                                       output: result.stdout, errors: result.stderr)
        }
        return result
    }
}

enum CLIFixtures {
    /// A deterministic 256-byte key (not a real one: the CLI never talks to a DC).
    static func key(seed: UInt8) throws -> AuthKey {
        try AuthKey((0..<256).map { UInt8(truncatingIfNeeded: Int($0) * 31 + Int(seed)) })
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// A Telethon string session made by Telethon itself (the pinned venv), or nil when it is missing.
    static func telethonString(key: AuthKey, dc: Int, host: String, port: Int) async throws -> String? {
        let script = """
            import sys
            from telethon.sessions import StringSession
            from telethon.crypto import AuthKey
            s = StringSession()
            s.set_dc(\(dc), '\(host)', \(port))
            s.auth_key = AuthKey(bytes.fromhex(sys.stdin.read().strip()))
            print(s.save())
            """
        return try await python(script, stdin: hex(key.bytes))
    }

    /// What Telethon itself reads from a string session: "DC HOST PORT KEYHEX", or nil without the venv.
    static func telethonReads(_ string: String) async throws -> String? {
        let script = """
            import sys
            from telethon.sessions import StringSession
            s = StringSession(sys.stdin.read().strip())
            print(s.dc_id, s.server_address, s.port, s.auth_key.key.hex())
            """
        return try await python(script, stdin: string)
    }

    static var pythonPath: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/venv/bin/python")
    }

    /// Runs a script with the pinned venv's Python; nil when the venv is missing or the script fails.
    static func python(_ script: String, stdin: String) async throws -> String? {
        guard FileManager.default.isExecutableFile(atPath: pythonPath.path) else { return nil }
        let process = Process()
        process.executableURL = pythonPath
        process.arguments = ["-c", script]
        let out = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = ChildDeadline(process, seconds: 240)
        input.fileHandleForWriting.write(Data(stdin.utf8))
        try input.fileHandleForWriting.close()
        let data = await CLI.readToEnd(out.fileHandleForReading)
        await process.exited()
        if deadline.finish() {
            throw ChildProcessTimedOut(command: "python -c …", seconds: deadline.seconds, output: String(decoding: data, as: UTF8.self), errors: "")
        }
        guard process.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Whether the pinned venv is there (scripts/setup-python); `scripts/test` requires it.
    static var hasPython: Bool { FileManager.default.isExecutableFile(atPath: pythonPath.path) }
    static let pythonRequired = ProcessInfo.processInfo.environment["TGSM_REQUIRE_VENV"] == "1"

    /// Runs one of Tests/Interop's scripts with the pinned venv's Python.
    static func interopScript(_ name: String, _ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        let script = pythonPath.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/Interop/" + name)
        let process = Process()
        process.executableURL = pythonPath
        process.arguments = [script.path] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ChildDeadline(process, seconds: 240)
        async let output = CLI.readToEnd(out.fileHandleForReading)
        async let errors = CLI.readToEnd(err.fileHandleForReading)
        let (stdout, stderr) = await (output, errors)
        await process.exited()
        if deadline.finish() {
            throw ChildProcessTimedOut(command: "python Tests/Interop/\(name) \(arguments.joined(separator: " "))", seconds: deadline.seconds,
                                       output: String(decoding: stdout, as: UTF8.self), errors: String(decoding: stderr, as: UTF8.self))
        }
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
    }

    /// Overwrites `count` bytes at `offset` with zeros: the store's header, say.
    static func zero(_ path: String, offset: UInt64, count: Int) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(count: count))
        try handle.close()
    }
}
