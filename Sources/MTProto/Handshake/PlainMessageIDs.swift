/// msg_id values for the unencrypted messages of one key exchange: about `unixtime * 2^32`, strictly
/// increasing, divisible by 4 from a client and 1 modulo 4 from a server (the spec's parity rules for
/// requests and the responses to them).
struct PlainMessageIDs: Sendable {
    enum Sender: Sendable { case client, server }

    private let remainder: Int64
    private var last: Int64 = 0

    init(sender: Sender) {
        remainder = sender == .client ? 0 : 1
    }

    /// The next id for a message created at `time` (already corrected by any known clock offset).
    mutating func next(at time: UnixTime) -> Int64 {
        let seconds = time.seconds.rounded(.down)
        let clampedSeconds = min(max(seconds, 0), Double(Int32.max))
        let fraction = min(max(time.seconds - seconds, 0), 1)
        // The low 32 bits carry the fraction of the second, as the spec asks, so two ids from the same
        // second still differ and tell the peer when they were made.
        let low = min(Int64(fraction * 4_294_967_296), 0xFFFF_FFFF)
        var candidate = (Int64(clampedSeconds) << 32) | (low & ~3) | remainder
        if candidate <= last { candidate = last + 4 }
        last = candidate
        return candidate
    }

    /// Whether a received id has the parity its sender must use: client ids divisible by 4, server
    /// ids odd (1 for responses, 3 for anything else).
    static func isValid(_ id: Int64, from sender: Sender) -> Bool {
        switch sender {
        case .client: id != 0 && id & 3 == 0
        case .server: id & 1 == 1
        }
    }
}
