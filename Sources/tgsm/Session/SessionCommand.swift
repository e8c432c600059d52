import ArgumentParser
import Foundation
import MTProto
import OperatorHTTP
import SessionManager

/// `tgsm session …`: the accounts' sessions in the store.
struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "List, back up, restore, import, export, re-key and remove the accounts' sessions; set their proxies; clear a stale mark.",
        subcommands: [SessionListCommand.self, SessionBackupCommand.self, SessionRestoreCommand.self,
                      SessionImportCommand.self, SessionExportCommand.self, SessionRekeyCommand.self, SessionRemoveCommand.self,
                      SessionProxyCommand.self, SessionClearMarkCommand.self]
    )
}

/// A lease as an operator reads it: who, and whether that holder is still alive.
struct LeaseView: Codable, Equatable {
    /// free, held, stale-expired, stale-dead.
    var state: String
    var holder: String?
    var pid: Int32?
    var host: String?
    var token: Int64?
    var expiresAt: String?

    init(_ lease: Lease?, now: UnixTime) {
        guard let lease else {
            state = "free"
            return
        }
        if lease.isExpired(at: now) {
            state = "stale-expired"
        } else if LeaseHolder.isDeadOnThisHost(lease.holder) {
            state = "stale-dead"
        } else {
            state = "held"
        }
        holder = lease.holder.description
        pid = lease.holder.pid
        host = lease.holder.host
        token = lease.token.rawValue
        expiresAt = TimeText.iso(lease.expiresAt)
    }

    var isLive: Bool { state == "held" }

    var text: String {
        switch state {
        case "free": "-"
        case "held": "pid \(pid ?? 0)@\(host ?? "?")"
        case "stale-dead": "stale (pid \(pid ?? 0) gone)"
        default: "stale (expired)"
        }
    }
}

/// What the process serving an account reports of it (`LiveReport`), as `status` shows it.
struct RunningView: Codable, Equatable {
    struct Reason: Codable, Equatable {
        var code: String
        var text: String
        var needsAPerson: Bool
    }

    /// "pid N on HOST".
    var by: String
    var ready: Bool
    /// healthy, degraded, down, rateLimited, terminal, unknown.
    var health: String
    /// Since when it is so, and for how many seconds.
    var since: String
    var forSeconds: Double
    /// Why it is not ready, each with what to do; empty when ready. Only what the store does not
    /// say itself: a mark, no login and a freeze are in the account's status.
    var reasons: [Reason]
    /// Whether a reason waits for a person rather than for the network.
    var needsAPerson: Bool

    init(_ report: LiveReport, now: UnixTime) {
        by = report.holder.description
        ready = report.ready
        health = report.health
        since = TimeText.iso(report.since)
        forSeconds = max(0, (now - report.since).rounded(.down))
        reasons = report.reasons.filter { !HealthReport.Reason.isKnownToTheStore($0.code) }
            .map { Reason(code: $0.code, text: $0.text, needsAPerson: $0.needsAPerson) }
        needsAPerson = reasons.contains(where: \.needsAPerson)
    }

    /// The table's cell: "ready", or the reasons' codes with how long ("see STATUS" when the store's
    /// own say why).
    var text: String {
        guard !ready else { return "ready (\(health))" }
        return (reasons.isEmpty ? "not ready (see STATUS)" : reasons.map(\.code).joined(separator: ", ")) + " for \(TimeText.remaining(forSeconds))"
    }

    var color: Terminal.Color { ready ? .green : needsAPerson ? .red : .yellow }
}

/// One account as `session list` and `status` show it. No key, no phone number.
struct AccountView: Codable {
    var account: String
    var homeDC: Int?
    var userID: Int64?
    var bot: Bool
    var authorizedDCs: [Int]
    var lease: LeaseView
    /// active, unauthorized, revoked, duplicated, deactivated.
    var status: String
    var statusCode: String?
    var statusCause: String?
    var statusSince: String?
    var guidance: [String]?
    /// Telegram froze the account (a `tgsm run` met it; `tgsm check` says what to do): since when,
    /// when it is deleted unless an appeal is accepted, and where to appeal.
    var frozenSince: String? = nil
    var deletedAfter: String? = nil
    var appealURL: String? = nil
    /// The proxy it connects through (`session list`): "socks5 HOST:PORT" or "mtproxy HOST:PORT", no
    /// credentials; "sealed" in an encrypted store read without its key, "unreadable" when the
    /// stored link cannot be read.
    var proxy: String? = nil
    /// What the `tgsm run` holding the account's lease reports of it (`status`); nil when no live
    /// process does.
    var running: RunningView? = nil

    static func load(_ account: AccountID, store: any OperatorReadableStore, now: UnixTime) async throws(CLIFailure) -> AccountView {
        do {
            let summary = try await store.accountSummary(account)
            let lease = try await store.currentLease(account: account)
            // A mark this version cannot read is shown as such, not a failure of the whole listing.
            let mark = try await store.guardedStatus(of: account, now: now)
            var view = AccountView(account: account, summary: summary, lease: lease, mark: mark, now: now)
            do { view.proxy = try await store.proxy(account: account).map { "\($0.kind.rawValue) \($0.address)" } } catch {
                if case .encryptionKeyRequired? = error as? SessionStoreError { view.proxy = "sealed" } else { view.proxy = "unreadable" }
            }
            return view
        } catch {
            throw CLIFailure(storeError: error)
        }
    }

    static func loadAll(store: any OperatorReadableStore, now: UnixTime) async throws(CLIFailure) -> [AccountView] {
        let accounts: [AccountID]
        do { accounts = try await store.accounts() } catch { throw CLIFailure(storeError: error) }
        var views: [AccountView] = []
        for account in accounts { views.append(try await load(account, store: store, now: now)) }
        return views
    }

    var statusColor: Terminal.Color { status == "active" ? .green : .red }
}

extension AccountView {
    /// The view of an account `OperatorSnapshot.gather` read (`tgsm status`, like the dashboard).
    init(_ account: OperatorSnapshot.Account, now: UnixTime) {
        self.init(account: account.id, summary: account.summary, lease: account.lease, mark: account.mark, now: now)
        frozenSince = account.frozenSince.map(TimeText.iso)
        deletedAfter = account.freezeDetails?.deletedAfter.map(TimeText.iso)
        appealURL = account.freezeDetails?.appealURL
        running = account.report.map { RunningView($0, now: now) }
    }

    /// "active", "revoked (TGSM-AUTH-002)"; a login never finished reads the same before and after a
    /// run marked it (it said "(no login was finished)", then "(TGSM-AUTH-009)").
    var statusCell: String {
        if let cause = statusCause, cause.hasPrefix(AccountStatus.noLoginFinished) { return status + " (\(AccountStatus.noLoginFinished))" }
        return status + ((statusCode ?? statusCause).map { " (\($0))" } ?? "")
    }

    init(account: AccountID, summary: AccountSummary?, lease: Lease?, mark: AccountStatus?, now: UnixTime) {
        let terminal = mark?.isTerminal == true
        self.init(
            account: account.rawValue, homeDC: summary?.homeDC, userID: summary?.userID, bot: summary?.isBot ?? false,
            authorizedDCs: summary?.authorizedDCs ?? [], lease: LeaseView(lease, now: now),
            status: mark?.state.rawValue ?? "active",
            statusCode: terminal ? mark?.code : nil, statusCause: terminal ? mark?.cause : nil,
            statusSince: terminal ? mark.map { TimeText.iso($0.since) } : nil,
            guidance: terminal ? mark?.recoverySteps(account: account) : nil)
        if !terminal, authorizedDCs.isEmpty {
            // Never logged in (a proxy set for a first login, a login left at its code prompt):
            // not "active", which reads as a working session.
            let unfinished = AccountStatus(state: .unauthorized, since: now, cause: AccountStatus.noLoginFinished, code: "")
            status = unfinished.state.rawValue
            statusCause = AccountStatus.noLoginFinished
            guidance = unfinished.recoverySteps(account: account)
        }
    }
}

/// `tgsm session list`
struct SessionListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the accounts: home DC, user id, authorized DCs, lease holder, status mark and proxy."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let now = global.now()
        let (views, location) = try await StoreAccess.withOperatorStoreForReading(global) { store, location in
            (try await AccountView.loadAll(store: store, now: now), location)
        }
        if output.json {
            try Terminal.standard.json(views)
            return
        }
        let terminal = Terminal.standard
        guard !views.isEmpty else {
            terminal.line("no accounts in \(location); import one with `tgsm session import --account NAME FILE`")
            return
        }
        terminal.table(["ACCOUNT", "HOME DC", "USER ID", "AUTHORIZED DCS", "LEASE", "STATUS", "PROXY"], views.map { view in
            [(view.account, nil), (view.homeDC.map(String.init) ?? "-", nil), (view.userID.map(String.init) ?? "-", nil),
             (view.authorizedDCs.isEmpty ? "-" : view.authorizedDCs.map(String.init).joined(separator: ","), nil),
             (view.lease.text, view.lease.isLive ? nil : .dim),
             (view.statusCell, view.statusColor),
             (view.proxy ?? "-", view.proxy == "unreadable" ? .red : nil)]
        })
    }
}
