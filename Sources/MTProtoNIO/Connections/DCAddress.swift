/// Where one DC can be reached: what the client dials and what the test DC listens on and lists in
/// help.getConfig. Defined here, below both, so the two agree on one notion of a DC's address.
public struct DCAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var isIPv6: Bool
    /// Only for file downloads/uploads (dcOption.media_only).
    public var isMediaOnly: Bool

    public init(host: String, port: Int, isIPv6: Bool = false, isMediaOnly: Bool = false) {
        self.host = host
        self.port = port
        self.isIPv6 = isIPv6
        self.isMediaOnly = isMediaOnly
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
