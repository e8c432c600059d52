import MTProto

/// Identifies one `invoke` call for its whole life inside a connection, before and after the
/// session machine gives it a `RequestID`, and across reconnects.
struct CallToken: Hashable, Sendable, Comparable {
    let rawValue: UInt64
    static func < (lhs: CallToken, rhs: CallToken) -> Bool { lhs.rawValue < rhs.rawValue }
    func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
    /// Call numbers are this process's own (see `MessageIDTable`): no SipHash needed.
    func _rawHashValue(seed: Int) -> Int { OwnIdentifierHash.mix(rawValue, seed: seed) }
}

/// The calls waiting for an answer on one connection: the method's name for errors, the deadline,
/// how far the request got, and what to do next if no answer comes. A plain value so timeouts,
/// cancellation and in-doubt handling are tested without IO.
struct RequestTracker<Payload> {
    /// The next step for a sent request that has no answer yet (see `InDoubtPolicy`).
    enum FollowUp: Equatable {
        /// Ask the server about it (msgs_state_req) at this time.
        case checkState(at: UnixTime)
        /// The server confirmed it; ask for the answer again (msg_resend_ans_req) at this time.
        case askForAnswer(at: UnixTime)
        /// Asked again; give up as in doubt at this time.
        case giveUp(at: UnixTime)

        var time: UnixTime {
            switch self {
            case .checkState(let at), .askForAnswer(let at), .giveUp(let at): at
            }
        }
    }

    struct Entry {
        let method: String
        /// What a FLOOD_WAIT answer to this call holds back: the method, or the method in one chat
        /// (`InvokeOptions.floodScope`).
        let floodScope: String
        var deadline: UnixTime?
        let timeout: Double?
        var requestID: RequestID?
        var delivery: RequestDelivery = .notSent
        var followUp: FollowUp?
        /// When a state report first confirmed the server has it (the in-doubt wait counts from here).
        var confirmedAt: UnixTime?
        /// The request's body until it is handed to a session (then the session keeps it).
        var payload: Payload?

        /// See `RequestTracker.handOver`; the deadline when this armed it.
        mutating func handOver(to request: RequestID, now: UnixTime, checkAt: UnixTime) -> UnixTime? {
            var armed: UnixTime?
            if deadline == nil, let timeout {
                armed = now + timeout
                deadline = armed
            }
            requestID = request
            payload = nil
            if delivery == .notSent { delivery = .sent }
            followUp = .checkState(at: checkAt)
            return armed
        }
    }

    private(set) var entries: [CallToken: Entry] = [:]
    private var tokensByRequest: [RequestID: CallToken] = [:]
    /// At or before the earliest deadline and follow-up: lowered as times are set, left as they
    /// are when calls end (a wake-up then finds nothing due), and made exact by `refreshBounds`,
    /// which the timer calls. The machine asks for them on every input, and with many calls in
    /// flight a scan of all of them each time was a measurable share of a call's cost.
    private(set) var nextDeadline: UnixTime?
    private(set) var nextFollowUp: UnixTime?
    private var nextToken: UInt64 = 1

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Reserves a token before the call suspends, so a cancellation racing the registration finds it.
    mutating func makeToken() -> CallToken {
        defer { nextToken += 1 }
        return CallToken(rawValue: nextToken)
    }

    /// Registers a call. Its timeout starts only when it is handed over to a live session.
    mutating func register(_ token: CallToken, method: String, floodScope: String? = nil, timeout: Double?, payload: Payload) {
        let previous = entries.updateValue(
            Entry(method: method, floodScope: floodScope ?? method, deadline: nil, timeout: timeout, requestID: nil, payload: payload), forKey: token)
        precondition(previous == nil, "a call token was registered twice")
    }

    /// Hands the call to a ready session's request: starts its timeout at `now` (once: connecting
    /// and the key exchange, bounded by their own limits, do not eat into it), links it to
    /// `request` (the body is the session's to keep from now on), and marks it sent, to be asked
    /// about at `checkAt` if unanswered. One lookup of the call: every call goes through here.
    mutating func handOver(_ token: CallToken, to request: RequestID, now: UnixTime, checkAt: UnixTime) {
        guard let index = entries.index(forKey: token) else { return }
        let armed = entries.values[index].handOver(to: request, now: now, checkAt: checkAt)
        tokensByRequest[request] = token
        if let armed, nextDeadline.map({ armed < $0 }) ?? true { nextDeadline = armed }
        lowerFollowUpBound(to: checkAt)
    }

    /// The request went out again on a connection (a resend after a reconnect); if unanswered it
    /// is asked about at `checkAt`.
    mutating func markSent(_ token: CallToken, checkAt: UnixTime) {
        guard entries[token] != nil else { return }
        if entries[token]?.delivery == .notSent { entries[token]?.delivery = .sent }
        entries[token]?.followUp = .checkState(at: checkAt)
        lowerFollowUpBound(to: checkAt)
    }

    /// The request went out again under a new msg_id: the wait for its answer starts over, as for
    /// a request just sent (asked about at `checkAt`, confirmed anew).
    mutating func markResent(_ token: CallToken, checkAt: UnixTime) {
        guard entries[token] != nil else { return }
        entries[token]?.delivery = .sent
        entries[token]?.followUp = .checkState(at: checkAt)
        entries[token]?.confirmedAt = nil
        lowerFollowUpBound(to: checkAt)
    }

    /// The server confirmed it has the request. A confirmation in answer to a state check
    /// (`followUp` given) starts the wait for the answer.
    mutating func markReceived(_ request: RequestID, followUp: FollowUp?, now: UnixTime) {
        guard let token = tokensByRequest[request], entries[token] != nil else { return }
        entries[token]?.delivery = .received
        // Only the first report starts the wait: a later one (of a state check repeated while the
        // first was under way) must not set an answer request or a give-up back.
        if let followUp, case .checkState? = entries[token]?.followUp {
            entries[token]?.followUp = followUp
            if entries[token]?.confirmedAt == nil { entries[token]?.confirmedAt = now }
            lowerFollowUpBound(to: followUp.time)
        }
    }

    /// The server says it is still working on the request: its answer is not lost. A give-up that
    /// was set becomes another answer request at `askAt`, if that is at most `limit` seconds after
    /// the server first confirmed the request (a server that reports "running" for ever must not
    /// hold a call that has no timeout for ever): the last ask goes out within `limit`, and the
    /// give-up follows it by the answer wait.
    mutating func markRunning(_ request: RequestID, askAt: UnixTime, now: UnixTime, limit: Double) {
        guard let token = tokensByRequest[request], let entry = entries[token],
              case .giveUp? = entry.followUp, let confirmedAt = entry.confirmedAt,
              askAt.seconds - confirmedAt.seconds <= limit else { return }
        entries[token]?.followUp = .askForAnswer(at: askAt)
        lowerFollowUpBound(to: askAt)
    }

    mutating func setFollowUp(_ token: CallToken, _ followUp: FollowUp?) {
        guard entries[token] != nil else { return }
        entries[token]?.followUp = followUp
        if let followUp { lowerFollowUpBound(to: followUp.time) }
    }

    private mutating func lowerFollowUpBound(to time: UnixTime) {
        if nextFollowUp.map({ time < $0 }) ?? true { nextFollowUp = time }
    }

    /// Makes `nextDeadline` and `nextFollowUp` exact (a scan of every call).
    mutating func refreshBounds() {
        var earliestDeadline: UnixTime?
        var earliestFollowUp: UnixTime?
        for entry in entries.values {
            if let deadline = entry.deadline, earliestDeadline.map({ deadline < $0 }) ?? true { earliestDeadline = deadline }
            if let time = entry.followUp?.time, earliestFollowUp.map({ time < $0 }) ?? true { earliestFollowUp = time }
        }
        nextDeadline = earliestDeadline
        nextFollowUp = earliestFollowUp
    }

    func token(of request: RequestID) -> CallToken? { tokensByRequest[request] }

    /// The call answered by `request`, removed; nil when it was cancelled or timed out before.
    mutating func complete(_ request: RequestID) -> (CallToken, Entry)? {
        guard let token = tokensByRequest.removeValue(forKey: request), let entry = entries.removeValue(forKey: token) else { return nil }
        return (token, entry)
    }

    /// Removes a call (cancelled by its caller, or failed).
    mutating func remove(_ token: CallToken) -> Entry? {
        guard let entry = entries.removeValue(forKey: token) else { return nil }
        if let request = entry.requestID { tokensByRequest.removeValue(forKey: request) }
        return entry
    }

    /// Removes and returns every call whose deadline is at or before `now`, oldest token first.
    mutating func expire(now: UnixTime) -> [(CallToken, Entry)] {
        let due = entries.filter { _, entry in entry.deadline.map { $0 <= now } ?? false }.keys.sorted()
        defer { refreshBounds() }
        return due.compactMap { token in remove(token).map { (token, $0) } }
    }

    /// Calls whose follow-up is due at or before `now`, oldest token first.
    func dueFollowUps(now: UnixTime) -> [(CallToken, FollowUp)] {
        entries.compactMap { token, entry in
            guard let followUp = entry.followUp, followUp.time <= now else { return nil }
            return (token, followUp)
        }.sorted { $0.0 < $1.0 }
    }

    /// The calls of a flood scope, oldest first.
    func tokens(inFloodScope scope: String) -> [CallToken] {
        entries.compactMap { token, entry in entry.floodScope == scope ? token : nil }.sorted()
    }

    /// Requests the session machine knows and that still have a waiting caller.
    var requestsInFlight: [RequestID] { tokensByRequest.keys.sorted() }

    /// Calls not yet handed to a session, oldest first, with their bodies.
    var parked: [(CallToken, Payload)] {
        entries.compactMap { token, entry in entry.requestID == nil ? entry.payload.map { (token, $0) } : nil }.sorted { $0.0 < $1.0 }
    }

    /// Removes everything (close, fatal failure), oldest token first.
    mutating func removeAll() -> [(CallToken, Entry)] {
        let all = entries.keys.sorted().compactMap { token in entries[token].map { (token, $0) } }
        entries.removeAll()
        tokensByRequest.removeAll()
        nextDeadline = nil
        nextFollowUp = nil
        return all
    }
}
