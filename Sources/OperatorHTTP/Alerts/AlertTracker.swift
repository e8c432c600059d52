import Foundation
import MTProto
import SessionManager
import Workers

/// Turns what the operator views show (an `OperatorSnapshot`, looked at every few seconds) into
/// alerts: each thing a person should know, said once when it starts, again only if it grows or
/// after `repeatAfter`, and "recovered" when it ends. A value fed snapshots, returning alerts:
/// no clock or I/O of its own, so tests drive it through any sequence of states.
///
/// - An account that is not ready (`HealthReport.reasons`) is reported at once when a person must
///   act (logged out, marked, frozen, stopped), and after `holdOff` when it may pass by itself
///   (down, not connected yet, not running here after a store outage): a network blip, a store
///   stall or a start-up is not an alert. Each incident is said once: more reasons for it (a mark
///   after "needs a person", "down" after "not connected yet") are in `/health`, not a second
///   alert, until it is ready again; a condition that only waited and comes to need a person is
///   said again. After "ready again", the next condition is a new one, said as such.
/// - Service notifications that need a person (`NoticeAdvice`): each once.
/// - Flood waits of `longFloodWait` or more: each once (the method goes on working after it).
/// - Dead-lettered jobs: each once, with its account and error, from the queue's history
///   (`OperatorSnapshot.deadLetters`): at the first look, those of the history's window that no
///   earlier process said; without a history, when their number grows (not those already dead at
///   the first look).
///
/// Accounts whose lease another live process holds are left to that process's alerts, their dead
/// letters included (a cluster's processes do not all report the same job).
///
/// What earlier processes said (`remembered`, from `AlertMemory`) is not said again within the
/// reminder interval, and an account they reported that is ready now is said to be: a restart (a
/// deploy, a restart loop) neither repeats nor loses the story. Each alert's `memoryKeys` are what
/// to remember once the receiver took it.
public struct AlertTracker: Sendable {
    public struct Policy: Sendable, Hashable {
        /// Seconds a condition that may pass by itself must last before it is reported.
        public var holdOff: Double
        /// Seconds after which a condition still there is reported again; 0: never.
        public var repeatAfter: Double
        /// A flood wait this long or longer is reported.
        public var longFloodWait: Double
        /// More accounts than this starting (or ending) a condition in one look are one alert, not
        /// one each: a network outage takes every account down at once.
        public var groupAbove: Int

        public init(holdOff: Double = 60, repeatAfter: Double = 86_400, longFloodWait: Double = 3600, groupAbove: Int = 5) {
            self.holdOff = holdOff
            self.repeatAfter = repeatAfter
            self.longFloodWait = longFloodWait
            self.groupAbove = groupAbove
        }
    }

    private struct Condition: Sendable {
        var since: UnixTime
        var reportedCodes: Set<String> = []
        var reportedAt: UnixTime?
    }

    private struct NoticeKey: Hashable, Sendable {
        var account: AccountID
        var type: String
        var receivedAt: Double
    }

    private struct WaitKey: Hashable, Sendable {
        var account: AccountID
        var method: String
        var peer: String?
        var until: Double
    }

    public let policy: Policy
    public let host: String
    /// This process, whose leases are its own to report on.
    public let holder: LeaseHolder
    private var conditions: [AccountID: Condition] = [:]
    /// When each alert key was last said, by this process or an earlier one.
    private var remembered: [String: UnixTime]
    private var noticesSeen: Set<NoticeKey> = []
    private var waitsSeen: Set<WaitKey> = []
    private var deadJobs: Int?
    /// The accounts the last look reported on; nil before the first look.
    private var watched: Set<AccountID>?
    /// The dead letters of the last look's window (said or left to another process); nil before the
    /// first look that read them.
    private var deadLettersSeen: Set<DeadLetterKey>?

    private struct DeadLetterKey: Hashable, Sendable {
        var job: JobID
        var at: Double
    }

    public init(policy: Policy = Policy(), host: String, holder: LeaseHolder, remembered: [String: UnixTime] = [:]) {
        self.policy = policy
        self.host = host
        self.holder = holder
        self.remembered = remembered
    }

    /// Accounts this look reports on that the last one did not: taken over from another process
    /// (or added) since. What that process said of them went to the shared memory after this one
    /// read it at its start: `recall(_:)` it before `observe`, or its flood waits and incidents are
    /// said a second time, minutes after the first.
    public func newlyWatched(in snapshot: OperatorSnapshot) -> Set<AccountID> {
        guard let watched else { return [] }
        return Set(snapshot.accounts.filter { $0.enabled && !heldElsewhere($0, now: snapshot.now) }.map(\.id)).subtracting(watched)
    }

    /// Takes `said` (from the shared memory) as said, beside what this process said itself.
    public mutating func recall(_ said: [String: UnixTime]) {
        remembered.merge(said) { max($0, $1) }
    }

    /// The alerts this look at the accounts calls for.
    public mutating func observe(_ snapshot: OperatorSnapshot) -> [Alert] {
        let now = snapshot.now
        var alerts: [Alert] = []
        var accountAlerts: [Alert] = []
        var present: Set<AccountID> = []
        var noticesNow: Set<NoticeKey> = []
        var waitsNow: Set<WaitKey> = []
        for account in snapshot.accounts where account.enabled && !heldElsewhere(account, now: now) {
            present.insert(account.id)
            if let alert = accountAlert(account, liveExpected: snapshot.hasLiveHealth, now: now) { accountAlerts.append(alert) }
            for received in account.live?.serviceNotifications ?? [] where !received.isRepeat {
                let notice = received.notification
                let key = NoticeKey(account: account.id, type: notice.type, receivedAt: received.receivedAt.seconds)
                noticesNow.insert(key)
                let advice = NoticeAdvice(type: notice.type, popup: notice.popup)
                guard advice.needsAPerson, !noticesSeen.contains(key) else { continue }
                let name = Redaction.masked(account.id.rawValue)
                alerts.append(Alert(
                    event: .telegramNotice, severity: advice == .logOutRequested ? .critical : .warning, account: name,
                    at: ISOTime.string(received.receivedAt), host: host,
                    summary: "\(name): \(advice.headline) (\(notice.type)): \(Redaction.masked(notice.redactedMessage))",
                    steps: advice.steps, codes: [notice.type],
                    memoryKeys: remember("notice:\(account.id.rawValue):\(notice.type):\(Int64(received.receivedAt.seconds))", at: now)))
            }
            for wait in account.floodWaits where wait.until.seconds - wait.recordedAt.seconds >= policy.longFloodWait && wait.until > now {
                let key = WaitKey(account: account.id, method: wait.method, peer: wait.peer, until: wait.until.seconds)
                waitsNow.insert(key)
                // Said once, by this process or an earlier one.
                let memoryKey = "flood:\(account.id.rawValue):\(wait.method):\(wait.peer ?? ""):\(Int64(wait.until.seconds))"
                guard !waitsSeen.contains(key), remembered[memoryKey] == nil else { continue }
                let name = Redaction.masked(account.id.rawValue)
                let length = ISOTime.remaining(wait.until.seconds - wait.recordedAt.seconds)
                alerts.append(Alert(
                    event: .longFloodWait, severity: .warning, account: name, at: ISOTime.string(now), host: host,
                    // The peer may be a phone number (contacts.resolvePhone): masked with the rest.
                    summary: Redaction.masked("\(name): Telegram made \(wait.method)\(wait.peer.map { " to \($0)" } ?? "") wait \(length), until \(ISOTime.string(wait.until))"),
                    steps: [wait.peer == nil
                                ? "Nothing is needed: tgsm makes no such call before then (so the wait does not grow), and the account's other calls go on."
                                : "Nothing is needed: tgsm makes no such call in that chat before then (so the wait does not grow); the method goes on in "
                                    + "other chats, and a long wait in a second one holds it back in every chat.",
                            "`tgsm status` (a SQLite store) or the dashboard lists every wait; jobs that need the method wait for it."],
                    codes: [wait.kind.rawValue, wait.method], memoryKeys: remember(memoryKey, at: now)))
            }
        }
        alerts.insert(contentsOf: grouped(accountAlerts, at: now), at: 0)
        // Conditions of accounts no longer shown (removed, now held elsewhere) end without a word.
        conditions = conditions.filter { present.contains($0.key) }
        watched = present
        // Only what is still shown is remembered: bounded by what the snapshot holds.
        noticesSeen = noticesNow
        waitsSeen = waitsNow
        if let deadLetters = snapshot.deadLetters {
            let keys = Set(deadLetters.map { DeadLetterKey(job: $0.job, at: $0.at.seconds) })
            // At the first look, what no earlier process said: a job retried and dead again while
            // no process watched (a restart, the webhook set since) is still said once.
            let seen = deadLettersSeen
            let new = deadLetters.filter { entry in
                guard present.contains(entry.account) else { return false }
                if let seen { return !seen.contains(DeadLetterKey(job: entry.job, at: entry.at.seconds)) }
                return remembered[Self.deadLetterMemoryKey(entry)] == nil
            }
            if !new.isEmpty {
                var alert = deadLetterAlert(new, deadInAll: snapshot.jobs?[.dead], now: now)
                alert.memoryKeys = new.flatMap { remember(Self.deadLetterMemoryKey($0), at: now) }
                alerts.append(alert)
            }
            deadLettersSeen = keys
        } else if let dead = snapshot.jobs?[.dead] {
            if let before = deadJobs, dead > before {
                let added = dead - before
                alerts.append(Alert(
                    event: .jobsDeadLettered, severity: .warning, account: nil, at: ISOTime.string(now), host: host,
                    summary: "\(added) job\(added == 1 ? "" : "s") ended dead-lettered (\(dead) dead in all)",
                    steps: ["`tgsm jobs list --state dead` shows each one's last error, `tgsm jobs show ID` every attempt's; "
                                + "`tgsm jobs retry ID` runs one again once its cause is fixed."],
                    codes: [JobState.dead.rawValue]))
            }
            deadJobs = dead
        }
        return alerts
    }

    static func deadLetterMemoryKey(_ entry: JobHistoryEntry) -> String { "dead:\(entry.job.rawValue):\(Int64(entry.at.seconds * 1000))" }

    /// One alert for the dead letters one look found: how many, whose, and their errors (most
    /// frequent first), each masked and cut short.
    private func deadLetterAlert(_ jobs: [JobHistoryEntry], deadInAll: Int?, now: UnixTime) -> Alert {
        func counted(_ values: [String]) -> [(String, Int)] {
            var counts: [String: Int] = [:]
            for value in values { counts[value, default: 0] += 1 }
            return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        func listed(_ values: [(String, Int)]) -> String {
            values.prefix(5).map { $0.1 > 1 ? "\($0.0) ×\($0.1)" : $0.0 }.joined(separator: ", ") + (values.count > 5 ? ", …" : "")
        }
        let accounts = counted(jobs.map { Redaction.masked($0.account.rawValue) })
        let errors = counted(jobs.map { entry in
            let error = Redaction.masked(entry.error ?? "no error kept")
            return error.count > 120 ? String(error.prefix(119)) + "…" : error
        })
        let ids = jobs.prefix(10).map { "\($0.job.rawValue)" }.joined(separator: ", ") + (jobs.count > 10 ? ", …" : "")
        return Alert(
            event: .jobsDeadLettered, severity: .warning, account: accounts.count == 1 ? accounts.first?.0 : nil, at: ISOTime.string(now), host: host,
            // One account's jobs are "of bob", not "of bob ×2".
            summary: "\(jobs.count) job\(jobs.count == 1 ? "" : "s") of \(accounts.count == 1 ? (accounts.first?.0 ?? "") : listed(accounts)) ended dead-lettered"
                + (deadInAll.map { " (\($0) dead in all)" } ?? "") + ": \(listed(errors))",
            steps: ["`tgsm jobs list --state dead` shows each one's last error (jobs \(ids)), `tgsm jobs show ID` every attempt's; "
                    + "`tgsm jobs retry ID` runs one again once its cause is fixed."],
            codes: [JobState.dead.rawValue])
    }

    private mutating func accountAlert(_ account: OperatorSnapshot.Account, liveExpected: Bool, now: UnixTime) -> Alert? {
        // The queue's failure is said once for the process (`QueueFailureAlarm`), not once per account.
        let reasons = HealthReport.reasons(account, liveExpected: liveExpected).filter { !HealthReport.Reason.isTheQueues($0.code) }
        let name = Redaction.masked(account.id.rawValue)
        let recoveredKey = "recovered:\(account.id.rawValue)"
        guard !reasons.isEmpty else {
            let ended = conditions.removeValue(forKey: account.id)
            // Reported by this process, or by an earlier one after its last "ready again".
            let toldBefore = remembered.filter { $0.key.hasPrefix("account:\(account.id.rawValue):") }.map(\.value).max()
            let reported = ended?.reportedAt != nil || toldBefore.map { $0 > (remembered[recoveredKey] ?? UnixTime(seconds: -1)) } == true
            guard reported else { return nil }
            return Alert(event: .accountRecovered, severity: .info, account: name, at: ISOTime.string(now), host: host,
                         summary: "\(name) is ready again", steps: [], codes: [], memoryKeys: remember(recoveredKey, at: now))
        }
        let codes = Set(reasons.map(\.code))
        let prefix = "account:\(account.id.rawValue):"
        let key = prefix + codes.sorted().joined(separator: ",")
        var condition = conditions[account.id] ?? Condition(since: now)
        // Said by an earlier process since the account was last said to be ready, within the
        // reminder interval: taken as said here, with the reasons it named.
        if condition.reportedAt == nil {
            let readySince = remembered[recoveredKey]?.seconds ?? -.infinity
            let told = remembered.filter { entry in
                entry.key.hasPrefix(prefix) && !entry.key.dropFirst(prefix.count).contains(":") && entry.value.seconds > readySince
                    && (policy.repeatAfter <= 0 || now.seconds - entry.value.seconds < policy.repeatAfter)
            }
            if let latest = told.values.max() {
                condition.reportedCodes = Set(told.keys.flatMap { $0.dropFirst(prefix.count).split(separator: ",").map(String.init) })
                condition.reportedAt = latest
            }
        }
        let needsAPerson = reasons.contains(where: \.needsAPerson)
        let due = needsAPerson || now.seconds - condition.since.seconds >= policy.holdOff
        // Said once per incident: "needs a person" stays said (a reason added to it, a mark after
        // the failed login that caused it, is detail, not a second page), and so does "cannot
        // work" (not connected yet, then down: one outage), across restarts too. A condition that
        // only waited and comes to need a person is said again.
        let grew = needsAPerson ? !condition.reportedCodes.contains(where: HealthReport.Reason.needsAPerson)
            : condition.reportedCodes.isEmpty
        let reminder = policy.repeatAfter > 0 && condition.reportedAt.map { now.seconds - $0.seconds >= policy.repeatAfter } == true
        guard due, grew || reminder else {
            conditions[account.id] = condition
            return nil
        }
        condition.reportedCodes = codes
        condition.reportedAt = now
        conditions[account.id] = condition
        let lead = needsAPerson ? "\(name) needs a person" : "\(name) cannot work"
        return Alert(event: .accountNeedsAttention, severity: needsAPerson ? .critical : .warning, account: name, at: ISOTime.string(now),
                     host: host, summary: lead + (reminder && !grew ? " (still, since \(ISOTime.string(condition.since)))" : ""),
                     steps: reasons.map { Redaction.masked($0.text) }, codes: reasons.map(\.code), memoryKeys: remember(key, at: now))
    }

    /// Each event's account alerts as they are, or, when more than `groupAbove` accounts share
    /// one, a single alert naming them (the first account's reasons standing for the rest).
    private func grouped(_ alerts: [Alert], at now: UnixTime) -> [Alert] {
        var result: [Alert] = []
        for event in [Alert.Event.accountNeedsAttention, .accountRecovered] {
            let these = alerts.filter { $0.event == event }
            guard these.count > max(1, policy.groupAbove), let first = these.first else {
                result += these
                continue
            }
            let names = these.compactMap(\.account)
            let shown = names.prefix(10).joined(separator: ", ") + (names.count > 10 ? " and \(names.count - 10) more" : "")
            let severity = these.map(\.severity).max() ?? first.severity
            let summary = switch event {
            case .accountRecovered: "\(these.count) accounts are ready again: \(shown)"
            default: "\(these.count) accounts \(severity == .critical ? "need a person" : "cannot work"): \(shown)"
            }
            var codes: [String] = []
            for code in these.flatMap(\.codes) where !codes.contains(code) { codes.append(code) }
            let steps = first.steps.isEmpty ? [] : ["\(first.account ?? "the first"), for one:"] + first.steps
            result.append(Alert(event: event, severity: severity, account: nil, at: ISOTime.string(now), host: host, summary: summary,
                                steps: steps, codes: codes, memoryKeys: these.flatMap(\.memoryKeys)))
        }
        return result
    }

    /// Notes `key` as said now, for this process's later looks; returns it as the alert's memory keys.
    private mutating func remember(_ key: String, at now: UnixTime) -> [String] {
        remembered[key] = now
        return [key]
    }

    private func heldElsewhere(_ account: OperatorSnapshot.Account, now: UnixTime) -> Bool {
        guard account.live == nil, let lease = account.lease else { return false }
        return lease.holder != holder && !lease.isExpired(at: now)
    }
}
