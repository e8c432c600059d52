import Foundation

/// Asking a person for a line on the terminal. Prompts go to stderr (stdout stays the command's
/// output); a secret is read with echo off when stdin is a terminal, so it never shows on screen.
enum Prompt {
    struct Closed: Error {}

    static func line(_ prompt: String) throws(CLIFailure) -> String {
        FileHandle.standardError.write(Data(prompt.utf8))
        guard let line = readLine(strippingNewline: true) else {
            throw CLIFailure(.usage, "the input ended before an answer to \"\(prompt.trimmingCharacters(in: .whitespaces))\" was given")
        }
        return line.trimmingCharacters(in: .whitespaces)
    }

    /// Reads without echo on a terminal; the typed text never reaches the screen, a log or a file.
    static func secret(_ prompt: String) throws(CLIFailure) -> String {
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        let isTerminal = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved) == 0
        if isTerminal {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        }
        let line = readLine(strippingNewline: true)
        if isTerminal {
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        guard let line else { throw CLIFailure(.usage, "the input ended before the secret was given") }
        return line
    }
}
