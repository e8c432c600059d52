import ArgumentParser
import Foundation
import MTProto
import MTProtoClient
import PostgresStore
import SessionManager

/// One backup as listed.
struct BackupView: Codable {
    var file: String
    var createdAt: String
    var size: Int64
    var sha256: String
    var commitSequence: Int64
    var reason: String
    /// "verified", or why the backup cannot be restored; nil when not verified.
    var verification: String?
    /// With --verify on SQLite: "sealed" or "in clear" (a store whose key was lost comes back only
    /// from one in clear); nil when not looked at.
    var secrets: String? = nil

    init(_ record: BackupRecord, verification: String?) {
        file = record.file
        createdAt = TimeText.iso(record.createdAt)
        size = record.size
        sha256 = record.sha256
        commitSequence = record.commitSequence
        reason = record.reason.rawValue
        self.verification = verification
    }
}

/// `tgsm session backup [--list [--verify]]`
struct SessionBackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Take a verified backup of the store now, or list the backups.",
        discussion: "A backup is an online copy checked with integrity_check and the store's row checks, with its SHA-256 "
            + "in a sidecar; the oldest beyond five are removed. --list reads the sidecars, so it works on a damaged store. "
            + "On a PostgreSQL store a backup is a snapshot of every account's session in a SQLite store file (the same checks "
            + "and sidecar) in --backup-dir, recorded in the database's backups table."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("backup-dir"), help: ArgumentHelp(
        "PostgreSQL store only: where the snapshots go (default: the config file's backupDirectory, else "
            + "$TGSM_HOME/postgres-backups or ~/.local/share/tgsm/postgres-backups).", valueName: "dir"))
    var backupDirectory: String?

    @Flag(name: .customLong("list"), help: "List the backups instead of taking one (newest first).")
    var list = false

    @Flag(name: .customLong("verify"), help: "With --list: verify each backup as a restore would (size, SHA-256, store checks).")
    var verify = false

    func validate() throws {
        if verify && !list { throw ValidationError("--verify goes with --list") }
    }

    func run() async throws {
        if let url = global.postgresURL {
            try await runOnPostgres(url: url)
            return
        }
        if list {
            let directory = try global.storeDirectory()
            let options = global.storeOptions()
            guard FileManager.default.fileExists(atPath: directory) else { throw StoreAccess.missingDirectory(directory) }
            let views = SQLiteSessionStore.backupsOnDisk(directory: directory).map { record in
                guard verify else { return BackupView(record, verification: nil) }
                let inspection = SQLiteSessionStore.inspectBackup(record.file, directory: directory, options: options)
                var view = BackupView(record, verification: inspection.problem ?? "verified")
                view.secrets = inspection.isSealed.map { $0 ? "sealed" : "in clear" }
                return view
            }
            try show(views, in: directory + "/backups")
            return
        }
        let store = try StoreAccess.open(global, creating: false)
        defer { try? store.close() }
        let record: BackupRecord
        do { record = try store.backup(reason: .manual) } catch { throw CLIFailure(error) }
        try report(record, in: store.backupDirectory)
    }

    /// A PostgreSQL store: snapshots in the backup directory of this host, recorded in the database.
    private func runOnPostgres(url: String) async throws {
        let directory = try global.snapshotDirectory(backupDirectory)
        let options = global.storeOptions()
        if list {
            let views = SnapshotDirectory.list(directory).map { record in
                BackupView(record, verification: verify ? (SnapshotDirectory.verify(record.file, in: directory, options: options) ?? "verified") : nil)
            }
            try show(views, in: directory, elsewhere: views.isEmpty ? await Self.recordedSnapshotCount(url: url, global: global) : nil)
            return
        }
        let store: PostgresSessionStore
        do { store = try await PostgresSessionStore.connect(url: url, encryption: global.storeEncryption(), clock: global.clock(), logger: global.storeLogger()) } catch { throw CLIFailure(error) }
        let record: BackupRecord
        do { record = try await store.snapshot(into: directory, options: options) } catch {
            await store.close()
            throw CLIFailure(error)
        }
        await store.close()
        try report(record, in: directory)
    }

    private func report(_ record: BackupRecord, in directory: String) throws {
        let terminal = Terminal.standard
        let view = BackupView(record, verification: "verified")
        if output.json { try terminal.json(view); return }
        terminal.line("\(terminal.paint("backed up", .green)) \(directory)/\(record.file)")
        terminal.line("  commit \(record.commitSequence), \(record.size) bytes, sha256 \(record.sha256)")
    }

    /// How many snapshots the database records (taken on any host), or nil when it cannot say.
    static func recordedSnapshotCount(url: String, global: GlobalOptions) async -> Int? {
        guard let store = try? await PostgresSessionStore.connect(url: url, encryption: global.storeEncryption(), clock: global.clock(),
                                                                  logger: global.storeLogger()) else { return nil }
        let count = try? await store.recordedBackups().count
        await store.close()
        return count
    }

    /// - Parameter elsewhere: PostgreSQL, none listed here: the snapshots the database records.
    private func show(_ views: [BackupView], in directory: String, elsewhere: Int? = nil) throws {
        let terminal = Terminal.standard
        if views.isEmpty {
            if output.json { try terminal.json(views) }
            var message = "no backups in \(directory); take one with `tgsm session backup`"
            if let elsewhere, elsewhere > 0 {
                message += ". The database records \(elsewhere) snapshot(s) taken on another host or into another --backup-dir: "
                    + "snapshots are files on the host that took them; list them there, or pass --backup-dir"
            }
            // `--list --verify` is the check a cron job runs: no backup at all is a problem (exit 3).
            if verify { throw CLIFailure(.problems, message) }
            if !output.json { terminal.line(message) }
            return
        }
        if output.json { try terminal.json(views); return }
        var header = ["FILE", "CREATED", "COMMIT", "SIZE", "REASON"]
        if verify { header.append("VERIFIED") }
        let showsSecrets = views.contains { $0.secrets != nil }
        if showsSecrets { header.append("SECRETS") }
        terminal.table(header, views.map { view in
            var row: [(text: String, color: Terminal.Color?)] = [
                (view.file, nil), (view.createdAt, nil), (String(view.commitSequence), nil), (String(view.size), nil), (view.reason, nil)]
            if let verification = view.verification { row.append((verification, verification == "verified" ? .green : .red)) }
            if showsSecrets { row.append((view.secrets ?? "?", nil)) }
            return row
        })
        if views.contains(where: { ($0.verification ?? "verified") != "verified" }) {
            throw CLIFailure(.problems, "a backup failed verification (see the list); it will be skipped by a restore. "
                + "Take a fresh one with `tgsm session backup`.")
        }
    }
}

/// `tgsm session restore [--backup FILE] [--force]`
struct SessionRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Replace the store with its newest (or a named) verified backup.",
        discussion: "The current file is moved aside (sessions.sqlite.replaced-MS), never deleted. Refused while a live "
            + "process holds an account's lease (it would keep writing to the replaced file): stop it first, or --force. "
            + "On a PostgreSQL store, each account the snapshot holds is put back under its lease (taken first; --force takes "
            + "a live one over, fencing its holder out); other accounts, flood waits and marks are left as they are."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("backup-dir"), help: ArgumentHelp(
        "PostgreSQL store only: where the snapshots are (as for `session backup`).", valueName: "dir"))
    var backupDirectory: String?

    @Option(name: .customLong("backup"), help: ArgumentHelp("The backup's file name (from `session backup --list`); default: the newest that verifies.", valueName: "file"))
    var backup: String?

    @Flag(name: .customLong("force"), help: "Restore even while a live process holds a lease.")
    var force = false

    struct Result: Codable {
        var restored: String
        var reason: String
        var previousFileMovedTo: String?
        /// PostgreSQL: the accounts put back.
        var accounts: [String]?
        /// The accounts whose proxy the restore changed (the backup kept another link): what each
        /// connects through now, and before (as `session proxy` names them; "direct" for none).
        var proxiesChanged: [ProxyChange]?
        /// SQLite: the accounts logged in before the restore that the backup has not logged in (a
        /// backup from before their login): they need `tgsm auth` again, or a newer backup.
        var loginsLost: [String]?
        /// SQLite: the accounts whose home DC's auth key in the backup is not the one the store had
        /// (an older key, which Telegram may have destroyed since: the previous file holds the newer).
        var keysReplaced: [String]?
    }

    struct ProxyChange: Codable {
        var account: String
        var before: String
        var now: String
    }

    /// Each account's proxy: as `session proxy` names it, and its link (nil: direct); nil when the
    /// store cannot say (unreadable, damaged, or sealed without the key).
    static func proxies(of store: any SessionStore) async -> [AccountID: (name: String, link: String?)]? {
        guard let accounts = try? await store.accounts() else { return nil }
        var proxies: [AccountID: (name: String, link: String?)] = [:]
        for account in accounts {
            do {
                let proxy = try await store.proxy(account: account)
                proxies[account] = (proxy.map(SessionProxyCommand.name) ?? "none (direct)", proxy?.url)
            } catch {
                return nil
            }
        }
        return proxies
    }

    /// A backup older than a proxy change puts the old link back with everything else, which a
    /// person who removed a proxy on purpose, or rotated its password, must be told. An account the
    /// backup brings back with a proxy is named too.
    static func proxyChanges(before: [AccountID: (name: String, link: String?)]?, after: [AccountID: (name: String, link: String?)]?) -> [ProxyChange] {
        guard let before, let after else { return [] }
        return after.keys.sorted { $0.rawValue < $1.rawValue }.compactMap { account in
            guard let now = after[account] else { return nil }
            guard let was = before[account] else {
                return now.link == nil ? nil : ProxyChange(account: account.rawValue, before: "not in the store", now: now.name)
            }
            guard was.link != now.link else { return nil }
            // Same host and user, another password or secret: the names alone would read alike.
            let differing = was.name == now.name ? " (another password or secret)" : ""
            return ProxyChange(account: account.rawValue, before: was.name, now: now.name + differing)
        }
    }

    /// Each account's home DC auth key id; nil when the store cannot say.
    static func homeKeys(in store: SQLiteSessionStore) async -> [AccountID: Int64]? {
        guard let accounts = try? await store.accounts() else { return nil }
        var keys: [AccountID: Int64] = [:]
        for account in accounts {
            let session: SessionState?
            do { session = try await store.loadSession(account: account) } catch { return nil }
            if let session, let key = session.dcs[session.homeDC]?.authKey { keys[account] = key.id }
        }
        return keys
    }

    /// The accounts whose home DC's key is logged in; nil when the store cannot say.
    static func loggedIn(in store: SQLiteSessionStore) async -> Set<AccountID>? {
        guard let accounts = try? await store.accounts() else { return nil }
        var logged: Set<AccountID> = []
        for account in accounts {
            let summary: AccountSummary?
            do { summary = try await store.accountSummary(account) } catch { return nil }
            if let summary, let home = summary.homeDC, summary.authorizedDCs.contains(home) { logged.insert(account) }
        }
        return logged
    }

    static func sayProxyChanges(_ changes: [ProxyChange], terminal: Terminal) {
        for change in changes {
            terminal.warning("\(change.account)'s proxy is the backup's again: \(change.now) (before the restore: \(change.before)); "
                + "`tgsm session proxy --account \(change.account) --set -` (or `--clear`) sets the one you want")
        }
    }

    func run() async throws {
        if let url = global.postgresURL {
            try await restoreOnPostgres(url: url)
            return
        }
        let directory = try global.storeDirectory()
        let options = global.storeOptions()
        guard FileManager.default.fileExists(atPath: directory) else { throw StoreAccess.missingDirectory(directory) }
        let onDisk = SQLiteSessionStore.backupsOnDisk(directory: directory)
        guard !onDisk.isEmpty else {
            throw CLIFailure(.notFound, "there is no backup in \(directory)/backups to restore; nothing was changed. "
                + "`tgsm session backup` takes one of a good store; a damaged one is restored from your own copies of the directory")
        }
        // The file name as listed, or its path (completed by a shell) inside the backups directory.
        let backup = self.backup.map { named in
            (named as NSString).deletingLastPathComponent.isEmpty ? named : (named as NSString).lastPathComponent
        }
        if let backup, !onDisk.contains(where: { $0.file == backup }) {
            throw CLIFailure(.notFound, "there is no backup named \(backup) (with its sidecar) in \(directory)/backups; "
                + "`tgsm session backup --list` shows them")
        }
        if case .good = SQLiteSessionStore.inspectFile(directory: directory, options: options), !force {
            try await refuseWhileLeased(directory: directory)
        }
        var proxiesBefore: [AccountID: (name: String, link: String?)]?
        var loggedInBefore: Set<AccountID>?
        var keysBefore: [AccountID: Int64]?
        if let current = SQLiteSessionStore.openForReading(directory: directory, options: options) {
            proxiesBefore = await Self.proxies(of: current)
            loggedInBefore = await Self.loggedIn(in: current)
            keysBefore = await Self.homeKeys(in: current)
            try? current.close()
        }
        let outcome: SQLiteSessionStore.OpenOutcome
        do {
            outcome = try SQLiteSessionStore.restore(directory: directory, backup: backup, options: options)
        } catch {
            throw CLIFailure(error)
        }
        guard case .restored(let file, let reason, let movedTo) = outcome else {
            throw CLIFailure(.failure, "the restore did not report what it restored; run `tgsm check`")
        }
        var proxiesAfter: [AccountID: (name: String, link: String?)]?
        var loggedInAfter: Set<AccountID>?
        var keysAfter: [AccountID: Int64]?
        if let restored = SQLiteSessionStore.openForReading(directory: directory, options: options) {
            proxiesAfter = await Self.proxies(of: restored)
            loggedInAfter = await Self.loggedIn(in: restored)
            keysAfter = await Self.homeKeys(in: restored)
            try? restored.close()
        }
        let changes = Self.proxyChanges(before: proxiesBefore, after: proxiesAfter)
        // A backup from before a login (the one taken at a new key) puts the account back unlogged:
        // said, not found out at the next `recover` or run.
        let loginsLost = loggedInBefore.flatMap { before in loggedInAfter.map { before.subtracting($0) } }?
            .map(\.rawValue).sorted() ?? []
        // A key replaced since the backup (a new login after Telegram destroyed the old key) comes
        // back old: the account is marked again at its next use, with the working key aside.
        let lost = Set(loginsLost)
        let keysReplaced = (keysAfter ?? [:]).compactMap { account, key -> String? in
            guard let before = keysBefore?[account], before != key, !lost.contains(account.rawValue) else { return nil }
            return account.rawValue
        }.sorted()
        let terminal = Terminal.standard
        if output.json {
            try terminal.json(Result(restored: file, reason: reason, previousFileMovedTo: movedTo, proxiesChanged: changes, loginsLost: loginsLost,
                                     keysReplaced: keysReplaced))
            return
        }
        terminal.line("\(terminal.paint("restored", .green)) \(directory)/\(options.fileName) from \(file)")
        if let movedTo { terminal.line("  the previous file was moved to \(movedTo)") }
        Self.sayProxyChanges(changes, terminal: terminal)
        for account in loginsLost {
            terminal.warning("\(account) was logged in before the restore, but not in this backup (taken before its login): log it in "
                + "again (`tgsm auth --account \(account)`), or restore a newer backup (`tgsm session backup --list`); the previous file "
                + "\(movedTo.map { "(\($0)) " } ?? "")holds the login")
        }
        for account in keysReplaced {
            terminal.warning("\(account)'s auth key in this backup is not the one the store had: if Telegram destroyed that older key since "
                + "(the account was marked duplicated, or its key unknown to the DC, and logged in again), it is marked again at its next use. "
                + "Restore a newer backup (`tgsm session backup --list`), or log it in again (`tgsm auth --account \(account)`); the previous "
                + "file \(movedTo.map { "(\($0)) " } ?? "")holds the newer key")
        }
    }

    private func restoreOnPostgres(url: String) async throws {
        let directory = try global.snapshotDirectory(backupDirectory)
        // Snapshots are files on the host that took them: another host's directory is empty here.
        let onDisk = SnapshotDirectory.list(directory)
        guard !onDisk.isEmpty else {
            throw CLIFailure(.notFound, "there is no snapshot in \(directory) to restore; nothing was changed. Snapshots are files on the "
                + "host that took them (`tgsm session backup` there): restore on that host, or pass --backup-dir with a copy of its directory")
        }
        if let backup, !onDisk.contains(where: { $0.file == (backup as NSString).lastPathComponent }) {
            throw CLIFailure(.notFound, "there is no snapshot named \(backup) (with its sidecar) in \(directory); "
                + "`tgsm session backup --list` shows them")
        }
        let store: PostgresSessionStore
        do { store = try await PostgresSessionStore.connect(url: url, encryption: global.storeEncryption(), clock: global.clock(), logger: global.storeLogger()) } catch { throw CLIFailure(error) }
        let proxiesBefore = await Self.proxies(of: store)
        let report: PostgresSessionStore.RestoreReport
        do {
            report = try await store.restore(from: directory, backup: backup, options: global.storeOptions(), holder: LeaseHolder.current(), force: force,
                                             waiting: { seconds, from in
                Terminal.standard.errorLine("restored; keeping the accounts for \(Int(seconds.rounded(.up))) s, until the processes whose leases were "
                    + "taken over (\(Set(from.map { "\($0.holder)" }).sorted().joined(separator: ", "))) have stopped: a standby taking them at once "
                    + "would connect with the same keys while they still do, and Telegram would end every session (AUTH_KEY_DUPLICATED)")
            })
        } catch {
            await store.close()
            if case .leaseHeld(let lease) = error {
                throw CLIFailure(.leaseHeld, "account \(lease.account) is in use by \(lease.holder) (lease until \(TimeText.iso(lease.expiresAt))); "
                    + "restoring now would overwrite what that process keeps writing. Nothing was changed. Stop it first, "
                    + "or pass --force to take its lease over (its writes are refused from then on).")
            }
            throw CLIFailure(error)
        }
        let changes = Self.proxyChanges(before: proxiesBefore, after: await Self.proxies(of: store))
        // A snapshot this database never recorded was taken of another one: its accounts' keys are
        // now in two databases, and a process on each would use one key twice (AUTH_KEY_DUPLICATED).
        if let recorded = try? await store.recordedBackups(), !recorded.contains(where: { $0.file == report.backup }) {
            Terminal.standard.warning("\(report.backup) was not taken of this database (its backups table does not record it): its "
                + "accounts' keys are now here too. If the database it came from still serves them, stop that (or remove them "
                + "there) before running these: one key used by two processes is destroyed by Telegram (AUTH_KEY_DUPLICATED).")
        }
        await store.close()
        let terminal = Terminal.standard
        let reason = backup.map { "restore of \($0) asked by an operator" } ?? "restore of the newest snapshot asked by an operator"
        if output.json {
            try terminal.json(Result(restored: report.backup, reason: reason, previousFileMovedTo: nil, accounts: report.accounts.map(\.rawValue),
                                     proxiesChanged: changes))
            return
        }
        terminal.line("\(terminal.paint("restored", .green)) \(report.accounts.count) account(s) of \(store.database.location) from \(directory)/\(report.backup)")
        for lease in report.tookOverFrom {
            terminal.line("  took the lease of \(lease.account) over from \(lease.holder): it stops that account")
        }
        Self.sayProxyChanges(changes, terminal: terminal)
    }

    /// A live lease means a process is using the store: replacing the file under it would lose its writes.
    private func refuseWhileLeased(directory: String) async throws(CLIFailure) {
        let store = try StoreAccess.open(global, creating: false)
        defer { try? store.close() }
        if let (account, lease) = try await StoreAccess.liveLease(in: store, now: global.now()) {
            throw CLIFailure(.leaseHeld, "account \(account) is in use by \(lease.holder) (lease until \(TimeText.iso(lease.expiresAt))); "
                + "restoring now would replace the file under that process and lose what it writes. Stop it first, "
                + "or pass --force if it is known to be gone.")
        }
    }
}
