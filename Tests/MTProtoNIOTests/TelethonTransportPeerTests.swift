import Foundation
import NIOCore
import Testing

@testable import MTProtoNIO

/// Telethon 1.45.0 connects to our server over real TCP with each of its transports (full,
/// abridged, intermediate) and checks the echoes and a -404 transport error; its obfuscated2
/// connection must be refused. Needs the pinned venv: `scripts/setup-python` (`scripts/test` runs it).
@Suite(.enabled(if: PythonVenv.shouldRun, "needs the pinned Python venv: run scripts/setup-python"))
struct TelethonTransportPeerTests {
    static let root = PythonVenv.packageRoot

    @Test func telethonSpeaksEveryTransportWithOurServer() async throws {
        let python = try #require(PythonVenv.python, "\(PythonVenv.missing)")
        let (events, continuation) = AsyncStream.makeStream(of: ServerEvent.self)
        let server = try await MTProtoTransportServer.bind(host: "127.0.0.1", port: 0) { _ in
            EchoHandler(events: continuation)
        }
        let port = try #require(server.localAddress?.port)

        let (status, output) = try await Self.run(python, [Self.root.appendingPathComponent("Tests/Interop/telethon_transport_peer.py").path, "\(port)"])
        try await server.close()
        continuation.finish()

        #expect(status == 0, "Telethon peer: \(output)")
        let results = try JSONDecoder().decode([String: String].self, from: Data(output.utf8))
        #expect(
            results == [
                "ConnectionTcpFull": "ok", "ConnectionTcpAbridged": "ok",
                "ConnectionTcpIntermediate": "ok", "ConnectionTcpObfuscated": "ok",
            ]
        )
        var detected: [TransportKind] = []
        for await event in events {
            if case .detected(let kind) = event { detected.append(kind) }
        }
        #expect(detected == [.full, .abridged, .intermediate], "the obfuscated2 connection is never detected")
    }

    /// Runs a process to its end and returns its status and standard output.
    static func run(_ executable: URL, _ arguments: [String]) async throws -> (Int32, String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let stdout = Pipe()
        process.standardOutput = stdout
        let finished = AsyncStream.makeStream(of: Int32.self)
        process.terminationHandler = { process in
            finished.continuation.yield(process.terminationStatus)
            finished.continuation.finish()
        }
        try process.run()
        // Read before waiting: a full pipe would block the child.
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        var statuses = finished.stream.makeAsyncIterator()
        let status = await statuses.next() ?? -1
        return (status, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
