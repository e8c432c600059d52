import Foundation

/// The sandbox's voice: numbered steps, what was done, what was injected, and for each fault
/// whether it was handled. Colors only on a terminal (Terminal decides). The words `handled` and
/// `NOT HANDLED` are stable: the CLI test and people grepping a CI log rely on them.
final class SandboxNarrator: Sendable {
    let terminal: Terminal
    private let started: ContinuousClock.Instant

    init(terminal: Terminal = .standard) {
        self.terminal = terminal
        started = .now
    }

    /// Seconds since the sandbox started.
    var elapsed: Double {
        let duration = ContinuousClock.now - started
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func title(_ text: String) {
        terminal.line(terminal.paint(text, .bold))
    }

    func step(_ text: String) {
        terminal.line()
        terminal.line(terminal.paint(String(format: "[%5.1fs] ", elapsed), .dim) + terminal.paint(text, .bold))
    }

    func info(_ text: String) {
        terminal.line("  " + text)
    }

    /// A fault about to be injected.
    func inject(_ text: String) {
        terminal.line("  " + terminal.paint("inject:", .yellow) + " " + text)
    }

    /// What tgsm did about it.
    func handled(_ fault: String, _ how: String) {
        terminal.line("  " + terminal.paint("handled (\(fault)):", .green) + " " + how)
    }

    func notHandled(_ fault: String, _ what: String) {
        terminal.line("  " + terminal.paint("NOT HANDLED (\(fault)):", .red) + " " + what)
    }

    /// What the operator's webhook is told (`tgsm run --alert-webhook`).
    func alert(_ text: String) {
        terminal.line("  " + terminal.paint("alert:", .yellow) + " " + text)
    }

    func ok(_ text: String) {
        terminal.line("  " + terminal.paint("ok:", .green) + " " + text)
    }

    func problem(_ text: String) {
        terminal.line("  " + terminal.paint("problem:", .red) + " " + text)
    }
}
