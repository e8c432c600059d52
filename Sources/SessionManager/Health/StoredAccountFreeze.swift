import MTProto

/// What the store keeps of an account Telegram froze, so the freeze outlives the process that saw
/// it: `tgsm check` and `tgsm status` name it (with the deletion date and where to appeal), and a
/// restarted `tgsm run` reports the account frozen, not "ready again". The runtime asks
/// help.getAppConfig at start-up for an account kept frozen, and forgets the freeze once Telegram no
/// longer reports one (the appeal was accepted).
public struct StoredAccountFreeze: Sendable, Hashable {
    public var account: AccountID
    /// Telegram's freeze_since_date when known, else when tgsm first met a FROZEN_* answer.
    public var since: UnixTime
    /// freeze_until_date: the account is deleted then unless an appeal is accepted.
    public var deletedAfter: UnixTime?
    /// freeze_appeal_url.
    public var appealURL: String?
    /// When Telegram last said so (a FROZEN_* answer or help.getAppConfig).
    public var confirmedAt: UnixTime

    public init(account: AccountID, since: UnixTime, deletedAfter: UnixTime? = nil, appealURL: String? = nil, confirmedAt: UnixTime) {
        self.account = account
        self.since = since
        self.deletedAfter = deletedAfter
        self.appealURL = appealURL
        self.confirmedAt = confirmedAt
    }

    /// The freeze a health snapshot shows, nil when it shows none.
    public init?(_ snapshot: HealthSnapshot, at now: UnixTime) {
        guard let frozenSince = snapshot.frozenSince else { return nil }
        self.init(account: snapshot.account, since: snapshot.freeze?.since ?? frozenSince, deletedAfter: snapshot.freeze?.deletedAfter,
                  appealURL: snapshot.freeze?.appealURL, confirmedAt: now)
    }

    /// The details as help.getAppConfig gives them.
    public var details: AccountFreeze { AccountFreeze(since: since, deletedAfter: deletedAfter, appealURL: appealURL) }
}
