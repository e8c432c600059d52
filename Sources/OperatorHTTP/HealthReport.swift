import Foundation
import MTProto
import SessionManager
import Workers

/// `/health`: whether each enabled account can work now, and why not. Ready means: the store has
/// its session logged in, no terminal mark (revoked, duplicated...), and, in a process that runs
/// it, a live connection that has answered (healthy, degraded or rate-limited; a flood wait holds
/// back one method, not the account, so it is counted but does not make the account unready).
public struct HealthReport: Sendable, Codable, Equatable {
    public struct AccountReadiness: Sendable, Codable, Equatable {
        /// The account id, phone-like ids masked.
        public var account: String
        public var ready: Bool
        /// active, unauthorized, revoked, duplicated, deactivated (the store's mark).
        public var sessionState: String
        /// The mark's error code (TGSM-AUTH-...), when marked.
        public var code: String?
        /// The live monitor's state (healthy, degraded, down, rateLimited, terminal, unknown): this
        /// process's, or the one `servedBy` reports; nil when no live process runs the account.
        public var health: String?
        /// The other process that serves the account ("pid N on HOST") and whose report `health`
        /// is; nil when this process runs it (or nobody does).
        public var servedBy: String? = nil
        public var loggedIn: Bool
        public var lastSuccess: String?
        public var lastFailureCode: String?
        public var activeFloodWaits: Int
        /// Why it is not ready, each with what to do; empty when ready.
        public var reasons: [String]
        /// A stable code for each reason, in the same order (`Reason`), for alerting rules.
        public var reasonCodes: [String]
        /// The service notifications Telegram sent the account while this process ran it, oldest
        /// first (login-code-like digits masked); a person should read them.
        public var serviceNotifications: [Notice]
    }

    /// An updateServiceNotification as `/health` shows it.
    public struct Notice: Sendable, Codable, Equatable {
        public var type: String
        public var message: String
        public var popup: Bool
        public var receivedAt: String
        /// Telegram asks this session to log out (AUTH_KEY_DROP_...): look at the account's devices.
        public var asksToLogOut: Bool

        public init(type: String, message: String, popup: Bool, receivedAt: String, asksToLogOut: Bool) {
            self.type = type
            self.message = message
            self.popup = popup
            self.receivedAt = receivedAt
            self.asksToLogOut = asksToLogOut
        }
    }

    public var ready: Bool
    public var checkedAt: String
    public var accounts: [AccountReadiness]
    /// Why the whole process is not ready (no enabled account), empty otherwise.
    public var reasons: [String]

    /// The report when the store could not be read in time (a PostgreSQL server down, a file held
    /// locked): not ready, saying why, with nothing claimed about the accounts.
    public init(storeUnreachable reason: String, at now: UnixTime) {
        ready = false
        checkedAt = ISOTime.string(now)
        accounts = []
        reasons = ["the store could not be read (\(reason)): nothing here can be judged until it answers; the run takes the accounts "
            + "back by itself once it does (tgsm_lease_expired_total counts the outages)"]
    }

    public init(_ snapshot: OperatorSnapshot) {
        accounts = snapshot.accounts.filter(\.enabled).map { Self.readiness($0, liveExpected: snapshot.hasLiveHealth, now: snapshot.now) }
        reasons = accounts.isEmpty ? ["no account is enabled: import or log in an account, or name one to run"] : []
        ready = !accounts.isEmpty && accounts.allSatisfy(\.ready)
        checkedAt = ISOTime.string(snapshot.now)
    }

    /// Why an account is not ready: `code` is stable (what alerting rules and the alert tracker
    /// key on), `text` says what happened and what to do.
    public struct Reason: Sendable, Hashable {
        public var code: String
        public var text: String

        /// The store has no session for the account.
        public static let noSession = "no_session"
        /// The running session's state could not be saved to the store.
        public static let sessionNotSaved = "session_not_saved"
        /// A session, logged in on no DC.
        public static let notLoggedIn = "not_logged_in"
        /// Marked by a terminal error; the code is this prefix and the mark's state ("marked_revoked").
        public static let markedPrefix = "marked_"
        public static let frozen = "frozen"
        public static let notConnected = "not_connected"
        /// The account's proxy refused this client (wrong credentials or secret): a person fixes the link.
        public static let proxyRefused = "proxy_refused"
        public static let down = "down"
        /// A terminal error stopped it in this process (no mark in the store).
        public static let stopped = "stopped"
        public static let notRunning = "not_running"
        /// This process's workers cannot claim jobs because the queue's file is damaged: a person salvages it.
        public static let queueDamaged = "queue_damaged"
        /// This process's workers cannot claim jobs because the queue fails otherwise (a server down, a
        /// disk that stalls or is full): they go on as soon as a claim works, with no restart.
        public static let queueUnavailable = "queue_unavailable"

        /// Whether a person must act (log in, appeal, look at the account), rather than wait for the
        /// network or the store: not connected yet, down, and not running here (a lease a store
        /// outage cost, taken back by itself once the store answers) may pass by themselves.
        public var needsAPerson: Bool { Self.needsAPerson(code) }

        public static func needsAPerson(_ code: String) -> Bool { ![notConnected, down, notRunning, queueUnavailable].contains(code) }

        /// Whether it is the process's queue, not the account: the queue's own alert says it once
        /// for the process (`queue_failing`), not once per account.
        public static func isTheQueues(_ code: String) -> Bool { [queueDamaged, queueUnavailable].contains(code) }

        /// Whether the store alone says it (no session, not logged in, a mark, a freeze): `tgsm status`
        /// and `tgsm check` say those from the store, and from a running process's report only the rest.
        public static func isKnownToTheStore(_ code: String) -> Bool {
            [noSession, notLoggedIn, frozen].contains(code) || code.hasPrefix(markedPrefix)
        }
    }

    static func readiness(_ account: OperatorSnapshot.Account, liveExpected: Bool, now: UnixTime? = nil) -> AccountReadiness {
        let reasons = Self.reasons(account, liveExpected: liveExpected, now: now)
        // A standby of a cluster: the holder's report says how the account does where it runs.
        let elsewhere = account.live == nil ? account.report : nil
        return AccountReadiness(
            account: Redaction.masked(account.id.rawValue), ready: reasons.isEmpty, sessionState: account.sessionState.rawValue,
            code: account.mark?.isTerminal == true ? account.mark?.code : nil, health: account.live?.state.rawValue ?? elsewhere?.health,
            servedBy: elsewhere.map { "\($0.holder)" },
            loggedIn: account.isLoggedIn, lastSuccess: account.live?.lastSuccess.map(ISOTime.string),
            lastFailureCode: account.live?.lastFailureCode, activeFloodWaits: account.floodWaits.count,
            reasons: reasons.map { Redaction.masked($0.text) }, reasonCodes: reasons.map(\.code),
            serviceNotifications: (account.live?.serviceNotifications ?? []).map { received in
                Notice(type: received.notification.type, message: Redaction.masked(received.notification.redactedMessage),
                       popup: received.notification.popup, receivedAt: ISOTime.string(received.receivedAt),
                       asksToLogOut: received.notification.asksToDropTheSession)
            })
    }

    /// Why the account is not ready, unmasked (callers mask what they show).
    /// `now`: with it, an account this process does not run while another live process holds its
    /// lease (a standby of a cluster) is that process's to be ready for, not a reason here.
    public static func reasons(_ account: OperatorSnapshot.Account, liveExpected: Bool, now: UnixTime? = nil) -> [Reason] {
        var reasons: [Reason] = []
        func add(_ code: String, _ text: String) { reasons.append(Reason(code: code, text: text)) }
        if account.summary == nil {
            add(Reason.noSession, "the store has no session for this account: import one (`tgsm session import`) or log in (`tgsm auth`)")
        } else if !account.isLoggedIn, account.mark?.isTerminal != true {
            // A mark (below) says the same with its cause and steps.
            add(Reason.notLoggedIn, "the session is not logged in on any DC: log in (`tgsm auth`)")
        }
        if let mark = account.mark, mark.isTerminal {
            add(Reason.markedPrefix + mark.state.rawValue, "marked \(mark.state.rawValue) (\(mark.code), \(mark.cause)) since \(ISOTime.string(mark.since)): "
                + mark.recoverySteps(account: account.id).joined(separator: " "))
        }
        if let since = account.frozenSince {
            var reason = "Telegram froze this account (FROZEN_METHOD_INVALID or FROZEN_PARTICIPANT_MISSING) since \(ISOTime.string(since)): it is read-only, and calls "
                + "that write fail until an appeal is accepted"
            if let freeze = account.freezeDetails, freeze.deletedAfter != nil || freeze.appealURL != nil {
                if let deleted = freeze.deletedAfter { reason += "; Telegram deletes it on \(ISOTime.string(deleted)) unless an appeal is accepted" }
                if let url = freeze.appealURL { reason += "; appeal at \(url)" }
            } else {
                reason += "; help.getAppConfig gives freeze_appeal_url and the deletion date"
            }
            add(Reason.frozen, reason)
        }
        if let live = account.live, let since = live.sessionNotSavedSince {
            add(Reason.sessionNotSaved, "the session could not be saved to the store since \(ISOTime.string(since))"
                + (live.sessionSaveError.map { " (\($0))" } ?? "") + ": calls go on, but a restart would lose what changed since "
                + "(keys, salts). Fix the store: free disk space, or restart with the key a re-key gave it (`tgsm check` says what is wrong)")
        }
        if let failure = account.claimFailure, account.mark?.isTerminal != true {
            // The session may be fine; its jobs still wait, and a person looking at the account should hear why.
            add(failure.needsAPerson ? Reason.queueDamaged : Reason.queueUnavailable,
                "its jobs do not run: this process's workers cannot claim jobs from the queue since \(ISOTime.string(failure.since)) (\(failure.error))"
                    + (failure.needsAPerson ? "" : "; they try again every poll interval and go on as soon as a claim works (the error says what the queue needs)"))
        }
        if liveExpected {
            if let live = account.live, live.lastFailureCode == SessionManagerError.proxyRefusedCode, [.degraded, .down].contains(live.state) {
                // Not a network blip that passes by itself: nothing gets through until the link is fixed.
                add(Reason.proxyRefused, (live.lastFailureSummary ?? "the account's proxy refused this client") + ": correct its link with `tgsm session proxy --account \(account.id.rawValue) --set -` "
                    + "(the link on stdin) or connect directly with `--clear`; a running `tgsm run` connects the new way within a lease renewal, "
                    + "and jobs wait for it without spending attempts")
            } else if let live = account.live {
                switch live.state {
                case .degraded where !live.hasSucceededOnThisRoute && live.consecutiveFailures > 0:
                    // Failing since the start, or since its proxy changed (the DC or the proxy
                    // unreachable from the first try): not ready yet, though too few failures to call it down.
                    let since = live.routeChangedAt.map { "since its proxy changed at \(ISOTime.string($0))" } ?? "since the start"
                    add(Reason.notConnected, "not connected yet: no call has succeeded \(since), \(live.consecutiveFailures) failed"
                        + (live.lastFailureSummary.map { " (last: \($0))" } ?? "") + "; check connectivity to Telegram and the account's proxy")
                case .healthy, .degraded, .rateLimited:
                    break
                case .unknown:
                    add(Reason.notConnected, "not connected yet: no call has succeeded since the start")
                case .down:
                    add(Reason.down, "down: \(live.consecutiveFailures) network failures in a row"
                        + (live.lastFailureCode.map { " (last \($0)\(live.lastFailureSummary.map { ": \($0)" } ?? ""))" } ?? "")
                        + "; check connectivity to Telegram and the account's proxy (`tgsm session proxy`)")
                case .terminal:
                    if account.mark?.isTerminal != true {
                        // The mark is gone (a person logged it in again, `tgsm auth`), but this
                        // process does not take a stopped account up again.
                        add(Reason.stopped, "a terminal error" + (live.lastFailureCode.map { " (\($0))" } ?? "")
                            + " stopped the account in this process, and the store holds no mark for it now (logged in again with `tgsm auth`?): "
                            + "`tgsm run` takes it up again within seconds (`tgsm check` says whether it is usable)")
                    }
                }
            } else if let now, let lease = account.lease, lease.expiresAt > now {
                // Standing by: the process holding the lease serves it, and its report says how that
                // goes. Before, a standby's /health and tgsm_account_ready said ready while the
                // holder reported its proxy refusing the account: a scraper of any other process
                // of the cluster was told all was well.
                if let report = account.report, !report.ready {
                    for reason in report.reasons where !Reason.isKnownToTheStore(reason.code) {
                        add(reason.code, "in \(report.holder), which serves it: \(reason.text)")
                    }
                }
            } else if reasons.isEmpty {
                // Not when a reason above already says why nothing runs it (a login, a mark): one
                // cause, said once.
                add(Reason.notRunning, "not running in this process: its workers did not start, or stopped (a lease another process "
                    + "took, or one the store did not let be renewed: `tgsm run` takes that back by itself once the store answers); "
                    + "see the log (and `tgsm check` on a SQLite store)")
            }
        }
        return reasons
    }
}

/// ISO 8601 in UTC, whole seconds: what every operator view prints.
package enum ISOTime {
    package static func string(_ time: UnixTime) -> String {
        Date(timeIntervalSince1970: time.seconds.rounded(.down)).ISO8601Format()
    }

    /// "1h02m03s", "45s"; never negative.
    package static func remaining(_ seconds: Double) -> String {
        let total = Int(max(0, seconds).rounded(.up))
        let hours = total / 3600, minutes = total % 3600 / 60, secs = total % 60
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if hours > 0 { return "\(hours)h\(two(minutes))m\(two(secs))s" }
        if minutes > 0 { return "\(minutes)m\(two(secs))s" }
        return "\(secs)s"
    }
}
