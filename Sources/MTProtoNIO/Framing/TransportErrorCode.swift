/// The code of a transport error: the server sends a packet of exactly 4 bytes, a little-endian
/// negative int32 whose absolute value is the code (spec: "Transport errors").
public struct TransportErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// The value as sent on the wire, always negative (for example -404).
    public let rawValue: Int32

    /// - Precondition: `rawValue` is negative; a non-negative int32 is not a transport error.
    public init(rawValue: Int32) {
        precondition(rawValue < 0, "a transport error code is a negative int32, got \(rawValue)")
        self.rawValue = rawValue
    }

    /// The code as the spec names it, positive (404, 429...).
    public var code: Int { -Int(rawValue) }

    /// Where an HTTP transport would have answered 403.
    public static let forbidden = TransportErrorCode(rawValue: -403)
    /// The auth key id of the packet is unknown to this DC.
    public static let authKeyNotFound = TransportErrorCode(rawValue: -404)
    /// Too many connections from this address in a short time, or a container or service-message limit hit.
    public static let transportFlood = TransportErrorCode(rawValue: -429)
    /// An invalid DC id was given (while creating an auth key, connecting to an MTProxy, or elsewhere).
    public static let invalidDC = TransportErrorCode(rawValue: -444)

    public var description: String {
        switch self {
        case .forbidden:
            "transport error -403 (forbidden): the server refused the request as HTTP would with 403; "
                + "check that the request is allowed for this connection before retrying"
        case .authKeyNotFound:
            "transport error -404 (auth key not found): this DC does not know the auth key the packet was "
                + "encrypted with (it was never created there, or the server dropped it); "
                + "forget the key for this DC and create a new one with a fresh handshake"
        case .transportFlood:
            "transport error -429 (transport flood): too many connections from this address in a short time, "
                + "or a container or service-message limit was reached; wait before reconnecting and open fewer connections"
        case .invalidDC:
            "transport error -444 (invalid DC): the DC id given while creating an auth key or connecting through a "
                + "proxy is not valid for this server; check the DC id and the address you connect to"
        default:
            "transport error \(rawValue): the server reported a transport-level failure with a code the spec does "
                + "not list; reconnect, and if it repeats, log the code and report it"
        }
    }
}
