import ArgumentParser
import Foundation
import Logging
import MTProto
import MTProtoClient
import OperatorHTTP
import SessionManager
import Workers

/// `tgsm run`'s alerts: a webhook told when an account needs a person (docs/RUNNING_GUIDE.md,
/// "Alerts"). Each setting comes from its flag, else the environment, else the config file's
/// `"alerts"`; the URL and the secret are better kept out of flags, which `ps` shows.
struct AlertOptions: ParsableArguments {
    @Option(name: .customLong("alert-webhook"), help: ArgumentHelp(
        "Where to POST alerts as JSON (default: $TGSM_ALERT_WEBHOOK, then the config file's alerts.webhook).",
        discussion: "A Slack or Mattermost incoming webhook shows each alert's text as it is. The URL is visible in `ps`: prefer the environment or the config file.",
        valueName: "url"))
    var webhook: String?

    @Option(name: .customLong("alert-hold-off"), help: ArgumentHelp(
        "Seconds a condition that may pass by itself (down, not connected yet) lasts before it is an alert (default 60).", valueName: "seconds"))
    var holdOff: Double?

    @Option(name: .customLong("alert-repeat"), help: ArgumentHelp(
        "Seconds after which an account still needing a person is reported again; 0 never (default 86400).", valueName: "seconds"))
    var repeatAfter: Double?

    @Option(name: .customLong("alert-interval"), help: ArgumentHelp("Seconds between looks at the accounts for alerts.", valueName: "seconds"))
    var interval: Double = 10

    @Option(name: .customLong("alert-flood-wait"), help: ArgumentHelp(
        "A flood wait this many seconds long or longer is reported (default 3600).", valueName: "seconds"))
    var longFloodWait: Double?

    @Option(name: .customLong("alert-ca-file"), help: ArgumentHelp(
        "A PEM file of the certificate authority of an https receiver behind a private CA (default: $TGSM_ALERT_CA_FILE, then alerts.caFile).",
        valueName: "path"))
    var caFile: String?

    struct Settings {
        var url: WebhookURL
        var secret: String?
        /// Trusted besides the system's roots.
        var caFiles: [String]
        var policy: AlertTracker.Policy
        var interval: Double

        func tracker() -> AlertTracker {
            let holder = LeaseHolder.current()
            return AlertTracker(policy: policy, host: holder.host, holder: holder)
        }

        /// With `memory`, each alert the receiver took is remembered there.
        func delivery(clock: any TelegramClock, logger: Logger, memory: (any AlertMemory)? = nil) -> AlertDelivery {
            AlertDelivery(url: url, secret: secret, transport: NIOWebhookTransport(extraTrustRoots: caFiles), clock: clock, logger: logger,
                          onDelivered: AlertService.remembering(in: memory, logger: logger))
        }

        /// One look and its alerts, sent before returning (at most `seconds`): for a `tgsm run`
        /// that ends before its services start, because no account can run.
        func alertOnce(store: any OperatorReadableStore, memory: (any AlertMemory)?, queue: (any JobQueue)?, accounts: [AccountID],
                       clock: any TelegramClock, logger: Logger, seconds: Double = 10) async {
            let delivery = delivery(clock: clock, logger: logger, memory: memory)
            do {
                let now = clock.now()
                // What an earlier start said is not said again (a service manager restarting a
                // process that cannot start would otherwise send one alert per start).
                let remembered = (try? await memory?.recentlySent(now: now)) ?? [:]
                let holder = LeaseHolder.current()
                var tracker = AlertTracker(policy: policy, host: holder.host, holder: holder, remembered: remembered)
                let snapshot = try await OperatorSnapshot.gather(store: store, queue: queue, enabled: accounts, live: nil, now: now, historyLimit: 0)
                await delivery.send(tracker.observe(snapshot))
                await delivery.flush(within: seconds)
            } catch {
                logger.warning("the accounts could not be read for alerts", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Nil when no webhook is set anywhere: no alerts.
    func settings(_ global: GlobalOptions) throws(CLIFailure) -> Settings? {
        let loaded = try global.configFile()
        let file = loaded.value?.alerts
        let environment = global.environment
        let given = webhook ?? environment["TGSM_ALERT_WEBHOOK"] ?? file?.webhook
        guard let given, !given.isEmpty else { return nil }
        let url: WebhookURL
        do { url = try WebhookURL(given) } catch { throw CLIFailure(.usage, error.description) }
        var policy = AlertTracker.Policy()
        policy.holdOff = try Self.seconds(holdOff ?? file?.holdOff, "--alert-hold-off", default: policy.holdOff)
        policy.repeatAfter = try Self.seconds(repeatAfter ?? file?.repeatAfter, "--alert-repeat", default: policy.repeatAfter)
        policy.longFloodWait = try Self.seconds(longFloodWait ?? file?.longFloodWait, "--alert-flood-wait", default: policy.longFloodWait)
        guard interval >= 0.1, interval <= 3600 else { throw CLIFailure(.usage, "--alert-interval must be 0.1 to 3600 seconds") }
        let secret = environment["TGSM_ALERT_SECRET"] ?? file?.secret
        var caFiles: [String] = []
        if let path = caFile ?? environment["TGSM_ALERT_CA_FILE"] {
            caFiles.append(GlobalOptions.absolute(path))
        } else if let path = file?.caFile {
            caFiles.append(path.hasPrefix("/") ? path : (loaded.directory as NSString).appendingPathComponent(path))
        }
        for path in caFiles where !FileManager.default.isReadableFile(atPath: path) {
            throw CLIFailure(.usage, "the alert webhook's CA file \(path) cannot be read")
        }
        return Settings(url: url, secret: secret?.isEmpty == false ? secret : nil, caFiles: caFiles, policy: policy, interval: interval)
    }

    private static func seconds(_ value: Double?, _ name: String, default fallback: Double) throws(CLIFailure) -> Double {
        guard let value else { return fallback }
        guard value >= 0, value.isFinite, value < 1e9 else { throw CLIFailure(.usage, "\(name) must be a number of seconds ≥ 0") }
        return value
    }
}
