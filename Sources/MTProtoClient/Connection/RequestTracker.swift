import MTProto

/// Identifies one `invoke` call for its whole life inside a connection, before and after the
/// session machine gives it a `RequestID`, and across reconnects.
struct CallToken: Hashable, Sendable, Comparable {
    let rawValue: UInt64
    static func < (lhs: CallToken, rhs: CallToken) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The calls waiting for an answer on one connection: who to complete, the method's name for
/// errors, and the deadline. A plain value so timeouts and cancellation are tested without IO.
struct RequestTracker<Completion> {
    struct Entry {
        let method: String
        var deadline: UnixTime?
        let timeout: Double?
        var requestID: RequestID?
        let completion: Completion
    }

    private(set) var entries: [CallToken: Entry] = [:]
    private var tokensByRequest: [RequestID: CallToken] = [:]
    private var nextToken: UInt64 = 1

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Reserves a token before the call suspends, so a cancellation racing the registration finds it.
    mutating func makeToken() -> CallToken {
        defer { nextToken += 1 }
        return CallToken(rawValue: nextToken)
    }

    /// Registers a call. Its timeout starts only when it is `arm`ed (handed to a live session), so
    /// connecting and the key exchange, bounded by their own limits, do not eat into it.
    mutating func register(_ token: CallToken, method: String, timeout: Double?, completion: Completion) {
        precondition(entries[token] == nil, "a call token was registered twice")
        entries[token] = Entry(method: method, deadline: nil, timeout: timeout, requestID: nil, completion: completion)
    }

    /// Starts the call's timeout at `now` (once).
    mutating func arm(_ token: CallToken, now: UnixTime) {
        guard let entry = entries[token], entry.deadline == nil, let timeout = entry.timeout else { return }
        entries[token]?.deadline = now + timeout
    }

    /// Links the call to the session machine's request once it is queued.
    mutating func attach(_ token: CallToken, to request: RequestID) {
        guard entries[token] != nil else { return }
        entries[token]?.requestID = request
        tokensByRequest[request] = token
    }

    /// The call answered by `request`, removed; nil when it was cancelled or timed out before.
    mutating func complete(_ request: RequestID) -> Entry? {
        guard let token = tokensByRequest.removeValue(forKey: request) else { return nil }
        return entries.removeValue(forKey: token)
    }

    /// Removes a call (cancelled by its caller).
    mutating func remove(_ token: CallToken) -> Entry? {
        guard let entry = entries.removeValue(forKey: token) else { return nil }
        if let request = entry.requestID { tokensByRequest.removeValue(forKey: request) }
        return entry
    }

    /// Removes and returns every call whose deadline is at or before `now`, oldest token first.
    mutating func expire(now: UnixTime) -> [Entry] {
        let due = entries.filter { _, entry in entry.deadline.map { $0 <= now } ?? false }.keys.sorted()
        return due.compactMap { remove($0) }
    }

    /// The earliest deadline, for the timer.
    var nextDeadline: UnixTime? { entries.values.compactMap(\.deadline).min() }

    /// Requests the session machine knows and that still have a waiting caller.
    var requestsInFlight: [RequestID] { tokensByRequest.keys.sorted() }

    /// Removes everything (close, fatal failure).
    mutating func removeAll() -> [Entry] {
        let all = entries.keys.sorted().compactMap { entries[$0] }
        entries.removeAll()
        tokensByRequest.removeAll()
        return all
    }
}
