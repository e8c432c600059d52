import ArgumentParser
import Foundation
import MTProto
import OperatorHTTP
import SessionManager
import Workers

/// `tgsm status`: what every account can do right now, and why not.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Accounts, status marks, every active flood wait and send-code deadline, queue depth.",
        discussion: "Times are exact (ISO 8601, UTC) with the seconds that remain. Read-only, offline: nothing is sent to Telegram."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Flag(name: .customLong("watch"), help: "Redraw every --interval seconds with live countdowns (until Ctrl-C).")
    var watch = false

    @Option(name: .customLong("interval"), help: "Seconds between redraws with --watch.")
    var interval = 1.0

    @Option(name: .customLong("count"), help: "With --watch: stop after this many redraws (scripts, tests).")
    var count: Int?

    func validate() throws {
        if watch && output.json { throw ValidationError("--watch redraws a table; use --json without --watch (or poll it)") }
        guard interval >= 0.05 && interval <= 3600 else { throw ValidationError("--interval must be between 0.05 and 3600 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if count != nil && !watch { throw ValidationError("--count goes with --watch") }
    }

    struct FloodView: Codable {
        var account: String
        var method: String
        var peer: String?
        var kind: String
        var dc: Int?
        var recordedAt: String
        var until: String
        var untilUnix: Double
        var remainingSeconds: Double
    }

    struct DeadlineView: Codable {
        var account: String
        var until: String
        var untilUnix: Double
        var remainingSeconds: Double
    }

    struct Report: Codable {
        var store: String
        var now: String
        var accounts: [AccountView]
        var floodWaits: [FloodView]
        var sendCodeDeadlines: [DeadlineView]
        /// Jobs by state (every state present, 0 when none); nil when there is no queue file.
        var queue: [String: Int]?
    }

    func run() async throws {
        let store = try StoreAccess.open(global, creating: false)
        defer { try? store.close() }
        guard watch else {
            let report = try await makeReport(store: store)
            if output.json { try Terminal.standard.json(report) } else { print(report) }
            return
        }
        var drawn = 0
        while !Task.isCancelled {
            // Read before clearing, so a slow read never leaves a blank screen.
            let report = try await makeReport(store: store)
            Terminal.standard.clearScreen()
            print(report)
            drawn += 1
            if let count, drawn >= count { return }
            if !Terminal.standard.outIsTerminal { Terminal.standard.line() }
            try await Task.sleep(for: .seconds(interval))
        }
    }

    /// The same gathering as the HTTP server's (`OperatorSnapshot`), shown as a table or JSON.
    private func makeReport(store: SQLiteSessionStore) async throws(CLIFailure) -> Report {
        let now = global.now()
        let opened = try await StoreAccess.queue(global, creating: false)
        let snapshot: OperatorSnapshot
        do {
            snapshot = try await OperatorSnapshot.gather(store: store, queue: opened?.0, now: now, historyLimit: 0)
        } catch let error as SessionStoreError {
            await opened?.close()
            throw CLIFailure(error)
        } catch let error as JobQueueError {
            await opened?.close()
            throw CLIFailure(error)
        } catch {
            await opened?.close()
            throw CLIFailure(.failure, "\(error)")
        }
        await opened?.close()
        return Report(
            store: store.directory, now: TimeText.iso(now), accounts: snapshot.accounts.map { AccountView($0, now: now) },
            floodWaits: snapshot.floodWaits.map { wait in
                FloodView(account: wait.account.rawValue, method: wait.method, peer: wait.peer, kind: wait.kind.rawValue, dc: wait.dc,
                          recordedAt: TimeText.iso(wait.recordedAt), until: TimeText.iso(wait.until), untilUnix: wait.until.seconds,
                          remainingSeconds: (wait.until - now).rounded(.up))
            },
            sendCodeDeadlines: snapshot.sendCodeDeadlines.map { entry in
                DeadlineView(account: entry.account.rawValue, until: TimeText.iso(entry.deadline), untilUnix: entry.deadline.seconds,
                             remainingSeconds: (entry.deadline - now).rounded(.up))
            },
            queue: snapshot.jobs.map { counts in Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, counts[$0]) }) })
    }

    private func print(_ report: Report) {
        let terminal = Terminal.standard
        terminal.line("\(terminal.paint("store", .bold)) \(report.store)   now \(report.now)")
        terminal.line()
        if report.accounts.isEmpty {
            terminal.line("no accounts")
        } else {
            terminal.table(["ACCOUNT", "HOME DC", "AUTHORIZED", "LEASE", "STATUS"], report.accounts.map { view in
                [(view.account, nil), (view.homeDC.map(String.init) ?? "-", nil),
                 (view.authorizedDCs.isEmpty ? "no" : "yes", view.authorizedDCs.isEmpty ? .yellow : nil),
                 (view.lease.text, view.lease.isLive ? nil : .dim),
                 (view.status + (view.statusCode.map { " (\($0), since \(view.statusSince ?? "?"))" } ?? ""), view.statusColor)]
            })
        }
        terminal.line()
        if report.floodWaits.isEmpty {
            terminal.line("flood waits: none active")
        } else {
            terminal.line(terminal.paint("flood waits (\(report.floodWaits.count) active)", .yellow))
            terminal.table(["ACCOUNT", "METHOD", "PEER", "KIND", "UNTIL", "REMAINING"], report.floodWaits.map { wait in
                [(wait.account, nil), (wait.method, nil), (wait.peer ?? "(all)", nil), (wait.kind, nil), (wait.until, nil),
                 ("\(TimeText.remaining(wait.remainingSeconds)) (\(Int(wait.remainingSeconds)) s)", .yellow)]
            })
        }
        terminal.line()
        if report.sendCodeDeadlines.isEmpty {
            terminal.line("send-code deadlines: none")
        } else {
            terminal.line(terminal.paint("send-code deadlines (no login code may be requested before)", .yellow))
            terminal.table(["ACCOUNT", "UNTIL", "REMAINING"], report.sendCodeDeadlines.map { entry in
                [(entry.account, nil), (entry.until, nil), ("\(TimeText.remaining(entry.remainingSeconds)) (\(Int(entry.remainingSeconds)) s)", .yellow)]
            })
        }
        terminal.line()
        if let queue = report.queue {
            terminal.line("queue: " + JobState.allCases.map { "\($0.rawValue) \(queue[$0.rawValue] ?? 0)" }.joined(separator: ", "))
        } else {
            terminal.line("queue: no job queue (jobs.sqlite) in the store directory")
        }
    }
}
