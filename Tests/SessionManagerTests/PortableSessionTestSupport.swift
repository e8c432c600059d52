import Foundation
import OffThePool
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing
import SeededRandom

/// One of the pinned Python venvs `scripts/setup-python` creates, each with Telethon 1.45.0 and one
/// Pyrogram: kurigram 2.2.26 in .build/venv, the original Pyrogram 2.0.106 in .build/venv-pyrogram
/// (both install the `pyrogram` module, so they cannot share a venv). Tests that need one are
/// skipped, naming that script, when it is missing; `scripts/test` creates both and exports
/// TGSM_REQUIRE_VENV=1, under which a missing venv fails the tests instead.
struct PythonPeer: Sendable, CustomStringConvertible {
    /// The Pyrogram in the venv, as the interop scripts label their fixtures ("kurigram 2.2.26").
    let pyrogram: String
    /// The venv's directory under the package root.
    let venv: String
    /// The Pyrogram file schema this Pyrogram uses in full.
    let schema: PyrogramSessionFile.Schema

    var python: URL { PythonPeers.root.appendingPathComponent(venv).appendingPathComponent("bin/python") }
    var installed: Bool { FileManager.default.isExecutableFile(atPath: python.path) }
    /// Run when the venv is there, or when it must be (then the test fails on `missing`).
    var shouldRun: Bool { installed || PythonPeers.isRequired }
    var missing: Comment {
        "needs the pinned Python venv \(venv) (\(pyrogram)): run scripts/setup-python once (scripts/test does)"
    }
    var description: String { pyrogram }

    /// Fails the calling test when the venv is missing (only reached under TGSM_REQUIRE_VENV=1).
    func require() throws {
        try #require(installed, missing)
    }

    /// Runs an interop script to its end, from Tests/Interop (so scripts import each other).
    func run(_ script: String, _ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
        try await PythonPeers.run(python: python, script, arguments)
    }
}

enum PythonPeers {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let interop = root.appendingPathComponent("Tests/Interop")
    static let kurigram = PythonPeer(pyrogram: "kurigram 2.2.26", venv: ".build/venv", schema: .version7)
    static let pyrogram = PythonPeer(pyrogram: "pyrogram 2.0.106", venv: ".build/venv-pyrogram", schema: .version3)
    static var isRequired: Bool { ProcessInfo.processInfo.environment["TGSM_REQUIRE_VENV"] == "1" }

    /// Runs an interop script with `python` to its end, from Tests/Interop.
    static func run(python: URL, _ script: String, _ arguments: [String]) async throws -> (status: Int32, output: String, errors: String) {
        let outcome = try await OffThePool.ChildProcess.run(python, [interop.appendingPathComponent(script).path] + arguments, directory: interop)
        return (outcome.status, outcome.output, outcome.errors)
    }
}

/// A fresh directory under the system's temporary directory, removed by `remove()`.
struct ScratchDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tgsm-sessions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// One session file or string and the fields it holds: the manifest entry both Python scripts
/// (make_session_files.py writes it, check_session_exports.py reads it) and the Swift tests share.
struct SessionFixture: Codable, Equatable {
    var name: String
    var kind: String
    var format: String
    /// The library that wrote the fixture ("telethon 1.45.0", "pyrogram 2.0.106"); nil for tgsm's exports.
    var library: String?
    var text: String?
    var dc: Int
    var address: String?
    var port: Int?
    var key: String
    var userID: Int64?
    var isBot: Bool?
    var apiID: Int64?
    var testMode: Bool?
    var date: Int64?
    var takeoutID: Int64?
    var tmpKey: String?
    /// A file's peer cache, in the libraries' terms; nil for strings (they carry none).
    var peers: [Peer]?

    /// One cached peer as both libraries key it: the marked id (a channel -100..., a basic chat
    /// negated), the access hash (0 for a basic chat), the username lower-cased, Unix seconds.
    struct Peer: Codable, Hashable {
        var id: Int64
        var accessHash: Int64
        var username: String?
        var seenAt: Int64

        enum CodingKeys: String, CodingKey {
            case id, accessHash = "access_hash", username, seenAt = "seen_at"
        }

        init(_ record: PeerRecord) {
            id = switch record.kind {
            case .user: record.id
            case .chat: -record.id
            case .channel: -(1_000_000_000_000 + record.id)
            }
            accessHash = record.accessHash ?? 0
            username = record.username
            seenAt = Int64(record.seenAt.seconds)
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, kind, format, library, text, dc, address, port, key
        case userID = "user_id", isBot = "is_bot", apiID = "api_id", testMode = "test_mode", date
        case takeoutID = "takeout_id", tmpKey = "tmp_key", peers
    }

    /// What tgsm must write to produce `session` in `format`: the fields that format carries. A
    /// Pyrogram file of schema version 3 stores no address: Pyrogram dials its table's for the DC.
    init(
        name: String, format: PortableSessionFormat, text: String? = nil, session: PortableSession,
        pyrogramSchema: PyrogramSessionFile.Schema = .version7
    ) {
        self.name = name
        self.kind = text == nil ? "file" : "string"
        self.format = format.rawValue
        self.text = text
        self.dc = session.dc
        self.address = session.address?.host
        self.port = session.address?.port
        self.key = Hex.encode(session.authKey.bytes)
        if text == nil { peers = session.peers.map(Peer.init) }
        switch format {
        case .telethonFile:
            userID = session.userID
            takeoutID = session.takeoutID
            tmpKey = session.temporaryAuthKey.map { Hex.encode($0.bytes) }
        case .telethonString:
            break
        case .pyrogramFile, .pyrogramString:
            userID = session.userID
            isBot = session.isBot ?? false
            apiID = session.apiID
            testMode = session.isTestMode ?? false
            if format == .pyrogramFile { date = session.date ?? 0 }
            let addressFromTable = format == .pyrogramString || pyrogramSchema == .version3
            if addressFromTable, let address = PyrogramStringSession.defaultAddress(dc: session.dc, testMode: testMode ?? false) {
                self.address = address.host
                self.port = address.port
            }
        }
    }

    static func load(_ url: URL) throws -> [SessionFixture] {
        try JSONDecoder().decode([SessionFixture].self, from: Data(contentsOf: url))
    }

    static func save(_ fixtures: [SessionFixture], to url: URL) throws {
        try JSONEncoder().encode(fixtures).write(to: url)
    }
}

enum Hex {
    static func encode(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index + 1 < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// Deterministic keys: a splitmix64 stream from a seed, so a failure names a reproducible key.
enum TestKeys {
    static func key(seed: UInt64, leadingZero: Bool = false) -> AuthKey? {
        var generator = SplitMix64(seed: seed)
        var bytes: [UInt8] = []
        while bytes.count < 256 {
            bytes.append(contentsOf: withUnsafeBytes(of: generator.next().bigEndian) { Array($0) })
        }
        if leadingZero { bytes[0] = 0 }
        return try? AuthKey(bytes)
    }
}

extension PortableSession {
    /// The session's fields in the manifest's terms, to compare with a fixture field by field.
    func mismatches(with fixture: SessionFixture) -> [String] {
        var problems: [String] = []
        func check<T: Equatable>(_ field: String, _ ours: T?, _ theirs: T?) {
            if ours != theirs { problems.append("\(fixture.name) \(field): imported \(String(describing: ours)), library wrote \(String(describing: theirs))") }
        }
        check("dc", dc, fixture.dc)
        check("address", address?.host, fixture.address)
        check("port", address?.port, fixture.port)
        check("key", Hex.encode(authKey.bytes), fixture.key)
        check("user_id", userID, fixture.userID)
        check("is_bot", isBot, fixture.isBot)
        check("api_id", apiID, fixture.apiID)
        check("test_mode", isTestMode, fixture.testMode)
        check("date", date, fixture.date)
        check("takeout_id", takeoutID, fixture.takeoutID)
        check("tmp_key", temporaryAuthKey.map { Hex.encode($0.bytes) }, fixture.tmpKey)
        return problems
    }
}
