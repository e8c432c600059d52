import ArgumentParser

/// The tgsm command-line tool: one subcommand per job.
@main
struct Tgsm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tgsm",
        abstract: "Keeps Telegram user sessions alive; also runs a Telegram-compatible test DC.",
        subcommands: [TestDCCommand.self]
    )
}
