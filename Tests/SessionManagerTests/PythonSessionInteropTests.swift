import Foundation
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// Session files and strings against the real libraries, both ways, with each Pyrogram: Telethon
/// 1.45.0 and the Pyrogram of one venv (kurigram 2.2.26 in .build/venv, the original Pyrogram
/// 2.0.106 in .build/venv-pyrogram) write them through their own APIs
/// (Tests/Interop/make_session_files.py) and we import them field by field; we export, and the
/// libraries load what we wrote (Tests/Interop/check_session_exports.py) and compare field by field.
/// Fixtures are generated at test time into a scratch directory, so they always come from the
/// pinned libraries. Each venv has its own suite, so a missing one is skipped (or, under
/// TGSM_REQUIRE_VENV=1, fails) on its own.
@Suite struct PythonSessionInteropTests {
    @Suite(.enabled(if: PythonPeers.kurigram.shouldRun, PythonPeers.kurigram.missing))
    struct Kurigram {
        @Test func importsWhatTheLibrariesWrote() async throws {
            try await PythonSessionInteropTests.importsWhatTheLibrariesWrote(PythonPeers.kurigram)
        }

        @Test func librariesLoadWhatWeExport() async throws {
            try await PythonSessionInteropTests.librariesLoadWhatWeExport(PythonPeers.kurigram)
        }

        @Test func convertsBetweenTheLibraries() async throws {
            try await PythonSessionInteropTests.convertsBetweenTheLibraries(PythonPeers.kurigram)
        }
    }

    @Suite(.enabled(if: PythonPeers.pyrogram.shouldRun, PythonPeers.pyrogram.missing))
    struct Pyrogram2 {
        @Test func importsWhatTheLibrariesWrote() async throws {
            try await PythonSessionInteropTests.importsWhatTheLibrariesWrote(PythonPeers.pyrogram)
        }

        @Test func librariesLoadWhatWeExport() async throws {
            try await PythonSessionInteropTests.librariesLoadWhatWeExport(PythonPeers.pyrogram)
        }

        @Test func convertsBetweenTheLibraries() async throws {
            try await PythonSessionInteropTests.convertsBetweenTheLibraries(PythonPeers.pyrogram)
        }
    }

    /// Runs make_session_files.py into a scratch directory and returns it with the manifest.
    static func libraryFixtures(_ peer: PythonPeer) async throws -> (ScratchDirectory, [SessionFixture]) {
        try peer.require()
        let scratch = try ScratchDirectory()
        let made = try await peer.run("make_session_files.py", [scratch.url.path])
        try #require(made.status == 0, "make_session_files.py under \(peer) failed: \(made.errors)")
        let fixtures = try SessionFixture.load(scratch.url.appendingPathComponent("manifest.json"))
        try #require(fixtures.count == 12, "the script writes 12 fixtures under \(peer)")
        // The script found the Pyrogram this venv is meant to hold.
        #expect(Set(fixtures.compactMap(\.library)) == ["telethon 1.45.0", peer.pyrogram])
        return (scratch, fixtures)
    }

    /// Has the libraries load what we exported; returns their per-fixture mismatches.
    static func librariesCheck(_ peer: PythonPeer, _ fixtures: [SessionFixture], in scratch: ScratchDirectory) async throws -> [String: [String]] {
        try SessionFixture.save(fixtures, to: scratch.url.appendingPathComponent("manifest.json"))
        let checked = try await peer.run("check_session_exports.py", [scratch.url.path])
        let report = try JSONDecoder().decode([String: [String]].self, from: Data(checked.output.utf8))
        #expect(checked.status == 0 || report.values.contains { !$0.isEmpty }, "checker under \(peer) failed: \(checked.errors)")
        return report
    }

    static func importsWhatTheLibrariesWrote(_ peer: PythonPeer) async throws {
        let (scratch, fixtures) = try await libraryFixtures(peer)
        defer { scratch.remove() }
        var seenFormats: Set<String> = []
        for fixture in fixtures {
            seenFormats.insert(fixture.format)
            let label = "\(fixture.name) (\(fixture.library ?? "?"))"
            let format = try #require(PortableSessionFormat(rawValue: fixture.format))
            let session: PortableSession
            let detected: (format: PortableSessionFormat, session: PortableSession)
            switch format {
            case .telethonFile, .pyrogramFile:
                let path = scratch.path(fixture.name)
                let before = try Data(contentsOf: URL(fileURLWithPath: path))
                session = format == .telethonFile ? try TelethonSessionFile.read(path: path) : try PyrogramSessionFile.read(path: path)
                detected = try ForeignSession.readFile(path: path)
                // Import opens foreign files read-only: the bytes are untouched and no journal is left.
                #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "\(label) changed by import")
                #expect(!FileManager.default.fileExists(atPath: path + "-journal"))
            case .telethonString, .pyrogramString:
                let text = try #require(fixture.text)
                session = format == .telethonString ? try TelethonStringSession.decode(text) : try PyrogramStringSession.decode(text)
                detected = try ForeignSession.decodeString(text)
            }
            #expect(session.mismatches(with: fixture) == [], "\(label)")
            // The peer cache the library wrote through its own API, row by row (Telethon keeps no
            // `min` user; a kurigram bot's first username is the one kept).
            #expect(Set(session.peers.map(SessionFixture.Peer.init)) == Set(fixture.peers ?? []), "\(label)")
            #expect(session.unreadablePeerRows == 0, "\(label)")
            if fixture.kind == "file", fixture.userID != nil { #expect(session.peers.count >= 3, "\(label)") }
            #expect(detected.format == format, "\(label) detected as \(detected.format)")
            #expect(detected.session == session, "\(label)")

            // The client's state: the home DC with its key, the user, the bot flag (Telethon has none).
            let state = session.sessionState
            #expect(state.homeDC == fixture.dc, "\(label)")
            #expect(state.dcs[fixture.dc]?.authKey?.bytes == Hex.decode(fixture.key), "\(label)")
            #expect(state.userID == fixture.userID, "\(label)")
            #expect(state.isBot == (fixture.isBot ?? false), "\(label)")
            #expect(state.isAuthorized, "\(label)")
        }
        #expect(seenFormats == Set(PortableSessionFormat.allCases.map(\.rawValue)))
    }

    /// tgsm's exports loaded by the libraries; Pyrogram files in the schema of `peer`'s Pyrogram,
    /// and in the other one to pin down what each library makes of it.
    static func librariesLoadWhatWeExport(_ peer: PythonPeer) async throws {
        try peer.require()
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let key = { (seed: UInt64) throws -> AuthKey in try #require(TestKeys.key(seed: seed)) }
        // Seen just now: Pyrogram trusts a cached username for 8 hours after its row's time stamp.
        let now = UnixTime(seconds: Date().timeIntervalSince1970.rounded(.down))
        let peers = [
            PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob", seenAt: now),
            PeerRecord(kind: .channel, id: 2001, accessHash: -0x2001, username: "testnews", seenAt: now + -10),
            PeerRecord(kind: .chat, id: 4001, accessHash: nil, seenAt: now + -20),
            PeerRecord(kind: .user, id: 7_000_000_001, accessHash: .min, seenAt: now + -30),
        ]
        let userV4 = PortableSession(
            dc: 2, authKey: try key(1), address: DCAddress(host: "149.154.167.51", port: 443), userID: 123456789,
            takeoutID: 987654321987, temporaryAuthKey: try key(2), peers: peers
        )
        let userV6 = PortableSession(
            dc: 4, authKey: try key(3), address: DCAddress(host: "2001:67c:4e8:f004::a", port: 443, isIPv6: true),
            userID: 5_000_000_000
        )
        let noUser = PortableSession(dc: 1, authKey: try key(4), address: DCAddress(host: "149.154.175.53", port: 443))
        let leadingZero = PortableSession(
            dc: 5, authKey: try #require(TestKeys.key(seed: 5, leadingZero: true)),
            address: DCAddress(host: "91.108.56.130", port: 443), userID: 42
        )
        let pyrogramUser = PortableSession(
            dc: 2, authKey: try key(6), address: DCAddress(host: "149.154.167.51", port: 443), userID: 777000,
            isBot: false, apiID: 611335, isTestMode: false, date: 1_764_720_000, peers: peers
        )
        let pyrogramTestBot = PortableSession(
            dc: 3, authKey: try key(7), address: DCAddress(host: "149.154.175.117", port: 80), userID: 7_012_345_678,
            isBot: true, apiID: 21724, isTestMode: true, date: 1_700_000_000
        )
        // From the client's own state: the home DC's key and the production address of that DC.
        let fromState = try PortableSession(state: SessionState(
            homeDC: 4,
            dcs: [4: DCSessionState(authKey: try key(8), isAuthorized: true), 2: DCSessionState(authKey: try key(9))],
            userID: 31337, isBot: true
        ))
        var fromStatePyrogram = fromState
        fromStatePyrogram.apiID = 94575

        var fixtures: [SessionFixture] = []
        for (name, session) in [("telethon-v4", userV4), ("telethon-v6", userV6), ("telethon-no-user", noUser),
                                ("telethon-leading-zero", leadingZero), ("telethon-from-state", fromState)] {
            try TelethonSessionFile.write(session, to: scratch.path(name + ".session"))
            fixtures.append(SessionFixture(name: name + ".session", format: .telethonFile, session: session))
            let text = try TelethonStringSession.encode(session)
            fixtures.append(SessionFixture(name: name + "-string", format: .telethonString, text: text, session: session))
        }
        let otherSchema: PyrogramSessionFile.Schema = peer.schema == .version3 ? .version7 : .version3
        var otherSchemaFiles: [String] = []
        for (name, session) in [("pyrogram-user", pyrogramUser), ("pyrogram-test-bot", pyrogramTestBot),
                                ("pyrogram-from-state", fromStatePyrogram)] {
            try PyrogramSessionFile.write(session, to: scratch.path(name + ".session"), schema: peer.schema)
            fixtures.append(SessionFixture(name: name + ".session", format: .pyrogramFile, session: session, pyrogramSchema: peer.schema))
            // Read back by tgsm: a version 3 file has the address Pyrogram's table gives the DC.
            let back = try PyrogramSessionFile.read(path: scratch.path(name + ".session"))
            #expect(back.mismatches(with: try #require(fixtures.last)) == [], "\(name) in \(peer.schema)")
            let other = name + "-schema\(otherSchema.rawValue).session"
            try PyrogramSessionFile.write(session, to: scratch.path(other), schema: otherSchema)
            fixtures.append(SessionFixture(name: other, format: .pyrogramFile, session: session, pyrogramSchema: otherSchema))
            otherSchemaFiles.append(other)
            let text = try PyrogramStringSession.encode(session)
            #expect(text.count == 362)
            fixtures.append(SessionFixture(name: name + "-string", format: .pyrogramString, text: text, session: session))
        }
        let report = try await librariesCheck(peer, fixtures, in: scratch)
        #expect(Set(report.keys) == Set(fixtures.map(\.name)), "every export was checked under \(peer)")
        for (name, problems) in report.sorted(by: { $0.key < $1.key }) {
            if otherSchemaFiles.contains(name), peer.schema == .version3 {
                // Pyrogram 2.0.106 opens kurigram's version 7 and reads the session, but keeps the
                // version and fails on its first update: why version 3 exists.
                let fields = Set(problems.compactMap { $0.split(separator: ":").first.map(String.init) })
                #expect(fields == ["version", "peers_usable"], "\(name) under \(peer): \(problems)")
            } else {
                // kurigram upgrades a version 3 file to 7 on open, with the address from its table.
                #expect(problems == [], "\(name) under \(peer)")
            }
        }
    }

    /// Each library fixture imported and exported again in all four formats (the fields a target
    /// format needs but the source lacks are supplied), then loaded by the libraries.
    static func convertsBetweenTheLibraries(_ peer: PythonPeer) async throws {
        let (scratch, fixtures) = try await libraryFixtures(peer)
        defer { scratch.remove() }
        let out = try ScratchDirectory()
        defer { out.remove() }
        var exported: [SessionFixture] = []
        for fixture in fixtures {
            var session = try fixture.text.map { try ForeignSession.decodeString($0).session }
                ?? ForeignSession.readFile(path: scratch.path(fixture.name)).session
            session.apiID = session.apiID ?? 12345
            session.userID = session.userID ?? 1_000_001
            let base = "from-" + fixture.name.replacingOccurrences(of: ".session", with: "")
            try TelethonSessionFile.write(session, to: out.path(base + "-telethon.session"))
            exported.append(SessionFixture(name: base + "-telethon.session", format: .telethonFile, session: session))
            try PyrogramSessionFile.write(session, to: out.path(base + "-pyrogram.session"), schema: peer.schema)
            exported.append(SessionFixture(name: base + "-pyrogram.session", format: .pyrogramFile, session: session, pyrogramSchema: peer.schema))
            let telethonText = try TelethonStringSession.encode(session)
            exported.append(SessionFixture(name: base + "-telethon-string", format: .telethonString, text: telethonText, session: session))
            let pyrogramText = try PyrogramStringSession.encode(session)
            exported.append(SessionFixture(name: base + "-pyrogram-string", format: .pyrogramString, text: pyrogramText, session: session))
        }
        let report = try await librariesCheck(peer, exported, in: out)
        #expect(report.count == fixtures.count * 4)
        for (name, problems) in report.sorted(by: { $0.key < $1.key }) {
            #expect(problems == [], "\(name) under \(peer)")
        }
    }
}
