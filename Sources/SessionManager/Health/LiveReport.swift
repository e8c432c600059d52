import Foundation
import MTProto

/// What a running `tgsm run` sees of an account it serves, kept in the store so that `tgsm status`
/// and `tgsm check`, run in another terminal or on another host, say it too: before, they read only
/// the store and called an account fine while the process serving it reported its proxy refusing
/// it or no connection for an hour; only that process's `/health` and alerts knew.
///
/// A report is written only by the process holding the account's lease, and counts only while
/// that lease is live: a process that ended (or lost the account) leaves a report nobody shows.
public struct LiveReport: Sendable, Hashable {
    /// A reason the account is not ready, as `/health` gives it.
    public struct Reason: Sendable, Hashable, Codable {
        /// Stable, for scripts ("proxy_refused", "down", "marked_revoked").
        public var code: String
        /// What happened and what to do.
        public var text: String
        /// Whether it waits for a person rather than for the network.
        public var needsAPerson: Bool

        public init(code: String, text: String, needsAPerson: Bool) {
            self.code = code
            self.text = text
            self.needsAPerson = needsAPerson
        }
    }

    public var account: AccountID
    /// The process that saw it.
    public var holder: LeaseHolder
    public var ready: Bool
    /// The health monitor's state (healthy, degraded, down, rateLimited, terminal, unknown).
    public var health: String
    /// Why it is not ready; empty when ready.
    public var reasons: [Reason]
    /// Whether one of the reasons waits for a person rather than for the network.
    public var needsAPerson: Bool { reasons.contains(where: \.needsAPerson) }
    /// Since when the process has seen the account this way (ready, or not ready for these reasons).
    public var since: UnixTime
    /// When it was written.
    public var reportedAt: UnixTime

    public init(account: AccountID, holder: LeaseHolder, ready: Bool, health: String, reasons: [Reason], since: UnixTime, reportedAt: UnixTime) {
        self.account = account
        self.holder = holder
        self.ready = ready
        self.health = health
        self.reasons = reasons
        self.since = since
        self.reportedAt = reportedAt
    }

    /// Whether the report speaks for the account now: its writer still holds the account's lease.
    public func isCurrent(lease: Lease?, at now: UnixTime) -> Bool {
        guard let lease, lease.account == account, !lease.isExpired(at: now), lease.holder == holder else { return false }
        // Killed on this host: its lease reads held until it expires, but nobody serves the account.
        return !LeaseHolder.isDeadOnThisHost(holder)
    }

    /// The reasons as the store keeps them (a JSON array), and back.
    package static func encodedReasons(_ reasons: [Reason]) -> String {
        guard let data = try? JSONEncoder().encode(reasons) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    package static func decodedReasons(_ text: String) -> [Reason]? {
        try? JSONDecoder().decode([Reason].self, from: Data(text.utf8))
    }
}

/// Where running processes keep their `LiveReport`s: both stores.
public protocol LiveReportStore: Sendable {
    /// Keeps `report` as the account's, if its holder holds the account's lease (not released);
    /// returns whether it was kept. A process standing by for an account, or one whose lease was
    /// taken over, writes nothing.
    func recordLiveReport(_ report: LiveReport) async throws(SessionStoreError) -> Bool
    /// Every report kept, current or not (`LiveReport.isCurrent` tells).
    func liveReports() async throws(SessionStoreError) -> [LiveReport]
}
