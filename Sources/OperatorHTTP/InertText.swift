/// Text from data (a job's payload or error, a notice Telegram sent, a name someone chose) with its
/// control characters shown rather than obeyed. On a terminal an escape could clear the screen,
/// retitle the window or move the cursor to rewrite what was printed; in a log a newline starts
/// what reads as another entry (a notice of Telegram's is several lines). Controls are shown in
/// caret notation (`^[`, as `cat -v` does), C1 controls as U+FFFD.
package enum InertText {
    /// For a terminal: newlines and tabs pass, and so do the color sequences tgsm writes itself
    /// (ESC [ digits m).
    package static func terminal(_ text: String) -> String { inert(text, lines: true, colors: true) }

    /// For one log entry: a newline is `\n` and a carriage return `\r`, so an entry stays one line.
    package static func logValue(_ text: String) -> String { inert(text, lines: false, colors: false) }

    private static func inert(_ text: String, lines: Bool, colors: Bool) -> String {
        let scalars = text.unicodeScalars
        func passes(_ value: UInt32) -> Bool { value == 0x09 || (lines && value == 0x0A) }
        func isControl(_ value: UInt32) -> Bool { (value < 0x20 && !passes(value)) || (0x7F...0x9F).contains(value) }
        guard scalars.contains(where: { isControl($0.value) }) else { return text }
        var shown = String.UnicodeScalarView()
        var index = scalars.startIndex
        while index < scalars.endIndex {
            let value = scalars[index].value
            if colors, value == 0x1B, let end = colorSequenceEnd(scalars, after: index) {
                shown.append(contentsOf: scalars[index..<end])
                index = end
                continue
            }
            if !isControl(value) {
                shown.append(scalars[index])
            } else if value == 0x0A {
                shown.append(contentsOf: "\\n".unicodeScalars)
            } else if value == 0x0D && !lines {
                shown.append(contentsOf: "\\r".unicodeScalars)
            } else if value < 0x20 {
                shown.append("^")
                shown.append(Unicode.Scalar(UInt8(value + 0x40)))
            } else if value == 0x7F {
                shown.append(contentsOf: "^?".unicodeScalars)
            } else {
                shown.append("\u{FFFD}")
            }
            index = scalars.index(after: index)
        }
        return String(shown)
    }

    /// Where an SGR sequence (ESC [ digits and semicolons m) starting at `escape` ends; nil when none does.
    private static func colorSequenceEnd(_ scalars: String.UnicodeScalarView, after escape: String.UnicodeScalarView.Index) -> String.UnicodeScalarView.Index? {
        var index = scalars.index(after: escape)
        guard index < scalars.endIndex, scalars[index] == "[" else { return nil }
        index = scalars.index(after: index)
        while index < scalars.endIndex {
            let scalar = scalars[index]
            if scalar == "m" { return scalars.index(after: index) }
            guard ("0"..."9").contains(scalar) || scalar == ";" else { return nil }
            index = scalars.index(after: index)
        }
        return nil
    }
}
