import Foundation
import MTProtoCrypto
import MTProtoSchema
import OffThePool
import Testing
@testable import MTProto

/// Telethon 1.45, a real foreign client, runs its own key exchange (`authenticator.do_authentication`
/// over its `MTProtoPlainSender`) against our `ServerHandshake` through a pipe
/// (`Tests/Interop/telethon_handshake.py`). It sends the legacy form (p_q_inner_data under SHA-1 +
/// raw RSA) and keeps the key in minimal-length form, so this covers both server-side tolerances.
/// Needs the pinned venv (`scripts/setup-python`); skipped without it.
@Suite("Handshake: Telethon 1.45 as the client", .enabled(if: PythonVenv.shouldRun, "needs the pinned Python venv: run scripts/setup-python"))
struct TelethonHandshakeTests {
    /// Telethon's clock, pinned by the script; our server's clock runs 30.75 s ahead of it.
    static let telethonNow = 1_759_500_000.0
    static let serverNow = UnixTime(seconds: 1_759_500_030.75)

    struct Outcome: Sendable {
        var telethonKeys: [[UInt8]] = []
        var serverKeys: [AuthKey] = []
        var offsets: [Int] = []
        var attempts: [Int] = []
        var retriesSent = 0
    }

    /// Runs `exchanges` key exchanges, each on a fresh server machine (a new connection), talking
    /// to the peer with blocking pipe reads on a thread of its own.
    func run(seed: UInt64, exchanges: Int) async throws -> Outcome {
        try await offThePool { try Self.exchange(seed: seed, exchanges: exchanges) }
    }

    private static func exchange(seed: UInt64, exchanges: Int) throws -> Outcome {
        let peer = try TelethonPeer(arguments: [String(seed), String(exchanges), String(Self.telethonNow)])
        defer { peer.stop() }
        try peer.writeLine(TestKeys.server.publicKey.pkcs1PEM.trimmingCharacters(in: .whitespacesAndNewlines))
        var outcome = Outcome()
        var server = ServerHandshake(configuration: .init(keys: [TestKeys.server]), entropy: SplitMixEntropy(seed: seed))
        var exchange = 0
        while let line = try peer.readLine() {
            let fields = line.split(separator: " ").map(String.init)
            switch fields.first {
            case "MSG":
                let packet = SpecExample.bytes(fields[1])
                let answer: [UInt8]
                switch try server.receive(packet, now: Self.serverNow) {
                case .send(let bytes): answer = bytes
                case .sendAndComplete(let bytes, let result):
                    answer = bytes
                    outcome.serverKeys.append(result.authKey)
                }
                let body = try PlainMessage(decoding: answer).body
                if HandshakeCodec.constructorID(of: body) == MT.Set_client_DH_params_answer.DhGenRetry.constructorID {
                    outcome.retriesSent += 1
                }
                try peer.writeLine(answer.map { String(format: "%02x", $0) }.joined())
            case "KEY":
                outcome.telethonKeys.append(SpecExample.bytes(fields[1]))
                outcome.offsets.append(Int(fields[2]) ?? .min)
                outcome.attempts.append(Int(fields[3]) ?? .min)
                exchange += 1
                server = ServerHandshake(configuration: .init(keys: [TestKeys.server]), entropy: SplitMixEntropy(seed: seed &+ UInt64(exchange)))
            case "DONE":
                return outcome
            default:
                throw TelethonPeer.PeerError.unexpectedLine(line)
            }
        }
        throw TelethonPeer.PeerError.exitedEarly(peer.errorOutput())
    }

    @Test("Telethon derives the same key as our server and learns our clock's offset")
    func sameKey() async throws {
        let outcome = try await run(seed: 1, exchanges: 4)
        #expect(outcome.telethonKeys.count == 4)
        #expect(outcome.serverKeys.count == 4)
        #expect(outcome.retriesSent == 0 && outcome.attempts == [1, 1, 1, 1])
        for (telethon, ours) in zip(outcome.telethonKeys, outcome.serverKeys) {
            // Telethon keeps g^ab without leading zero bytes; ours is the 256-byte form.
            #expect(try AuthKey(minimalBigEndian: telethon) == ours)
        }
        #expect(outcome.offsets.allSatisfy { $0 == 30 })
    }

    /// With seed 1026 the first key of the exchange starts with a zero byte (found by running 300
    /// seeded exchanges; 1026 and 1176 hit it, and the expectations below prove the path is taken):
    /// our server answers dh_gen_retry instead of dh_gen_ok, Telethon (whose 255-byte key would fail
    /// dh_gen_ok's hash anyway) starts over on the same connection, and both end with the same key.
    @Test("a key with a leading zero byte: dh_gen_retry, Telethon restarts, both end with the same key")
    func leadingZeroKey() async throws {
        let outcome = try await run(seed: TelethonHandshakeTests.leadingZeroSeed, exchanges: 1)
        #expect(outcome.retriesSent >= 1)
        #expect(outcome.attempts == [2])
        #expect(outcome.telethonKeys.count == 1)
        if let telethon = outcome.telethonKeys.first, let ours = outcome.serverKeys.last {
            #expect(try AuthKey(minimalBigEndian: telethon) == ours)
        }
    }

    static let leadingZeroSeed: UInt64 = 1026
}

/// The venv's Python running `Tests/Interop/telethon_handshake.py`, spoken to line by line.
final class TelethonPeer {
    static let packageRoot = PythonVenv.packageRoot

    enum PeerError: Error, CustomStringConvertible {
        case noPython
        case unexpectedLine(String)
        case exitedEarly(String)

        var description: String {
            switch self {
            case .noPython: PythonVenv.missing
            case .unexpectedLine(let line): "the Telethon script printed an unexpected line: \(line.prefix(200))"
            case .exitedEarly(let stderr): "the Telethon script stopped early; its stderr:\n\(stderr)"
            }
        }
    }

    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private var buffer: [UInt8] = []

    init(arguments: [String]) throws {
        guard let python = PythonVenv.python else { throw PeerError.noPython }
        process.executableURL = python
        process.arguments = [Self.packageRoot.appendingPathComponent("Tests/Interop/telethon_handshake.py").path] + arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    func writeLine(_ line: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Array((line + "\n").utf8))
    }

    /// The next line, or nil once the script exits.
    func readLine() throws -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffer += chunk
        }
    }

    func errorOutput() -> String {
        String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// SIGKILL, not `terminate()`: a child spawned from a test thread inherits that thread's signal
    /// mask, in which SIGTERM may be blocked; this wait is synchronous, so a child that ignored
    /// SIGTERM would hold the whole run (see SQLiteFileLock for what such a wait costs).
    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}
