import Foundation
import ArgumentParser

/// The rule for a new account's name (`auth`, `session import`, `jobs enqueue`): it is printed in
/// tables, log lines and alerts, one per line, so no control character, no space at either end and
/// not blank. Names already in a store are used as they are.
enum AccountName {
    static func check(_ name: String) throws(ValidationError) {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--account must name the account") }
        guard name == name.trimmingCharacters(in: .whitespaces) else {
            throw ValidationError("--account must not start or end with a space: '\(name)'")
        }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }) else {
            throw ValidationError("--account must not hold a line break or another control character (it is printed in tables and log lines)")
        }
    }
}
