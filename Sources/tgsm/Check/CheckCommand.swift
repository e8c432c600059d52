import ArgumentParser
import Foundation
import MTProto
import MTProtoClient
import OperatorHTTP
import PostgresStore
import SessionManager
import Workers

/// `tgsm check`: offline diagnostics, each finding with the steps that fix it.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Diagnose the store offline: integrity, backups, leases, account marks, active limits; with recovery steps.",
        discussion: "Nothing is sent to Telegram and a damaged store is only inspected (read-only), never changed. Exit 0 "
            + "when nothing needs a person; otherwise the code of the most serious finding: 5 store damaged, 9 encryption key, "
            + "4 no store, 8 account marked, 3 other problems, 6 a lease held by a live process, 7 rate limited."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    struct Finding: Codable {
        /// ok, warning, problem.
        var level: String
        var check: String
        var message: String
        var guidance: [String]
        /// The exit code this finding asks for (problems only).
        var exitCode: Int32?

        static func ok(_ check: String, _ message: String) -> Finding { Finding(level: "ok", check: check, message: message, guidance: [], exitCode: nil) }
        static func warning(_ check: String, _ message: String, _ guidance: [String]) -> Finding {
            Finding(level: "warning", check: check, message: message, guidance: guidance, exitCode: nil)
        }
        static func problem(_ exit: CLIExit, _ check: String, _ message: String, _ guidance: [String]) -> Finding {
            Finding(level: "problem", check: check, message: message, guidance: guidance, exitCode: exit.rawValue)
        }
    }

    struct Report: Codable {
        var store: String
        var ok: Bool
        var exitCode: Int32
        var findings: [Finding]
    }

    /// Most serious first: the exit code is the first of these any problem asks for.
    static let severity: [CLIExit] = [.storeDamaged, .encryptionKey, .notFound, .accountMarked, .problems, .leaseHeld, .rateLimited, .failure]

    func run() async throws {
        var findings: [Finding] = []
        let location: String
        switch try global.storeLocation() {
        case .directory(let directory):
            location = directory
            await diagnose(directory: directory, into: &findings)
        case .postgres(let url):
            location = (try? PostgresURL(url).redacted) ?? "postgres://…"
            await diagnosePostgres(into: &findings)
        }
        let codes = Set(findings.compactMap(\.exitCode))
        let exit = Self.severity.first { codes.contains($0.rawValue) } ?? .ok
        let report = Report(store: location, ok: exit == .ok, exitCode: exit.rawValue, findings: findings)
        if output.json {
            try Terminal.standard.json(report)
        } else {
            print(report)
        }
        if exit != .ok { throw ExitCode(exit.rawValue) }
    }

    /// The backups directory, its backups and sidecars, the store's `.replaced-*`/`.damaged-*` files
    /// and the key file, where other users may read them.
    static func looseFiles(directory: String, keyFile: String?) -> [(path: String, mode: Int, isDirectory: Bool)] {
        func mode(_ path: String) -> (Int, Bool)? {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue else { return nil }
            return (mode, attributes[.type] as? FileAttributeType == .typeDirectory)
        }
        var paths = [directory + "/backups"]
        paths += ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/backups")) ?? []).sorted().map { directory + "/backups/" + $0 }
        paths += ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
            .filter { $0.contains(".replaced-") || $0.contains(".damaged-") }.map { directory + "/" + $0 }
        if let keyFile { paths.append(keyFile) }
        return paths.compactMap { path in
            guard let (mode, isDirectory) = mode(path), mode & 0o077 != 0 else { return nil }
            return (path, mode, isDirectory)
        }
    }

    private func print(_ report: Report) {
        let terminal = Terminal.standard
        terminal.line("\(terminal.paint("tgsm check", .bold)) \(report.store)")
        for finding in report.findings {
            let mark = switch finding.level {
            case "ok": terminal.paint("  ok   ", .green)
            case "warning": terminal.paint("  warn ", .yellow)
            default: terminal.paint("  FAIL ", .red)
            }
            terminal.line("\(mark) \(finding.check): \(finding.message)")
            for (index, step) in finding.guidance.enumerated() { terminal.line("         \(index + 1). \(step)") }
        }
        let problems = report.findings.filter { $0.level == "problem" }.count
        let warnings = report.findings.filter { $0.level == "warning" }.count
        terminal.line(problems == 0
            ? terminal.paint("no problems", .green) + (warnings > 0 ? " (\(warnings) warning\(warnings == 1 ? "" : "s"))" : "")
            : terminal.paint("\(problems) problem\(problems == 1 ? "" : "s")", .red) + ", \(warnings) warning\(warnings == 1 ? "" : "s") (exit \(report.exitCode))")
    }

    private func diagnose(directory: String, into findings: inout [Finding]) async {
        let options = global.storeOptions()
        let now = global.now()
        // 1. The directory.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: directory) else {
            findings.append(.problem(.notFound, "store directory", "\(directory) does not exist", [
                "Check --store / TGSM_HOME: is this the directory the workers use?",
                "To start a new store, log an account in (`tgsm auth --account NAME`) or import a session (`tgsm session import --account NAME FILE`).",
            ]))
            return
        }
        let directoryMode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0
        if directoryMode & 0o077 != 0 {
            findings.append(.warning("store directory", "\(directory) is mode \(String(directoryMode, radix: 8)): other users can list it",
                                     ["chmod 700 \(directory) (the store holds auth keys)."]))
        } else {
            findings.append(.ok("store directory", "\(directory) (mode \(String(directoryMode, radix: 8)))"))
        }

        // Files that hold auth keys (or the key that seals them) must be the user's alone: tgsm makes
        // them 0600/0700, but a copy (cp without -p, an unpacked archive) or a hand-made key file may not be.
        let keyFile: String? = if case .keyFile(let path) = global.storeEncryption() { path } else { nil }
        let loose = Self.looseFiles(directory: directory, keyFile: keyFile)
        if !loose.isEmpty {
            var steps = loose.filter(\.isDirectory).map { "chmod 700 \($0.path)" }
            let files = loose.filter { !$0.isDirectory }
            for parent in Set(files.map { ($0.path as NSString).deletingLastPathComponent }).sorted() {
                let here = files.filter { ($0.path as NSString).deletingLastPathComponent == parent }
                steps += here.count > 2 ? ["chmod 600 \(parent)/*"] : here.map { "chmod 600 \($0.path)" }
            }
            findings.append(.warning("file modes", "readable by other users, though they hold auth keys or the key sealing them: "
                + loose.map { "\($0.path) (mode \(String($0.mode, radix: 8)))" }.joined(separator: ", "), steps))
        }

        // The config file holds the api_hash, and may hold the webhook's secret and the HTTP token.
        if let config = try? global.configFile(), config.value != nil,
           let mode = (try? FileManager.default.attributesOfItem(atPath: config.path))?[.posixPermissions] as? NSNumber,
           mode.intValue & 0o077 != 0 {
            findings.append(.warning("config file", "\(config.path) is mode \(String(mode.intValue, radix: 8)): other users may read the api_hash "
                + "(and any alert secret or HTTP token) it holds", ["chmod 600 \(config.path)"]))
        }

        // Files restores and recoveries set aside are kept for a person to look at, never deleted by
        // tgsm: they add up, and those from before encryption was turned on hold the keys in clear.
        let setAside = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
            .filter { ($0.contains(".replaced-") || $0.contains(".damaged-")) && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
        if !setAside.isEmpty {
            let sealed = SQLiteSessionStore.isSealed(directory: directory, options: options) == true
            let inClear = sealed ? setAside.filter { SQLiteSessionStore.holdsKeysInClear(file: directory + "/" + $0, options: options) == true } : []
            if !inClear.isEmpty {
                findings.append(.warning("set-aside files", "\(inClear.joined(separator: ", ")) hold auth keys in clear, though the store is sealed", [
                    "Delete them (with their -wal/-shm) once nothing in them is needed: whoever copies them has the accounts.",
                ]))
            } else {
                findings.append(.ok("set-aside files", "\(setAside.count) file(s) a restore or recovery set aside (\(setAside.joined(separator: ", "))): "
                    + "kept for you to look at; delete them (with their -wal/-shm) once nothing in them is needed"))
            }
        }

        // 2. Backups on disk, verified as a restore would.
        let backups = SQLiteSessionStore.backupsOnDisk(directory: directory)
        let inspections = backups.map { ($0, SQLiteSessionStore.inspectBackup($0.file, directory: directory, options: options)) }
        let verdicts = inspections.map { ($0.0, $0.1.problem) }
        let good = verdicts.filter { $0.1 == nil }.map(\.0)

        // 3. The store file, read-only.
        let health = SQLiteSessionStore.inspectFile(directory: directory, options: options)
        // A file another process has open may only be in the middle of something (its -wal deleted
        // under it): stopping that process comes before any restore, which refuses while it runs.
        let users = SQLiteSessionStore.processesUsing(directory: directory, options: options)
        let stopFirst = users.isEmpty ? "" : "First stop process \(users.map(String.init).joined(separator: ", ")), which has the store open "
            + "(a `tgsm run`? it saves its sessions as it ends), and run `tgsm check` again: nothing is restored under it. Then: "
        var restoreStep = good.first.map { stopFirst + "Run `tgsm session restore` to put the newest verified backup (\($0.file), commit \($0.commitSequence)) in place; the damaged file is kept aside." }
        // A sealed backup restored without its key only fails again as the store did (and every
        // command that opens the store would put it back): say what works without the key.
        let keyGiven: Bool = if case .none = options.encryption { false } else { true }
        if !keyGiven, let newest = good.first, inspections.first(where: { $0.0.file == newest.file })?.1.isSealed == true {
            let inClear = inspections.first { _, inspection in inspection.problem == nil && inspection.isSealed == false }?.0
            restoreStep = stopFirst + "The newest verified backup (\(newest.file)) seals its secrets: restore it with the store's key "
                + "(`tgsm session restore --key-file FILE`). Without that key, "
                + (inClear.map { "restore \($0.file), taken before encryption was turned on (`tgsm session restore --backup \($0.file)`), or " } ?? "")
                + "set the store file and its backups aside (`mkdir \(directory)/sealed && mv \(directory)/\(options.fileName)* \(directory)/backups "
                + "\(directory)/sealed/`: the backups would be restored again otherwise; the job queue, jobs.sqlite, stays) and log the accounts in "
                + "again (`tgsm auth`), which starts a new store."
        }
        var storeUsable = false
        switch health {
        case .absent, .empty:
            if let restoreStep {
                findings.append(.problem(.storeDamaged, "store file", "\(options.fileName) is \(health == .absent ? "missing" : "empty") but backups exist",
                                         [restoreStep]))
            } else {
                findings.append(.problem(.notFound, "store file", "there is no store in \(directory)", [
                    "Import a session (`tgsm session import --account NAME FILE`) or log the account in.",
                ]))
            }
        case .good(let sequence):
            if let newest = good.first, newest.commitSequence > sequence {
                findings.append(.problem(.storeDamaged, "store file", "the store (commit \(sequence)) is behind its backup \(newest.file) "
                    + "(commit \(newest.commitSequence)): commits were lost (a deleted WAL, or a file copied back)", [restoreStep ?? ""]))
            } else {
                findings.append(.ok("store file", "integrity_check, format, schema and row checks pass (commit \(sequence))"))
                storeUsable = true
            }
            // Reads go on under a held write lock, so the rest of the check would say "no problems"
            // while every `tgsm run` on the store is losing its leases.
            let writers = SQLiteSessionStore.writeLockHolders(directory: directory, options: options)
            if !writers.isEmpty {
                let who = writers.map { "\($0.pid)\($0.name.map { " (\($0))" } ?? "")" }.joined(separator: ", ")
                findings.append(.problem(.problems, "store file", "process \(who) holds the store's write lock: nothing else can write it "
                    + "(a `tgsm run` cannot renew its leases or save its sessions, and stops serving its accounts when they run out)", [
                    "If it is a `sqlite3` shell or a backup tool left in a transaction, let it finish (COMMIT or ROLLBACK) or stop it.",
                    "`tgsm run` takes its accounts back by itself once the store takes writes again.",
                ]))
            }
            let fileMode = ((try? FileManager.default.attributesOfItem(atPath: directory + "/" + options.fileName))?[.posixPermissions] as? NSNumber)?.intValue ?? 0
            if fileMode & 0o077 != 0 {
                findings.append(.warning("store file", "mode \(String(fileMode, radix: 8)): readable by other users", ["chmod 600 \(directory)/\(options.fileName)"]))
            }
        case .damaged(let reason):
            findings.append(.problem(.storeDamaged, "store file", "damaged: \(reason)", restoreStep.map { [$0] } ?? [
                "No verified backup exists: restore the directory from your own backups,",
                "or run `tgsm recover --salvage`: it builds a new store from what still reads in \(options.fileName) (sessions whose rows "
                    + "pass their checks, flood waits, send-code deadlines), keeps the file aside as found and lists the accounts to log in again.",
            ]))
        case .unreachable(let reason):
            findings.append(.problem(.failure, "store file", "cannot be read: \(reason)", [
                "This is not damage, and nothing was changed: do not restore or log in again for it.",
                "Check that the user running tgsm may read and write \(directory) and its files, and that the filesystem is not "
                    + "mounted read-only (SQLite writes \(options.fileName)-shm next to the file even to read it).",
                "If another program holds the file locked (a backup tool, an open sqlite3 shell), let it finish.",
            ]))
        case .foreign(let reason):
            findings.append(.problem(.storeDamaged, "store file", "not a session store: \(reason)", [
                "Check --store: this is not a tgsm store directory.",
            ] + (restoreStep.map { [$0] } ?? ["Move the file away if it is not needed."])))
        }

        if backups.isEmpty {
            // A backup of an unusable store cannot be taken (and would only keep the damage).
            findings.append(.problem(.problems, "backups", "no backup in \(directory)/backups", storeUsable ? [
                "Take one now: `tgsm session backup` (`tgsm run` also takes one every 6 h, see --backup-interval, and after each new key).",
            ] : ["None can be taken of the store as it is: see the store file's finding above first."]))
        } else {
            for (record, inspection) in inspections {
                guard let problem = inspection.problem else { continue }
                if inspection.unverifiable {
                    findings.append(.warning("backups", "\(record.file): \(problem)",
                                             ["Nothing is known against it and nothing was changed: free disk space (or make the backup directory writable) and run `tgsm check` again."]))
                } else {
                    findings.append(.warning("backups", "\(record.file) fails verification: \(problem)",
                                             ["A restore skips it. Take a fresh backup: `tgsm session backup`."]))
                }
            }
            // Backups taken before encryption was turned on still hold the keys in clear: the sealed
            // store does not protect them, and a copy of the directory gives the accounts away.
            if SQLiteSessionStore.isSealed(directory: directory, options: options) == true {
                for (record, inspection) in inspections where inspection.holdsKeysInClear {
                    let file = record.file
                    findings.append(.warning("backups", "\(file) holds auth keys in clear: it was taken before the store's encryption was turned on", [
                        "Take a sealed backup now: `tgsm session backup`.",
                        "Then delete \(directory)/backups/\(file) and its .json sidecar (restoring it would seal it again, but the file itself gives the keys to whoever copies it).",
                    ]))
                }
            }
            // Backups taken before a re-key are sealed under the old key: they restore only with it.
            for (record, inspection) in inspections where inspection.sealedUnderAnotherKey {
                findings.append(.warning("backups", "\(record.file) is sealed under another key than the one given "
                    + "(taken before a re-key, or the --key-file given is not the store's)", [
                    "It restores only with that key: keep the old key with it, or delete it and its .json sidecar.",
                    "`tgsm session backup` takes one under the current key.",
                ]))
            }
            if let newest = good.first {
                let age = now - newest.createdAt
                if age > 24 * 3600 {
                    findings.append(.warning("backups", "the newest verified backup is \(TimeText.remaining(age)) old (\(TimeText.iso(newest.createdAt)))",
                                             ["Take one now: `tgsm session backup`; check that `tgsm run` runs (it takes one every --backup-interval, 6 h by default)."]))
                } else {
                    findings.append(.ok("backups", "\(good.count) verified, newest \(newest.file) from \(TimeText.iso(newest.createdAt))"))
                }
            } else if inspections.contains(where: \.1.unverifiable) {
                findings.append(.problem(.problems, "backups", "none of the \(backups.count) backups could be verified here now (see above)",
                                         ["Free disk space in \(directory) (a check copies each backup beside it), then run `tgsm check` again: a backup is only set aside once it is found bad."]))
            } else {
                findings.append(.problem(.problems, "backups", "none of the \(backups.count) backups verifies",
                                         ["Take one now: `tgsm session backup` (if the store itself is good)."]))
            }
        }

        guard storeUsable else { return }
        let accounts = await diagnoseAccounts(directory: directory, options: options, now: now, into: &findings)
        await diagnoseQueue(accounts: accounts, into: &findings)
    }

    /// Opens the SQLite store for `diagnoseAccounts`; nil (and said) when it cannot be opened.
    private func diagnoseAccounts(directory: String, options: SQLiteStoreOptions, now: UnixTime, into findings: inout [Finding]) async -> Set<AccountID>? {
        let store: SQLiteSessionStore
        do {
            // Read-only when the store is current (the usual case: it passed inspection above), so a
            // check changes nothing, and works on a full disk; else opened as other commands do.
            if let reader = SQLiteSessionStore.openForReading(directory: directory, options: options) {
                store = reader
            } else {
                store = try SQLiteSessionStore.open(directory: directory, options: options)
            }
        } catch {
            let failure = CLIFailure(error)
            findings.append(.problem(failure.exit, "store", failure.message, []))
            return nil
        }
        defer { try? store.close() }
        return await diagnoseAccounts(in: store, now: now, into: &findings)
    }

    /// A PostgreSQL store (`--store postgres://…`): what a directory's files would tell does not
    /// apply (PostgreSQL keeps its pages and its own backups); its accounts, limits and job queue
    /// are checked as a SQLite store's are. Read only: the schema is checked, never migrated.
    private func diagnosePostgres(into findings: inout [Finding]) async {
        let now = global.now()
        let opened: (store: any OperatorReadableStore, location: String, close: @Sendable () async -> Void)
        do {
            opened = try await StoreAccess.operatorStoreForReading(global)
        } catch {
            // Exit 4 for a database with no store (as a missing directory), 9 for the key, else 3,
            // each with what to look at (the message says the rest).
            switch error.exit {
            case .notFound:
                findings.append(.problem(.notFound, "store", error.message, []))
            case .encryptionKey:
                findings.append(.problem(.encryptionKey, "store", error.message, ["Give the store's key: --key-file PATH or $TGSM_KEY_FILE."]))
            default:
                findings.append(.problem(.problems, "store", error.message, [
                    "Check that the PostgreSQL server runs and accepts connections from this host (`pg_isready -h HOST -p PORT`).",
                    "Check the URL's user and database, and the password ($PGPASSWORD or the URL).",
                    "A schema this tgsm does not match (named above): run the tgsm version the cluster runs.",
                ]))
            }
            return
        }
        findings.append(.ok("store", "PostgreSQL database \(opened.location)"))
        do {
            let snapshots = try await opened.store.recordedBackups().sorted { $0.createdAt > $1.createdAt }
            if let newest = snapshots.first {
                findings.append(.ok("backups", "\(snapshots.count) snapshot(s) recorded, newest \(newest.file) from \(TimeText.iso(newest.createdAt)) "
                    + "(`tgsm session backup --list --verify --backup-dir DIR` verifies those kept in DIR)"))
            } else {
                findings.append(.ok("backups", "no snapshot recorded: the database's own backups (pg_dump, a replica) cover the store; "
                    + "`tgsm session backup` also takes a verified snapshot of the sessions"))
            }
        } catch {
            let failure = CLIFailure(storeError: error)
            findings.append(.problem(failure.exit, "backups", "the snapshots this database recorded cannot be read: \(failure.message)", []))
        }
        let accounts = await diagnoseAccounts(in: opened.store, now: now, into: &findings)
        await opened.close()
        await diagnoseQueue(accounts: accounts, into: &findings)
    }

    /// The accounts, their sessions, marks, leases, limits and Telegram's notices; returns the
    /// accounts in the store (nil when it could not be read).
    private func diagnoseAccounts(in store: any OperatorReadableStore, now: UnixTime, into findings: inout [Finding]) async -> Set<AccountID>? {
        var known: Set<AccountID>?
        do {
            let accounts = try await store.accounts()
            known = Set(accounts)
            if accounts.isEmpty {
                findings.append(.warning("accounts", "the store holds no account", ["Import a session: `tgsm session import --account NAME FILE`."]))
            }
            var loggedIn: Set<AccountID> = []
            let reports = try await store.liveReports()
            // Which accounts hold each key: two on one key connect with it at once, and Telegram
            // destroys it for both (a store from before `session import` refused that).
            var holders: [Int64: [AccountID]] = [:]
            for account in accounts {
                let name = "account \(account)"
                let session = try await store.loadSession(account: account)
                let mark = try await store.guardedStatus(of: account, now: now)
                for key in session?.authKeyIDs ?? [] { holders[key, default: []].append(account) }
                if let session, session.isAuthorized {
                    loggedIn.insert(account)
                    findings.append(.ok(name, "session on DC \(session.homeDC), logged in"))
                } else if let mark, mark.isTerminal, !mark.allowsLogin {
                    // Deactivated or banned: the mark's own finding below says what to do, and no
                    // step here may send a person to ask for a login code.
                    findings.append(.problem(.accountMarked, name, (session == nil ? "no session stored" : "the home DC's key is not logged in")
                        + " (the account is marked \(mark.state.rawValue))", []))
                } else {
                    let importing = session == nil ? "tgsm session import --account \(account) FILE" : "tgsm session import --account \(account) --replace FILE"
                    var steps = ["Log the account in, or import its session (`\(importing)`)."]
                    // A kept future auth token makes that login one a person need not be there for.
                    if let phoneKey = try await store.futureAuthTokenPhoneKey(account: account),
                       let newest = try await store.futureAuthTokens(phoneKey: phoneKey).first {
                        steps = ["Run `tgsm auth --account \(account)`: a future auth token from \(TimeText.iso(newest.receivedAt)) is kept "
                            + "for its number, so Telegram may log it in without a code (or ask the 2FA password alone)."] + steps
                    }
                    // Never logged in (an unfinished `tgsm auth`, a refused number): it may be a mistake to take out.
                    if session?.userID == nil {
                        steps.append("If the account was a mistake (a wrong number, a login given up), remove it: "
                            + "`tgsm session remove --account \(account)` (on a SQLite store a backup is taken first); until then /health counts it as not ready.")
                    }
                    // Exit 8 as docs/CLI.md's table says: nothing runs for it until a person logs it in.
                    findings.append(.problem(.accountMarked, name, session == nil ? "no session stored" : "the home DC's key is not logged in", steps))
                }
                if let mark, mark.state == .unreadable {
                    findings.append(.problem(.accountMarked, name, "its mark in the store cannot be read: \(mark.cause) (\(mark.code)); "
                        + "its workers do not run", mark.recoverySteps(account: account)))
                } else if let mark, mark.isTerminal {
                    findings.append(.problem(.accountMarked, name, "marked \(mark.state.rawValue) since \(TimeText.iso(mark.since)) "
                        + "after \(mark.cause) (\(mark.code)); its workers do not run", mark.recoverySteps(account: account)))
                }
                if let freeze = try await store.freezes(account: account).first { findings.append(Self.finding(freeze)) }
                findings += try await Self.notices(of: account, in: store, now: now)
                let currentLease = try await store.currentLease(account: account)
                let lease = LeaseView(currentLease, now: now)
                switch lease.state {
                case "held":
                    findings.append(.ok(name, "lease held by \(lease.holder ?? "?") (alive), until \(lease.expiresAt ?? "?")"))
                    if let report = reports.first(where: { $0.account == account && $0.isCurrent(lease: currentLease, at: now) }),
                       let finding = Self.finding(report, now: now) {
                        findings.append(finding)
                    }
                case "stale-dead":
                    findings.append(.warning(name, "lease of \(lease.holder ?? "?") is stale: that process is gone", [
                        "Nothing to do by hand: the next process takes the lease over (token + 1).",
                        "If workers should be running for this account, start them (`tgsm run`) and look at why they stopped.",
                    ]))
                case "stale-expired":
                    findings.append(.ok(name, "lease expired at \(lease.expiresAt ?? "?") (the next process takes it over)"))
                default:
                    break
                }
                // A link that cannot be used stops every connection of the account at its next start.
                do {
                    if let proxy = try await store.proxy(account: account) {
                        _ = try proxy.clientProxy()
                        findings.append(.ok(name, "connects through its \(SessionProxyCommand.name(proxy))"))
                    }
                } catch SessionStoreError.encryptionKeyRequired {
                    findings.append(.ok(name, "connects through a proxy whose link is sealed (give --key-file to see which)"))
                } catch {
                    findings.append(.problem(.problems, name, "its stored proxy link cannot be used: \(error)", [
                        "Set it again: `tgsm session proxy --account \(account) --set LINK` (or `--clear` to connect directly).",
                    ]))
                }
            }
            for names in Set(holders.values.filter { $0.count > 1 }.map { $0.map(\.rawValue).sorted() }).sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                findings.append(.problem(.problems, "accounts", "accounts \(names.joined(separator: ", ")) hold the same auth key: run together, "
                    + "they connect with it at once and Telegram destroys it for all of them (AUTH_KEY_DUPLICATED)", [
                        "Keep one of them on this key; give each other one a session of its own (`tgsm session import --replace --account NAME FILE` of a session logged in for it).",
                        "Until then, run only one of them (`tgsm run --account NAME`).",
                    ]))
            }
            let waits = try await store.activeFloodWaits(account: nil, at: now)
            for wait in waits {
                let text = "\(wait.account) \(wait.method)\(wait.peer.map { " in \($0)" } ?? "") "
                    + "\(wait.kind.rawValue) until \(TimeText.iso(wait.until)) (\(TimeText.remaining(wait.until - now)) left)"
                let steps = ["Wait: every process on this store refuses the call until then; jobs are deferred, not failed.",
                             wait.rateAdvice, "Never delete the entry: Telegram escalates repeated waits."]
                // One chat's wait (a slow mode, a per-chat flood) is routine: the account's other calls go on.
                findings.append(wait.peer == nil ? .problem(.rateLimited, "flood wait", text, steps) : .warning("flood wait", text, steps))
            }
            for entry in try await store.activeSendCodeDeadlines(at: now) {
                let text = "\(entry.account): no login code may be requested before \(TimeText.iso(entry.deadline)) (\(TimeText.remaining(entry.deadline - now)) left)"
                // After a login the deadline stays for its minutes: that is no problem while the
                // account is logged in (nothing needs a code); it is one for an account waiting to log in.
                if loggedIn.contains(entry.account) {
                    findings.append(.ok("send-code deadline", text + "; the account is logged in, so nothing waits for it"))
                    continue
                }
                findings.append(.problem(.rateLimited, "send-code deadline", text, [
                    "If an earlier `tgsm auth` got a code (Telegram app, SMS, call), `tgsm auth --account \(entry.account)` asks for it "
                        + "(a code forwarded inside Telegram is voided).",
                    "If Telegram refused that request (a FLOOD_WAIT on auth.sendCode, listed above) or no code came, wait until the deadline; "
                        + "asking earlier risks a long FLOOD_WAIT on the number.",
                ]))
            }
            if waits.isEmpty { findings.append(.ok("limits", "no active flood wait")) }
        } catch {
            let failure = CLIFailure(storeError: error)
            findings.append(.problem(failure.exit, "store", failure.message, []))
        }
        return known
    }

    /// What the `tgsm run` serving the account sees of it: the store alone does not know a proxy that
    /// refuses it or a connection down for an hour. A reason a person must act on is a problem; one
    /// that may pass by itself (no connection yet, down) a warning.
    /// Nil when every reason is one the store says itself (a mark, no login: findings of their own).
    static func finding(_ report: LiveReport, now: UnixTime) -> Finding? {
        let name = "account \(report.account)"
        let since = "since \(TimeText.iso(report.since)) (\(TimeText.remaining(now - report.since)))"
        guard !report.ready else { return .ok(name, "ready in the `tgsm run` of \(report.holder) \(since), \(report.health)") }
        let reasons = report.reasons.filter { !HealthReport.Reason.isKnownToTheStore($0.code) }
        guard !reasons.isEmpty else { return nil }
        let text = "not ready in the `tgsm run` of \(report.holder) \(since): " + reasons.map(\.code).joined(separator: ", ")
        let steps = reasons.map { "[\($0.code)] \($0.text)" }
        return reasons.contains { $0.needsAPerson } ? .problem(.problems, name, text, steps) : .warning(name, text, steps)
    }

    /// A freeze a `tgsm run` met (FROZEN_METHOD_INVALID) and kept: a person must appeal, before a date.
    static func finding(_ freeze: StoredAccountFreeze) -> Finding {
        var text = "frozen by Telegram since \(TimeText.iso(freeze.since)) (last confirmed \(TimeText.iso(freeze.confirmedAt))): it is read-only, "
            + "and calls that write (send jobs) fail"
        if let deleted = freeze.deletedAfter { text += "; Telegram deletes it on \(TimeText.iso(deleted)) unless an appeal is accepted" }
        var steps = [freeze.appealURL.map { "Appeal at \($0) before the deletion date (or from an official app, which shows the same)." }
            ?? "Appeal from an official Telegram app logged in to the account (it shows the freeze and where to appeal)."]
        steps.append("Stop enqueueing send jobs for this account meanwhile; reads (history, resolve, me) still work.")
        steps.append("Once the appeal is accepted, the next `tgsm run` finds the account no longer frozen and forgets this.")
        return .problem(.accountMarked, "account \(freeze.account)", text, steps)
    }

    /// What Telegram told the account in the last 7 days (service notifications a `tgsm run` kept),
    /// the 5 newest: a request to log the session out and popups as warnings, notes as ok.
    static func notices(of account: AccountID, in store: any OperatorReadableStore, now: UnixTime) async throws -> [Finding] {
        let recent = try await store.serviceNotifications(account: account, since: UnixTime(seconds: now.seconds - 7 * 86_400))
        return recent.prefix(5).map { notice in
            let name = "account \(account)"
            let text = "\(TimeText.iso(notice.receivedAt)), \(notice.type): \(notice.message)"
            let advice = NoticeAdvice(type: notice.type, popup: notice.popup)
            guard advice.needsAPerson else { return .ok(name, "\(advice.headline) (\(text))") }
            return .warning(name, "\(advice.headline) (\(text))", advice.steps)
        }
    }

    private func diagnoseQueue(accounts: Set<AccountID>?, into findings: inout [Finding]) async {
        let opened: (any JobQueue, close: @Sendable () async -> Void)?
        do {
            // PostgreSQL: checked, never migrated (a check writes nothing); SQLite as before.
            opened = global.postgresURL != nil ? try await StoreAccess.queueForReading(global) : try await StoreAccess.queue(global, creating: false)
        } catch {
            // Damaged (exit 5, as the jobs commands say), or unreadable: said, not skipped (the workers cannot run at all then).
            let steps = global.postgresURL != nil
                ? ["Check that the role may read the queue's tables (jobs, job_history) and PostgreSQL's log for why it refused.",
                   "A schema this tgsm does not match (named above): run the tgsm version the cluster runs."]
                : ["Check jobs.sqlite's permissions and free disk space.",
                   "If the file is damaged, stop the processes using it and run `tgsm jobs salvage`: it keeps every job that still reads, "
                       + "keeps the file aside as found and names the job ids that may be lost (do not move the file aside by hand: "
                       + "an empty queue forgets every job)."]
            findings.append(.problem(error.exit == .storeDamaged ? .storeDamaged : .problems, "job queue", "the job queue cannot be opened: \(error.message)", steps))
            return
        }
        guard let (queue, close) = opened else { return }
        // A damaged page is not seen by counting (the counts come from an index): SQLite's own check
        // reads every page. Before, a queue whose claims failed on a malformed page was "ok" here.
        if let sqlite = queue as? SQLiteJobQueue, let problem = await sqlite.integrityProblem() {
            await close()
            findings.append(.problem(.storeDamaged, "job queue", "jobs.sqlite is damaged (\(problem)): some jobs cannot be read or claimed", [
                "Stop the processes using it (`tgsm run`), then run `tgsm jobs salvage`: it keeps every job that still reads, keeps the "
                    + "file aside as found and names the job ids that may be lost (do not move the file aside by hand: an empty queue "
                    + "forgets every job).",
            ]))
            return
        }
        let counts = try? await queue.counts(account: nil)
        let queued = (try? await queue.jobs(state: .queued, account: nil, limit: 10_000)) ?? []
        await close()
        guard let counts else {
            findings.append(global.postgresURL != nil
                ? .problem(.problems, "job queue", "the job queue's tables cannot be read", ["Check that the database is up and the role may read the queue's tables (PostgreSQL's log says why)."])
                : .problem(.problems, "job queue", "jobs.sqlite cannot be read", ["Check the file's permissions and free disk space."]))
            return
        }
        // Queued jobs no built-in worker runs wait for a program of the user's own, or for ever (a typo).
        let foreign = Dictionary(grouping: queued.filter { !JobsEnqueueCommand.builtInKinds.contains($0.kind) }, by: \.kind.rawValue)
        if !foreign.isEmpty {
            findings.append(.warning("job queue", "queued jobs of kinds tgsm run has no workers for: "
                + foreign.keys.sorted().map { "\($0) (\(foreign[$0]?.count ?? 0))" }.joined(separator: ", "), [
                "Unless a program of your own runs them, they wait for ever: `tgsm jobs list --state queued` shows them, "
                    + "`tgsm jobs cancel ID` ends each (then enqueue it again with the right kind).",
            ]))
        }
        // Queued for an account the store does not hold: no worker serves it, so they wait for ever.
        if let accounts {
            let orphaned = Dictionary(grouping: queued.filter { !accounts.contains($0.account) }, by: \.account.rawValue)
            if !orphaned.isEmpty {
                findings.append(.warning("job queue", "queued jobs of accounts the store does not hold: "
                    + orphaned.keys.sorted().map { "\($0) (\(orphaned[$0]?.count ?? 0))" }.joined(separator: ", "), [
                    "They wait until that account is logged in (`tgsm auth --account NAME`) or imported (`tgsm session import`) here and a worker serves it.",
                    "A misspelt account: `tgsm jobs cancel ID` ends each (`tgsm jobs list --account NAME` lists them); enqueue them again for the right one.",
                ]))
            }
        }
        if counts[.dead] > 0 {
            findings.append(.warning("job queue", "\(counts[.dead]) dead job(s) (attempts exhausted or refused)", [
                "Read their last errors: `tgsm jobs list --state dead`.",
                "A cause outside the job (an account stopped, a network outage) once fixed: `tgsm jobs retry ID`.",
                "A cause in the job itself (a bad payload, a text too long, a peer that does not exist): retry would fail the same way; "
                    + "`tgsm jobs cancel ID` and enqueue it again corrected.",
            ]))
        } else {
            findings.append(.ok("job queue", "\(counts[.queued]) queued, \(counts[.running]) running, \(counts[.completed]) completed"))
        }
    }
}
