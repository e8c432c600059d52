/// When a connection asks the DC for its future salts (get_future_salts) and how many.
///
/// Why ahead of time: a salt change the client does not know of costs a bad_server_salt round
/// trip on the next call, and a call sent in the gap goes out twice. With the next salts stored
/// (and saved with the session, so a restart has them too), the session moves to the next salt by
/// the DC's clock before the DC has to say so.
public struct FutureSaltsPolicy: Sendable, Hashable {
    /// Salts asked for in one request (the DC answers at most 64).
    public var count: Int32
    /// A new request goes out when the salts known cover less than this many seconds ahead.
    public var refetchAhead: Double
    /// Seconds before an unanswered request may be repeated.
    public var retryAfter: Double

    public init(count: Int32 = 8, refetchAhead: Double = 3600, retryAfter: Double = 300) {
        self.count = min(max(count, 1), 64)
        self.refetchAhead = max(0, refetchAhead)
        self.retryAfter = max(1, retryAfter)
    }
}
