import Foundation
import ArgumentParser

/// The rule for a new account's name (`auth`, `session import`, `jobs enqueue`): it is printed in
/// tables, log lines and alerts, one per line, so no control character, no space at either end and
/// not blank. Names already in a store are used as they are.
enum AccountName {
    static func check(_ name: String) throws(ValidationError) {
        try PrintedName.check(name, option: "--account", blank: "--account must name the account")
    }
}

/// The same rule for every name a user gives that tables and log lines print (an account, a job's
/// kind, an idempotency key): a line break in one forged a row of `jobs list`, an escape sequence
/// reached the terminal, and an empty key (an unset shell variable) silently kept only the first job.
enum PrintedName {
    static func check(_ value: String, option: String, blank: String) throws(ValidationError) {
        guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError(blank) }
        guard value == value.trimmingCharacters(in: .whitespaces) else {
            throw ValidationError("\(option) must not start or end with a space: '\(value)'")
        }
        guard !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }) else {
            throw ValidationError("\(option) must not hold a line break or another control character (it is printed in tables and log lines)")
        }
    }
}
