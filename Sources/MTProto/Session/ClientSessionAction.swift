/// Identifies one RPC request for its whole life, across the msg_ids it is (re)sent under.
public struct RequestID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public static func < (lhs: RequestID, rhs: RequestID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "request #\(rawValue)" }
}

/// Why the server refused a request without answering it.
public enum RequestFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// bad_msg_notification with a code that resending cannot fix (34, 35, 64 or unknown).
    case rejected(code: Int32)
    /// The rpc_result arrived but its result could not be unpacked (e.g. a gzip bomb).
    case undecodableResult(SessionError)

    public var description: String {
        switch self {
        case .rejected(let code):
            "the server ignored the request with bad_msg_notification \(code) (\(BadMessageCode.explanation(code))); this is a client bug, resending it unchanged will not help"
        case .undecodableResult(let error):
            "the server answered but the result could not be unpacked: \(error)"
        }
    }
}

/// bad_msg_notification's error codes (mtproto/service_messages_about_messages).
public enum BadMessageCode {
    public static let messageIDTooLow: Int32 = 16
    public static let messageIDTooHigh: Int32 = 17
    public static let messageIDLowBits: Int32 = 18
    public static let containerIDReused: Int32 = 19
    public static let messageTooOld: Int32 = 20
    public static let seqNoTooLow: Int32 = 32
    public static let seqNoTooHigh: Int32 = 33
    public static let seqNoEvenExpected: Int32 = 34
    public static let seqNoOddExpected: Int32 = 35
    public static let badServerSalt: Int32 = 48
    public static let invalidContainer: Int32 = 64

    public static func explanation(_ code: Int32) -> String {
        switch code {
        case 16: "msg_id too low: the client clock is behind"
        case 17: "msg_id too high: the client clock is ahead"
        case 18: "msg_id's two low bits are wrong"
        case 19: "container msg_id reused"
        case 20: "message too old to tell whether it was received"
        case 32: "seq_no too low"
        case 33: "seq_no too high"
        case 34: "even seq_no expected (not content-related)"
        case 35: "odd seq_no expected (content-related)"
        case 48: "wrong server salt"
        case 64: "invalid container"
        default: "unknown code"
        }
    }
}

/// What the client session asks its owner to do, or tells it, after an input.
public enum ClientSessionAction: Sendable, Equatable {
    /// Write this encrypted packet to the transport.
    case send([UInt8])
    /// The serialized result of a request; decode it with the request's result type.
    case rpcResult(RequestID, [UInt8])
    /// The request failed with rpc_error.
    case rpcError(RequestID, RPCError)
    /// The server refused the request at the MTProto level.
    case requestFailed(RequestID, RequestFailure)
    /// A message the server sent on its own (updates): a serialized API object.
    case update([UInt8])
    /// The answer to `ping`/`pingDelayDisconnect`.
    case pong(pingID: Int64)
    /// The server created a new session (new_session_created): its salt is stored. The requests
    /// listed were sent before `firstMessageID` and may never have reached the new session: resend
    /// them with `resend(_:now:)` if they are safe to repeat, or treat their outcome as unknown.
    case newSessionCreated(firstMessageID: Int64, inDoubt: [RequestID])
    /// seq_no went out of sync (bad_msg_notification 32/33): the session started over under a new
    /// session id, the refused message was resent; `inDoubt` were pending in the old session and
    /// their answers will not come.
    case sessionReset(newSessionID: Int64, inDoubt: [RequestID])
    /// The answer to `requestFutureSalts`; the salts are stored and used by time.
    case futureSalts([FutureSalt])
    /// The answer to `destroySession`.
    case sessionDestroyed(sessionID: Int64, existed: Bool)
    /// An authenticated message was dropped (malformed body, gzip bomb...). Informational.
    case messageDiscarded(messageID: Int64, SessionError)
}
