import Foundation
import MTProtoCrypto
@testable import MTProto
import SeededRandom

/// A deterministic, non-cryptographic generator (SplitMix64) standing in for the system CSPRNG, so
/// every run of a test draws the same nonces, exponents and paddings.
struct SplitMixEntropy: EntropySource {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    /// Eight bytes per step, little-endian; each call starts a new step.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var word: UInt64 = 0
        for index in 0..<buffer.count {
            if index % 8 == 0 { word = generator.next() }
            buffer[index] = UInt8(truncatingIfNeeded: word >> (8 * UInt64(index % 8)))
        }
    }
}

/// Replays recorded random bytes in order (the spec example's nonce, new_nonce, padding, b...), then
/// continues from a seeded generator for anything the recording does not cover.
struct ScriptedEntropy: EntropySource {
    private var script: [UInt8]
    private var position = 0
    private var fallback: SplitMixEntropy

    init(_ chunks: [[UInt8]], fallbackSeed: UInt64 = 1) {
        script = chunks.flatMap { $0 }
        fallback = SplitMixEntropy(seed: fallbackSeed)
    }

    /// Bytes of the script not drawn yet.
    var unread: Int { script.count - position }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var index = 0
        while index < buffer.count, position < script.count {
            buffer[index] = script[position]
            index += 1
            position += 1
        }
        if index < buffer.count {
            fallback.fill(UnsafeMutableRawBufferPointer(rebasing: buffer[index...]))
        }
    }
}

/// The spec's worked example (`Tests/Fixtures/samples-auth_key.hex`), record by record.
struct SpecExample {
    let records: [String: [UInt8]]

    static let shared: SpecExample = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Fixtures/samples-auth_key.hex")
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            preconditionFailure("cannot read the fixture at \(url.path)")
        }
        return SpecExample(parsing: text)
    }()

    init(parsing text: String) {
        var records: [String: [UInt8]] = [:]
        var current: String?
        var hex = ""
        func finish() {
            if let current { records[current] = Self.bytes(hex) }
            current = nil
            hex = ""
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") { continue }
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty {
                finish()
            } else if trimmed.hasSuffix(":"), !trimmed.contains(" ") {
                finish()
                current = String(trimmed.dropLast())
            } else {
                let data = trimmed.split(separator: "|", maxSplits: 1).last.map(String.init) ?? trimmed
                hex += data.filter { !$0.isWhitespace }
            }
        }
        finish()
        self.records = records
    }

    subscript(_ name: String) -> [UInt8] {
        guard let value = records[name] else { preconditionFailure("no record \(name) in the fixture") }
        return value
    }

    /// The body of a recorded message (after the 20-byte unencrypted header).
    func body(_ name: String) -> [UInt8] { Array(self[name + ".message"].dropFirst(PlainMessage.headerLength)) }

    static func bytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var high: UInt8?
        for character in hex {
            guard let nibble = character.hexDigitValue.map(UInt8.init) else { preconditionFailure("not hex: \(character)") }
            if let pending = high {
                result.append(pending << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return result
    }
}

/// Telegram's production RSA key (fingerprint 0xD09D1D85DE64FD85), published in its docs and clients:
/// the key the spec example's client encrypts to.
let telegramProductionKeyPEM = """
    -----BEGIN RSA PUBLIC KEY-----
    MIIBCgKCAQEA6LszBcC1LGzyr992NzE0ieY+BSaOW622Aa9Bd4ZHLl+TuFQ4lo4g
    5nKaMBwK/BIb9xUfg0Q29/2mgIR6Zr9krM7HjuIcCzFvDtr+L0GQjae9H0pRB2OO
    62cECs5HKhT5DZ98K33vmWiLowc621dQuwKWSQKjWf50XYFw42h21P2KXUGyp2y/
    +aEyZ+uVgLLQbRA1dEjSDZ2iGRy12Mk5gpYc397aYp438fsJoHIgJ2lgMv5h7WY9
    t6N/byY9Nw9p21Og3AoXSL2q/2IJ1WRUhebgAdGVMlV1fkuOQoEzR7EdpqtQD9Cs
    5+bfo3Nhmcyvk5ftB0WkJ9z6bNZ7yxrP8wIDAQAB
    -----END RSA PUBLIC KEY-----
    """

/// RSA key generation is slow (~100 ms); the suites share two keys made once per process.
enum TestKeys {
    static let server: RSAPrivateKey = generate()
    static let other: RSAPrivateKey = generate()

    private static func generate() -> RSAPrivateKey {
        do {
            return try RSAPrivateKey.generate(bits: 2048)
        } catch {
            preconditionFailure("OpenSSL could not generate an RSA key: \(error)")
        }
    }
}

/// A client and a server wired back to back in memory, each with its own clock and entropy.
struct HandshakePair {
    var client: ClientHandshake
    var server: ServerHandshake
    var clientNow = UnixTime(seconds: 1_759_500_000.25)
    var serverNow = UnixTime(seconds: 1_759_500_042.5)

    init(
        client configuration: ClientHandshake.Configuration = .init(serverKeys: [TestKeys.server.publicKey], dcID: 2),
        server serverConfiguration: ServerHandshake.Configuration = .init(keys: [TestKeys.server]),
        seed: UInt64 = 7
    ) {
        client = ClientHandshake(configuration: configuration, entropy: SplitMixEntropy(seed: seed))
        server = ServerHandshake(configuration: serverConfiguration, entropy: SplitMixEntropy(seed: seed ^ 0xDEAD_BEEF))
    }

    /// Runs the exchange to the end; returns both results.
    mutating func run() throws -> (client: HandshakeResult, server: HandshakeResult) {
        var toServer = client.start(now: clientNow)
        var serverResult: HandshakeResult?
        for _ in 0..<32 {
            let toClient: [UInt8]
            switch try server.receive(toServer, now: serverNow) {
            case .send(let bytes): toClient = bytes
            case .sendAndComplete(let bytes, let result):
                toClient = bytes
                serverResult = result
            }
            switch try client.receive(toClient, now: clientNow) {
            case .send(let bytes): toServer = bytes
            case .completed(let result):
                guard let serverResult else { throw PairError.clientFinishedAlone }
                return (result, serverResult)
            }
        }
        throw PairError.didNotFinish
    }

    enum PairError: Error { case clientFinishedAlone, didNotFinish }
}
