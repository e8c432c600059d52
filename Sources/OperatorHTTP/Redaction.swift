import Crypto
import Foundation

/// What the operator's pages, JSON and metric labels may show. Account ids are chosen by people
/// and are sometimes phone numbers; error texts may quote one. Anything phone-like (seven or more
/// digits, allowing the separators people type: spaces, dashes, dots, parentheses, a leading +)
/// is masked down to its last two digits and a tag of four hex digits from a hash of all of them
/// ("+•••••••••67#3fa2"): accounts named by their numbers (as Telethon's session files are) share
/// their last two digits one pair in a hundred, and without the tag their rows, series and log
/// lines read as one account. The tag is the same for a number however it is written; 16 bits
/// plus two digits leave about 1,500 candidates for a national number, which is still masked.
/// ISO dates and IPv4 addresses are not phone numbers.
public enum Redaction {
    /// Digits in a row (separators allowed) from which a run counts as a phone number.
    public static let phoneDigits = 7
    /// The most digits a phone number has (E.164); `logLine` leaves longer runs (msg_ids, key ids).
    public static let longestPhoneDigits = 15

    /// `text` with every phone-like run masked: "+7 999 123-45-67" → "+•••••••••67#" and its tag.
    public static func masked(_ text: String) -> String { masked(text, longestRun: .max) }

    /// What a log line or a long-running command's output may hold: `masked`, except that runs
    /// longer than any phone number stay whole, so the message and auth key ids a protocol log
    /// quotes remain readable.
    public static func logLine(_ text: String) -> String { masked(text, longestRun: longestPhoneDigits) }

    private static func masked(_ text: String, longestRun: Int) -> String {
        let characters = Array(text)
        var output = ""
        output.reserveCapacity(characters.count)
        var index = 0
        while index < characters.count {
            if let end = ipv4AddressEnd(characters, from: index) {
                output += String(characters[index..<end])
                index = end
                continue
            }
            guard let end = phoneRunEnd(characters, from: index, longestRun: longestRun) else {
                output.append(characters[index])
                index += 1
                continue
            }
            let run = characters[index..<end]
            let digits = run.filter(\.isASCIIDigit)
            if run.first == "+" { output.append("+") }
            output += String(repeating: "•", count: digits.count - 2)
            output += String(digits.suffix(2))
            output += "#" + tag(String(digits))
            index = end
        }
        return output
    }

    /// Four hex digits from SHA-256 of the run's digits: tells masked numbers apart.
    static func tag(_ digits: String) -> String {
        SHA256.hash(data: Array("tgsm.redaction|\(digits)".utf8)).prefix(2).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `text` holds anything `masked` would change.
    public static func containsPhoneLike(_ text: String) -> Bool {
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            if let end = ipv4AddressEnd(characters, from: index) {
                index = end
                continue
            }
            if phoneRunEnd(characters, from: index, longestRun: .max) != nil { return true }
            index += 1
        }
        return false
    }

    /// The end of a phone-like run starting at `start` (a '+', '(' or a digit, not inside a longer
    /// number), or nil. Up to two separators in a row may stand between digits ("(999) 123").
    private static func phoneRunEnd(_ characters: [Character], from start: Int, longestRun: Int) -> Int? {
        let first = characters[start]
        guard first == "+" || first == "(" || first.isASCIIDigit else { return nil }
        if start > 0, characters[start - 1].isASCIIDigit { return nil }
        // The fraction of a number ("14.123456789012393"), not a number of its own.
        if start > 1, characters[start - 1] == "." || characters[start - 1] == ",", characters[start - 2].isASCIIDigit { return nil }
        var index = start + (first.isASCIIDigit ? 0 : 1)
        if first == "+", index < characters.count, characters[index] == "(" { index += 1 }
        var digits = 0
        var lastDigitEnd = index
        while index < characters.count {
            if characters[index].isASCIIDigit {
                digits += 1
                index += 1
                lastDigitEnd = index
                continue
            }
            var lookahead = index
            while lookahead < characters.count, lookahead - index < 2, separators.contains(characters[lookahead]) { lookahead += 1 }
            guard lookahead > index, lookahead < characters.count, characters[lookahead].isASCIIDigit,
                  ipv4AddressEnd(characters, from: lookahead) == nil else { break }
            index = lookahead
        }
        guard digits >= phoneDigits, digits <= longestRun, !isDate(characters[start..<lastDigitEnd]),
              !isUnixTime(characters, start: start, end: lastDigitEnd) else { return nil }
        return lastDigitEnd
    }

    /// A point in time as `UnixTime` prints it ("unix 1796520800.28"), or any ten digits from 1 with
    /// a fraction: not a phone number. Before, one with a short fraction was masked and one with a
    /// long fraction (past fifteen digits) was not, so two lines of one kind read differently.
    private static func isUnixTime(_ characters: [Character], start: Int, end: Int) -> Bool {
        if start >= 5, characters[start].isASCIIDigit, String(characters[(start - 5)..<start]) == "unix " { return true }
        let run = characters[start..<end]
        guard let point = run.firstIndex(of: "."), point - start == 10, run.first == "1" else { return false }
        return run[..<point].allSatisfy(\.isASCIIDigit) && run[(point + 1)...].allSatisfy(\.isASCIIDigit)
    }

    /// The end of an IPv4 address starting at `start` ("149.154.167.50", as a DC's address is
    /// written: four dot-separated groups of one to three digits, not inside a longer run), or nil.
    /// A phone number written with dots has fewer or longer groups.
    private static func ipv4AddressEnd(_ characters: [Character], from start: Int) -> Int? {
        if start > 0, characters[start - 1].isASCIIDigit || characters[start - 1] == "." { return nil }
        var index = start
        for group in 0..<4 {
            if group > 0 {
                guard index < characters.count, characters[index] == "." else { return nil }
                index += 1
            }
            let groupStart = index
            while index < characters.count, characters[index].isASCIIDigit, index - groupStart < 3 { index += 1 }
            guard index > groupStart else { return nil }
        }
        if index < characters.count, characters[index].isASCIIDigit || characters[index] == "." { return nil }
        return index
    }

    /// "2027-01-15": an ISO 8601 date, which has as many digits as a short phone number.
    private static func isDate(_ run: ArraySlice<Character>) -> Bool {
        let shape = run.prefix(10).map { $0.isASCIIDigit ? "d" : String($0) }.joined()
        return shape == "dddd-dd-dd"
    }

    private static let separators: Set<Character> = [" ", "-", ".", "(", ")"]
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
