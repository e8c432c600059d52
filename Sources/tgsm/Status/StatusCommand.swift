import ArgumentParser
import Foundation
import MTProto
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

    func run() async throws {
        try await StoreAccess.withOperatorStoreForReading(global) { store, location in try await show(store: store, location: location) }
    }

    /// The queue stays open across redraws (a PostgreSQL queue is a pool of connections, not to be
    /// made anew every few seconds), and is closed however the command ends.
    private func show(store: any OperatorReadableStore, location: String) async throws {
        var opened: (any JobQueue, close: @Sendable () async -> Void)?
        do {
            try await draw(store: store, location: location, queue: &opened)
        } catch {
            await opened?.close()
            throw error
        }
        await opened?.close()
    }

    private func draw(store: any OperatorReadableStore, location: String, queue opened: inout (any JobQueue, close: @Sendable () async -> Void)?) async throws {
        var drawn = 0
        while !Task.isCancelled {
            // While there is no queue yet, each redraw looks again: workers started after
            // `status --watch` show up.
            if opened == nil { opened = try await StoreAccess.queueForReading(global, sharing: store) }
            let report = try await makeReport(store: store, location: location, queue: opened?.0)
            guard watch else {
                if output.json { try Terminal.standard.json(report) } else { report.print(on: .standard) }
                return
            }
            // Read before clearing, so a slow read never leaves a blank screen.
            Terminal.standard.clearScreen()
            report.print(on: .standard)
            drawn += 1
            if let count, drawn >= count { return }
            if !Terminal.standard.outIsTerminal { Terminal.standard.line() }
            try await Task.sleep(for: .seconds(interval))
        }
    }

    private func makeReport(store: any OperatorReadableStore, location: String, queue: (any JobQueue)?) async throws(CLIFailure) -> StatusReport {
        try await StatusReport.make(store: store, location: location, queue: queue, now: global.now())
    }
}
