import Crypto
import Foundation
import Logging
import MTProto
import MTProtoClient
import Metrics

/// Posts alerts to the operator's webhook, in order, one at a time: a receiver that is down or
/// slow is retried with backoff, never blocks the accounts, and never makes tgsm fail. A receiver
/// down for longer than the first tries (a redeploy, an outage) still gets the alert once it is
/// back: it is tried every `maximumBackoff` for `giveUpAfter`, since the account that needs a
/// person is not reported again before the reminder (a day). The queue is bounded (the oldest
/// alert goes first when it is full); an alert the receiver refuses (a 4xx other than 429) or that
/// never gets through is logged, with what to do, and dropped.
///
/// With a secret, each request carries `X-Tgsm-Signature: sha256=HEX`, the HMAC-SHA256 of the body
/// under the secret, so the receiver can tell tgsm's alerts from anyone else's posts.
public actor AlertDelivery {
    public struct Policy: Sendable, Hashable {
        public var maximumQueued: Int
        /// Tries of one alert with a growing backoff; an alert not through after them is logged as
        /// undelivered and tried every `maximumBackoff` until `giveUpAfter`.
        public var maximumAttempts: Int
        /// Seconds before the first retry; doubled each time up to `maximumBackoff`.
        public var firstBackoff: Double
        public var maximumBackoff: Double
        /// Seconds one request may take, connecting included.
        public var timeout: Double
        /// Seconds after its first try an alert that never got through is dropped (at least
        /// `maximumAttempts` tries are made whatever this says).
        public var giveUpAfter: Double

        public init(maximumQueued: Int = 100, maximumAttempts: Int = 8, firstBackoff: Double = 1, maximumBackoff: Double = 60,
                    timeout: Double = 10, giveUpAfter: Double = 86_400) {
            self.giveUpAfter = giveUpAfter
            self.maximumQueued = maximumQueued
            self.maximumAttempts = maximumAttempts
            self.firstBackoff = firstBackoff
            self.maximumBackoff = maximumBackoff
            self.timeout = timeout
        }
    }

    /// What became of one alert.
    public enum Outcome: String, Sendable {
        case sent
        /// Refused by the receiver, or out of tries and time.
        case failed
        /// Pushed out of a full queue (by newer alerts, while this one waited or was being retried).
        case dropped
    }

    public let url: WebhookURL
    public let policy: Policy
    private let secret: SymmetricKey?
    private let transport: any WebhookTransport
    private let clock: any TelegramClock
    private let logger: Logger
    private var queue: [Alert] = []
    private var sender: Task<Void, Never>?
    private var waiters: [CheckedContinuation<Void, Never>] = []
    /// Told each delivered alert's `memoryKeys` (the store remembers them: `AlertMemory`).
    private let onDelivered: (@Sendable ([String], UnixTime) async -> Void)?

    public init(url: WebhookURL, secret: String? = nil, policy: Policy = Policy(), transport: any WebhookTransport = NIOWebhookTransport(),
                clock: any TelegramClock, logger: Logger, onDelivered: (@Sendable ([String], UnixTime) async -> Void)? = nil) {
        self.onDelivered = onDelivered
        self.url = url
        self.policy = policy
        self.secret = secret.flatMap { $0.isEmpty ? nil : SymmetricKey(data: Data($0.utf8)) }
        self.transport = transport
        self.clock = clock
        self.logger = logger
    }

    /// Queues the alerts; they are sent in the background.
    public func send(_ alerts: [Alert]) {
        guard !alerts.isEmpty else { return }
        queue.append(contentsOf: alerts)
        while queue.count > max(1, policy.maximumQueued) {
            let dropped = queue.removeFirst()
            record(dropped, .dropped)
            logger.warning("an alert was dropped: the webhook is behind and the queue is full", metadata: [
                "event": "\(dropped.event.rawValue)", "account": "\(dropped.account ?? "-")", "webhook": "\(url.redacted)",
            ])
        }
        if sender == nil {
            sender = Task { await self.drain() }
        }
    }

    /// Returns once every queued alert was sent or given up on, or after `seconds` of wall time
    /// (what a shutdown can spare, whatever the injected clock does); the rest stay queued.
    public func flush(within seconds: Double) async {
        guard sender != nil else { return }
        let timer = Task {
            try? await Task.sleep(for: .seconds(max(0, seconds)))
            self.releaseWaiters()
        }
        await withCheckedContinuation { waiters.append($0) }
        timer.cancel()
    }

    /// Alerts waiting to be sent.
    public var pending: Int { queue.count }

    /// Tries again to record what delivered alerts the store did not take (`AlertService.remembering`).
    public func rememberPending() async {
        await onDelivered?([], clock.now())
    }

    private func releaseWaiters() {
        let released = waiters
        waiters = []
        for waiter in released { waiter.resume() }
    }

    private func drain() async {
        while let alert = queue.first {
            let outcome = await deliver(alert)
            // `send` may have pushed this alert out of a full queue while it was being tried (and
            // counted it dropped then).
            if queue.first == alert { queue.removeFirst() }
            if outcome != .dropped { record(alert, outcome) }
            // Remembered only once the receiver took it: one it never got is said again by the next process.
            if outcome == .sent, !alert.memoryKeys.isEmpty { await onDelivered?(alert.memoryKeys, clock.now()) }
        }
        sender = nil
        releaseWaiters()
    }

    /// One try, now, outside the queue: the receiver's HTTP status, or why there was none
    /// (`tgsm alerts test`, which checks a webhook's set-up).
    public func tryOnce(_ alert: Alert) async -> Result<Int, any Error> {
        do {
            let (body, headers) = try request(for: alert)
            return .success(try await transport.post(body, headers: headers, to: url, timeout: policy.timeout))
        } catch {
            return .failure(error)
        }
    }

    /// The body and the headers of one alert's POST (signed when there is a secret).
    private func request(for alert: Alert) throws -> ([UInt8], [(String, String)]) {
        let body = Array(try JSONEncoder.alerts.encode(alert))
        var headers: [(String, String)] = []
        if let secret {
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: secret)
            headers.append(("X-Tgsm-Signature", "sha256=" + mac.map { String(format: "%02x", $0) }.joined()))
        }
        return (body, headers)
    }

    private func deliver(_ alert: Alert) async -> Outcome {
        let body: [UInt8]
        let headers: [(String, String)]
        do { (body, headers) = try request(for: alert) } catch {
            logger.error("an alert could not be encoded", metadata: ["event": "\(alert.event.rawValue)", "error": "\(error)"])
            return .failed
        }
        var backoff = policy.firstBackoff
        var lastProblem = ""
        let firstTry = clock.now()
        var attempt = 0
        while true {
            attempt += 1
            do {
                let status = try await transport.post(body, headers: headers, to: url, timeout: policy.timeout)
                switch status {
                case 200..<300:
                    if attempt > 1 { logger.info("an alert got through after \(attempt) tries", metadata: ["webhook": "\(url.redacted)"]) }
                    return .sent
                case 429, 500...:
                    lastProblem = "HTTP \(status)"
                default:
                    logger.error("the webhook refused an alert; it is dropped", metadata: [
                        "event": "\(alert.event.rawValue)", "account": "\(alert.account ?? "-")", "status": "\(status)", "webhook": "\(url.redacted)",
                        "fix": "check the URL given to --alert-webhook (a 404 is a wrong path, 401/403 a missing token) and what the receiver expects",
                    ])
                    return .failed
                }
            } catch {
                lastProblem = "\(error)"
            }
            let triedFor = clock.now().seconds - firstTry.seconds
            let keepTrying = attempt < policy.maximumAttempts || triedFor + backoff <= policy.giveUpAfter
            if attempt == policy.maximumAttempts {
                // Said once, when the quick tries are spent: the receiver is down, not slow.
                let later = "an alert could not be delivered yet; it is tried again every \(Int(policy.maximumBackoff)) s for up to \(Int(policy.giveUpAfter)) s"
                logger.error(keepTrying ? "\(later)" : "an alert could not be delivered; it is dropped", metadata: undelivered(alert, lastProblem, attempt))
            }
            guard keepTrying else {
                if attempt > policy.maximumAttempts {
                    logger.error("an alert could not be delivered in \(Int(triedFor)) s of tries; it is dropped", metadata: undelivered(alert, lastProblem, attempt))
                }
                return .failed
            }
            logger.debug("an alert will be tried again", metadata: ["attempt": "\(attempt)", "problem": "\(lastProblem)", "in": "\(backoff)"])
            do { try await clock.sleep(for: backoff) } catch { return .failed }
            // Newer alerts pushed it out of a full queue meanwhile: they go first.
            guard queue.first == alert else { return .dropped }
            backoff = min(policy.maximumBackoff, backoff * 2)
        }
    }

    private func undelivered(_ alert: Alert, _ problem: String, _ attempts: Int) -> Logger.Metadata {
        ["event": "\(alert.event.rawValue)", "account": "\(alert.account ?? "-")", "problem": "\(problem)",
         "attempts": "\(attempts)", "webhook": "\(url.redacted)",
         "fix": "check that the receiver runs and is reachable from this host; /health and `tgsm check` still show the account's state"]
    }

    private func record(_ alert: Alert, _ outcome: Outcome) {
        Counter(label: "tgsm_alerts_total", dimensions: [("event", alert.event.rawValue), ("outcome", outcome.rawValue)]).increment()
    }
}

extension JSONEncoder {
    /// Sorted keys: receivers and tests see the same bytes for the same alert.
    static var alerts: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
