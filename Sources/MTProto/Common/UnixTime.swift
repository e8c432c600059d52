/// Wall-clock time as the protocol sees it: seconds since the Unix epoch. Every state machine of the
/// core takes `now` as an argument instead of reading a clock, so tests drive time explicitly and
/// the edges (NIO handlers, the client actor) decide where time comes from.
public struct UnixTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    public static func < (lhs: UnixTime, rhs: UnixTime) -> Bool { lhs.seconds < rhs.seconds }

    public static func + (lhs: UnixTime, rhs: Double) -> UnixTime { UnixTime(seconds: lhs.seconds + rhs) }
    public static func - (lhs: UnixTime, rhs: UnixTime) -> Double { lhs.seconds - rhs.seconds }

    public var description: String { "unix \(seconds)" }
}
