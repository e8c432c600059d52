import MTProtoCrypto

/// Why an inbound encrypted packet, or a message inside it, was not accepted.
///
/// `isFatal` tells the connection owner what to do. Fatal errors mean the packet could not be
/// authenticated or is structurally impossible: no information from it may be used, and
/// security_guidelines recommends closing the TCP connection, reconnecting and retrying. The other
/// errors concern one authenticated message that the spec says to ignore (a replay, a stale time, a
/// wrong session, a malformed body): the session drops that message and stays usable.
public enum SessionError: Error, Sendable, Equatable, CustomStringConvertible {
    // MARK: fatal: the packet is not an authentic message of this key
    /// The packet failed the envelope checks: too short, another auth_key_id, not whole blocks,
    /// msg_key mismatch, impossible message_data_length, padding outside 12...1024.
    case undecryptable(MessageCryptoError)

    // MARK: ignorable: this message is dropped, the session goes on
    /// The message belongs to another session_id (e.g. a packet of the previous session).
    case wrongSession(received: Int64, expected: Int64)
    /// The msg_id's low bits are not those of the sending side (odd from the server, ÷4 from the client).
    case wrongMessageIDParity(messageID: Int64)
    /// The msg_id was already received: a replay or a duplicate.
    case duplicateMessage(messageID: Int64)
    /// The msg_id is below every id remembered, so a replay cannot be ruled out.
    case messageIDTooOld(messageID: Int64)
    /// The msg_id's time is more than 300 s behind or 30 s ahead of the (corrected) clock.
    case messageTimeOutOfWindow(messageID: Int64, secondsFromNow: Double)
    /// A msg_container inside a msg_container, which the spec forbids.
    case nestedContainer(messageID: Int64)
    /// A container breaking the spec's rules (too many messages, inner id not below the container's,
    /// declared lengths that do not add up).
    case invalidContainer(messageID: Int64, reason: String)
    /// An authenticated body that does not parse.
    case malformedMessage(reason: String)
    /// A gzip_packed body that is corrupt or inflates past the configured limit.
    case gzip(GzipPacked.Failure)

    public var isFatal: Bool {
        switch self {
        case .undecryptable:
            true
        default:
            false
        }
    }

    public var description: String {
        let advice = isFatal
            ? "close the connection, reconnect and retry the pending requests (security_guidelines)"
            : "the message was ignored; the session stays usable"
        let what: String = switch self {
        case .undecryptable(let error):
            error.description
        case .wrongSession(let received, let expected):
            "message for session \(String(UInt64(bitPattern: received), radix: 16)) arrived in session \(String(UInt64(bitPattern: expected), radix: 16))"
        case .wrongMessageIDParity(let id):
            "msg_id \(id) has the low bits of the wrong side"
        case .duplicateMessage(let id):
            "msg_id \(id) was already received (duplicate or replay)"
        case .messageIDTooOld(let id):
            "msg_id \(id) is older than every remembered id; a replay cannot be ruled out"
        case .messageTimeOutOfWindow(let id, let offset):
            "msg_id \(id) is \(Int(offset)) s from now, outside the accepted -300...+30 s"
        case .nestedContainer(let id):
            "msg_container \(id) is nested inside another container"
        case .invalidContainer(let id, let reason):
            "msg_container \(id) is invalid: \(reason)"
        case .malformedMessage(let reason):
            "authenticated message does not parse: \(reason)"
        case .gzip(let failure):
            failure.description
        }
        return "\(what); \(advice)"
    }
}
