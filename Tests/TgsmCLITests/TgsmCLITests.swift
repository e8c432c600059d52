import Foundation
import GRDB
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import OperatorHTTP
import MTProto
import MTProtoClient
import Logging
import MTProtoCrypto
import PostgresStore
import SessionManager
import StoreTestSupport
import Testing
import WebhookTestSupport
import Workers

/// The `tgsm` binary run as a subprocess against a temporary store: output, `--json`, exit codes
/// and file modes (docs/CLI.md).
@Suite struct TgsmCLITests {
    struct AccountJSON: Decodable {
        struct LeaseJSON: Decodable { var state: String; var pid: Int32? }
        var account: String
        var homeDC: Int?
        var userID: Int64?
        var authorizedDCs: [Int]
        var lease: LeaseJSON
        var status: String
        var statusCode: String?
        var guidance: [String]?
    }

    struct BackupJSON: Decodable {
        var file: String
        var commitSequence: Int64
        var verification: String?
    }

    struct CheckJSON: Decodable {
        struct FindingJSON: Decodable { var level: String; var check: String; var message: String; var guidance: [String] }
        var ok: Bool
        var exitCode: Int32
        var findings: [FindingJSON]
    }

    /// A session file's peer cache comes along with it; a session that replaces an account's and
    /// does not say its user (a Telethon string) drops the cached peers, whose access hashes belong
    /// to the user before (before: they were kept, and jobs died on them if the user had changed).
    @Test func importBringsTheFilesPeersAndAReplacementOfUnknownUserDropsThem() async throws {
        let (root, cli) = try CLI.temporary()
        let peers = [
            PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob", seenAt: UnixTime(seconds: 1_764_000_000)),
            PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, username: "testnews", seenAt: UnixTime(seconds: 1_764_000_001)),
        ]
        let address = DCAddress(host: "127.0.0.1", port: 24402)
        try TelethonSessionFile.write(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 21), address: address, userID: 1001, peers: peers),
                                      to: root + "/alice.session")
        struct Imported: Decodable { var peers: Int; var peersLeftOut: Int }
        let imported = try await cli.run(["session", "import", "--account", "alice", root + "/alice.session", "--json"])
        #expect(try imported.json(Imported.self).peers == 2, "\(imported.stderr)")
        let exported = root + "/back.session"
        #expect(try await cli.run(["session", "export", "--account", "alice", "--format", "telethon-file", "--output", exported]).status == 0)
        #expect(try TelethonSessionFile.read(path: exported).peers == peers.reversed(), "most recently seen first")

        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 22), address: address))
        try CLIFixtures.write(string, to: root + "/other.txt")
        let replaced = try await cli.run(["session", "import", "--account", "alice", "--replace", root + "/other.txt"])
        #expect(replaced.status == 0 && replaced.stdout.contains("cached peers were dropped: they were user 1001's"), "\(replaced.stdout)")
        // A migrant's old client must stop before tgsm serves the key (an audit's Telethon kept using
        // the imported file, and Telegram destroyed the key).
        #expect(replaced.stderr.contains("stop every other client that uses this session") && replaced.stderr.contains("AUTH_KEY_DUPLICATED"),
                "\(replaced.stderr)")
        let again = root + "/again.session"
        #expect(try await cli.run(["session", "export", "--account", "alice", "--format", "telethon-file", "--output", again]).status == 0)
        #expect(try TelethonSessionFile.read(path: again).peers.isEmpty)
    }

    /// An imported account that must not connect directly gets its proxy before its session: a
    /// `tgsm run` serves an account within seconds of finding its session. `import --proxy` keeps
    /// both; a proxy set first (`session proxy --set -`, out of `ps`) leaves the name open for the
    /// import; a link the client could not use refuses the import with nothing stored.
    @Test func importKeepsTheAccountsProxyBeforeItsSession() async throws {
        let (root, cli) = try CLI.temporary()
        let address = DCAddress(host: "127.0.0.1", port: 24402)
        for (seed, name) in [(UInt8(41), "one"), (42, "two"), (43, "three")] {
            let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: seed), address: address))
            try CLIFixtures.write(string, to: root + "/\(name).txt")
        }
        let refused = try await cli.run(["session", "import", "--account", "three", "--proxy", "socks5://proxy.example", root + "/three.txt"])
        #expect(refused.status == 2 && refused.stderr.contains("--proxy: the proxy link is not usable"), "\(refused.stderr)")
        // Refused by the command itself: its own usage line, not the root's "tgsm <subcommand>".
        #expect(refused.stderr.contains("Usage: tgsm session import ") && !refused.stderr.contains("tgsm <subcommand>"), "\(refused.stderr)")
        let imported = try await cli.run(["session", "import", "--account", "one", "--proxy", "socks5://u:p4ss@proxy.example:1080", root + "/one.txt"])
        #expect(imported.status == 0, "\(imported.stderr)")
        let set = try await cli.run(["session", "proxy", "--account", "two", "--set", "-"],
                                    stdin: "tg://proxy?server=mtproxy.example&port=443&secret=dd0123456789abcdef0123456789abcdef\n")
        #expect(set.status == 0, "\(set.stderr)")
        let second = try await cli.run(["session", "import", "--account", "two", root + "/two.txt"])
        #expect(second.status == 0, "a proxy set first leaves the name open for the import: \(second.stderr)")
        struct Listed: Decodable { var account: String; var proxy: String?; var authorizedDCs: [Int] }
        let listed = try await cli.run(["session", "list", "--json"])
        let rows = try listed.json([Listed].self)
        #expect(rows.map(\.account) == ["one", "two"], "nothing of three was stored")
        #expect(rows.map(\.proxy) == ["socks5 proxy.example:1080", "mtproxy mtproxy.example:443"], "\(listed.stdout)")
        #expect(rows.allSatisfy { $0.authorizedDCs == [2] })
        let shown = try await cli.run(["session", "proxy", "--account", "two"])
        #expect(shown.stdout == "two connects through MTProxy mtproxy.example:443 (dd: padded intermediate)\n", "\(shown.stdout)")
        #expect(!imported.stdout.contains("p4ss") && !listed.stdout.contains("p4ss"))
        #expect(imported.stdout.contains("one connects through its SOCKS5 proxy proxy.example:1080 as u"), "\(imported.stdout)")
        // No session format has room for a proxy: the export says so.
        let exported = try await cli.run(["session", "export", "--account", "one", "--format", "telethon-file", "--output", root + "/one.session"])
        #expect(exported.status == 0 && exported.stderr.contains("connects through its SOCKS5 proxy proxy.example:1080"), "\(exported.stderr)")
        // The same link again changes nothing, and says so.
        let again = try await cli.run(["session", "proxy", "--account", "one", "--set", "socks5://u:p4ss@proxy.example:1080", "--json"])
        #expect(again.stdout.contains("\"change\" : \"unchanged\""), "\(again.stdout)")
    }

    /// What people moving from Telethon get wrong: one session imported into two accounts (both
    /// would connect with the key and Telegram would destroy it), a string session pasted as the
    /// argument (it must not come back on stderr, where logs keep it), Telethon's session name
    /// without its .session.
    @Test func importRefusesOneKeyForTwoAccountsAndNeverEchoesAStringSession() async throws {
        let (root, cli) = try CLI.temporary()
        let key = try CLIFixtures.key(seed: 3)
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "127.0.0.1", port: 24402)))
        try CLIFixtures.write(string, to: root + "/one.txt")
        #expect(try await cli.run(["session", "import", "--account", "one", root + "/one.txt"]).status == 0)
        let twice = try await cli.run(["session", "import", "--account", "two", root + "/one.txt"])
        #expect(twice.status == 10, "\(twice.stderr)")
        #expect(twice.stderr.contains("already the session of account one"), "\(twice.stderr)")
        let listed = try await cli.run(["session", "list", "--json"])
        #expect(try listed.json([AccountJSON].self).map(\.account) == ["one"])
        // Another Telegram user's session does not replace an account's, even with --replace.
        let pyrogram = { (seed: UInt8, user: Int64) throws in
            try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: seed), userID: user, isBot: false, apiID: 1, isTestMode: false))
        }
        #expect(try await cli.run(["session", "import", "--account", "four", "-"], stdin: try pyrogram(5, 1001)).status == 0)
        let otherUser = try await cli.run(["session", "import", "--account", "four", "--replace", "-"], stdin: try pyrogram(6, 1003))
        #expect(otherUser.status == 10 && otherUser.stderr.contains("user 1001"), "\(otherUser.stderr)")
        #expect(try await cli.run(["session", "import", "--account", "four", "--replace", "-"], stdin: try pyrogram(7, 1001)).status == 0)

        let pasted = try await cli.run(["session", "import", "--account", "three", string])
        #expect(pasted.status == 2, "\(pasted.stderr)")
        #expect(pasted.stderr.contains("looks like a string session"), "\(pasted.stderr)")
        #expect(!pasted.stderr.contains(String(string.prefix(24))), "\(pasted.stderr)")

        try CLIFixtures.write(string, to: root + "/telethon.session")
        let unnamed = try await cli.run(["session", "import", "--account", "three", root + "/telethon"])
        #expect(unnamed.status == 4 && unnamed.stderr.contains("telethon.session does"), "\(unnamed.stderr)")
    }

    /// A string session as people paste it (wrapped across lines, in Python's quotes) imports; an
    /// empty file, a directory, a .session file piped to stdin each get told what they are.
    @Test func importTakesAStringAsPastedAndSaysWhatIsWrongWithTheRest() async throws {
        let (root, cli) = try CLI.temporary()
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 4),
                                                                      address: DCAddress(host: "127.0.0.1", port: 24402)))
        let wrapped = "'" + string.prefix(80) + "\n" + string.dropFirst(80).prefix(80) + "\r\n" + string.dropFirst(160) + "'\n"
        let pasted = try await cli.run(["session", "import", "--account", "pasted", "-"], stdin: wrapped)
        #expect(pasted.status == 0, "\(pasted.stderr)")

        try Data().write(to: URL(fileURLWithPath: root + "/empty.session"))
        let empty = try await cli.run(["session", "import", "--account", "x", root + "/empty.session"])
        #expect(empty.status == 1 && empty.stderr.contains("is empty"), "\(empty.stderr)")
        try FileManager.default.createDirectory(atPath: root + "/dir.session", withIntermediateDirectories: true)
        let directory = try await cli.run(["session", "import", "--account", "x", root + "/dir.session"])
        #expect(directory.status == 2 && directory.stderr.contains("is a directory"), "\(directory.stderr)")
        let sqlite = try await cli.run(["session", "import", "--account", "x", "-"], stdin: "SQLite format 3\u{0}" + String(repeating: "x", count: 200))
        #expect(sqlite.status == 2 && sqlite.stderr.contains("give the file's path instead of -"), "\(sqlite.stderr)")
        let nothing = try await cli.run(["session", "import", "--account", "x", "-"], stdin: "\n")
        #expect(nothing.status == 2 && nothing.stderr.contains("stdin was empty"), "\(nothing.stderr)")
    }

    @Test func importListBackupDamageCheckRestore() async throws {
        let (root, cli) = try CLI.temporary()
        let aliceKey = try CLIFixtures.key(seed: 1)
        let bobKey = try CLIFixtures.key(seed: 2)
        // Alice: a Telethon string session written by Telethon itself when the pinned venv exists.
        let telethon = try await CLIFixtures.telethonString(key: aliceKey, dc: 2, host: "127.0.0.1", port: 24402)
            ?? TelethonStringSession.encode(PortableSession(dc: 2, authKey: aliceKey, address: DCAddress(host: "127.0.0.1", port: 24402)))
        try CLIFixtures.write(telethon, to: root + "/alice.txt")
        let imported = try await cli.run(["session", "import", "--account", "alice", root + "/alice.txt"])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("imported Telethon string session into alice: DC 2"))
        // Bob: a Pyrogram string on stdin.
        let pyrogram = try PyrogramStringSession.encode(PortableSession(dc: 4, authKey: bobKey, userID: 777, isBot: false, apiID: 12345, isTestMode: false))
        let piped = try await cli.run(["session", "import", "--account", "bob", "-", "--json"], stdin: pyrogram)
        #expect(piped.status == 0, "\(piped.stderr)")
        let pipedObject = try #require(try piped.jsonObject() as? [String: Any])
        #expect(pipedObject["format"] as? String == "pyrogramString")
        #expect(pipedObject["userID"] as? Int == 777)

        #expect(CLIFixtures.mode(cli.store) == 0o700)
        #expect(CLIFixtures.mode(cli.store + "/sessions.sqlite") == 0o600)

        let list = try await cli.run(["session", "list", "--json"])
        #expect(list.status == 0, "\(list.stderr)")
        let accounts = try list.json([AccountJSON].self)
        #expect(accounts.map(\.account) == ["alice", "bob"])
        #expect(accounts.first?.homeDC == 2 && accounts.first?.authorizedDCs == [2] && accounts.first?.lease.state == "free")
        #expect(accounts.last?.userID == 777 && accounts.last?.status == "active")
        // Keys never reach the output, in any form.
        for output in [list.stdout, imported.stdout, piped.stdout] {
            #expect(!output.contains(telethon) && !output.contains(pyrogram) && !output.contains(CLIFixtures.hex(aliceKey.bytes).prefix(32)))
        }
        let table = try await cli.run(["session", "list"])
        #expect(table.stdout.contains("ACCOUNT") && table.stdout.contains("alice") && !table.stdout.contains("\u{1B}["), "no colors on a pipe")

        let backup = try await cli.run(["session", "backup", "--json"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let taken = try backup.json(BackupJSON.self)
        #expect(CLIFixtures.mode(cli.store + "/backups/" + taken.file) == 0o600)
        let listed = try await cli.run(["session", "backup", "--list", "--verify", "--json"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let backups = try listed.json([BackupJSON].self)
        #expect(backups.first?.file == taken.file)
        #expect(backups.allSatisfy { $0.verification == "verified" })

        // A check of a healthy store changes nothing in it (before: each check rewrote the file's header).
        let beforeCheck = try Data(contentsOf: URL(fileURLWithPath: cli.store + "/sessions.sqlite"))
        let healthy = try await cli.run(["check", "--json"])
        #expect(healthy.status == 0, "\(healthy.stdout)")
        #expect(try healthy.json(CheckJSON.self).ok)
        #expect(try Data(contentsOf: URL(fileURLWithPath: cli.store + "/sessions.sqlite")) == beforeCheck)

        // Damage the store's header: check reports it read-only (the file stays as it was) and says how to restore.
        let storeFile = cli.store + "/sessions.sqlite"
        try CLIFixtures.zero(storeFile, offset: 0, count: 100)
        let damagedBytes = try Data(contentsOf: URL(fileURLWithPath: storeFile))
        let check = try await cli.run(["check"])
        #expect(check.status == 5, "\(check.stdout)\(check.stderr)")
        #expect(check.stdout.contains("damaged") && check.stdout.contains("tgsm session restore"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: storeFile)) == damagedBytes)

        let restore = try await cli.run(["session", "restore", "--json"])
        #expect(restore.status == 0, "\(restore.stderr)")
        let restored = try #require(try restore.jsonObject() as? [String: Any])
        #expect(restored["restored"] as? String == taken.file)
        let movedTo = try #require(restored["previousFileMovedTo"] as? String)
        #expect(try Data(contentsOf: URL(fileURLWithPath: movedTo)) == damagedBytes, "the damaged file is kept aside, not deleted")

        let after = try await cli.run(["session", "list", "--json"])
        #expect(after.status == 0, "\(after.stderr)")
        #expect(try after.json([AccountJSON].self).map(\.account) == ["alice", "bob"])
        let store = try SQLiteSessionStore.open(directory: cli.store)
        #expect(try await store.loadSession(account: "alice")?.dcs[2]?.authKey == aliceKey)
        try store.close()
    }

    /// A store from before `session import` refused it, with one key under two accounts: `tgsm
    /// check` names them (run together, Telegram destroys the key for both).
    @Test func checkNamesAccountsThatShareOneKey() async throws {
        let (_, cli) = try CLI.temporary()
        let key = try CLIFixtures.key(seed: 8)
        let store = try SQLiteSessionStore.open(directory: cli.store)
        let shared = SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key, serverSalt: 1, timeOffset: 0, isAuthorized: true)], userID: 1001, isBot: false)
        try await store.saveSession(shared, account: "one", fence: nil)
        try await store.saveSession(shared, account: "two", fence: nil)
        try store.close()
        let check = try await cli.run(["check", "--json"])
        let report = try check.json(CheckJSON.self)
        #expect(report.exitCode == 3)
        #expect(report.findings.filter { $0.message.contains("accounts one, two hold the same auth key") }.count == 1, "\(check.stdout)")
    }

    @Test func aDamagedStoreWithoutBackupIsATypedErrorNotACrash() async throws {
        let (root, cli) = try CLI.temporary()
        let string = try TelethonStringSession.encode(PortableSession(dc: 1, authKey: try CLIFixtures.key(seed: 3), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await cli.run(["session", "import", "--account", "carol", root + "/s.txt"]).status == 0)
        try FileManager.default.removeItem(atPath: cli.store + "/backups")
        try FileManager.default.createDirectory(atPath: cli.store + "/backups", withIntermediateDirectories: false)
        try CLIFixtures.zero(cli.store + "/sessions.sqlite", offset: 0, count: 100)
        for arguments in [["session", "list"], ["status"], ["session", "export", "--account", "carol", "--format", "telethon-string", "--stdout"]] {
            let result = try await cli.run(arguments)
            #expect(!result.crashed)
            #expect(result.status == 5, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("store.damaged_without_backup") && result.stderr.contains("left in place untouched"))
        }
        let check = try await cli.run(["check", "--json"])
        #expect(check.status == 5)
        let report = try check.json(CheckJSON.self)
        #expect(report.findings.contains { $0.check == "backups" && $0.level == "problem" })
        for arguments in [["session", "restore"], ["session", "restore", "--backup", "sessions-1.sqlite"]] {
            let restore = try await cli.run(arguments)
            #expect(restore.status == 4 && restore.stderr.contains("there is no backup in \(cli.store)/backups to restore; nothing was changed"),
                    "\(arguments): \(restore.stderr)")
        }
    }

    @Test func aMissingStoreIsNotFoundAndNotCreated() async throws {
        let (_, cli) = try CLI.temporary()
        for arguments in [["session", "list"], ["status", "--json"], ["session", "backup"]] {
            let result = try await cli.run(arguments)
            #expect(result.status == 4, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("there is no session store"))
        }
        #expect(try await cli.run(["check"]).status == 4)
        #expect(!FileManager.default.fileExists(atPath: cli.store))
    }

    @Test func exportWritesA0600FileOrStdoutOnlyWhenAsked() async throws {
        let (root, cli) = try CLI.temporary()
        let key = try CLIFixtures.key(seed: 4)
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "127.0.0.1", port: 24402)))
        try CLIFixtures.write(string, to: root + "/in.txt")
        #expect(try await cli.run(["session", "import", "--account", "dave", root + "/in.txt"]).status == 0)

        let noTarget = try await cli.run(["session", "export", "--account", "dave", "--format", "telethon-string"])
        #expect(noTarget.status == 2 && noTarget.stdout.isEmpty)

        let out = root + "/out.txt"
        let exported = try await cli.run(["session", "export", "--account", "dave", "--format", "telethon-string", "--output", out, "--address", "127.0.0.1:24402"])
        #expect(exported.status == 0, "\(exported.stderr)")
        #expect(exported.stdout.isEmpty)
        #expect(CLIFixtures.mode(out) == 0o600)
        let written = try String(contentsOfFile: out, encoding: .utf8)
        #expect(try TelethonStringSession.decode(written.trimmingCharacters(in: .whitespacesAndNewlines)).authKey == key)
        #expect(try await cli.run(["session", "export", "--account", "dave", "--format", "telethon-string", "--output", out]).status == 10)
        // Telethon itself loads the export (when the pinned venv is there).
        if let read = try await CLIFixtures.telethonReads(written) {
            #expect(read == "2 127.0.0.1 24402 \(CLIFixtures.hex(key.bytes))")
        }

        let printed = try await cli.run(["session", "export", "--account", "dave", "--format", "pyrogram-string", "--stdout", "--api-id", "99"])
        #expect(printed.status == 1 && printed.stderr.contains("needs the account's user id"), "Telethon strings carry no user id; Pyrogram needs one")

        let file = root + "/dave.session"
        let telethonFile = try await cli.run(["session", "export", "--account", "dave", "--format", "telethon-file", "--output", file, "--address", "127.0.0.1:24402"])
        #expect(telethonFile.status == 0, "\(telethonFile.stderr)")
        #expect(CLIFixtures.mode(file) == 0o600)
        #expect(try TelethonSessionFile.read(path: file).authKey == key)
        let reimport = try await cli.run(["session", "import", "--account", "dave", file])
        #expect(reimport.status == 10, "an existing session is not replaced without --replace")
        // The same key under a second account is refused; into another store it imports.
        #expect(try await cli.run(["session", "import", "--account", "dave2", file]).status == 10)
        #expect(try await CLI(store: root + "/other").run(["session", "import", "--account", "dave2", file]).stdout.contains("Telethon session file"))
    }

    /// A Pyrogram file in either schema: 7 (kurigram, the default) keeps the address given, 3 (the
    /// original Pyrogram 2.0.106) has none, so it reads back with the address of Pyrogram's table.
    @Test func exportsPyrogramFilesInEitherSchema() async throws {
        let (root, cli) = try CLI.temporary()
        let key = try CLIFixtures.key(seed: 6)
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: key, userID: 5_000_000_007, apiID: 99))
        try CLIFixtures.write(string, to: root + "/in.txt")
        #expect(try await cli.run(["session", "import", "--account", "pia", root + "/in.txt"]).status == 0)

        let base = ["session", "export", "--account", "pia", "--format", "pyrogram-file", "--api-id", "99", "--address", "127.0.0.1:24402"]
        let v7 = try await cli.run(base + ["--output", root + "/v7.session"])
        #expect(v7.status == 0, "\(v7.stderr)")
        #expect(try PyrogramSessionFile.read(path: root + "/v7.session").address == DCAddress(host: "127.0.0.1", port: 24402))
        // Schema 3 names only the DC id: an address given for it is refused, not dropped.
        let refused = try await cli.run(base + ["--output", root + "/v3.session", "--pyrogram-schema", "3"])
        #expect(refused.status == 2 && refused.stderr.contains("--address cannot be kept by a schema-3 Pyrogram file"), "\(refused.stderr)")
        let v3 = try await cli.run(Array(base.dropLast(2)) + ["--output", root + "/v3.session", "--pyrogram-schema", "3"])
        #expect(v3.status == 0, "\(v3.stderr)")
        let read = try PyrogramSessionFile.read(path: root + "/v3.session")
        #expect(read.authKey == key && read.userID == 5_000_000_007 && read.apiID == 99)
        #expect(read.address == DCAddress(host: "149.154.167.51", port: 443))
        #expect(CLIFixtures.mode(root + "/v3.session") == 0o600)

        let unknown = try await cli.run(base + ["--output", root + "/v5.session", "--pyrogram-schema", "5"])
        #expect(unknown.status == 2 && unknown.stderr.contains("--pyrogram-schema"), "\(unknown.stderr)")
        let notAFile = try await cli.run(["session", "export", "--account", "pia", "--format", "pyrogram-string", "--api-id", "99", "--stdout", "--pyrogram-schema", "3"])
        #expect(notAFile.status == 2 && notAFile.stdout.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: root + "/v5.session"))
    }

    @Test func statusShowsExactLimitsDeadlinesAndQueueDepth() async throws {
        let (root, base) = try CLI.temporary()
        var cli = base
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 5), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await cli.run(["session", "import", "--account", "erin", root + "/s.txt"]).status == 0)
        let now = UnixTime(seconds: 1_800_000_000)
        let store = try SQLiteSessionStore.open(directory: cli.store)
        try await store.recordFloodWait(FloodWait(account: "erin", method: "contacts.resolveUsername", kind: .floodWait, recordedAt: now, until: now + 3600, dc: 2))
        let phoneKey = try await store.phoneKey(for: "+15550001111")
        try await store.setSendCodeDeadline(now + 120, account: "erin", phoneKey: phoneKey)
        try store.close()

        cli.environment["TGSM_NOW"] = "1800000000"
        let first = try await cli.run(["jobs", "enqueue", "--kind", "resolve", "--account", "erin", "--payload", #"{"username":"testnews"}"#, "--idempotency-key", "k1", "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        let again = try await cli.run(["jobs", "enqueue", "--kind", "resolve", "--account", "erin", "--payload", #"{"username":"testnews"}"#,
                                       "--idempotency-key", "k1", "--json"])
        let firstID = try #require(try first.jsonObject() as? [String: Any])["id"] as? Int
        let againObject = try #require(try again.jsonObject() as? [String: Any])
        #expect(againObject["id"] as? Int == firstID && againObject["created"] as? Bool == false)
        #expect(try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "erin", "--run-at", "+60"]).status == 0)
        #expect(CLIFixtures.mode(cli.store + "/jobs.sqlite") == 0o600)

        let status = try await cli.run(["status", "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        let report = try #require(try status.jsonObject() as? [String: Any])
        let waits = try #require(report["floodWaits"] as? [[String: Any]])
        #expect(waits.count == 1)
        #expect(waits.first?["method"] as? String == "contacts.resolveUsername")
        #expect(waits.first?["until"] as? String == "2027-01-15T09:00:00Z")
        #expect(waits.first?["remainingSeconds"] as? Double == 3600)
        let deadlines = try #require(report["sendCodeDeadlines"] as? [[String: Any]])
        #expect(deadlines.first?["remainingSeconds"] as? Double == 120)
        #expect((report["queue"] as? [String: Int])?["queued"] == 2)
        #expect(!status.stdout.contains("5550001111") && !status.stdout.contains(phoneKey))

        // Reading commands write nothing: no file of the store changes, none appears (the -shm
        // files are SQLite's shared-memory index, where every reader marks what it reads).
        let files = try Self.fingerprint(cli.store)
        let table = try await cli.run(["status"])
        #expect(try await cli.run(["session", "list"]).status == 0)
        let after = try Self.fingerprint(cli.store)
        #expect(after == files, "\(after.filter { files[$0.key] != $0.value }) \(files.filter { after[$0.key] != $0.value })")
        #expect(table.stdout.contains("contacts.resolveUsername") && table.stdout.contains("1h00m00s (3600 s)") && table.stdout.contains("queued 2"))

        let watched = try await cli.run(["status", "--watch", "--interval", "0.05", "--count", "3"])
        #expect(watched.status == 0, "\(watched.stderr)")
        #expect(watched.stdout.components(separatedBy: "contacts.resolveUsername").count - 1 == 3, "three redraws")
        #expect(!watched.stdout.contains("\u{1B}[2J"), "a pipe is not cleared")
        #expect(try await cli.run(["status", "--watch", "--json"]).status == 2)
        // On a terminal each redraw clears the screen first and shows the countdown again.
        let terminal = try PseudoTerminal(arguments: ["status", "--watch", "--interval", "0.05", "--count", "3", "--store", cli.store],
                                          environment: cli.environment)
        #expect(try await terminal.status() == 0, "\(terminal.output)")
        #expect(terminal.output.components(separatedBy: "\u{1B}[H\u{1B}[2J").count - 1 == 3, "three clears: \(terminal.output)")
        #expect(terminal.output.components(separatedBy: "(3600 s)").count - 1 == 3)
        // The queue stays open across redraws, and a job enqueued meanwhile shows on the next one.
        let watching = try PseudoTerminal(arguments: ["status", "--watch", "--interval", "0.05", "--count", "100000", "--store", cli.store],
                                          environment: cli.environment)
        let shown = try await watching.expect("queued 2")
        #expect(try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "erin", "--run-at", "+120"]).status == 0)
        _ = try await watching.expect("queued 3", after: shown)
        watching.signal(SIGTERM)
        _ = try await watching.status()

        let check = try await cli.run(["check"])
        #expect(check.status == 7, "rate limited: \(check.stdout)")
        #expect(check.stdout.contains("until 2027-01-15T09:00:00Z"))
    }

    /// Every file of a directory tree with its size and modification time (-shm files: only that they exist).
    static func fingerprint(_ directory: String) throws -> [String: String] {
        var result: [String: String] = [:]
        let manager = FileManager.default
        for name in try manager.subpathsOfDirectory(atPath: directory) {
            if name.hasSuffix("-shm") {
                result[name] = "shared memory"
                continue
            }
            let attributes = try manager.attributesOfItem(atPath: directory + "/" + name)
            let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            result[name] = "\(attributes[.size] ?? 0) \(modified)"
        }
        return result
    }

    /// Colors on a terminal (a pseudo-terminal from util-linux `script`), none with NO_COLOR or on a pipe.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script")))
    func colorsOnlyOnATerminalWithoutNoColor() async throws {
        let (root, cli) = try CLI.temporary()
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 7), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await cli.run(["session", "import", "--account", "hank", root + "/s.txt"]).status == 0)
        let command = "\(CLI.binary) session list --store \(cli.store)"
        let onTTY = try await cli.run(["-qec", command, "/dev/null"], executable: "/usr/bin/script", withStore: false)
        #expect(onTTY.status == 0 && onTTY.stdout.contains("\u{1B}[32mactive"), "\(onTTY.stdout)")
        var plain = cli
        plain.environment["NO_COLOR"] = "1"
        let noColor = try await plain.run(["-qec", command, "/dev/null"], executable: "/usr/bin/script", withStore: false)
        #expect(noColor.status == 0 && noColor.stdout.contains("hank") && !noColor.stdout.contains("\u{1B}["))
    }

    @Test func jobsListRetryCancelAndTheirErrors() async throws {
        let (_, cli) = try CLI.temporary()
        // A store directory that does not exist (a mistyped --store) is refused, and nothing is created there.
        let typo = try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "frank"])
        #expect(typo.status == 4 && typo.stderr.contains("there is no store at") && typo.stdout.isEmpty, "\(typo.stderr)")
        #expect(!FileManager.default.fileExists(atPath: cli.store))
        // One that exists but holds no session store yet takes the job, and says who must log in.
        try FileManager.default.createDirectory(atPath: cli.store, withIntermediateDirectories: true)
        let enqueued = try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "frank", "--priority", "3", "--json"])
        #expect(enqueued.status == 0, "\(enqueued.stderr)")
        #expect(enqueued.stderr.contains("no session store in") && enqueued.stderr.contains("until frank is logged in"), "\(enqueued.stderr)")
        let object = try #require(try enqueued.jsonObject() as? [String: Any])
        let id = try #require(object["id"] as? Int)
        #expect(try await cli.run(["jobs", "cancel", String(id)]).status == 0)
        let cancelled = try await cli.run(["jobs", "list", "--state", "cancelled", "--json"])
        let jobs = try #require(try cancelled.jsonObject() as? [[String: Any]])
        #expect(jobs.count == 1 && jobs.first?["priority"] as? Int == 3 && jobs.first?["payload"] as? String == "{}")
        #expect(try await cli.run(["jobs", "retry", String(id)]).status == 0)
        let queued = try await cli.run(["jobs", "list", "--state", "queued"])
        #expect(queued.stdout.contains("frank") && queued.stdout.contains("0/5"))
        let missing = try await cli.run(["jobs", "cancel", "999"])
        #expect(missing.status == 4 && missing.stderr.contains("job 999 does not exist"))
        #expect(try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "frank", "--payload", "{nope"]).status == 2)
        #expect(try await cli.run(["jobs", "list", "--state", "sleeping"]).status == 2)
        #expect(try await cli.run(["session", "list", "--no-such-option"]).status == 2)
    }

    @Test func jobsPurgeDeletesFinishedJobsOnly() async throws {
        let (_, cli) = try CLI.temporary()
        try FileManager.default.createDirectory(atPath: cli.store, withIntermediateDirectories: true)
        var ids: [Int] = []
        for key in ["p1", "p2"] {
            let enqueued = try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "ivy", "--idempotency-key", key, "--json"])
            ids.append(try #require((try enqueued.jsonObject() as? [String: Any])?["id"] as? Int))
        }
        #expect(try await cli.run(["jobs", "cancel", String(ids[0])]).status == 0)
        let young = try await cli.run(["jobs", "purge"])
        #expect(young.status == 0 && young.stdout.contains("deleted 0 cancelled/completed jobs"), "\(young.stdout)")
        let dry = try await cli.run(["jobs", "purge", "--older-than", "0", "--dry-run", "--json"])
        let counted = try #require(try dry.jsonObject() as? [String: Any])
        #expect(counted["removed"] as? Int == 1 && counted["dryRun"] as? Bool == true, "\(dry.stdout)")
        let purged = try await cli.run(["jobs", "purge", "--older-than", "0"])
        #expect(purged.status == 0 && purged.stdout.contains("deleted 1 cancelled/completed job that finished before"), "\(purged.stdout)")
        let left = try #require(try await cli.run(["jobs", "list", "--json"]).jsonObject() as? [[String: Any]])
        #expect(left.map { $0["id"] as? Int } == [ids[1]], "the queued job stays")
        // The purged job's idempotency key takes a new job.
        let reused = try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "ivy", "--idempotency-key", "p1", "--json"])
        #expect((try reused.jsonObject() as? [String: Any])?["created"] as? Bool == true, "\(reused.stdout)")
        let live = try await cli.run(["jobs", "purge", "--state", "queued"])
        #expect(live.status == 2 && live.stderr.contains("has not finished"), "\(live.stderr)")
    }

    /// A damaged jobs.sqlite. Before, the advice was `sqlite3 .recover` or an empty queue: every
    /// job enqueued again from memory. `tgsm jobs salvage` keeps every job that reads, as it was,
    /// and names the ids that may be lost.
    /// A leaf page in the middle of the jobs table, with every page checkpointed into the main file.
    static func middleLeafOfJobs(_ path: String) throws -> (page: Int, size: Int) {
        let database = try DatabaseQueue(path: path)
        defer { try? database.close() }
        return try database.writeWithoutTransaction { db -> (Int, Int) in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            let leaves = try Int.fetchAll(db, sql: "SELECT pageno FROM dbstat WHERE name = 'jobs' AND pagetype = 'leaf' ORDER BY pageno")
            return (leaves[leaves.count / 2], try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
        }
    }

    @Test func jobsSalvageRebuildsADamagedQueueAndNamesTheJobsThatMayBeLost() async throws {
        let (_, cli) = try CLI.temporary()
        // A store beside the queue, for `check` to go on to the queue.
        try SQLiteSessionStore.open(directory: cli.store).close()
        let path = cli.store + "/jobs.sqlite"
        let queue = try SQLiteJobQueue.open(path: path)
        let now = SystemClock().now()
        for i in 1...2000 {
            _ = try await queue.enqueue(NewJob(kind: "me", account: "ivy", payload: Data(repeating: 0x41, count: 200), idempotencyKey: "k\(i)"), now: now)
        }
        try queue.writer.close()
        let (page, pageSize) = try Self.middleLeafOfJobs(path)
        try CLIFixtures.zero(path, offset: UInt64((page - 1) * pageSize), count: pageSize)

        let listed = try await cli.run(["jobs", "list", "--limit", "5000"])
        #expect(listed.status == 5 && listed.stderr.contains("tgsm jobs salvage"), "\(listed.status) \(listed.stdout)\n\(listed.stderr)")
        // `check` reads every page of the queue: before, its counts (from an index) said "ok".
        let checked = try await cli.run(["check"])
        #expect(checked.status == 5 && checked.stdout.contains("FAIL  job queue: jobs.sqlite is damaged")
                && checked.stdout.contains("tgsm jobs salvage"), "\(checked.stdout)")
        let salvaged = try await cli.run(["jobs", "salvage"])
        #expect(salvaged.status == 0, "\(salvaged.stderr)")
        #expect(salvaged.stdout.contains("was damaged: a new queue was built from what still reads in it; the damaged file was kept as \(path).damaged-"))
        let lost = try #require(salvaged.stdout.firstMatch(of: /may be lost: jobs (\d+)-(\d+)/), "\(salvaged.stdout)")
        let (from, through) = (try #require(Int(lost.1)), try #require(Int(lost.2)))
        let kept = try #require(try await cli.run(["jobs", "list", "--limit", "5000", "--json"]).jsonObject() as? [[String: Any]])
        let ids = Set(kept.compactMap { $0["id"] as? Int })
        #expect(ids.count == 2000 - (through - from + 1) && ids.allSatisfy { !(from...through).contains($0) }, "\(ids.count) kept, \(from)-\(through) lost")
        #expect(salvaged.stdout.contains("jobs kept: \(ids.count) (queued \(ids.count))"), "\(salvaged.stdout)")
        // Which they were, from the history: every one only enqueued, each listed to enqueue again.
        let count = through - from + 1
        #expect(salvaged.stdout.contains("the history kept names \(count) of them, \(count) not ended"), "\(salvaged.stdout)")
        #expect(salvaged.stdout.contains("ENQUEUE AGAIN") && salvaged.stdout.contains("\(from)  me    ivy      enqueued"), "\(salvaged.stdout)")
        // No archive in this file (no `tgsm run` made one): nothing of it is said to be lost.
        #expect(salvaged.stdout.contains("archive kept: 0 messages, 0 resolved peers\n"), "\(salvaged.stdout)")
        #expect(try await cli.run(["check"]).stdout.contains("ok    job queue: \(ids.count) queued"))
        let again = try await cli.run(["jobs", "salvage"])
        #expect(again.status == 1 && again.stderr.contains("not damaged"), "\(again.stderr)")
    }

    /// `tgsm jobs show`: one job whole, with the changes the queue kept and what to do; a job that
    /// is not there is exit 4 naming `tgsm jobs list`.
    @Test func jobsShowTellsOneJobsWholeStory() async throws {
        let (_, cli) = try CLI.temporary()
        try SQLiteSessionStore.open(directory: cli.store).close()
        let queue = try SQLiteJobQueue.open(path: cli.store + "/jobs.sqlite")
        let t0 = SystemClock().now()
        let payload = #"{"peer": {"type": "user", "id": 424242}, "text": "hello"}"#
        let id = try await queue.enqueue(NewJob(kind: "send", account: "ivy", payload: Data(payload.utf8), idempotencyKey: "greeting-1", maxAttempts: 2),
                                         now: t0).id
        let binary = try await queue.enqueue(NewJob(kind: "me", account: "jan", payload: Data([0xFF, 0xFE, 0x00])), now: t0).id
        let request = ClaimRequest(accounts: ["ivy"], limit: 1, perAccountLimit: 1, owner: "w1", leaseSeconds: 30)
        let first = try #require(try await queue.claim(request, now: t0 + 1).first)
        try await queue.deferJob(first.claim, until: t0 + 2, reason: "FLOOD_WAIT_1 on messages.sendMessage", now: t0 + 1)
        let second = try #require(try await queue.claim(request, now: t0 + 3).first)
        try await queue.retry(second.claim, error: "TGSM-NET-002: no answer in time", retryAt: t0 + 4, now: t0 + 3)
        let third = try #require(try await queue.claim(request, now: t0 + 5).first)
        try await queue.retry(third.claim, error: "PEER_ID_INVALID: messages.sendMessage refused the peer", retryAt: nil, now: t0 + 5)
        try queue.writer.close()

        let shown = try await cli.run(["jobs", "show", "\(id.rawValue)"])
        #expect(shown.status == 0, "\(shown.stderr)")
        let out = shown.stdout
        #expect(out.hasPrefix("job \(id.rawValue): send for ivy, dead (attempt 2 of 2, deferred 1 time)"), "\(out)")
        #expect(out.contains("  idempotency key: greeting-1\n") && out.contains("  payload: \(payload)\n"), "\(out)")
        #expect(out.contains("  last error: PEER_ID_INVALID: messages.sendMessage refused the peer\n"), "\(out)")
        let changes = out.split(separator: "\n").filter { $0.hasPrefix("  20") }.map { line -> String in
            let words = line.split(separator: " ")
            return words.count > 1 ? String(words[1]) : ""
        }
        #expect(changes == ["enqueued", "deferred:", "retried:", "dead:"], "\(out)")
        #expect(out.contains("deferred: FLOOD_WAIT_1 on messages.sendMessage") && out.contains("retried: TGSM-NET-002: no answer in time"), "\(out)")
        #expect(out.contains("what to do:\n  1. The job is a dead letter.") && out.contains("`tgsm jobs retry \(id.rawValue)`")
                && out.contains("`tgsm jobs cancel \(id.rawValue)`"), "\(out)")

        let json = try #require(try await cli.run(["jobs", "show", "\(id.rawValue)", "--json"]).jsonObject() as? [String: Any])
        #expect((json["history"] as? [[String: Any]])?.compactMap { $0["event"] as? String } == ["enqueued", "deferred", "retried", "dead"])
        #expect((json["job"] as? [String: Any])?["state"] as? String == "dead" && json["payloadIsText"] as? Bool == true)

        // A payload that is not text is said as such, not printed; a queued job says when it runs.
        let other = try await cli.run(["jobs", "show", "\(binary.rawValue)"])
        #expect(other.stdout.contains("  payload: 3 bytes, not text\n") && other.stdout.contains("Due: it runs when a `tgsm run` serving jan has a free slot"),
                "\(other.stdout)")
        // Text from a payload or an error has no power over the terminal: an escape that would
        // retitle the window, clear the screen or rewrite the line is shown, not obeyed.
        let hostile = "{\"text\": \"\u{1B}]0;pwned\u{07}\u{1B}[2J\rok\u{9B}31m\"}"
        let sneaky = try SQLiteJobQueue.open(path: cli.store + "/jobs.sqlite")
        let trap = try await sneaky.enqueue(NewJob(kind: "send", account: "jan", payload: Data(hostile.utf8)), now: t0).id
        try sneaky.writer.close()
        let inert = try await cli.run(["jobs", "show", "\(trap.rawValue)"])
        #expect(!inert.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x0D || $0.value == 0x9B },
                "\(inert.stdout.debugDescription)")
        #expect(inert.stdout.contains("^[]0;pwned^G^[[2J^Mok\u{FFFD}31m"), "\(inert.stdout.debugDescription)")
        let missing = try await cli.run(["jobs", "show", "424242"])
        #expect(missing.status == 4 && missing.stderr.contains("job 424242 does not exist") && missing.stderr.contains("list jobs"), "\(missing.stderr)")
    }

    @Test func marksAndLiveLeasesAreReported() async throws {
        let (root, cli) = try CLI.temporary()
        let string = try TelethonStringSession.encode(PortableSession(dc: 3, authKey: try CLIFixtures.key(seed: 6), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await cli.run(["session", "import", "--account", "gina", root + "/s.txt"]).status == 0)
        let store = try SQLiteSessionStore.open(directory: cli.store)
        try await store.setStatus(AccountStatus(state: .revoked, since: SystemClock().now(), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "gina")
        // This test process holds the lease: alive, on this host.
        let lease = try await store.acquireLease(account: "gina", holder: .current(), now: SystemClock().now(), ttl: 600,
                                                 holderIsDead: LeaseHolder.isDeadOnThisHost)

        let list = try await cli.run(["session", "list", "--json"])
        let gina = try #require(try list.json([AccountJSON].self).first)
        #expect(gina.status == "revoked" && gina.statusCode == "TGSM-AUTH-002" && gina.guidance?.isEmpty == false)
        #expect(gina.lease.state == "held" && gina.lease.pid == getpid())

        let check = try await cli.run(["check"])
        #expect(check.status == 8, "\(check.stdout)")
        #expect(check.stdout.contains("marked revoked") && check.stdout.contains("(alive)"))

        let restore = try await cli.run(["session", "restore"])
        #expect(restore.status == 6 && restore.stderr.contains("in use by pid \(getpid())"))
        let reimport = try await cli.run(["session", "import", "--account", "gina", "--replace", root + "/s.txt"])
        #expect(reimport.status == 6)

        try await store.releaseLease(lease)
        // As a revoked client leaves it: the key kept, logged out. The import logs it in, and a
        // save that logs in ends the mark by itself on SQLite: the import still says it was cleared.
        var loggedOut = try #require(try await store.loadSession(account: "gina"))
        for dc in Array(loggedOut.dcs.keys) { loggedOut.dcs[dc]?.isAuthorized = false }
        try await store.saveSession(loggedOut, account: "gina", fence: nil)
        try store.close()
        let replaced = try await cli.run(["session", "import", "--account", "gina", "--replace", root + "/s.txt"])
        #expect(replaced.status == 0 && replaced.stdout.contains("mark revoked (TGSM-AUTH-002) was cleared"), "\(replaced.stdout) \(replaced.stderr)")
    }

    /// A mark this version cannot read (a newer tgsm wrote it, or a hand edit): every command refuses
    /// the account, and the advice named a restore (which copies the mark back) or a login (which
    /// reads it first). `tgsm session clear-mark` clears it, and a stale readable one, keeping the
    /// session; not a deactivated one, and not under a live holder.
    @Test func clearMarkEndsAMarkThatCannotBeReadOrIsStale() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 43), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: string).status == 0)
        var store = try SQLiteSessionStore.open(directory: cli.store)
        try await store.setStatus(AccountStatus(state: .revoked, since: UnixTime(seconds: 1_800_000_000), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"),
                                  for: "alice")
        try store.close()
        let database = try DatabaseQueue(path: cli.store + "/sessions.sqlite")
        try await database.write { try $0.execute(sql: "UPDATE account_status SET state = 'suspended' WHERE account = 'alice'") }
        try database.close()

        // An account that needs a person (exit 8), not a damaged store (5): the file is fine.
        let check = try await cli.run(["check"])
        #expect(check.status == 8 && check.stdout.contains("tgsm session clear-mark --account alice"), "\(check.stdout)")
        #expect(check.stdout.contains("its mark in the store cannot be read: account status (unknown state \"suspended\")"), "\(check.stdout)")
        // Recover starts the account and checks it: refused without a call (it may be banned), not "usable".
        let recovered = try await cli.run(["recover", "--api-id", "1", "--api-hash", "x"])
        #expect(recovered.status == 8, "\(recovered.stdout) \(recovered.stderr)")
        #expect(recovered.stdout.contains("alice: its mark in the store cannot be read") && !recovered.stdout.contains("every account is usable"),
                "\(recovered.stdout)")
        let status = try await cli.run(["status", "--json"])
        #expect(status.status == 0 && status.stdout.contains("unreadable"), "\(status.stdout) \(status.stderr)")
        let listed = try await cli.run(["session", "list"])
        #expect(listed.status == 0 && listed.stdout.contains("unreadable"), "\(listed.stdout) \(listed.stderr)")
        // An import over it is refused before it changes anything (it set the proxy first).
        let reimport = try await cli.run(["session", "import", "--account", "alice", "--replace", "--proxy", "socks5://127.0.0.1:1080", "-"], stdin: string)
        #expect(reimport.status == 8 && reimport.stderr.contains("tgsm session clear-mark --account alice"), "\(reimport.stderr)")
        let unchanged = try SQLiteSessionStore.open(directory: cli.store)
        #expect(try await unchanged.proxy(account: "alice") == nil, "no proxy was set")
        try unchanged.close()
        let login = try await cli.run(["auth", "--account", "alice", "--phone", "+15550000000", "--api-id", "1", "--api-hash", "x"], stdin: "")
        #expect(login.status == 8 && login.stderr.contains("tgsm session clear-mark --account alice"), "\(login.stdout) \(login.stderr)")
        let cleared = try await cli.run(["session", "clear-mark", "--account", "alice", "--json"])
        #expect(cleared.status == 0, "\(cleared.stderr)")
        #expect((try cleared.jsonObject() as? [String: Any])?["cleared"] as? String == "unreadable", "\(cleared.stdout)")
        let fine = try await cli.run(["check"])
        #expect(fine.status == 0, "\(fine.stdout)")
        #expect(try await cli.run(["session", "clear-mark", "--account", "alice"]).status == 4, "no mark left to clear")

        store = try SQLiteSessionStore.open(directory: cli.store)
        try await store.setStatus(AccountStatus(state: .deactivated, since: UnixTime(seconds: 1_800_000_000), cause: "USER_DEACTIVATED", code: "TGSM-AUTH-005"),
                                  for: "alice")
        let refused = try await cli.run(["session", "clear-mark", "--account", "alice"])
        #expect(refused.status == 2 && refused.stderr.contains("--restored"), "\(refused.stderr)")
        try await store.setStatus(AccountStatus(state: .duplicated, since: UnixTime(seconds: 1_800_000_000), cause: "AUTH_KEY_DUPLICATED", code: "TGSM-AUTH-006"),
                                  for: "alice")
        let lease = try await store.acquireLease(account: "alice", holder: .current(), now: SystemClock().now(), ttl: 600,
                                                 holderIsDead: LeaseHolder.isDeadOnThisHost)
        let held = try await cli.run(["session", "clear-mark", "--account", "alice"])
        #expect(held.status == 6, "\(held.stderr)")
        try await store.releaseLease(lease)
        let stale = try await cli.run(["session", "clear-mark", "--account", "alice"])
        #expect(stale.status == 0 && stale.stdout.contains("duplicated"), "\(stale.stdout) \(stale.stderr)")
        #expect(try await store.status(of: "alice")?.isTerminal == false)
        #expect(try await store.loadSession(account: "alice")?.isAuthorized == true, "the session is kept")
        try store.close()
    }

    /// A freeze a `tgsm run` met and kept is in `tgsm check` (exit 8: a person must appeal, with the
    /// deletion date and the appeal URL) and `tgsm status`, after the process that met it is gone.
    @Test func checkAndStatusShowAKeptFreeze() async throws {
        let (root, cli) = try CLI.temporary()
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 9), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await cli.run(["session", "import", "--account", "iris", root + "/s.txt"]).status == 0)
        let store = try SQLiteSessionStore.open(directory: cli.store)
        try await store.recordFreeze(StoredAccountFreeze(account: "iris", since: UnixTime(seconds: 1_790_000_000), deletedAfter: UnixTime(seconds: 1_792_592_000),
                                                         appealURL: "https://t.me/spambot", confirmedAt: UnixTime(seconds: 1_790_000_100)))
        try store.close()

        let check = try await cli.run(["check"])
        #expect(check.status == 8, "\(check.stdout)")
        #expect(check.stdout.contains("frozen by Telegram since 2026-09-21") && check.stdout.contains("deletes it on 2026-10-21"), "\(check.stdout)")
        #expect(check.stdout.contains("Appeal at https://t.me/spambot"), "\(check.stdout)")
        let status = try await cli.run(["status", "--json"])
        let accounts = try #require((try status.jsonObject() as? [String: Any])?["accounts"] as? [[String: Any]])
        #expect(accounts.first?["frozenSince"] as? String == "2026-09-21T14:13:20Z" && accounts.first?["appealURL"] as? String == "https://t.me/spambot",
                "\(status.stdout)")
        let table = try await cli.run(["status"])
        #expect(table.stdout.contains("frozen since 2026-09-21T14:13:20Z, deleted 2026-10-21T14:13:20Z unless appealed"), "\(table.stdout)")
    }

    /// What Telegram told an account while `tgsm run` ran it (kept in the store) is in `tgsm check`
    /// afterwards: a request to log the session out and a popup as warnings with what to do, a note
    /// as ok; older than a week, nothing. Warnings change no exit code. `tgsm status` lists them too.
    @Test func checkAndStatusShowTheServiceNotificationsOfTheLastWeek() async throws {
        let (root, cli) = try CLI.temporary()
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 8), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await cli.run(["session", "import", "--account", "hana", root + "/s.txt"]).status == 0)
        let store = try SQLiteSessionStore.open(directory: cli.store)
        let now = SystemClock().now().seconds
        for (type, popup, age) in [("AUTH_KEY_DROP_DUPLICATE", true, 3_600.0), ("ACCOUNT_LIMITED", true, 7_200.0), ("NEW_LOGIN", false, 10_800.0),
                                   ("OLD_NOTICE", true, 8 * 86_400.0)] {
            try await store.recordServiceNotification(StoredServiceNotification(account: "hana", type: type, message: "\(type.lowercased()) text, code •••••",
                                                                                popup: popup, receivedAt: UnixTime(seconds: now - age)))
        }
        try store.close()
        let check = try await cli.run(["check"])
        #expect(check.status == 0, "\(check.stdout)")
        #expect(check.stdout.contains("warn  account hana: Telegram asked this session to log out (") && check.stdout.contains("AUTH_KEY_DROP_DUPLICATE: auth_key_drop_duplicate text, code •••••)"), "\(check.stdout)")
        #expect(check.stdout.contains("Settings > Devices"))
        #expect(check.stdout.contains("warn  account hana: Telegram's notice (") && check.stdout.contains("ok    account hana: Telegram's note ("), "\(check.stdout)")
        #expect(!check.stdout.contains("OLD_NOTICE"))

        let status = try await cli.run(["status", "--json"])
        let report = try #require(try status.jsonObject() as? [String: Any])
        let notices = try #require(report["serviceNotifications"] as? [[String: Any]])
        #expect(notices.compactMap { $0["type"] as? String } == ["AUTH_KEY_DROP_DUPLICATE", "ACCOUNT_LIMITED", "NEW_LOGIN"])
        #expect(notices.first?["asksToLogOut"] as? Bool == true && notices.first?["message"] as? String == "auth_key_drop_duplicate text, code •••••")
        let table = try await cli.run(["status"])
        #expect(table.stdout.contains("Telegram's notices (last 7 days") && table.stdout.contains("ACCOUNT_LIMITED"), "\(table.stdout)")
    }

    @Test func anEncryptedStoreNeedsItsKeyFile() async throws {
        let (root, base) = try CLI.temporary()
        let keyPath = root + "/store.key"
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8($0 * 5 + 1) }), to: keyPath)
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 8), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await base.run(["session", "import", "--account", "ivy", root + "/s.txt", "--key-file", keyPath]).status == 0)

        let without = try await base.run(["session", "list"])
        #expect(without.status == 9 && without.stderr.contains("store.encryption_key_required"), "\(without.stderr)")
        let check = try await base.run(["check"])
        #expect(check.status == 9, "\(check.stdout)")
        var withKey = base
        withKey.environment["TGSM_KEY_FILE"] = keyPath
        let list = try await withKey.run(["session", "list", "--json"])
        #expect(list.status == 0 && list.stdout.contains("ivy"), "\(list.stderr)")
        let exported = try await withKey.run(["session", "export", "--account", "ivy", "--format", "telethon-string", "--stdout", "--address", "127.0.0.1:1"])
        #expect(exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == string, "the sealed key comes back as it went in")
    }

    /// A lost key: check's steps lead out instead of in a circle. Restoring a sealed backup without
    /// its key fails as the store did, and any command then puts it back (before, check advised
    /// just that); the way out without the key is a new store, which works.
    @Test func aStoreWhoseKeyIsLostIsLedOutNotRoundInACircle() async throws {
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keyPath = root + "/store.key"
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8($0 * 3 + 2) }), to: keyPath)
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 41), userID: 1001, isBot: false, apiID: 1))
        #expect(try await base.run(["session", "import", "--account", "alice", "-", "--key-file", keyPath], stdin: string).status == 0)
        #expect(try await base.run(["session", "backup", "--key-file", keyPath]).status == 0)
        // The key is lost and the store file was moved aside, as the store's error advises first.
        try FileManager.default.moveItem(atPath: base.store + "/sessions.sqlite", toPath: base.store + "/sessions.sqlite.sealed")
        let check = try await base.run(["check"])
        #expect(check.stdout.contains("seals its secrets") && check.stdout.contains("set the store file and its backups aside")
                && !check.stdout.contains("Run `tgsm session restore` to put"), "\(check.stdout)")
        // Following it: a new store where the old one was, usable without a key.
        let sealed = base.store + "/sealed"
        try FileManager.default.createDirectory(atPath: sealed, withIntermediateDirectories: false)
        for name in try FileManager.default.contentsOfDirectory(atPath: base.store) where name.hasPrefix("sessions.sqlite") || name == "backups" {
            try FileManager.default.moveItem(atPath: base.store + "/" + name, toPath: sealed + "/" + name)
        }
        let fresh = try await base.run(["session", "import", "--account", "alice", "-"], stdin: string)
        #expect(fresh.status == 0, "\(fresh.stderr)")
    }

    /// A damaged store with no backup: check does not advise taking a backup (which fails on a
    /// damaged store), only what the store file's finding says.
    @Test func checkDoesNotAdviseABackupOfADamagedStore() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 42), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: string).status == 0)
        for file in (try? FileManager.default.contentsOfDirectory(atPath: cli.store + "/backups")) ?? [] {
            try FileManager.default.removeItem(atPath: cli.store + "/backups/" + file)
        }
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: cli.store + "/sessions.sqlite"))
        let check = try await cli.run(["check"])
        #expect(check.status != 0 && check.stdout.contains("no backup") && !check.stdout.contains("Take one now"), "\(check.stdout)")
        #expect(check.stdout.contains("None can be taken"), "\(check.stdout)")
    }

    /// Another program holding the store's write lock (a `sqlite3` shell left in a transaction):
    /// reads go on, so check said "no problems" while every `tgsm run` on the store was losing its
    /// leases. It names the process now (exit 3), and says nothing once the lock is gone.
    @Test func checkNamesAProgramHoldingTheStoresWriteLock() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 31), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: string).status == 0)
        #expect(try await cli.run(["session", "backup"]).status == 0)
        let lock = try SQLiteFileLock(path: cli.store + "/sessions.sqlite")
        let held = try await cli.run(["check"])
        lock.release()
        #expect(held.status == 3 && held.stdout.contains("process \(getpid())") && held.stdout.contains("holds the store's write lock"),
                "\(held.status) \(held.stdout)")
        let free = try await cli.run(["check"])
        #expect(!free.stdout.contains("write lock"), "\(free.stdout)")
    }

    /// A restore of a backup taken before an account's login (the one at its new key) says the
    /// account needs its login again; before, nothing was said until `recover` demanded one.
    @Test func restoringABackupFromBeforeALoginSaysTheLoginIsLost() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = try SQLiteSessionStore.open(directory: cli.store)
        let key = try CLIFixtures.key(seed: 21)
        _ = try await store.saveSession(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key, isAuthorized: false)]), account: "alice", fence: nil)
        _ = try await store.saveSession(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: try CLIFixtures.key(seed: 22), isAuthorized: true)],
                                                     userID: 1002), account: "bob", fence: nil)
        let beforeLogin = try store.backup(reason: .manual)
        _ = try await store.saveSession(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: key, isAuthorized: true)], userID: 1001),
                                        account: "alice", fence: nil)
        // bob logged in again on a new key (Telegram destroyed his first): the backup's is the old one.
        _ = try await store.saveSession(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: try CLIFixtures.key(seed: 23), isAuthorized: true)],
                                                     userID: 1002), account: "bob", fence: nil)
        try store.close()
        let restored = try await cli.run(["session", "restore", "--backup", beforeLogin.file, "--json"])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect((try restored.jsonObject() as? [String: Any])?["loginsLost"] as? [String] == ["alice"], "\(restored.stdout)")
        #expect((try restored.jsonObject() as? [String: Any])?["keysReplaced"] as? [String] == ["bob"], "\(restored.stdout)")
        let text = try await cli.run(["session", "restore", "--backup", beforeLogin.file])
        #expect(!text.stderr.contains("alice was logged in"), "restored over the same state: nothing lost this time. \(text.stderr)")
    }

    /// `session rekey`: the secrets move to the new key (the old one opens nothing after), a backup
    /// is taken under it, and a store some live process holds is refused unless --force.
    @Test func rekeyMovesTheStoreToANewKeyFile() async throws {
        let (root, base) = try CLI.temporary()
        let oldKey = root + "/old.key", newKey = root + "/new.key"
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8($0 * 5 + 1) }), to: oldKey)
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8(truncatingIfNeeded: $0 * 11 + 4) }), to: newKey)
        let key = try CLIFixtures.key(seed: 8)
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        var withOld = base
        withOld.environment["TGSM_KEY_FILE"] = oldKey
        #expect(try await withOld.run(["session", "import", "--account", "ivy", root + "/s.txt"]).status == 0)

        let rekeyed = try await withOld.run(["session", "rekey", "--new-key-file", newKey, "--json"])
        #expect(rekeyed.status == 0, "\(rekeyed.stderr)")
        let result = try #require(try rekeyed.jsonObject() as? [String: Any])
        #expect(result["secrets"] as? Int == 1 && (result["backup"] as? String)?.hasPrefix("sessions-") == true, "\(result)")
        let stale = try await withOld.run(["session", "list"])
        #expect(stale.status == 9 && stale.stderr.contains("store.wrong_encryption_key"), "\(stale.stderr)")
        var withNew = base
        withNew.environment["TGSM_KEY_FILE"] = newKey
        let exported = try await withNew.run(["session", "export", "--account", "ivy", "--format", "telethon-string", "--stdout", "--address", "127.0.0.1:1"])
        #expect(exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == string, "\(exported.stderr)")
        let file = try Data(contentsOf: URL(fileURLWithPath: base.store + "/sessions.sqlite"))
        #expect(file.range(of: Data(key.bytes.prefix(32))) == nil)
        // `tgsm check` names the backups taken before, which need the old key.
        let check = try await withNew.run(["check"])
        #expect(check.stdout.contains("is sealed under another key than the one given (taken before a re-key"), "\(check.stdout)")
        #expect(!check.stdout.contains("\(result["backup"] as? String ?? "?") is sealed under another key"), "the new backup is under the new key")

        // A live process holds the account: refused (exit 6, nothing changed) unless --force.
        let store = try SQLiteSessionStore.open(directory: base.store, options: SQLiteStoreOptions(encryption: .keyFile(path: newKey)))
        _ = try await store.acquireLease(account: "ivy", holder: LeaseHolder(host: "elsewhere", pid: 7), now: UnixTime(seconds: Date().timeIntervalSince1970),
                                         ttl: 3600, holderIsDead: { _ in false })
        try store.close()
        let refused = try await withNew.run(["session", "rekey", "--new-key-file", oldKey])
        #expect(refused.status == 6 && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try await withNew.run(["session", "list"]).status == 0, "still under the new key")
        #expect(try await withNew.run(["session", "rekey", "--new-key-file", oldKey, "--force"]).status == 0)
        #expect(try await withOld.run(["session", "list"]).status == 0)
    }

    /// Encryption turned on for a store that has backups: the store is sealed (and rewritten, so no
    /// key stays in its free pages), and `tgsm check` names each older backup that still holds keys
    /// in clear, with the steps that replace it.
    @Test func checkNamesBackupsTakenBeforeEncryptionWasTurnedOn() async throws {
        let (root, base) = try CLI.temporary()
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 9), address: DCAddress(host: "127.0.0.1", port: 1)))
        try CLIFixtures.write(string, to: root + "/s.txt")
        #expect(try await base.run(["session", "import", "--account", "ivy", root + "/s.txt"]).status == 0)
        let plainBackup = try await base.run(["session", "backup", "--json"])
        #expect(plainBackup.status == 0, "\(plainBackup.stderr)")
        // What a restore before encryption set aside (it keeps the keys in clear).
        try FileManager.default.copyItem(atPath: base.store + "/sessions.sqlite", toPath: base.store + "/sessions.sqlite.replaced-1700000000000")
        let clean = try await base.run(["check"])
        #expect(!clean.stdout.contains("holds auth keys in clear"), "\(clean.stdout)")
        #expect(clean.stdout.contains("ok    set-aside files: 1 file(s)"), "not sealed: only said to be there: \(clean.stdout)")

        let keyPath = root + "/store.key"
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8($0 * 7 + 3) }), to: keyPath)
        var withKey = base
        withKey.environment["TGSM_KEY_FILE"] = keyPath
        #expect(try await withKey.run(["session", "list"]).status == 0, "opening with a key seals the store")
        let key = try CLIFixtures.key(seed: 9)
        let storeBytes = try Data(contentsOf: URL(fileURLWithPath: base.store + "/sessions.sqlite"))
        #expect(storeBytes.range(of: Data(key.bytes.prefix(32))) == nil, "no key left in clear in the store file")
        let check = try await withKey.run(["check"])
        #expect(check.stdout.contains("holds auth keys in clear: it was taken before the store's encryption was turned on"), "\(check.stdout)")
        #expect(check.stdout.contains("tgsm session backup"))
        #expect(check.stdout.contains("warn  set-aside files: sessions.sqlite.replaced-1700000000000 hold auth keys in clear, though the store is sealed"),
                "\(check.stdout)")
        let named = Self.count("holds auth keys in clear", in: check.stdout)
        #expect(named >= 1)
        #expect(try await withKey.run(["session", "backup"]).status == 0)
        let after = try await withKey.run(["check"])
        #expect(Self.count("holds auth keys in clear", in: after.stdout) == named, "the sealed backup is not named: \(after.stdout)")

        // The key lost: the refusal says the way back, and each step of it works.
        let lost = try await base.run(["session", "list"])
        #expect(lost.status == 9 && lost.stderr.contains("If the key is lost") && lost.stderr.contains("--list --verify"), "\(lost.stderr)")
        let listed = try await base.run(["session", "backup", "--list", "--verify", "--json"])
        let backups = try #require(try listed.jsonObject() as? [[String: Any]], "\(listed.stderr)")
        #expect(Set(backups.compactMap { $0["secrets"] as? String }) == ["sealed", "in clear"], "\(backups)")
        let clear = try #require(backups.first { $0["secrets"] as? String == "in clear" }?["file"] as? String)
        try FileManager.default.moveItem(atPath: base.store + "/sessions.sqlite", toPath: base.store + "/sessions.sqlite.sealed")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: base.store + "/sessions.sqlite" + suffix) }
        #expect(try await base.run(["session", "restore", "--backup", clear]).status == 0)
        let back = try await base.run(["session", "list"])
        #expect(back.status == 0 && back.stdout.contains("ivy"), "\(back.stderr)")
    }

    /// A damaged encrypted store opened without its key: the recovery (which runs before the key is
    /// checked) put the newest backup in place, and the refusal for the key says so; before, only
    /// the key error was printed and the file had silently changed.
    @Test func aDamagedEncryptedStoreOpenedWithoutItsKeySaysItWasRestored() async throws {
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let keyPath = root + "/store.key"
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8($0 * 5 + 1) }), to: keyPath)
        var withKey = base
        withKey.environment["TGSM_KEY_FILE"] = keyPath
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 11), userID: 1001, isBot: false, apiID: 1))
        #expect(try await withKey.run(["session", "import", "--account", "ivy", "-"], stdin: string).status == 0)
        #expect(try await withKey.run(["session", "backup"]).status == 0)
        try CLIFixtures.zero(base.store + "/sessions.sqlite", offset: 0, count: 100)
        var without = base
        without.environment["TGSM_KEY_FILE"] = ""
        let refused = try await without.run(["session", "list"])
        #expect(refused.status == 9, "\(refused.stderr)")
        #expect(refused.stderr.contains("was damaged and was restored from its newest verified backup before the key was checked"), "\(refused.stderr)")
        #expect(try await withKey.run(["session", "list", "--json"]).json([AccountJSON].self).map(\.account) == ["ivy"])
    }

    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    /// The store comes from --store, else $TGSM_STORE, else the config file's "store" (a path there is
    /// relative to the file), else the default directory; the config file is --config/$TGSM_CONFIG
    /// or the default directory's config.json.
    @Test func theConfigFileNamesTheStoreBelowTheFlagAndTheEnvironment() async throws {
        let (root, base) = try CLI.temporary()
        let key = try CLIFixtures.key(seed: 3)
        try CLIFixtures.write(TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "127.0.0.1", port: 24402))),
                              to: root + "/carol.txt")
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try CLIFixtures.write(#"{"store": "from-config"}"#, to: root + "/etc/config.json")
        var cli = base
        cli.environment = ["TGSM_CONFIG": root + "/etc/config.json", "TGSM_STORE": ""]
        let imported = try await cli.run(["session", "import", "--account", "carol", root + "/carol.txt"], withStore: false)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(FileManager.default.fileExists(atPath: root + "/etc/from-config/sessions.sqlite"), "a relative store is the config file's directory's")
        #expect(try await cli.run(["session", "list", "--json"], withStore: false).json([AccountJSON].self).map(\.account) == ["carol"])

        // $TGSM_STORE wins over the file, and --store over both.
        cli.environment["TGSM_STORE"] = root + "/from-env"
        #expect(try await cli.run(["session", "list"], withStore: false).status == 4, "the environment's store is empty")
        #expect(try await cli.run(["session", "list"], withStore: true).status == 4, "the flag's store is empty")
        cli.environment["TGSM_STORE"] = root + "/etc/from-config"
        #expect(try await cli.run(["session", "list"], withStore: false).status == 0)

        // Without --config/$TGSM_CONFIG: the default directory's config.json, and --config itself.
        try FileManager.default.createDirectory(atPath: root + "/home", withIntermediateDirectories: true)
        try CLIFixtures.write(#"{"store": "\#(root)/etc/from-config"}"#, to: root + "/home/config.json")
        cli.environment = ["TGSM_HOME": root + "/home", "TGSM_STORE": "", "TGSM_CONFIG": ""]
        #expect(try await cli.run(["session", "list", "--json"], withStore: false).json([AccountJSON].self).map(\.account) == ["carol"])
        #expect(try await cli.run(["session", "list", "--config", root + "/missing.json"], withStore: false).status == 2)
        cli.environment = ["TGSM_STORE": "", "TGSM_CONFIG": ""]
        #expect(try await cli.run(["session", "list", "--json", "--config", root + "/etc/config.json"], withStore: false)
            .json([AccountJSON].self).map(\.account) == ["carol"])

        // A broken file is a usage error naming it, not a silent fallback to the default store.
        try CLIFixtures.write(#"{"store": 5}"#, to: root + "/etc/config.json")
        cli.environment = ["TGSM_CONFIG": root + "/etc/config.json", "TGSM_STORE": ""]
        let broken = try await cli.run(["session", "list"], withStore: false)
        #expect(broken.status == 2 && broken.stderr.contains(root + "/etc/config.json"), "\(broken.stderr)")
    }

    /// The dashboard on a PostgreSQL queue draws the outcomes over time its history recorded, as on
    /// SQLite (before, PostgreSQL kept no history and the page said so).
    @Test func theDashboardOnPostgreSQLDrawsTheOutcomesItsQueueRecorded() async throws {
        let database = try await ScratchPostgresDatabase.create()
        let queue = try await PostgresJobQueue.connect(url: database.url, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let store = try await PostgresSessionStore.open(database: queue.database, clock: SystemClock(),
                                                        logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        let now = WallClock().now()
        for maxAttempts in [3, 1] {
            _ = try await queue.enqueue(NewJob(kind: "me", account: "alice", maxAttempts: maxAttempts), now: now)
        }
        let claims = try await queue.claim(ClaimRequest(accounts: ["alice"], limit: 2, perAccountLimit: 2, owner: "w", leaseSeconds: 30), now: now)
        for claimed in claims {
            if claimed.job.maxAttempts == 1 {
                _ = try await queue.retry(claimed.claim, error: "PEER_ID_INVALID", retryAt: now + 60, now: now + 1)
            } else {
                try await queue.complete(claimed.claim, result: nil, now: now + 1)
            }
        }
        // 30 s for the store, not 3: on a loaded CI machine the first read took longer and the page
        // said the store could not be read.
        let server = try OperatorHTTPServer(configuration: OperatorHTTPConfiguration(port: 0, storeTimeout: 30), store: store, queue: queue)
        let task = Task { try await server.run() }
        let page: String
        do {
            let port = try await server.listeningPort()
            let (data, _) = try await URLSession.shared.data(from: try #require(URL(string: "http://127.0.0.1:\(port)/")))
            page = String(decoding: data, as: UTF8.self)
        } catch {
            task.cancel()
            await store.close()
            await queue.close()
            await database.drop()
            throw error
        }
        task.cancel()
        _ = await task.result
        await store.close()
        await queue.close()
        await database.drop()
        #expect(claims.count == 2)
        #expect(page.contains("aria-label=\"job outcomes and queue depth"), "\(page.prefix(400))")
        #expect(page.contains("class=\"total-completed\">1<") && page.contains("class=\"total-dead\">1<"))
        #expect(!page.contains("are not recorded"))
    }

    /// On a PostgreSQL store `session backup` writes a verified snapshot (0600, with its sidecar) to
    /// --backup-dir (default: postgres-backups in the default directory), `--list --verify` checks
    /// it, and `session restore` puts it back: refused (exit 6, nothing changed) while a live process
    /// holds an account's lease, done with --force.
    @Test func backupListAndRestoreOnAPostgreSQLStore() async throws {
        let database = try await ScratchPostgresDatabase.create()
        do {
            try await backupAndRestore(on: database.url)
        } catch {
            await database.drop()
            throw error
        }
        await database.drop()
    }

    private func backupAndRestore(on url: String) async throws {
        let (root, base) = try CLI.temporary()
        var cli = base
        cli.environment = ["TGSM_STORE": "", "TGSM_CONFIG": "", "TGSM_HOME": root + "/home"]
        let aliceKey = try CLIFixtures.key(seed: 1)
        let session = { (key: AuthKey) throws -> String in try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "127.0.0.1", port: 24402))) }
        let imported = try await cli.run(["session", "import", "--account", "alice", "-", "--store", url], stdin: try session(aliceKey), withStore: false)
        #expect(imported.status == 0, "\(imported.stderr)")

        let snapshots = root + "/snapshots"
        let backup = try await cli.run(["session", "backup", "--json", "--store", url, "--backup-dir", snapshots], withStore: false)
        #expect(backup.status == 0, "\(backup.stderr)")
        let taken = try backup.json(BackupJSON.self)
        #expect(taken.verification == "verified")
        #expect(CLIFixtures.mode(snapshots + "/" + taken.file) == 0o600 && CLIFixtures.mode(snapshots) == 0o700)
        #expect(FileManager.default.fileExists(atPath: snapshots + "/" + taken.file + ".json"))
        let listed = try await cli.run(["session", "backup", "--list", "--verify", "--json", "--store", url, "--backup-dir", snapshots], withStore: false)
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(try listed.json([BackupJSON].self).map(\.file) == [taken.file])
        #expect(try listed.json([BackupJSON].self).first?.verification == "verified")
        // Without --backup-dir: postgres-backups in the default directory, never a SQLite store's backups/.
        #expect(try await cli.run(["session", "backup", "--store", url], withStore: false).status == 0)
        #expect(SnapshotDirectory.list(root + "/home/postgres-backups").count == 1)
        // Another host's view (its own, empty directory): the snapshots the database records are
        // said to be elsewhere; `--list --verify` (a cron job's check) fails with 3, a restore is
        // "not found" (4), not a failure to "check free space and permissions" (1).
        let otherHost = root + "/other-host-snapshots"
        let none = try await cli.run(["session", "backup", "--list", "--store", url, "--backup-dir", otherHost], withStore: false)
        #expect(none.status == 0 && none.stdout.contains("The database records 2 snapshot(s) taken on another host"), "\(none.stdout)")
        let noneVerified = try await cli.run(["session", "backup", "--list", "--verify", "--store", url, "--backup-dir", otherHost], withStore: false)
        #expect(noneVerified.status == 3 && noneVerified.stderr.contains("no backups in \(otherHost)"), "\(noneVerified.stderr)")
        let nothingToRestore = try await cli.run(["session", "restore", "--store", url, "--backup-dir", otherHost], withStore: false)
        #expect(nothingToRestore.status == 4 && nothingToRestore.stderr.contains("Snapshots are files on the host that took them"), "\(nothingToRestore.stderr)")
        let misnamed = try await cli.run(["session", "restore", "--store", url, "--backup-dir", snapshots, "--backup", "nope.sqlite"], withStore: false)
        #expect(misnamed.status == 4, "\(misnamed.stderr)")

        // Alice's key replaced, then a live holder elsewhere: the restore is refused and changes nothing.
        let replaced = try await cli.run(["session", "import", "--account", "alice", "--replace", "-", "--store", url],
                                         stdin: try session(try CLIFixtures.key(seed: 2)), withStore: false)
        #expect(replaced.status == 0, "\(replaced.stderr)")
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let store = try await PostgresSessionStore.connect(url: url, logger: quiet)
        let now = UnixTime(seconds: Date().timeIntervalSince1970)
        // A holder that renewed 20 s ago with a 30 s TTL: a forced restore keeps the account until its
        // next renewal has found it fenced (here already past), then lets it go.
        _ = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "elsewhere", pid: 7), now: now + -20, ttl: 30, holderIsDead: { _ in false })
        let refused = try await cli.run(["session", "restore", "--store", url, "--backup-dir", snapshots], withStore: false)
        #expect(refused.status == 6 && refused.stderr.contains("in use by pid 7 on elsewhere") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try await store.loadSession(account: "alice")?.dcs[2]?.authKey != aliceKey)

        let restored = try await cli.run(["session", "restore", "--json", "--force", "--store", url, "--backup-dir", snapshots], withStore: false)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stderr.contains("until the processes whose leases were taken over (pid 7 on elsewhere) have stopped"), "\(restored.stderr)")
        #expect(!restored.stderr.contains("was not taken of this database"), "its own snapshot: \(restored.stderr)")
        // Into another database: its keys are now in two, which is said.
        let other = try await ScratchPostgresDatabase.create()
        let copied = try await cli.run(["session", "restore", "--store", other.url, "--backup-dir", snapshots, "--backup", taken.file], withStore: false)
        await other.drop()
        #expect(copied.status == 0 && copied.stderr.contains("\(taken.file) was not taken of this database"), "\(copied.stderr)")
        let result = try #require(try restored.jsonObject() as? [String: Any])
        #expect(result["restored"] as? String == taken.file && result["accounts"] as? [String] == ["alice"])
        #expect(try await store.loadSession(account: "alice")?.dcs[2]?.authKey == aliceKey)
        #expect(try await store.recordedBackups().count == 2, "both snapshots are recorded in the database")
        await store.close()

        // A removal on PostgreSQL takes no snapshot (one holds every account), and says so: the
        // docs and `check` had promised "a backup is taken first", which only SQLite does.
        let bob = try await cli.run(["session", "import", "--account", "bob", "-", "--store", url], stdin: try session(try CLIFixtures.key(seed: 3)), withStore: false)
        #expect(bob.status == 0, "\(bob.stderr)")
        let removed = try await cli.run(["session", "remove", "--account", "bob", "--store", url], withStore: false)
        #expect(removed.status == 0 && removed.stdout.contains("no backup was taken (a PostgreSQL snapshot holds every account)"), "\(removed.stdout)")
    }

    /// `--key-file` (or TGSM_KEY_FILE) seals a PostgreSQL store as it does a SQLite one: the first
    /// command given it turns encryption on, a command without it is exit 9 with what to give, and
    /// snapshots are sealed with it.
    @Test func aKeyFileSealsAPostgreSQLStore() async throws {
        let database = try await ScratchPostgresDatabase.create()
        do {
            try await sealedCluster(on: database.url)
        } catch {
            await database.drop()
            throw error
        }
        await database.drop()
    }

    private func sealedCluster(on url: String) async throws {
        let (root, base) = try CLI.temporary()
        var cli = base
        cli.environment = ["TGSM_STORE": "", "TGSM_CONFIG": "", "TGSM_HOME": root + "/home"]
        let keyPath = root + "/store.key"
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8($0 * 5 + 2) }), to: keyPath)
        let key = try CLIFixtures.key(seed: 3)
        let string = try TelethonStringSession.encode(PortableSession(dc: 2, authKey: key, address: DCAddress(host: "127.0.0.1", port: 1)))
        let imported = try await cli.run(["session", "import", "--account", "alice", "-", "--store", url, "--key-file", keyPath],
                                         stdin: string, withStore: false)
        #expect(imported.status == 0, "\(imported.stderr)")

        let without = try await cli.run(["session", "export", "--account", "alice", "--format", "telethon-string", "--stdout",
                                         "--address", "127.0.0.1:1", "--store", url], withStore: false)
        #expect(without.status == 9 && without.stderr.contains("no key was given"), "\(without.stderr)")
        #expect(!without.stdout.contains(string))
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        await #expect(throws: SessionStoreError.self) { _ = try await PostgresSessionStore.connect(url: url, logger: quiet) }

        var withKey = cli
        withKey.environment["TGSM_KEY_FILE"] = keyPath
        let exported = try await withKey.run(["session", "export", "--account", "alice", "--format", "telethon-string", "--stdout",
                                              "--address", "127.0.0.1:1", "--store", url], withStore: false)
        #expect(exported.status == 0 && exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == string, "\(exported.stderr)")

        let snapshots = root + "/snapshots"
        let backup = try await withKey.run(["session", "backup", "--json", "--store", url, "--backup-dir", snapshots], withStore: false)
        #expect(backup.status == 0, "\(backup.stderr)")
        let taken = try backup.json(BackupJSON.self)
        let snapshot = try Data(contentsOf: URL(fileURLWithPath: snapshots + "/" + taken.file))
        #expect(snapshot.range(of: Data(key.bytes.prefix(32))) == nil, "the snapshot holds the key sealed")
        let restored = try await withKey.run(["session", "restore", "--store", url, "--backup-dir", snapshots], withStore: false)
        #expect(restored.status == 0, "\(restored.stderr)")
        let wrongKey = root + "/wrong.key"
        try CLIFixtures.write(CLIFixtures.hex((0..<32).map { UInt8($0 * 3 + 9) }), to: wrongKey)
        let wrong = try await cli.run(["session", "backup", "--store", url, "--key-file", wrongKey, "--backup-dir", snapshots], withStore: false)
        #expect(wrong.status == 9 && wrong.stderr.contains("encrypted under another key"), "\(wrong.stderr)")
    }

    /// Copies of the store's secrets that other users may read (a backup copied without -p, a key
    /// file made by hand) are warned about, with the chmod that fixes each.
    @Test func checkWarnsOfBackupsAndAKeyFileOtherUsersMayRead() async throws {
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var cli = base
        let keyFile = root + "/store.key"
        try CLIFixtures.write(String(repeating: "ab", count: 32), to: keyFile)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        cli.environment["TGSM_KEY_FILE"] = keyFile
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 7), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: string).status == 0)
        let taken = try await cli.run(["session", "backup", "--json"]).json(BackupJSON.self)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: cli.store + "/backups")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: cli.store + "/backups/" + taken.file)

        let check = try await cli.run(["check"])
        #expect(check.stdout.contains("warn  file modes: readable by other users"), "\(check.stdout)")
        for step in ["chmod 700 \(cli.store)/backups", "chmod 600 \(cli.store)/backups/\(taken.file)", "chmod 600 \(keyFile)"] {
            #expect(check.stdout.contains(step), "\(step): \(check.stdout)")
        }
        #expect(!check.stdout.contains(".json (mode"), "sidecars made by tgsm are 0600: \(check.stdout)")

        // The config file holds the api_hash: the guide says 0600, and check says so when it is not.
        try CLIFixtures.write(#"{"apiID": 1, "apiHash": "0123456789abcdef"}"#, to: cli.store + "/config.json")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: cli.store + "/config.json")
        let loose = try await cli.run(["check"])
        #expect(loose.stdout.contains("warn  config file: \(cli.store)/config.json is mode 644") && loose.stdout.contains("chmod 600 \(cli.store)/config.json"),
                "\(loose.stdout)")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: cli.store + "/config.json")
        #expect(try await !cli.run(["check"]).stdout.contains("config file:"))
    }

    /// The jobs commands say what they did and what is wrong: a kind no worker runs (with the
    /// likely one), a key already another job's, a refusal by the job's real state, several
    /// --state/--account filters at once, names with emoji intact, and `check` on queued jobs no
    /// worker runs and on a queue file that is no database.
    @Test func theJobsCommandsSayWhatTheyDidAndWhatIsWrong() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 8), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: string).status == 0)

        let typo = try await cli.run(["jobs", "enqueue", "--kind", "histroy", "--account", "alice", "--payload", #"{"peer": {"username": "testnews"}}"#])
        #expect(typo.status == 0 && typo.stderr.contains("histroy is not a kind tgsm run has workers for") && typo.stderr.contains("did you mean history?"),
                "\(typo.stderr)")
        #expect(try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "alice", "--idempotency-key", "k"]).status == 0)
        let reused = try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "al ice😀", "--idempotency-key", "k"])
        #expect(reused.stdout.contains("already enqueued: job 2 (me for alice, queued)") && reused.stderr.contains("was not added"),
                "\(reused.stdout)\(reused.stderr)")
        // In JSON too: the job that holds the key, and that it is not the one asked for.
        // A built-in kind's payload is checked before anything is stored: a send without text was
        // accepted and only dead-lettered when it ran.
        let noText = try await cli.run(["jobs", "enqueue", "--kind", "send", "--account", "alice", "--payload", #"{"peer": {"username": "bob"}}"#])
        #expect(noText.status == 2 && noText.stderr.contains("the payload is not one a send job runs: it needs `text`; nothing was enqueued"),
                "\(noText.stderr)")
        let emptyText = try await cli.run(["jobs", "enqueue", "--kind", "send", "--account", "alice", "--payload", #"{"peer": {"username": "bob"}, "text": ""}"#])
        #expect(emptyText.status == 2 && emptyText.stderr.contains("`text` is empty"), "\(emptyText.stderr)")
        let reusedJSON = try await cli.run(["jobs", "enqueue", "--kind", "resolve", "--account", "alice", "--payload", #"{"username":"x"}"#,
                                            "--idempotency-key", "k", "--json"])
        let holder = try #require(try reusedJSON.jsonObject() as? [String: Any], "\(reusedJSON.stdout)")
        #expect(holder["id"] as? Int == 2 && holder["created"] as? Bool == false && holder["kind"] as? String == "me"
                && holder["account"] as? String == "alice" && holder["state"] as? String == "queued" && holder["sameJob"] as? Bool == false,
                "\(holder)")
        #expect(reusedJSON.stderr.contains("was not added"), "\(reusedJSON.stderr)")
        #expect(try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "al ice😀"]).status == 0)
        #expect(try await cli.run(["jobs", "cancel", "2"]).status == 0)
        let again = try await cli.run(["jobs", "cancel", "2"])
        #expect(again.stderr.contains("job 2 is cancelled, so it cannot be cancelled; it has ended"), "\(again.stderr)")

        let both = try await cli.run(["jobs", "list", "--state", "cancelled", "--state", "queued", "--account", "alice", "--json"])
        #expect((try both.jsonObject() as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [2, 1], "\(both.stdout)")
        let table = try await cli.run(["jobs", "list"])
        #expect(table.stdout.contains("al ice😀") && !table.stdout.contains("\u{FFFD}"), "\(table.stdout)")

        // A new account's name is printed in tables and log lines: no line break, no space at an end.
        for name in ["al\nice", " alice", "  "] {
            for command in [["jobs", "enqueue", "--kind", "me", "--account", name], ["session", "import", "--account", name, "-"]] {
                let refused = try await cli.run(command, stdin: string)
                #expect(refused.status == 2 && refused.stderr.contains("--account must"), "\(command): \(refused.stderr)")
            }
        }
        // So are a kind and an idempotency key: a line break in one forged a row of `jobs list`, an
        // escape sequence reached the terminal, and the empty key (an unset variable) made every job one.
        for (option, value) in [("--kind", "me\n4999  me  alice  completed"), ("--kind", "x\u{1B}[31mRED"), ("--kind", " "),
                                ("--idempotency-key", ""), ("--idempotency-key", "a\nb"), ("--idempotency-key", " k")] {
            var command = ["jobs", "enqueue", "--kind", "me", "--account", "alice"]
            if option == "--kind" { command[3] = value } else { command += [option, value] }
            let refused = try await cli.run(command)
            #expect(refused.status == 2 && refused.stderr.contains("\(option) must"), "\(option) \(value.debugDescription): \(refused.stderr)")
        }

        // Times Swift's Double would read but nobody means: hex, exponents, past the year 9999.
        for odd in ["0x10", "+1e308", "1e5", "999999999999"] {
            let refused = try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "alice", "--run-at", odd])
            #expect(refused.status == 2 && refused.stderr.contains("--run-at must be"), "\(odd): \(refused.stderr)")
        }

        let check = try await cli.run(["check"])
        #expect(check.stdout.contains("queued jobs of kinds tgsm run has no workers for: histroy (1)"), "\(check.stdout)")
        // A payload on standard input: any size, and bytes that are not UTF-8 refused (on the command
        // line they arrive as U+FFFD already).
        let large = "{\"text\": \"" + String(repeating: "x", count: 300_000) + "\", \"peer\": {\"username\": \"alice\"}}"
        let piped = try await cli.run(["jobs", "enqueue", "--kind", "send", "--account", "alice", "--payload", "-", "--run-at", "+99999", "--json"],
                                      stdin: large)
        let pipedID = try #require((try piped.jsonObject() as? [String: Any])?["id"] as? Int, "\(piped.stderr)")
        let listedPayload = try await cli.run(["jobs", "list", "--json", "--limit", "1"])
        #expect((try listedPayload.jsonObject() as? [[String: Any]])?.first.map { ($0["id"] as? Int, ($0["payload"] as? String)?.count) }
                ?? (nil, nil) == (pipedID, large.count))
        let notUTF8 = try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "alice", "--payload", "-"],
                                        stdinBytes: Array("{\"a\": \"".utf8) + [0xFF, 0xFE] + Array("\"}".utf8))
        #expect(notUTF8.status == 2 && notUTF8.stderr.contains("is not UTF-8"), "\(notUTF8.stderr)")
        #expect(try await cli.run(["jobs", "cancel", String(pipedID)]).status == 0)

        // A reader that goes away (`| head -1`): the rest is dropped, no crash (it trapped on EPIPE).
        let early = Process()
        early.executableURL = URL(fileURLWithPath: CLI.binary)
        early.arguments = ["jobs", "list", "--limit", "200", "--store", cli.store]
        let closed = Pipe()
        early.standardOutput = closed
        early.standardError = FileHandle.nullDevice
        try closed.fileHandleForReading.close()
        // Awaited, not `waitUntilExit()`: that blocks a thread of the shared pool, and on 2 cores the
        // other suites' bounded reads ran out of time meanwhile.
        let ended = AsyncStream.makeStream(of: (Process.TerminationReason, Int32).self)
        early.terminationHandler = { process in
            ended.continuation.yield((process.terminationReason, process.terminationStatus))
            ended.continuation.finish()
        }
        try early.run()
        var endings = ended.stream.makeAsyncIterator()
        let (reason, status) = await endings.next() ?? (.uncaughtSignal, -1)
        #expect(reason == .exit && status == 0, "\(reason) \(status)")

        // A job for an account the store does not hold waits for ever: check says which.
        #expect(check.stdout.contains("queued jobs of accounts the store does not hold: al ice😀 (1)"), "\(check.stdout)")

        // A list the limit cut says so, with how many match.
        let cut = try await cli.run(["jobs", "list", "--limit", "1"])
        #expect(cut.stdout.contains("the newest 1 of 4 matching jobs; --limit N shows more"), "\(cut.stdout)")
        let whole = try await cli.run(["jobs", "list", "--limit", "4"])
        #expect(!whole.stdout.contains("matching jobs"), "\(whole.stdout)")

        try CLIFixtures.zero(cli.store + "/jobs.sqlite", offset: 0, count: 100)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: cli.store + "/jobs.sqlite" + suffix) }
        let damaged = try await cli.run(["check"])
        #expect(damaged.stdout.contains("FAIL  job queue: the job queue cannot be opened") && damaged.stdout.contains("tgsm jobs salvage"), "\(damaged.stdout)")
        #expect(damaged.status == 5, "a damaged queue is exit 5, as the jobs commands say: \(damaged.status)")
        let listed = try await cli.run(["jobs", "list"])
        #expect(listed.status == 5 && !listed.stderr.contains("no job was lost"), "\(listed.stderr)")
        // Its header is gone, and with it the list of tables: beyond a salvage, which says so and changes nothing.
        let before = try Data(contentsOf: URL(fileURLWithPath: cli.store + "/jobs.sqlite"))
        let salvage = try await cli.run(["jobs", "salvage"])
        #expect(salvage.status == 1 && salvage.stderr.contains("list of tables") && salvage.stderr.contains(".recover"), "\(salvage.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: cli.store + "/jobs.sqlite")) == before)
    }

    /// Exporting an account whose session Telegram ended still writes the file, with a warning that
    /// it will not log in (before: exit 0 and nothing said).
    @Test func exportingAMarkedAccountWarnsThatTheSessionIsDead() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 12), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: string).status == 0)
        let store = try SQLiteSessionStore.open(directory: cli.store)
        try await store.setStatus(AccountStatus(state: .duplicated, since: UnixTime(seconds: 1_800_000_000), cause: "AUTH_KEY_DUPLICATED",
                                                code: "TGSM-AUTH-006"), for: "alice")
        try store.close()
        let exported = try await cli.run(["session", "export", "--account", "alice", "--format", "pyrogram-string", "--stdout", "--api-id", "1"])
        #expect(exported.status == 0 && !exported.stdout.isEmpty, "\(exported.stderr)")
        // An address a Pyrogram string cannot carry is refused, not silently dropped.
        let dropped = try await cli.run(["session", "export", "--account", "alice", "--format", "pyrogram-string", "--stdout", "--api-id", "1",
                                         "--address", "10.0.0.1:443"])
        #expect(dropped.status == 2 && dropped.stderr.contains("--address cannot be kept by a Pyrogram string"), "\(dropped.stderr)")
        #expect(exported.stderr.contains("is marked duplicated since") && exported.stderr.contains("will not log in"), "\(exported.stderr)")
    }

    /// `tgsm session remove`: an account the store should not keep goes, with a backup taken first
    /// that brings it back; refused while a live process holds it, and for a name the store lacks.
    @Test func removeTakesAnAccountOutOfTheStoreAfterABackup() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (name, seed) in [("alice", UInt8(5)), ("alcie", UInt8(6))] {
            let string = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: seed), userID: 1001, isBot: false, apiID: 1))
            #expect(try await cli.run(["session", "import", "--account", name, "-"], stdin: string).status == 0)
        }
        #expect(try await cli.run(["jobs", "enqueue", "--kind", "me", "--account", "alcie"]).status == 0)
        #expect(try await cli.run(["session", "remove", "--account", "nobody"]).status == 4)

        // A live process (this test's own pid) holds the account: nothing is removed.
        let store = try SQLiteSessionStore.open(directory: cli.store)
        let lease = try await store.acquireLease(account: "alcie", holder: .current(), now: UnixTime(seconds: Date().timeIntervalSince1970), ttl: 3600,
                                                 holderIsDead: { _ in false })
        let held = try await cli.run(["session", "remove", "--account", "alcie"])
        #expect(held.status == 6 && held.stderr.contains("nothing was removed"), "\(held.stderr)")
        // In a cluster, stopping the holder only hands the account to a standby: the refusal says what works.
        #expect(held.stderr.contains("restart every process with --account naming only the other accounts"), "\(held.stderr)")
        try await store.releaseLease(lease)
        try store.close()

        let removed = try await cli.run(["session", "remove", "--account", "alcie", "--json"])
        #expect(removed.status == 0, "\(removed.stderr)")
        let result = try #require(try removed.jsonObject() as? [String: Any])
        #expect(result["openJobs"] as? Int == 1 && result["wasLoggedIn"] as? Bool == true, "\(result)")
        let backup = try #require(result["backup"] as? String)
        #expect(try await cli.run(["session", "list", "--json"]).json([AccountJSON].self).map(\.account) == ["alice"])
        #expect(try await cli.run(["session", "restore", "--backup", backup]).status == 0)
        #expect(try await cli.run(["session", "list", "--json"]).json([AccountJSON].self).map(\.account) == ["alcie", "alice"])
    }

    /// An account never logged in (its proxy kept for a first login; a login left at its code
    /// prompt) is listed as such, with what to do, and not as "active", which reads as a session
    /// that works.
    @Test func anAccountNeverLoggedInIsNotListedActive() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pyrogram = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 3), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: pyrogram).status == 0)
        #expect(try await cli.run(["session", "proxy", "--account", "newbie", "--set", "socks5://127.0.0.1:1080"]).status == 0)
        let listed = try await cli.run(["session", "list", "--json"]).json([AccountJSON].self)
        let newbie = try #require(listed.first { $0.account == "newbie" }, "\(listed)")
        #expect(newbie.status == "unauthorized" && newbie.statusCode == nil, "\(newbie)")
        #expect(newbie.guidance?.first?.contains("tgsm auth --account newbie") == true, "\(newbie)")
        #expect(listed.first { $0.account == "alice" }?.status == "active")
        let table = try await cli.run(["session", "list"])
        #expect(table.stdout.contains("unauthorized (no login was finished)"), "\(table.stdout)")
        let status = try await cli.run(["status"])
        #expect(status.stdout.contains("unauthorized (no login was finished)"), "\(status.stdout)")

        // Once a `tgsm run` marked it: its steps name it too (before: "--account NAME" in the
        // list, /health and the alerts).
        let store = try SQLiteSessionStore.open(directory: cli.store)
        try await store.setStatus(AccountStatus(state: .unauthorized, since: UnixTime(seconds: Date().timeIntervalSince1970),
                                                cause: AccountStatus.noLoginFinished + ": no session stored", code: AccountStatus.noLoginFinishedCode), for: "newbie")
        try store.close()
        let marked = try await cli.run(["session", "list", "--json"]).json([AccountJSON].self).first { $0.account == "newbie" }
        let steps = try #require(marked?.guidance, "\(String(describing: marked))")
        #expect(steps.first?.contains("tgsm auth --account newbie --phone NUMBER") == true && !steps.joined().contains("--account NAME"), "\(steps)")
    }

    /// `tgsm run`'s HTTP settings are refused before any account connects, naming the flag and the
    /// variable that set a token (before: after every session's start-up calls to Telegram).
    @Test func runRefusesAnUnsafeHTTPSettingBeforeConnecting() async throws {
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var cli = base
        cli.environment["TGSM_API_ID"] = "1"
        cli.environment["TGSM_API_HASH"] = "x"
        cli.environment["TGSM_HTTP_TOKEN"] = ""
        let pyrogram = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 4), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: pyrogram).status == 0)
        for extra in [["--http-host", "0.0.0.0"], ["--http-token", "short"]] {
            let refused = try await cli.run(["run", "--server", "test"] + extra)
            #expect(refused.status == 2, "\(extra): \(refused.stderr)")
            #expect(!refused.stderr.contains("connecting"), "\(extra): \(refused.stderr)")
        }
        let noToken = try await cli.run(["run", "--server", "test", "--http-host", "0.0.0.0"])
        #expect(noToken.stderr.contains("--http-token") && noToken.stderr.contains("TGSM_HTTP_TOKEN"), "\(noToken.stderr)")

        // A port another process listens on: refused before connecting too (before: after every
        // account connected and the workers claimed and ran jobs, then exit 1; under a service
        // manager's restarts, a loop of connect, send, exit).
        let other = WebhookReceiver()
        let taken = await other.start()
        let busy = try await cli.run(["run", "--server", "test", "--http-port", "\(taken)"])
        await other.stop()
        #expect(busy.status == 1 && busy.stderr.contains("cannot listen on 127.0.0.1:\(taken): Address already in use (errno 98);"), "\(busy.stderr)")
        #expect(!busy.stderr.contains("connecting"), "\(busy.stderr)")
    }

    /// A mistyped --store is "not found" (exit 4) for the reading commands, not an empty list; a
    /// restore with no backup says so (before: exit 1, "a backup failed … check free space"); a
    /// backup named by its path is taken as its file name.
    @Test func aMistypedStoreAndAMissingBackupAreNotFound() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let nowhere = root + "/no-such-store"
        for arguments in [["jobs", "list"], ["session", "backup", "--list"], ["session", "restore"]] {
            let result = try await cli.run(arguments + ["--store", nowhere], withStore: false)
            #expect(result.status == 4 && result.stderr.contains("there is no store directory \(nowhere)"), "\(arguments): \(result.stderr)")
        }
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        let none = try await cli.run(["session", "restore", "--store", root + "/empty"], withStore: false)
        #expect(none.status == 4 && none.stderr.contains("there is no backup in \(root)/empty/backups to restore; nothing was changed"), "\(none.stderr)")
        #expect(try await cli.run(["jobs", "list", "--store", root + "/empty"], withStore: false).stdout.contains("no jobs"))
        // The store's file named instead of its directory: said so, with the directory; nothing is
        // made (an import used to create a directory of the file's name, with a second store in it).
        for file in [root + "/empty/sessions.sqlite", root + "/elsewhere/sessions.sqlite"] {
            #expect(FileManager.default.createFile(atPath: root + "/empty/sessions.sqlite", contents: Data()))
            let named = try await cli.run(["session", "list", "--store", file], withStore: false)
            #expect(named.status == 2 && named.stderr.contains("the store is named by its directory")
                    && named.stderr.contains("name the directory that holds sessions.sqlite, here \((file as NSString).deletingLastPathComponent)"), "\(named.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: root + "/elsewhere"))
        try FileManager.default.removeItem(atPath: root + "/empty/sessions.sqlite")

        let pyrogram = try PyrogramStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 3), userID: 1001, isBot: false, apiID: 1))
        #expect(try await cli.run(["session", "import", "--account", "alice", "-"], stdin: pyrogram).status == 0)
        // A backup taken while alice used a proxy, restored after the proxy was removed: the backup's
        // link is back, and the restore says so (before: silently).
        #expect(try await cli.run(["session", "proxy", "--account", "alice", "--set", "socks5://tgsm:pw@127.0.0.1:1080"]).status == 0)
        let taken = try await cli.run(["session", "backup", "--json"]).json(BackupJSON.self)
        #expect(try await cli.run(["session", "proxy", "--account", "alice", "--clear"]).status == 0)
        let byPath = try await cli.run(["session", "restore", "--backup", cli.store + "/backups/" + taken.file, "--json"])
        #expect(byPath.status == 0, "\(byPath.stderr)")
        let result = try #require(try byPath.jsonObject() as? [String: Any])
        #expect(result["restored"] as? String == taken.file)
        #expect(result["proxiesChanged"] as? [[String: String]] == [["account": "alice", "before": "none (direct)", "now": "SOCKS5 proxy 127.0.0.1:1080 as tgsm"]],
                "\(result)")
        #expect(try await cli.run(["session", "proxy", "--account", "alice", "--clear"]).status == 0)
        let said = try await cli.run(["session", "restore", "--backup", taken.file])
        #expect(said.status == 0 && said.stderr.contains("alice's proxy is the backup's again: SOCKS5 proxy 127.0.0.1:1080 as tgsm "
                                                        + "(before the restore: none (direct))"), "\(said.stderr)")
        #expect(!said.stdout.contains("pw@") && !said.stderr.contains("pw@"))
        // A rotated password reads alike in the names: said all the same.
        #expect(try await cli.run(["session", "proxy", "--account", "alice", "--set", "socks5://tgsm:rotated@127.0.0.1:1080"]).status == 0)
        let rotated = try await cli.run(["session", "restore", "--backup", taken.file, "--json"])
        #expect((try rotated.jsonObject() as? [String: Any])?["proxiesChanged"] as? [[String: String]]
                    == [["account": "alice", "before": "SOCKS5 proxy 127.0.0.1:1080 as tgsm", "now": "SOCKS5 proxy 127.0.0.1:1080 as tgsm (another password or secret)"]],
                "\(rotated.stdout)")
        let same = try await cli.run(["session", "restore", "--backup", taken.file, "--json"])
        #expect((try same.jsonObject() as? [String: Any])?["proxiesChanged"] as? [[String: String]] == [], "nothing changed: \(same.stdout)")
    }

    /// `tgsm alerts test`: one alert posted with `tgsm run`'s settings, and the receiver's answer
    /// said; a refusal and no webhook at all are errors that say what to check.
    @Test func alertsTestPostsOneAlertAndSaysWhatTheReceiverAnswered() async throws {
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let receiver = WebhookReceiver(statuses: [200, 404])
        let port = await receiver.start()
        var cli = base
        cli.environment["TGSM_ALERT_WEBHOOK"] = "http://127.0.0.1:\(port)/hooks/s3cret"
        cli.environment["TGSM_ALERT_SECRET"] = "shared"
        let sent = try await cli.run(["alerts", "test"], withStore: false)
        #expect(sent.status == 0 && sent.stdout.contains("answered HTTP 200 (signed: X-Tgsm-Signature)"), "\(sent.stdout)\(sent.stderr)")
        let refused = try await cli.run(["alerts", "test"], withStore: false)
        #expect(refused.status == 1 && refused.stderr.contains("answered HTTP 404") && refused.stderr.contains("wrong path"), "\(refused.stderr)")
        await receiver.stop()
        let unreachable = try await cli.run(["alerts", "test"], withStore: false)
        #expect(unreachable.status == 1 && unreachable.stderr.contains("did not reach http://127.0.0.1:\(port)/…"), "\(unreachable.stderr)")
        // In the system's words, not NIO's value dump.
        #expect(unreachable.stderr.contains(": Connection refused.") && !unreachable.stderr.contains("SingleConnectionFailure"), "\(unreachable.stderr)")
        for result in [sent, refused, unreachable] { #expect(!(result.stdout + result.stderr).contains("s3cret")) }
        let alert = try JSONDecoder().decode(Alert.self, from: try #require(receiver.requests.first).body)
        #expect(alert.event == .test && alert.severity == .info, "\(alert)")

        // A URL with credentials names the ways to sign that exist (there is no --alert-secret flag).
        var credentials = base
        credentials.environment["TGSM_ALERT_WEBHOOK"] = "http://user:pass@127.0.0.1:\(port)/"
        let refusedURL = try await credentials.run(["alerts", "test"], withStore: false)
        #expect(refusedURL.status == 2 && refusedURL.stderr.contains("TGSM_ALERT_SECRET") && !refusedURL.stderr.contains("--alert-secret"),
                "\(refusedURL.status) \(refusedURL.stderr)")

        var without = base
        without.environment["TGSM_ALERT_WEBHOOK"] = ""
        let none = try await without.run(["alerts", "test"], withStore: false)
        #expect(none.status == 2 && none.stderr.contains("no alert webhook is set"), "\(none.stderr)")
    }

    @Test func everyCommandHasHelp() async throws {
        let (_, cli) = try CLI.temporary()
        for command in [[], ["session"], ["session", "list"], ["session", "backup"], ["session", "restore"], ["session", "import"], ["session", "rekey"], ["session", "remove"],
                        ["session", "export"], ["status"], ["jobs"], ["jobs", "enqueue"], ["jobs", "list"], ["jobs", "retry"],
                        ["jobs", "cancel"], ["check"], ["alerts"], ["alerts", "test"], ["testdc"]] {
            let help = try await cli.run(command + ["--help"], withStore: false)
            #expect(help.status == 0 && help.stdout.contains("USAGE: tgsm"), "\(command)")
        }
        #expect(!FileManager.default.fileExists(atPath: cli.store))
    }
}
