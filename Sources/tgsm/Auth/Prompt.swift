import Foundation

/// Asking a person for a line on the terminal. Prompts go to stderr (stdout stays the command's
/// output); a secret is read with echo off when stdin is a terminal, so it never shows on screen.
enum Prompt {
    struct Closed: Error {}

    static func line(_ prompt: String) throws(CLIFailure) -> String {
        Terminal.write(prompt, to: .standardError)
        guard let line = readLine(strippingNewline: true) else {
            throw CLIFailure(.usage, "the input ended before an answer to \"\(prompt.trimmingCharacters(in: .whitespaces))\" was given")
        }
        // Piped in, the answer is not echoed: the prompt's line is ended here, or the next log
        // line or prompt would run on after it.
        if isatty(STDIN_FILENO) != 1 { Terminal.write("\n", to: .standardError) }
        return line.trimmingCharacters(in: .whitespaces)
    }

    /// Signals that end the process while a secret is being typed: Ctrl-C, Ctrl-\, a closed
    /// terminal window, a `kill`.
    private static let interruptions = [SIGINT, SIGQUIT, SIGHUP, SIGTERM]

    /// Reads without echo on a terminal; the typed text never reaches the screen, a log or a file.
    /// A signal that ends the process meanwhile first turns echo back on: the shell it returns to
    /// does not always restore the terminal, and one left silent looks hung.
    ///
    /// Echo goes off before the prompt shows: what is typed once the prompt is on screen (a fast
    /// typist, a pasted password) is never echoed nor thrown away. What was typed before it, blind
    /// and echoed, is discarded (TCSAFLUSH) rather than taken as the secret.
    static func secret(_ prompt: String) throws(CLIFailure) -> String {
        var saved = termios()
        let isTerminal = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved) == 0
        var previousHandlers: [(Int32, __sighandler_t?)] = []
        if isTerminal {
            terminalBeforeSecret = saved
            previousHandlers = interruptions.map { ($0, signal($0, restoreTerminalThenDie)) }
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        }
        Terminal.write(prompt, to: .standardError)
        let line = readLine(strippingNewline: true)
        if isTerminal {
            // TCSADRAIN: an answer typed ahead for the next prompt stays.
            _ = tcsetattr(STDIN_FILENO, TCSADRAIN, &saved)
            for (number, handler) in previousHandlers { _ = signal(number, handler) }
        }
        // Echo was off at a terminal, and a piped answer is never echoed: the prompt's line is
        // ended either way.
        Terminal.write("\n", to: .standardError)
        guard let line else { throw CLIFailure(.usage, "the input ended before the secret was given") }
        return line
    }
}

extension Prompt {
    /// The 2FA password after Telegram skipped the login code (a future auth token matched). Typed
    /// at a terminal, it is what the prompt asks. Piped in by a script written for the usual
    /// "CODE, then PASSWORD", the first line is the code nobody asked for, and trying it as the
    /// password is a wrong attempt Telegram counts: a first line shaped like a login code (4 to 8
    /// digits) is skipped when a non-empty line follows; alone (or followed by an empty line, as
    /// `echo -e "123456\n"` writes), it is the password (a numeric one).
    static func secretAfterSkippedCode(_ prompt: String) throws(CLIFailure) -> (secret: String, skippedCode: Bool) {
        guard isatty(STDIN_FILENO) != 1 else { return (try secret(prompt), false) }
        let first = try secret(prompt)
        guard (4...8).contains(first.count), first.allSatisfy(\.isASCII), first.allSatisfy(\.isNumber),
              let next = readLine(strippingNewline: true), !next.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
        else { return (first, false) }
        return (next, true)
    }
}

/// The terminal as it was before a secret prompt turned echo off, for `restoreTerminalThenDie`.
/// Written before the handler is installed and only read by it.
nonisolated(unsafe) private var terminalBeforeSecret = termios()

/// Puts the terminal back (tcsetattr is async-signal-safe), then lets the signal do what it does
/// by default, so the exit status still says which signal ended the process.
private let restoreTerminalThenDie: @convention(c) (Int32) -> Void = { number in
    _ = tcsetattr(STDIN_FILENO, TCSANOW, &terminalBeforeSecret)
    _ = signal(number, SIG_DFL)
    _ = raise(number)
}
