import ArgumentParser
import Foundation
import MTProto
import MTProtoClient
import SessionManager
import Workers

/// `tgsm session import --account NAME SOURCE`
struct SessionImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a Telethon or Pyrogram session (file or string, detected) into an account.",
        discussion: "SOURCE is a .session file, a file holding a string session, or - to read a string session from stdin "
            + "(a string session is a password: never pass it as an argument, where `ps` shows it). The key is taken as "
            + "logged in; the session manager validates it at start without asking for a code."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("account"), help: "The account to import into (created if new).")
    var account: String

    @Argument(help: ArgumentHelp("A .session file, a file with a string session, or - for stdin.", valueName: "source"))
    var source: String

    @Flag(name: .customLong("replace"), help: "Replace the account's existing session (its current key is lost unless backed up).")
    var replace = false

    @Option(name: .customLong("proxy"), help: ArgumentHelp(
        "The proxy the account connects through, kept before the session is (a `tgsm run` that finds the account never connects "
            + "it directly): as `tgsm session proxy --set`. An argument is visible in `ps`: else set it with `tgsm session proxy --set -` first.",
        valueName: "link"))
    var proxy: String?

    struct Result: Codable {
        var account: String
        var format: String
        var dc: Int
        var userID: Int64?
        var keyID: String
        var clearedMark: String?
        /// Peers taken from the library's cache (ids, access hashes, usernames).
        var peers: Int
        /// Rows of that cache left out: unreadable, or beyond the newest `SessionFileSnapshot.peerRowLimit`.
        var peersLeftOut: Int
    }

    func validate() throws {
        try AccountName.check(account)
        if let proxy { _ = try SessionProxyCommand.parse(proxy, option: "--proxy") }
    }

    func run() async throws {
        var (format, session) = try readSource()
        let (store, location, close) = try await StoreAccess.sessionStore(global, creating: true)
        let id = AccountID(account)
        let now = global.now()
        // A library cannot have seen a peer later than now: a row stamped ahead (a skewed clock)
        // would otherwise pass for a fresh sighting for as long as the skew.
        session.peers = session.peers.map { peer in
            var peer = peer
            if peer.seenAt > now { peer.seenAt = now }
            return peer
        }
        var cleared: String?
        var forgotPeersOf: Int64?
        var peersFailure: String?
        do {
            if let lease = try await store.currentLease(account: id), LeaseView(lease, now: now).isLive {
                throw CLIFailure(.leaseHeld, "account \(account) is in use by \(lease.holder); importing a key under a running "
                    + "process would mix two sessions. Stop that process first. " + ClusterAdvice.handOver)
            }
            let existing = try await store.loadSession(account: id)
            if existing != nil, !replace {
                throw CLIFailure(.fileExists, "account \(account) already has a session in \(location); nothing was changed. "
                    + "Take a backup (`tgsm session backup`) and pass --replace to overwrite it, or import into another account name.")
            }
            // An account's cached peers (access hashes), resolved usernames, history cursors and
            // jobs belong to one Telegram user: another user's session under its name would use them.
            if let was = existing?.userID, let now = session.userID, was != now {
                throw CLIFailure(.fileExists, "account \(account) holds the session of Telegram user \(was), and this one is user \(now)'s; "
                    + "nothing was changed. Import it into an account of its own (another --account name): an account's cached peers, "
                    + "resolved usernames and jobs belong to one user.")
            }
            // Two accounts on one key connect with it at once, and Telegram destroys it for both
            // (AUTH_KEY_DUPLICATED: a new login by code for each).
            for other in try await store.accounts() where other != id {
                if try await store.loadSession(account: other)?.authKeyIDs.contains(session.authKey.id) == true {
                    throw CLIFailure(.fileExists, "this session's key is already the session of account \(other.rawValue); nothing was "
                        + "changed. Two accounts on one key would both connect with it and Telegram would destroy it for both "
                        + "(AUTH_KEY_DUPLICATED, a new login by code for each). Each account needs a login of its own: log the "
                        + "other session in anew (or `tgsm auth --account \(account)`) and import that.")
                }
            }
            // Read before the save (on SQLite a save that logs the account in ends a mark itself),
            // and before any change: a mark this version cannot read refuses the import unchanged.
            let markBefore = try await store.status(of: id)
            // Access hashes are per Telegram user: another user's (or, with the new user unknown,
            // maybe another user's) would be refused, and jobs would die on them.
            if let was = existing?.userID, session.userID != was {
                try await store.forgetPeers(account: id)
                forgotPeersOf = was
            }
            // Before the session: a `tgsm run` finds an account once its session is stored.
            if let proxy { try await store.setProxy(try SessionProxyCommand.parse(proxy, option: "--proxy"), account: id) }
            try await store.saveSession(session.sessionState, account: id, fence: nil)
            // What the library had already resolved, so the account does not spend its
            // resolveUsername budget on it again. The session is stored by now: a failure here
            // costs only those resolves, and is said as such.
            do {
                try await store.importPeers(session.peers, account: id)
            } catch {
                peersFailure = (error as? SessionStoreError).map { "\($0.code): \($0)" } ?? "\(error)"
            }
            // A new key is a new login: a terminal mark from the old key no longer applies.
            if let mark = markBefore, mark.isTerminal {
                try await store.setStatus(.active(since: now), for: id)
                cleared = "\(mark.state.rawValue) (\(mark.code))"
            }
        } catch let failure as CLIFailure {
            await close()
            throw failure
        } catch let error as SessionStoreError {
            await close()
            throw CLIFailure(error)
        } catch {
            await close()
            throw CLIFailure(.failure, "the session could not be stored in \(location): \(error)")
        }
        await close()
        let keyID = String(UInt64(bitPattern: session.authKey.id), radix: 16)
        let result = Result(
            account: account, format: format.rawValue, dc: session.dc, userID: session.userID, keyID: keyID, clearedMark: cleared,
            peers: peersFailure == nil ? session.peers.count : 0,
            peersLeftOut: session.unreadablePeerRows + (peersFailure == nil ? 0 : session.peers.count))
        let terminal = Terminal.standard
        if output.json { try terminal.json(result); return }
        terminal.line("\(terminal.paint("imported", .green)) \(format) into \(account): DC \(session.dc), user "
            + "\(session.userID.map(String.init) ?? "unknown"), key id \(keyID)")
        if let cleared { terminal.line("  the account's mark \(cleared) was cleared: the imported key is a new login") }
        if let proxy, let setting = try? SessionProxyCommand.parse(proxy, option: "--proxy") {
            terminal.line("  \(account) connects through its \(SessionProxyCommand.name(setting))")
        }
        if let was = forgotPeersOf {
            terminal.line("  the account's cached peers were dropped: they were user \(was)'s, and this session does not say its user "
                + "(its access hashes would be another user's if it is not \(was))")
        }
        if !session.peers.isEmpty, peersFailure == nil {
            let lifetime = PeerReference.cachedUsernameLifetime
            let fresh = session.peers.filter { $0.username != nil && now.seconds - $0.seenAt.seconds <= lifetime }.count
            let peers = session.peers.count
            terminal.line("  \(peers) \(peers == 1 ? "peer" : "peers") from its cache: jobs address \(peers == 1 ? "it" : "them") by id without resolving; "
                + "\(fresh) \(fresh == 1 ? "username" : "usernames") seen within the last \(Int(lifetime / 3600)) h \(fresh == 1 ? "is" : "are") used without asking Telegram until then")
        }
        // The moment a migrant is most likely to keep the old client running: the same key in two
        // live clients makes Telegram destroy it (AUTH_KEY_DUPLICATED), and only a new login helps.
        terminal.warning("stop every other client that uses this session (the Telethon or Pyrogram script, a worker) before `tgsm run` "
            + "serves \(account), and do not use the source file or string again: one key in two live clients is destroyed by Telegram "
            + "(AUTH_KEY_DUPLICATED), and only a new login brings the account back. `tgsm session export` gives a copy for when tgsm no longer runs it.")
        if let peersFailure {
            terminal.warning("the session was imported, but its \(session.peers.count) cached peers could not be stored "
                + "(\(peersFailure)); jobs resolve those peers again when they need them, or import the file again later")
        }
        if let reason = session.peerCacheError {
            terminal.warning("the file's peer cache could not be read (\(reason)); the session was imported without it, and its "
                + "peers are resolved again when a job needs them")
        }
        if session.unreadablePeerRows > 0 {
            terminal.warning("\(session.unreadablePeerRows) rows of the file's peer cache were left out (unreadable, or beyond the "
                + "\(SessionFileSnapshot.peerRowLimit) most recently seen); those peers are resolved again when a job needs them")
        }
        if !(1...5).contains(session.dc) {
            terminal.warning("DC \(session.dc) is not one of Telegram's DCs (1 to 5): right for a session of a test DC with more DCs "
                + "(`tgsm testdc --dcs`), otherwise the session is damaged and will not connect; `tgsm check` after the first run says")
        }
    }

    /// Long and only base64 or base64url characters (no dot, not starting as a path does):
    /// Telethon's and Pyrogram's string sessions are 350+ characters of those.
    static func looksLikeAStringSession(_ text: String) -> Bool {
        text.count >= 100 && !text.hasPrefix("/") && text.allSatisfy { character in
            character.isASCII && (character.isLetter || character.isNumber || "-_=+/".contains(character))
        }
    }

    private func readSource() throws(CLIFailure) -> (PortableSessionFormat, PortableSession) {
        do {
            if source == "-" {
                let data = FileHandle.standardInput.readDataToEndOfFile()
                if data.starts(with: Array("SQLite format 3".utf8)) {
                    throw CLIFailure(.usage, "stdin holds a SQLite file (a .session file), not a string session: give the file's path instead of -")
                }
                if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                    throw CLIFailure(.usage, "stdin was empty: pipe the string session in (`- < FILE`), or give a file's path")
                }
                return try ForeignSession.decodeString(String(decoding: data, as: UTF8.self))
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: GlobalOptions.absolute(source), isDirectory: &isDirectory), isDirectory.boolValue {
                throw CLIFailure(.usage, "\(GlobalOptions.absolute(source)) is a directory: give the path of a .session file or of a file holding a string session")
            }
            let path = GlobalOptions.absolute(source)
            guard let handle = FileHandle(forReadingAtPath: path) else {
                // A string session pasted as the argument is a login: never repeated on stderr,
                // where a CI log or the journal would keep it.
                if Self.looksLikeAStringSession(source) {
                    throw CLIFailure(.usage, "the argument looks like a string session itself, not a path (it is not shown here: it is a "
                        + "login). Give it on stdin (`tgsm session import --account NAME - < FILE`) or as a file, so it stays out of the "
                        + "shell history and the process list; if it was typed in a shell, consider it exposed and log that session out")
                }
                if FileManager.default.fileExists(atPath: path + ".session") {
                    throw CLIFailure(.notFound, "cannot read \(path): it does not exist, but \(path).session does (Telethon and Pyrogram "
                        + "add .session to the name they are given); give that path")
                }
                throw CLIFailure(.notFound, "cannot read \(path): it does not exist or is not readable; give the path of a .session file "
                    + "or of a file holding a string session, or - for stdin")
            }
            let head = (try? handle.read(upToCount: 16)) ?? Data()
            try? handle.close()
            if head.isEmpty {
                throw CLIFailure(.failure, "\(path) is empty: a Telethon or Pyrogram .session file is a SQLite database, and a string session file holds one line. "
                    + "Was the session saved (Telethon writes the file when its client is disconnected)?")
            }
            if head.starts(with: Array("SQLite format 3".utf8)) { return try ForeignSession.readFile(path: path) }
            guard let text = FileManager.default.contents(atPath: path), text.count < 4096 else {
                throw CLIFailure(.failure, "\(path) is neither a SQLite session file nor a string session (too large); "
                    + "give a Telethon/Pyrogram .session file or a file holding one string session")
            }
            return try ForeignSession.decodeString(String(decoding: text, as: UTF8.self))
        } catch let error as SessionImportError {
            throw CLIFailure(error)
        } catch let failure as CLIFailure {
            throw failure
        } catch {
            throw CLIFailure(.failure, "\(error)")
        }
    }
}

/// The formats `session export` writes.
enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case telethonString = "telethon-string"
    case telethonFile = "telethon-file"
    case pyrogramString = "pyrogram-string"
    case pyrogramFile = "pyrogram-file"

    var isString: Bool { self == .telethonString || self == .pyrogramString }
    var isPyrogram: Bool { self == .pyrogramString || self == .pyrogramFile }
}

/// `tgsm session export --account NAME --format F (--output PATH | --stdout)`
struct SessionExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export an account's session as a Telethon or Pyrogram string or file.",
        discussion: "The export holds the account's auth key: whoever has it is logged in. It is written to a new file "
            + "created 0600 (--output), or to stdout only when --stdout is given. Do not run the account in tgsm and in "
            + "the other library at the same time: Telegram revokes a key used twice (AUTH_KEY_DUPLICATED)."
    )

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("account"), help: "The account to export.")
    var account: String

    @Option(name: .customLong("format"), help: "telethon-string, telethon-file, pyrogram-string or pyrogram-file.")
    var format: ExportFormat

    @Option(name: .customLong("output"), help: ArgumentHelp("Write to this new file (mode 0600).", valueName: "path"))
    var outputPath: String?

    @Flag(name: .customLong("stdout"), help: "Print a string session on stdout (it is a password: mind terminals and logs).")
    var toStdout = false

    @Flag(name: .customLong("force"), help: "Replace an existing output file.")
    var force = false

    @Flag(name: .customLong("while-running"), help: ArgumentHelp(
        "Export although a live process serves the account.",
        discussion: "Refused otherwise (exit 6): the export used while tgsm runs the account would connect with the same key, and Telegram destroys a key used twice."))
    var whileRunning = false

    @Option(name: .customLong("api-id"), help: "Pyrogram: the api_id the account logs in with (its formats carry it).")
    var apiID: Int64?

    @Option(name: .customLong("address"), help: ArgumentHelp(
        "The home DC's address as HOST:PORT (default: the --server profile's address for that DC).", valueName: "host:port"))
    var address: String?

    // Without it a session logged in on a `tgsm testdc` was exported with Telegram's production
    // address for its DC: the library then dialled Telegram with a key Telegram never saw.
    @Option(name: .customLong("server"), help: ArgumentHelp(
        "Which servers the session belongs to, as for `tgsm auth`: production (default), test, or a `tgsm testdc` dcs.json (or its directory); the export carries that server's address for the home DC.",
        discussion: "Also TGSM_SERVER or \"server\" in the config file.", valueName: "profile"))
    var server: String?

    @Flag(name: .customLong("test-mode"), help: "Pyrogram: mark the session as one of Telegram's test servers.")
    var testMode = false

    // Each Pyrogram opens the other's files, but only its own schema works in full: Pyrogram 2.0.106
    // fails on its first update in a version 7 file (it writes `peers.username`).
    @Option(name: .customLong("pyrogram-schema"), help: ArgumentHelp(
        "pyrogram-file: 7 for kurigram (the default; keeps the address), 3 for the original Pyrogram 2.0.106 (no address: it dials its own table for the DC).",
        valueName: "3|7"
    ))
    var pyrogramSchema: Int64?

    func validate() throws {
        if (outputPath == nil) == (!toStdout) {
            throw ValidationError("give exactly one of --output PATH or --stdout (an export holds the key, so it is never printed by default)")
        }
        if toStdout && !format.isString { throw ValidationError("--stdout is for string formats; a session file needs --output PATH") }
        if format.isPyrogram && apiID == nil { throw ValidationError("Pyrogram formats carry the api_id: pass --api-id") }
        if let address, Self.parseAddress(address) == nil { throw ValidationError("--address must be HOST:PORT, e.g. 149.154.167.51:443") }
        // Accepted and dropped, it left a session that dials Telegram's own table, not the address asked for.
        if address != nil, format == .pyrogramString || (format == .pyrogramFile && pyrogramSchema == 3) {
            throw ValidationError("--address cannot be kept by \(format == .pyrogramString ? "a Pyrogram string" : "a schema-3 Pyrogram file"), which "
                + "names only the DC id: use --format telethon-string, telethon-file or pyrogram-file (schema 7), or give the address to the library")
        }
        if let pyrogramSchema {
            guard format == .pyrogramFile else { throw ValidationError("--pyrogram-schema is for --format pyrogram-file") }
            guard PyrogramSessionFile.Schema(rawValue: pyrogramSchema) != nil else {
                throw ValidationError("--pyrogram-schema must be 7 (kurigram) or 3 (Pyrogram 2.0.106), not \(pyrogramSchema)")
            }
        }
    }

    static func parseAddress(_ text: String) -> DCAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return DCAddress(host: host, port: port, isIPv6: host.contains(":"))
    }

    func run() async throws {
        // Read-only where it can be: a store on a filesystem remounted read-only after I/O errors is
        // exactly when its sessions are taken away (it failed with "cannot create ...: Read-only file system").
        let (store, location, close) = try await StoreAccess.sessionStoreForReading(global)
        let state: SessionState?
        var peers: [PeerRecord] = []
        do {
            if !whileRunning, let lease = try await store.currentLease(account: AccountID(account)), LeaseView(lease, now: global.now()).isLive {
                throw CLIFailure(.leaseHeld, "account \(account) is served by \(lease.holder) right now; nothing was exported. Used while "
                    + "that process runs the account, the export would connect with the same key and Telegram would destroy it for both "
                    + "(AUTH_KEY_DUPLICATED, a new login by code). Stop that process (or run it with --account for the other accounts) "
                    + "first; --while-running exports anyway, for a copy not used until then.")
            }
            state = try await store.loadSession(account: AccountID(account))
            // Exported all the same (a person may want the file), but a key Telegram ended logs nothing in.
            let mark = try await store.guardedStatus(of: AccountID(account), now: global.now())
            if let mark, mark.state == .unreadable {
                Terminal.standard.warning("account \(account)'s mark in the store cannot be read (\(mark.cause)): whether Telegram still accepts "
                    + "this session is not known here (`tgsm check` says what to do).")
            } else if let mark, mark.isTerminal {
                Terminal.standard.warning("account \(account) is marked \(mark.state.rawValue) since \(TimeText.iso(mark.since)) (\(mark.cause), "
                    + "\(mark.code)): Telegram no longer accepts this session, so the exported one will not log in either. "
                    + "Log the account in again first (`tgsm auth --account \(account)`), then export.")
            }
            // A session file carries the library's peer cache too; a string has no room for it.
            if !format.isString { peers = try await store.peers(account: AccountID(account)) }
            // No session format has room for a proxy: the library would connect from this host's address.
            if let proxy = try? await store.proxy(account: AccountID(account)) {
                Terminal.standard.warning("account \(account) connects through its \(SessionProxyCommand.name(proxy)); the exported session carries "
                    + "no proxy, so give the library the same one (Telethon: proxy=…, Pyrogram: proxy=…), or it connects directly.")
            }
        } catch let failure as CLIFailure {
            await close()
            throw failure
        } catch let error as SessionStoreError {
            await close()
            throw CLIFailure(error)
        } catch {
            await close()
            throw CLIFailure(.failure, "the session of \(account) could not be read from \(location): \(error)")
        }
        await close()
        guard let state else {
            throw CLIFailure(.notFound, "account \(account) has no session in \(location); `tgsm session list` shows the accounts")
        }
        var session: PortableSession
        var onTelegramsTestServers = false
        if let address {
            do { session = try PortableSession(state: state) } catch { throw CLIFailure(error) }
            session.address = Self.parseAddress(address)
        } else {
            let profile = try ConnectionOptions.serverProfile(server: server, file: try global.configFile())
            do { session = try PortableSession(state: state, dcTable: profile.dcTable) } catch { throw CLIFailure(error) }
            onTelegramsTestServers = profile.isTestServer
        }
        session.peers = peers
        if format.isPyrogram {
            session.apiID = apiID
            session.isTestMode = testMode || onTelegramsTestServers
            session.date = Int64(global.now().seconds)
        }
        do {
            switch format {
            case .telethonString: try emit(TelethonStringSession.encode(session))
            case .pyrogramString: try emit(PyrogramStringSession.encode(session))
            case .telethonFile: try TelethonSessionFile.write(session, to: try outputFile(), overwrite: force)
            case .pyrogramFile:
                let schema = pyrogramSchema.flatMap(PyrogramSessionFile.Schema.init(rawValue:)) ?? .version7
                try PyrogramSessionFile.write(session, to: try outputFile(), schema: schema, overwrite: force)
            }
        } catch let error as SessionExportError {
            throw CLIFailure(error)
        }
        if let outputPath {
            Terminal.standard.errorLine("exported \(account) as \(format.rawValue) to \(GlobalOptions.absolute(outputPath)) (mode 0600)")
        }
        Terminal.standard.errorLine("Use it only while tgsm does not run \(account): one key used by two clients at once is destroyed by Telegram "
            + "(AUTH_KEY_DUPLICATED). To hand the account over, leave it out of `tgsm run` (--account for the others).")
    }

    private func outputFile() throws(CLIFailure) -> String {
        guard let outputPath else { throw CLIFailure(.usage, "--output PATH is required for a session file") }
        return GlobalOptions.absolute(outputPath)
    }

    private func emit(_ string: String) throws(CLIFailure) {
        if toStdout {
            Terminal.standard.line(string)
            return
        }
        try PrivateFile.write(Data((string + "\n").utf8), to: try outputFile(), overwrite: force)
    }
}

/// Files holding secrets: created 0600 before any byte is written.
enum PrivateFile {
    static func write(_ data: Data, to path: String, overwrite: Bool) throws(CLIFailure) {
        if FileManager.default.fileExists(atPath: path) {
            guard overwrite else {
                throw CLIFailure(.fileExists, "\(path) already exists; nothing was written. Choose another path, or pass --force to replace it.")
            }
            unlink(path)
        }
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CLIFailure(.failure, "cannot create \(path): \(String(cString: strerror(errno))); check the folder and its permissions")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
        } catch {
            unlink(path)
            throw CLIFailure(.failure, "cannot write \(path): \(error.localizedDescription); nothing was kept")
        }
    }
}
