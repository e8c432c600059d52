import MTProto

/// Turns the alert service's failed looks into alerts: a store that cannot be read for the hold-off
/// is said once, and its return once. Before, a PostgreSQL server down for a minute, every account's
/// lease lost with it, was never said: the looks that make every other alert failed too. A value fed
/// each look's outcome, for tests. Nothing is remembered in the store (it is what is down), so each
/// process of a cluster says it for itself, with its host.
struct StoreOutageAlarm: Sendable {
    let holdOff: Double
    let host: String
    private var failingSince: UnixTime?
    private var said = false

    init(holdOff: Double, host: String) {
        self.holdOff = holdOff
        self.host = host
    }

    /// A look's outcome: nil when the store answered, else why not. `started`: when the failed look
    /// began (a look at a store that hangs fails only at its bound), so the hold-off and the
    /// outage's length count from there.
    mutating func observe(failure: String?, since started: UnixTime? = nil, at now: UnixTime) -> Alert? {
        guard let failure else {
            defer {
                failingSince = nil
                said = false
            }
            guard said, let since = failingSince else { return nil }
            return Alert(event: .storeRecovered, severity: .info, account: nil, at: ISOTime.string(now), host: host,
                         summary: "the store answers again, after \(ISOTime.remaining(now - since)) it could not be read", steps: [], codes: [])
        }
        let since = failingSince ?? min(started ?? now, now)
        failingSince = since
        guard !said, now - since >= holdOff else { return nil }
        said = true
        return Alert(event: .storeUnreachable, severity: .critical, account: nil, at: ISOTime.string(now), host: host,
                     summary: "the store cannot be read since \(ISOTime.string(since)) (\(Redaction.masked(failure)))",
                     steps: ["Check that the store is reachable: a PostgreSQL server running and reachable from this host, or a SQLite "
                                + "file not held locked by another program (`tgsm check` names one) and on a disk that answers.",
                             "The accounts' leases run out meanwhile, so no account is served; `tgsm run` takes them back by itself "
                                + "once the store answers (`tgsm_lease_expired_total` counts the outages)."],
                     codes: ["store_unreachable"])
    }
}
