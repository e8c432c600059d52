import Foundation
import OffThePool
import NIOCore
import Testing

@testable import MTProtoNIO

/// Telethon 1.45.0 connects to our server over real TCP with each of its transports (full,
/// abridged, intermediate, padded intermediate padding the spec's full 0-15 bytes), plain and
/// obfuscated (obfuscated2 over abridged, intermediate and padded intermediate), and checks the
/// echoes and a -404 transport error. Needs the pinned venv: `scripts/setup-python` (`scripts/test` runs it).
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
                "ConnectionTcpFull": "ok", "ConnectionTcpAbridged": "ok", "ConnectionTcpIntermediate": "ok",
                "ConnectionTcpPaddedIntermediate": "ok", "ConnectionTcpObfuscated": "ok",
                "ConnectionTcpObfuscatedIntermediate": "ok", "ConnectionTcpObfuscatedPaddedIntermediate": "ok",
                "paddingLengthsSent": "ok",
            ]
        )
        var detected: [TransportKind] = []
        var obfuscated = 0
        for await event in events {
            switch event {
            case .detected(let kind): detected.append(kind)
            case .obfuscated: obfuscated += 1
            case .closed: break
            }
        }
        #expect(detected == [.full, .abridged, .intermediate, .paddedIntermediate, .abridged, .intermediate, .paddedIntermediate])
        #expect(obfuscated == 3, "the last three connections announced themselves by an obfuscation header")
    }

    /// Runs a process to its end and returns its status and standard output.
    static func run(_ executable: URL, _ arguments: [String]) async throws -> (Int32, String) {
        let outcome = try await ChildProcess.run(executable, arguments)
        return (outcome.status, outcome.output.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
