import MTProto

/// A condition that may pass by itself, said when it has lasted the hold-off, once, and its end
/// once: a store that cannot be read, a queue whose claims fail. A value fed each look's outcome,
/// for tests. Nothing is remembered in the store (it may be what is down), so each process of a
/// cluster says it for itself, with its host.
package struct OutageAlarm: Sendable {
    /// What the alerts say about one kind of outage.
    struct Wording: Sendable {
        var down: Alert.Event
        var up: Alert.Event
        /// "the store cannot be read since T (why)".
        var downSummary: @Sendable (_ since: String, _ failure: String) -> String
        /// "the store answers again, after 1m05s it could not be read".
        var upSummary: @Sendable (_ lasted: String) -> String
        var steps: [String]
        var code: String
    }

    let holdOff: Double
    let host: String
    let wording: Wording
    private var failingSince: UnixTime?
    private var said = false

    init(holdOff: Double, host: String, wording: Wording) {
        self.holdOff = holdOff
        self.host = host
        self.wording = wording
    }

    /// A look's outcome: nil when all was well, else why not. `started`: when the failed look
    /// began (a look at a store that hangs fails only at its bound), so the hold-off and the
    /// outage's length count from there.
    package mutating func observe(failure: String?, since started: UnixTime? = nil, at now: UnixTime) -> Alert? {
        guard let failure else {
            defer {
                failingSince = nil
                said = false
            }
            guard said, let since = failingSince else { return nil }
            return Alert(event: wording.up, severity: .info, account: nil, at: ISOTime.string(now), host: host,
                         summary: wording.upSummary(ISOTime.remaining(now - since)), steps: [], codes: [])
        }
        let since = failingSince ?? min(started ?? now, now)
        failingSince = since
        guard !said, now - since >= holdOff else { return nil }
        said = true
        return Alert(event: wording.down, severity: .critical, account: nil, at: ISOTime.string(now), host: host,
                     summary: wording.downSummary(ISOTime.string(since), Redaction.masked(failure)), steps: wording.steps, codes: [wording.code])
    }
}

/// The alert service's failed looks at the store. Before, a PostgreSQL server down for a minute,
/// every account's lease lost with it, was never said: the looks that make every other alert
/// failed too.
enum StoreOutageAlarm {
    static let wording = OutageAlarm.Wording(
        down: .storeUnreachable, up: .storeRecovered,
        downSummary: { since, failure in "the store cannot be read since \(since) (\(failure))" },
        upSummary: { lasted in "the store answers again, after \(lasted) it could not be read" },
        steps: ["Check that the store is reachable: a PostgreSQL server running and reachable from this host, or a SQLite "
                    + "file not held locked by another program (`tgsm check` names one) and on a disk that answers.",
                "The accounts' leases run out meanwhile, so no account is served; `tgsm run` takes them back by itself "
                    + "once the store answers (`tgsm_lease_expired_total` counts the outages)."],
        code: "store_unreachable")

    static func make(holdOff: Double, host: String) -> OutageAlarm { OutageAlarm(holdOff: holdOff, host: host, wording: wording) }
}

/// The workers' claims failing (`WorkerPool.claimFailure`): no job runs while they do. A damaged
/// queue file fails every claim until a person salvages it, and before this it was only a log line.
package enum QueueFailureAlarm {
    static let wording = OutageAlarm.Wording(
        down: .queueFailing, up: .queueRecovered,
        downSummary: { since, failure in "the workers cannot claim jobs since \(since) (\(failure))" },
        upSummary: { lasted in "the workers claim jobs again, after \(lasted) they could not" },
        steps: ["No job runs meanwhile; the queued ones wait, none is lost.",
                "`tgsm check` says what is wrong with the queue. A damaged jobs.sqlite: stop `tgsm run`, then `tgsm jobs salvage`; "
                    + "on PostgreSQL, check that the server is up and the role may write the queue's tables."],
        code: "queue_failing")

    package static func make(holdOff: Double, host: String) -> OutageAlarm { OutageAlarm(holdOff: holdOff, host: host, wording: wording) }
}
