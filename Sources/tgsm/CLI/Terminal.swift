import Foundation
import MTProto
import OperatorHTTP
import Synchronization

/// Where a command's output goes. Colors only when the stream is a terminal and NO_COLOR is unset
/// (https://no-color.org), so pipes, files and tests get plain text.
struct Terminal: Sendable {
    enum Color: String {
        case red = "31"
        case green = "32"
        case yellow = "33"
        case dim = "2"
        case bold = "1"
    }

    let colorsOut: Bool
    let colorsErr: Bool
    /// Whether stdout is a terminal (a redraw may clear it; a pipe gets appended blocks instead).
    let outIsTerminal: Bool

    /// Whether phone-like text is masked in everything written (`Redaction.logLine`): set by
    /// commands whose output is a journal (`tgsm run`), where an account named by its number, or
    /// an error text quoting one, would otherwise stay for as long as the logs are kept.
    static let masksPhoneNumbers = Atomic<Bool>(false)

    static let standard: Terminal = {
        let allowed = ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
        let outTTY = isatty(STDOUT_FILENO) == 1
        return Terminal(colorsOut: allowed && outTTY, colorsErr: allowed && isatty(STDERR_FILENO) == 1, outIsTerminal: outTTY)
    }()

    /// Clears a terminal and puts the cursor home, for a redraw; nothing on a pipe.
    func clearScreen() {
        if outIsTerminal { Self.write("\u{1B}[H\u{1B}[2J", to: .standardOutput) }
    }

    func paint(_ text: String, _ color: Color) -> String {
        colorsOut ? "\u{1B}[\(color.rawValue)m\(text)\u{1B}[0m" : text
    }

    /// Writes unbuffered, so lines interleave correctly with stderr and reach a pipe at once.
    func line(_ text: String = "") {
        Self.write(Self.shown(text) + "\n", to: .standardOutput)
    }

    /// Writes, dropping what a closed reader no longer takes: `tgsm jobs list | head -1` died in
    /// Foundation's non-throwing `write`, which traps on EPIPE, and printed a crash report. The command
    /// goes on to its end (a `tgsm run` whose stdout was closed keeps serving).
    static func write(_ text: String, to handle: FileHandle) {
        try? handle.write(contentsOf: Data(text.utf8))
    }

    func errorLine(_ text: String) {
        let text = Self.shown(text)
        Self.write(text.hasSuffix("\n") ? text : text + "\n", to: .standardError)
    }

    private static func shown(_ text: String) -> String {
        let inert = inert(text)
        return masksPhoneNumbers.load(ordering: .relaxed) ? Redaction.logLine(inert) : inert
    }

    /// `text` with no power over the terminal that shows it (`InertText.terminal`): a payload, an
    /// error or a notice cannot clear the screen or rewrite what was printed; tgsm's colors pass.
    static func inert(_ text: String) -> String { InertText.terminal(text) }

    func error(_ message: String) {
        let label = colorsErr ? "\u{1B}[31mtgsm: error:\u{1B}[0m" : "tgsm: error:"
        errorLine("\(label) \(message)")
    }

    func warning(_ message: String) {
        let label = colorsErr ? "\u{1B}[33mtgsm: warning:\u{1B}[0m" : "tgsm: warning:"
        errorLine("\(label) \(message)")
    }

    /// Prints `value` as JSON (sorted keys, so output is stable for scripts and diffs).
    func json<T: Encodable>(_ value: T) throws(CLIFailure) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            line(String(decoding: try encoder.encode(value), as: UTF8.self))
        } catch {
            throw CLIFailure(.failure, "the output could not be encoded as JSON (\(error)); this is a bug in tgsm, please report it")
        }
    }

    /// Left-aligned columns, two spaces apart; colors are applied after padding so widths stay right.
    /// `text` with spaces up to `width` characters. Counted in characters, as the widths are:
    /// Foundation's `padding(toLength:)` counts UTF-16 units and cut an emoji in half ("al ice\u{FFFD}").
    static func padded(_ text: String, to width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }

    func table(_ header: [String], _ rows: [[(text: String, color: Color?)]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.text.count) }
        }
        func render(_ cells: [(text: String, color: Color?)]) -> String {
            cells.enumerated().map { index, cell in
                let padded = index == cells.count - 1 ? cell.text : Self.padded(cell.text, to: widths[index])
                return cell.color.map { paint(padded, $0) } ?? padded
            }.joined(separator: "  ")
        }
        line(paint(render(header.map { ($0, nil) }), .bold))
        for row in rows { line(render(row)) }
    }
}

/// How times are shown: ISO 8601 in UTC (exact, sortable) and remaining seconds.
enum TimeText {
    static func iso(_ time: UnixTime) -> String {
        Date(timeIntervalSince1970: time.seconds.rounded(.down)).ISO8601Format()
    }

    /// "1h02m03s", "45s"; never negative.
    static func remaining(_ seconds: Double) -> String {
        let total = Int(max(0, seconds).rounded(.up))
        let hours = total / 3600, minutes = total % 3600 / 60, secs = total % 60
        if hours > 0 { return String(format: "%dh%02dm%02ds", hours, minutes, secs) }
        if minutes > 0 { return String(format: "%dm%02ds", minutes, secs) }
        return "\(secs)s"
    }
}
