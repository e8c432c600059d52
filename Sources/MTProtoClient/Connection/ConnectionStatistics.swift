/// Counters of what a DC connection did, for operators and for tests that assert the client's
/// behaviour (it reconnected, it recovered requests in doubt, it ran a key exchange).
public struct ConnectionStatistics: Sendable, Hashable {
    /// TCP connections established.
    public var connections = 0
    /// Key exchanges completed.
    public var keyExchanges = 0
    /// Connections lost while calls were waiting (each followed by a reconnect attempt).
    public var connectionsLost = 0
    /// Requests in doubt after a reconnect, about which the server was asked (msgs_state_req).
    public var requestsInDoubt = 0
    /// Requests sent again because a new server session never saw them.
    public var requestsResent = 0
    /// Transport error codes received (-404, -429...).
    public var transportErrors = 0
    public var timeouts = 0
    public var cancellations = 0
    /// msgs_state_req sent about requests that waited `InDoubtPolicy.stateCheckDelay` unanswered.
    public var stateChecks = 0
    /// msg_resend_ans_req sent for requests the server confirmed but never answered.
    public var answerResendRequests = 0
    /// Reports that a request is still running (being processed, no answer made yet), in reply to
    /// those two, one per request and report; the wait goes on while they come within
    /// `InDoubtPolicy.runningWait` instead of ending in doubt.
    public var stillRunningReports = 0
    /// Calls failed with `TelegramError.inDoubt`.
    public var inDoubtFailures = 0
    /// Calls failed with `TelegramError.floodWaitHeld`: not sent (again) during a FLOOD_WAIT the DC
    /// answered for their method on this connection.
    public var floodWaitsHeld = 0
    /// get_future_salts sent (at housekeeping, when the known salts run out within the policy's horizon).
    public var futureSaltRequests = 0
    /// Messages the server sent on its own (updates) handed to the client.
    public var updates = 0
    /// Authentic server messages the session ignored, as the spec says to (a replay, an id below
    /// its window, a time out of the window, another session's, a malformed body). A few are
    /// normal (resent copies); a count that grows with every call means the client cannot hear
    /// the DC, and the connection's debug log says why.
    public var messagesIgnored = 0
    /// PFS: temporary keys bound with auth.bindTempAuthKey, and renewals started before expiry.
    public var temporaryKeyBinds = 0
    public var temporaryKeyRenewals = 0
    /// PFS: calls answered AUTH_KEY_PERM_EMPTY (the DC kept the temporary key but lost its
    /// binding, e.g. to another binding of the same permanent key): the key was replaced.
    public var temporaryKeyBindingsLost = 0
    /// Gauges at the time of reading, for leak checks: calls waiting, and the session's books
    /// (sent messages it still tracks, requests without an answer). Flat over a long run.
    public var pendingCalls = 0
    public var trackedMessages = 0
    public var trackedRequests = 0

    public init() {}
}
