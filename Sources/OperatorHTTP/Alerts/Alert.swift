import Foundation

/// One message to the operator's webhook: something a person should know now, said once, with
/// what to do. Phone-like account names and login-code-like digits are masked, as everywhere an
/// operator reads.
///
/// The JSON carries `text`, one line for a person, so Slack and Mattermost incoming webhooks show
/// it as it is; the other fields are for machines (routing on `event` and `severity`).
public struct Alert: Sendable, Codable, Equatable {
    public enum Event: String, Sendable, Codable, CaseIterable {
        /// An account cannot work and has not for the hold-off: the reasons say why and what to do.
        case accountNeedsAttention = "account_needs_attention"
        /// An account that was reported is ready again.
        case accountRecovered = "account_recovered"
        /// Telegram asked the session to log out, announced a login it has not confirmed, or
        /// sent a popup: a person should read it.
        case telegramNotice = "telegram_notice"
        /// Telegram made the account wait long for a method (FLOOD_WAIT and the like).
        case longFloodWait = "long_flood_wait"
        /// Jobs ended in the dead-letter state since the last look.
        case jobsDeadLettered = "jobs_dead_lettered"
        /// The store (a PostgreSQL server, a SQLite file) could not be read for the hold-off: nothing
        /// about the accounts can be judged, and their leases run out. Said by each process that sees it.
        case storeUnreachable = "store_unreachable"
        /// The store that was reported unreachable answers again.
        case storeRecovered = "store_recovered"
        /// The workers' claims have failed for the hold-off (a damaged queue file, a queue database
        /// that refuses writes): no job runs. Said by each process that sees it.
        case queueFailing = "queue_failing"
        /// The workers that were reported unable to claim claim again.
        case queueRecovered = "queue_recovered"
        /// Sent by hand (`tgsm alerts test`) to check the webhook's set-up.
        case test
    }

    public enum Severity: String, Sendable, Codable, Comparable {
        case info
        case warning
        /// A person must act before the account works again.
        case critical

        private var rank: Int {
            switch self {
            case .info: 0
            case .warning: 1
            case .critical: 2
            }
        }

        public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rank < rhs.rank }
    }

    public var source = "tgsm"
    public var event: Event
    public var severity: Severity
    /// The account, masked when it looks like a phone number; nil for the whole process (jobs).
    public var account: String?
    /// When it was noticed (ISO 8601, UTC).
    public var at: String
    /// The host that noticed it (a cluster runs one process per host).
    public var host: String
    /// What happened, one sentence.
    public var summary: String
    /// What to do, in order.
    public var steps: [String]
    /// Stable codes of what was noticed (`HealthReport.Reason` codes, a notice's type, a method).
    public var codes: [String]
    /// The whole message in one line, for chat webhooks.
    public var text: String
    /// What the alert is about, stable across looks and processes ("account:alice:marked_revoked";
    /// a group's: each member's): remembered (`AlertMemory`) once the receiver took it, so no later
    /// process says it again. Not sent: it names accounts unmasked.
    public var memoryKeys: [String] = []

    private enum CodingKeys: String, CodingKey {
        case source, event, severity, account, at, host, summary, steps, codes, text
    }

    public init(event: Event, severity: Severity, account: String?, at: String, host: String, summary: String, steps: [String],
                codes: [String], memoryKeys: [String] = []) {
        self.memoryKeys = memoryKeys
        self.event = event
        self.severity = severity
        self.account = account
        self.at = at
        self.host = host
        self.summary = summary
        self.steps = steps
        self.codes = codes
        let icon = switch severity {
        case .critical: "[critical]"
        case .warning: "[warning]"
        case .info: "[ok]"
        }
        text = "\(icon) tgsm on \(host): \(summary)" + (steps.isEmpty ? "" : " — " + Self.sentences(steps))
    }

    /// The steps as one paragraph: each ends with a full stop before the next.
    static func sentences(_ steps: [String]) -> String {
        steps.map { step in
            let trimmed = step.trimmingCharacters(in: .whitespaces)
            return trimmed.hasSuffix(".") || trimmed.hasSuffix("!") || trimmed.hasSuffix("?") ? trimmed : trimmed + "."
        }.joined(separator: " ")
    }
}
