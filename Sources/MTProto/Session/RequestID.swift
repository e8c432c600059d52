/// Identifies one RPC request for its whole life, across the msg_ids it is (re)sent under.
public struct RequestID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static func < (lhs: RequestID, rhs: RequestID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "request #\(rawValue)" }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// Request numbers are this session's own (see `MessageIDTable`): no SipHash needed.
    public func _rawHashValue(seed: Int) -> Int { OwnIdentifierHash.mix(rawValue, seed: seed) }
}
