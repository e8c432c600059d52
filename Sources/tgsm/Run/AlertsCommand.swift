import ArgumentParser
import Foundation
import MTProto
import MTProtoClient
import OperatorHTTP
import SessionManager

/// `tgsm alerts …`: the webhook `tgsm run` sends its alerts to.
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "Check the webhook tgsm run sends its alerts to.",
        subcommands: [AlertsTestCommand.self]
    )
}

/// `tgsm alerts test`: one alert posted now, with `tgsm run`'s settings (flag, environment, config
/// file), and what the receiver answered: a set-up is checked before an account needs it.
struct AlertsTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Post one test alert to the webhook (as `tgsm run` would) and say what the receiver answered.",
        discussion: "Exit 0 when it answered 2xx; 1 when it refused or could not be reached (the reason is printed); 2 when no webhook is set."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup(title: "Alerts") var alerts: AlertOptions

    func run() async throws {
        guard let settings = try alerts.settings(global) else {
            throw CLIFailure(.usage, "no alert webhook is set: give --alert-webhook URL, TGSM_ALERT_WEBHOOK, or \"alerts\": {\"webhook\": …} in the config file")
        }
        let host = LeaseHolder.current().host
        let alert = Alert(event: .test, severity: .info, account: nil, at: Date().ISO8601Format(), host: host,
                          summary: "a test alert: this webhook gets tgsm's alerts", steps: [], codes: [])
        let delivery = settings.delivery(clock: WallClock(), logger: Runtimes.logger("tgsm.alerts", level: .critical))
        let terminal = Terminal.standard
        switch await delivery.tryOnce(alert) {
        case .success(let status) where (200..<300).contains(status):
            terminal.line("\(terminal.paint("sent", .green)): \(settings.url.redacted) answered HTTP \(status)"
                + (settings.secret == nil ? "" : " (signed: X-Tgsm-Signature)"))
        case .success(let status):
            throw CLIFailure(.failure, "\(settings.url.redacted) answered HTTP \(status): it refuses the alert. Check the URL (a 404 is a wrong path, "
                + "401/403 a missing or wrong token) and what the receiver expects.")
        case .failure(let error):
            throw CLIFailure(.failure, "the alert did not reach \(settings.url.redacted): \(error). Check that the receiver runs and that this "
                + "host reaches it (proxy, firewall; for https, its certificate: --alert-ca-file for a private CA).")
        }
    }
}
