import ArgumentParser
import Foundation
import Logging
import MTProto
import MTProtoClient
import SessionManager
import Workers

/// `tgsm recover`: after an incident, bring the accounts back step by step: the store (restored
/// from its newest verified backup when damaged), the active rate limits (waited out), each
/// session (checked without ever asking for a code).
struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Restore a damaged store, list the active rate limits (waiting out one that holds the check back), and check every session.",
        discussion: """
            1. store: a damaged store is replaced by its newest verified backup (the damaged file is kept aside); without one, \
            --salvage builds a new store from what still reads in it (the sessions whose rows pass their checks, the flood waits, \
            send-code deadlines and marks) and lists the accounts to log in again; a PostgreSQL store is reached. \
            2. limits: every active flood wait of the accounts is listed; one on the check's own call (updates.getState) is \
            waited out, with a progress bar on a terminal and plain lines otherwise, unless it lasts beyond --max-wait (the others \
            hold back only their method, which jobs wait for by themselves). 3. sessions: each account is started (lease, connection) and checked \
            with one cheap call; no login code is ever requested. Then `tgsm run` resumes the workers. Exit codes: 0 every account \
            is usable, 1 a network failure, 4 no store or account, 5 store damaged without backup, 6 a lease is held by another \
            process, 7 a limit lasts beyond --max-wait, 8 an account needs a person (log in again, or deactivated), 9 key (docs/CLI.md).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("account"), help: ArgumentHelp("An account to recover (repeatable); default: every account.", valueName: "name"))
    var accounts: [String] = []

    @Option(name: .customLong("max-wait"), help: "The longest rate limit, in seconds, worth waiting for here; a longer one ends with exit 7.")
    var maxWait: Double = 3600

    @Flag(name: .customLong("salvage"), help: "When the store is damaged and no verified backup exists, build a new store from what still reads in it (the file is kept aside as found).")
    var salvage = false

    func validate() throws {
        guard maxWait >= 0, maxWait.isFinite else { throw ValidationError("--max-wait must be a number of seconds ≥ 0") }
    }

    func run() async throws {
        Runtimes.bootstrapLogging(level: connection.level)
        let logger = Runtimes.logger("tgsm.recover", level: connection.level)
        let terminal = Terminal.standard
        let resolved = try connection.resolve(global)
        let clock = global.movingClock()

        // 1. The store.
        let store: any OperatorReadableStore
        let closeStore: @Sendable () async -> Void
        if global.postgresURL != nil {
            guard !salvage else {
                throw CLIFailure(.usage, "--salvage rebuilds a damaged SQLite store file; a PostgreSQL store's pages and backups are the "
                    + "database's own (restore it from its backups or replicas). Nothing was done.")
            }
            // A database's pages and backups are PostgreSQL's own business: reaching it is the step.
            let opened = try await StoreAccess.operatorStore(global)
            terminal.line("1. store \(opened.location): PostgreSQL, reachable")
            (store, closeStore) = (opened.store, opened.close)
        } else {
            let directory = try global.storeDirectory()
            let health = SQLiteSessionStore.inspectFile(directory: directory, options: global.storeOptions())
            terminal.line("1. store \(directory): \(health)")
            let (file, salvaged) = try openStore(directory: directory, terminal: terminal)
            switch file.outcome {
            case .restored(let backup, let reason, let movedTo):
                terminal.line("   the store was damaged (\(reason)); restored from the verified backup \(backup)"
                    + (movedTo.map { "; the damaged file was kept as \($0)" } ?? ""))
            case .opened, .created:
                if !salvaged { terminal.line("   opened, no repair needed") }
            }
            (store, closeStore) = (file, { try? file.close() })
        }
        do {
            try await recoverAccounts(in: store, resolved: resolved, clock: clock, logger: logger, terminal: terminal)
        } catch {
            await closeStore()
            throw error
        }
        await closeStore()
    }

    /// Steps 2 and 3: the rate limits, then each session.
    private func recoverAccounts(in store: any OperatorReadableStore, resolved: ConnectionOptions.Resolved, clock: any TelegramClock,
                                 logger: Logger, terminal: Terminal) async throws {
        let known: [AccountID]
        do { known = try await store.accounts() } catch { throw CLIFailure(storeError: error) }
        let wanted = accounts.isEmpty ? known : accounts.map { AccountID($0) }
        guard !wanted.isEmpty else { throw CLIFailure(.notFound, "the store holds no account; nothing to recover") }
        for account in wanted where !known.contains(account) { throw CLIFailure(.notFound, "the store has no account \(account)") }

        // 2. Rate limits.
        var waits: [FloodWait] = []
        do {
            waits = try await store.activeFloodWaits(account: nil, at: clock.now()).filter { wanted.contains($0.account) }
        } catch {
            throw CLIFailure(storeError: error)
        }
        if waits.isEmpty {
            terminal.line("2. rate limits: none active")
        } else {
            terminal.line("2. rate limits: \(waits.count) active")
            // Only a wait on the check's own call holds it back. The others (a chat's slow mode, a
            // day-long contacts.resolveUsername wait) stop nothing here: tgsm makes no such call
            // before their end, and the jobs that need one wait for it by themselves.
            let blocking = waits.filter { $0.peer == nil && $0.method == SessionValidator.checkMethod }
            for wait in waits {
                terminal.line("   \(wait.account) \(wait.method)\(wait.peer.map { " in \($0)" } ?? "") \(wait.kind.rawValue) until \(TimeText.iso(wait.until)) UTC"
                    + (blocking.contains(wait) ? " (holds back the session check)" : ""))
            }
            if blocking.isEmpty {
                terminal.line("   none holds back the session check; jobs that need these methods wait for them by themselves")
            } else {
                let end = blocking.map(\.until.seconds).max() ?? clock.now().seconds
                let total = end - clock.now().seconds
                if total > maxWait {
                    throw CLIFailure(.rateLimited, "\(SessionValidator.checkMethod) is held back until \(TimeText.iso(UnixTime(seconds: end))) UTC, in "
                        + "\(TimeText.remaining(total)), beyond --max-wait \(Int(maxWait)) s. Nothing was sent. Run `tgsm recover` again then, "
                        + "or raise --max-wait; never delete the limits.")
                }
                await Self.waitOut(until: end, total: total, clock: clock, terminal: terminal)
                terminal.line("   the session check may go; jobs that need the other methods wait for them by themselves")
            }
        }
        do {
            for deadline in try await store.activeSendCodeDeadlines(at: clock.now()) where wanted.contains(deadline.account) {
                terminal.line("   \(deadline.account): no login code may be requested before \(TimeText.iso(deadline.deadline)) UTC (only a new login waits for it)")
            }
        } catch {
            throw CLIFailure(storeError: error)
        }

        // 3. Sessions.
        terminal.line("3. sessions (one cheap call each; no login code is requested)")
        let factory = Runtimes.factory(store: store, connection: resolved, configuration: AccountRuntimeConfiguration(keepAlive: nil),
                                       clock: clock, logger: logger)
        var worst = CLIExit.ok
        for account in wanted {
            let runtime = factory(account)
            let (line, exit) = await Self.check(runtime)
            await runtime.stop()
            terminal.line("   \(account): \(line)")
            worst = Self.moreSerious(worst, exit)
        }
        if worst == .ok {
            terminal.line("4. done: every account is usable; `tgsm run` resumes the workers")
            return
        }
        throw CLIFailure(worst, "not every account is usable; see the steps above")
    }

    /// The store as any command opens it (a damaged file restored from its newest verified
    /// backup); with --salvage, one damaged without such a backup is salvaged first.
    private func openStore(directory: String, terminal: Terminal) throws(CLIFailure) -> (store: SQLiteSessionStore, salvaged: Bool) {
        let failure: CLIFailure
        do { return (try StoreAccess.open(global, creating: false), false) } catch { failure = error }
        guard salvage, failure.exit == .storeDamaged else { throw failure }
        let report: StoreSalvageReport
        do { report = try SQLiteSessionStore.salvage(directory: directory, options: global.storeOptions()) } catch { throw CLIFailure(error) }
        Self.describe(report, terminal: terminal)
        let store = try StoreAccess.open(global, creating: false)
        do {
            let backup = try store.backup(reason: .afterSalvage)
            terminal.line("   a verified backup of the salvaged store was taken: \(backup.file)")
        } catch {
            terminal.warning("the salvaged store has no backup yet (\(error)); take one with `tgsm session backup` once that is fixed")
        }
        return (store, true)
    }

    /// What a salvage kept and lost, in the order an operator acts on it: the accounts first.
    static func describe(_ report: StoreSalvageReport, terminal: Terminal) {
        terminal.line("   no verified backup exists: a new store was built from what still reads in the damaged file, which was kept as "
            + report.damagedFileMovedTo)
        if !report.backupsSetAside.isEmpty {
            terminal.line("   backups that failed verification, renamed *.bad and kept for a look: " + report.backupsSetAside.joined(separator: ", "))
        }
        let kept = report.tables.filter { $0.rowsKept > 0 }.map { "\($0.name) \($0.rowsKept)" }
        terminal.line("   rows kept: " + (kept.isEmpty ? "none" : kept.joined(separator: ", ")))
        let brokenOff = report.tables.filter { !$0.readInFull }.map(\.name)
        if !brokenOff.isEmpty {
            terminal.line("   read up to the damage from both ends (the rows between are lost): " + brokenOff.joined(separator: ", "))
        }
        if !report.rowsFailingTheirCheck.isEmpty {
            terminal.line("   failed their row check, not kept: " + report.rowsFailingTheirCheck.joined(separator: "; "))
        }
        if !report.secretsKept {
            terminal.line("   the store's header rows do not read, so no auth key or other secret was kept (a sealed one could not be opened)")
        }
        terminal.line("   sessions kept: " + (report.accountsWithSession.isEmpty ? "none" : report.accountsWithSession.map(\.rawValue).joined(separator: ", ")))
        let toLogIn = report.accountsWithoutSession.map { "\($0) (no key kept)" } + report.accountsLost.map { "\($0) (its account row is lost)" }
        if !toLogIn.isEmpty {
            terminal.line("   to log in again with `tgsm auth --account NAME` (it keeps to the send-code deadlines listed below): "
                + toLogIn.joined(separator: ", "))
        }
    }

    static func check(_ runtime: AccountRuntime) async -> (String, CLIExit) {
        let verdict: SessionVerdict?
        do {
            verdict = try await runtime.start(validate: true)
        } catch {
            let failure = Runtimes.failure(error, account: runtime.account)
            return ("\(error.summary) [\(error.code)]", failure.exit)
        }
        switch verdict {
        case nil: return ("started", .ok)
        case .valid(let user)?: return ("valid\(user.map { " (user \($0))" } ?? "")", .ok)
        case .unauthorized(let cause)?: return ("needs a login (\(cause)): `tgsm auth --account \(runtime.account)`", .accountMarked)
        case .revoked?: return ("revoked from another device: find out who, then `tgsm auth --account \(runtime.account)`", .accountMarked)
        case .keyUnknown?:
            // -404 proves no second client: a wrong DC in an imported session, or a key Telegram dropped.
            return ("the DC does not know its key (destroyed by Telegram, or the session names the wrong DC): log in again with "
                + "`tgsm auth --account \(runtime.account)`, or, for an imported session whose DC was wrong, import it again "
                + "(`tgsm session import --account \(runtime.account) --replace FILE`)", .accountMarked)
        case .duplicated?:
            return ("its key was used twice and is dead (AUTH_KEY_DUPLICATED): stop other users of it, then `tgsm auth --account \(runtime.account)`",
                    .accountMarked)
        case .deactivated?: return ("deactivated or banned: do not retry; check it from an official app, and once Telegram restored it "
            + "`tgsm auth --account \(runtime.account) --restored`", .accountMarked)
        case .markUnreadable(let what)?:
            return ("its mark in the store cannot be read (\(what)), so nothing was sent: run the tgsm version that wrote it, or clear it with "
                + "`tgsm session clear-mark --account \(runtime.account)` once you know the account may run", .accountMarked)
        case .networkDown(let code, let reason)?:
            return ("the servers could not be reached [\(code)]\(reason.isEmpty ? "" : ": \(reason)"); check the network, the account's proxy (`tgsm session proxy`) and --server", .failure)
        case .rateLimited(let until)?: return ("still rate limited\(until.map { " until \(TimeText.iso($0)) UTC" } ?? "")", .rateLimited)
        case .failed(let code)?: return ("the check failed [\(code)]", .failure)
        }
    }

    static func moreSerious(_ a: CLIExit, _ b: CLIExit) -> CLIExit {
        let order: [CLIExit] = [.accountMarked, .leaseHeld, .rateLimited, .failure, .ok]
        return (order.firstIndex(of: a) ?? 4) <= (order.firstIndex(of: b) ?? 4) ? a : b
    }

    /// Sleeps until `end`, drawing a bar on a terminal, or a line every 10 s on a pipe.
    static func waitOut(until end: Double, total: Double, clock: any TelegramClock, terminal: Terminal) async {
        let width = 30
        var lastLine = -1.0
        while true {
            let left = end - clock.now().seconds
            if terminal.outIsTerminal {
                let done = total > 0 ? min(1, max(0, 1 - left / total)) : 1
                let filled = Int((Double(width) * done).rounded(.down))
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
                Terminal.write("\r   [\(bar)] \(Int(done * 100))% \(TimeText.remaining(left)) left ", to: .standardOutput)
            } else if lastLine < 0 || lastLine - left >= 10 {
                terminal.line("   waiting: \(TimeText.remaining(left)) left (until \(TimeText.iso(UnixTime(seconds: end))) UTC)")
                lastLine = left
            }
            if left <= 0 { break }
            do { try await Task.sleep(for: .milliseconds(Int(min(left, terminal.outIsTerminal ? 0.25 : 1) * 1000) + 1)) } catch { break }
        }
        if terminal.outIsTerminal { terminal.line() }
    }
}
