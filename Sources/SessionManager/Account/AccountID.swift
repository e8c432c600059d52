/// The operator's name for one Telegram account ("alice", "scraper-3"): the key of everything the
/// store keeps per account. It is chosen by a person, so it is short, printable and never a phone
/// number (phones are secrets that must not reach logs, metric labels or file names).
public struct AccountID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }

    public static func < (lhs: AccountID, rhs: AccountID) -> Bool { lhs.rawValue < rhs.rawValue }
}
