/// How long a connection waits on a sent request before finding out what became of it, and how
/// long after the server confirmed receiving it before giving up (`TelegramError.inDoubt`).
///
/// A request without an answer after `stateCheckDelay` seconds is asked about with
/// msgs_state_req. The server says "not received" (the session resends it: it cannot have run) or
/// "received". A received request gets `answerWait` more seconds, then msg_resend_ans_req asks for
/// its answer again, then after `answerWait` more the call fails as in doubt: it may have run.
/// The server's reply to that request can change the last step: "not received" resends it, and
/// "still running" (processing, no answer made yet) means the answer is not lost, so the client
/// asks again every `answerWait` seconds while the next ask falls within `runningWait` seconds of
/// the server's first confirmation, and gives up `answerWait` after the last one. A request that
/// goes out again (reported not received) starts its wait over. The call's own timeout still
/// applies and fires first when it is shorter.
public struct InDoubtPolicy: Sendable, Hashable {
    public var stateCheckDelay: Double
    public var answerWait: Double
    /// How long after its first confirmation a request the server keeps reporting as still running
    /// is asked about; it ends in doubt `answerWait` after the last ask, like any other.
    public var runningWait: Double

    public init(stateCheckDelay: Double = 10, answerWait: Double = 10, runningWait: Double = 60) {
        precondition(stateCheckDelay > 0 && answerWait > 0 && runningWait > 0, "in-doubt delays must be positive")
        self.stateCheckDelay = stateCheckDelay
        self.answerWait = answerWait
        self.runningWait = runningWait
    }
}
