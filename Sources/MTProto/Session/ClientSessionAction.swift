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
    /// The server confirmed it has these requests (msgs_ack, or status 4 in msgs_state_info /
    /// msgs_all_info when `byStateReport`) and has not answered them yet: if the answer never
    /// comes, they may have run.
    case received([RequestID], byStateReport: Bool)
    /// msgs_state_info says the server is still working on these requests (+32 "being processed"
    /// without +64 "answer generated"), in reply to msgs_state_req or msg_resend_ans_req: their
    /// answers are not lost, only not made yet. Reported after `received` for the same report.
    case stillRunning([RequestID])
    /// Asked about these requests, the server said it knows nothing of them (msgs_state_info
    /// status 1: their msg_ids are below what it remembers). They may have run and been forgotten,
    /// so they are not resent: like `newSessionCreated`'s `inDoubt`, `resend(_:now:)` them if they
    /// are safe to repeat, or treat their outcome as unknown.
    case forgottenByServer([RequestID])
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
    /// These requests went out again under new msg_ids (the server reported them not processed or
    /// not received, or the owner asked): their answers are awaited anew. Reported before
    /// `.resendWithheld` of the same input.
    case resent([RequestID])
    /// The server reported these requests as not processed, and the owner had withheld their resend
    /// (`withholdResends(of:)`): they were dropped, not sent again, and did not run.
    case resendWithheld([RequestID])
    /// The answer to `requestFutureSalts`; the salts are stored and used by time.
    case futureSalts([FutureSalt])
    /// The answer to `destroySession`.
    case sessionDestroyed(sessionID: Int64, existed: Bool)
    /// An authenticated message was dropped (malformed body, gzip bomb...). Informational.
    case messageDiscarded(messageID: Int64, SessionError)
}
