import Foundation
import TestDC

/// The test DC in a child process of a benchmark: the benchmark's own executable run with `serve`,
/// so the benchmark's memory and CPU figures leave the server out. The child reports its address
/// as one JSON line on stdout and serves until the parent closes its stdin.
public struct TestDCChild {
    public let process: Process
    public let host: String
    public let port: Int
    public let publicKeyPEM: String
    private let input: Pipe

    public var pid: Int32 { process.processIdentifier }

    /// Whether this process was started as the child (`serve` as its first argument).
    public static var isRequested: Bool { CommandLine.arguments.dropFirst().first == "serve" }

    /// In the child: starts the test DC, reports its first DC's address, serves until stdin closes
    /// and exits.
    public static func serve(_ configuration: TestDCConfiguration) async throws -> Never {
        let cluster = try await TestDCServer.start(configuration)
        guard let entry = cluster.table.dcs.first else { exit(1) }
        let line: [String: Any] = ["host": entry.host, "port": entry.port, "pem": entry.publicKeyPEM]
        FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: line) + Data("\n".utf8))
        // The blocking read has a thread of its own: on a task it held one of the global pool's two
        // threads for the child's whole life (and, with SwiftNIO's loops as the global executor, the
        // loop serving the DC, whose key exchanges then never finished).
        await withCheckedContinuation { (stdinClosed: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                while readLine() != nil {}
                stdinClosed.resume()
            }
        }
        exit(0)
    }

    public struct NoAddress: Error, CustomStringConvertible {
        public var description: String { "the test DC child did not report its address" }
    }

    /// In the parent: starts this executable as the child and reads the address it reports.
    public static func spawn() throws -> TestDCChild {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["serve"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        guard let firstLine = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self).split(separator: "\n").first,
              let info = try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any],
              let host = info["host"] as? String, let port = info["port"] as? Int, let pem = info["pem"] as? String
        else {
            process.terminate()
            throw NoAddress()
        }
        return TestDCChild(process: process, host: host, port: port, publicKeyPEM: pem, input: input)
    }

    /// Closes the child's stdin (it exits) and waits for it.
    public func stop() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
