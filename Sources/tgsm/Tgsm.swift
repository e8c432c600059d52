import ArgumentParser
import Foundation
import SessionManager

/// The tgsm command-line tool: one subcommand per job.
@main
struct Tgsm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tgsm",
        abstract: "Keeps Telegram user sessions alive; also runs a Telegram-compatible test DC.",
        discussion: "Exit codes: 0 ok, 1 failure, 2 usage, 3 check found problems, 4 not found, 5 store damaged, "
            + "6 lease held by another process, 7 rate limited, 8 account marked dead, 9 encryption key missing or wrong, "
            + "10 file exists (docs/CLI.md).",
        subcommands: [
            SandboxCommand.self, AuthCommand.self, RunCommand.self, RecoverCommand.self, SessionCommand.self, StatusCommand.self, JobsCommand.self,
            CheckCommand.self, AlertsCommand.self, TestDCCommand.self,
        ]
    )

    /// ArgumentParser's own entry point exits 64 on a usage error; tgsm's documented code is 2, and
    /// a `CLIFailure` carries its own code after its message was printed.
    static func main() async {
        // A reader that goes away (`| head`) is a write error to ignore (`Terminal.write`), not a
        // signal that kills the process on some commands and not others (NIO ignores it already).
        signal(SIGPIPE, SIG_IGN)
        var parsed: (any ParsableCommand)?
        do {
            var command = try await asyncParseAsRoot(nil)
            parsed = command
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIFailure {
            Terminal.standard.error(failure.message)
            Foundation.exit(failure.exit.rawValue)
        } catch let error as SessionStoreError {
            // One a command let through as it came: its documented exit code (5 damaged, 6 held,
            // 9 key...), not ArgumentParser's 1.
            let failure = CLIFailure(storeError: error)
            Terminal.standard.error(failure.message)
            Foundation.exit(failure.exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                if let parsed {
                    // Refused by the command itself (a proxy link it cannot use): its own usage, not
                    // the root's "tgsm <subcommand>".
                    Terminal.standard.errorLine("Error: \(message(for: error))\nUsage: \(usageString(for: type(of: parsed)))")
                } else {
                    Terminal.standard.errorLine(fullMessage(for: error))
                }
                Foundation.exit(CLIExit.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}
