import ArgumentParser
import Foundation
import OperatorHTTP

/// `tgsm sandbox`: the README's first command. Everything tgsm does, on this machine, in under a
/// minute: a test DC in-process, a store in a temporary folder, demo accounts logged in, workers
/// over sample jobs, and four faults injected on the way (a flood wait, a dropped connection, a
/// revoked session, a corrupted store), each shown handled, and the revoked account brought back
/// without a code (the future auth token its first login left). Nothing leaves the machine;
/// nothing needs setting up.
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run tgsm end to end against an in-process test DC, injecting faults and showing each handled.",
        discussion: """
            Starts a local test DC and a store in a temporary folder, logs the test DC's demo accounts in, runs workers over \
            sample jobs, and injects a flood wait, a dropped connection, a revoked session and a corrupted store; the revoked \
            account then logs in again without a code (the future auth token its first login left). The alerts `tgsm run \
            --alert-webhook` would send are shown as they happen (and posted with --alert-webhook). Ends with \
            `tgsm status`'s table and a summary; exit 0 when every fault was handled. The folder is deleted at the end. \
            Flood waits are a few seconds here so the run is short; Telegram's last from seconds to hours.
            """
    )

    @Flag(name: .customLong("keep"), help: "After the run, keep the test DC, the workers and the dashboard up until Ctrl-C.")
    var keep = false

    @Option(name: .customLong("flood-seconds"), help: "The length of the injected FLOOD_WAIT (seconds).")
    var floodSeconds = 3

    @Option(name: .customLong("folder"), help: ArgumentHelp(
        "Where to put the store and the test DC's files (default: a new temporary folder, deleted at the end).", valueName: "dir"))
    var folder: String?

    @Option(name: .customLong("alert-webhook"), help: ArgumentHelp(
        "Also post the alerts the run shows to this webhook (a Slack or Mattermost incoming webhook shows them as they are).", valueName: "url"))
    var alertWebhook: String?

    func validate() throws {
        if let alertWebhook {
            do { _ = try WebhookURL(alertWebhook) } catch { throw ValidationError(error.description) }
        }
        guard (1...60).contains(floodSeconds) else { throw ValidationError("--flood-seconds must be between 1 and 60") }
    }

    func run() async throws {
        // Before any metric exists: swift-metrics binds each metric to the factory when it is made.
        OperatorMetrics.bootstrap()
        let narrator = SandboxNarrator()
        let place = try SandboxFolder.make(folder)
        var outcome: SandboxOutcome?
        var failure: (any Error)?
        do {
            let webhook = try alertWebhook.map { text throws in try WebhookURL(text) }
            let sandbox = try await Sandbox.start(folder: place, floodSeconds: floodSeconds, narrator: narrator, alertWebhook: webhook)
            do {
                outcome = try await sandbox.runScenario()
                if keep, let outcome, outcome.succeeded {
                    await sandbox.keepRunning()
                }
            } catch {
                failure = error
            }
            await sandbox.shutdown()
        } catch {
            failure = error
        }
        if folder == nil { place.remove() }
        if let failure {
            throw CLIFailure(.failure, "the sandbox stopped: \(failure). This is a bug in tgsm or a problem of this machine "
                + "(free loopback ports, a writable temporary folder); please report it with the output above.")
        }
        guard let outcome, outcome.succeeded else {
            throw CLIFailure(.failure, "the sandbox finished, but not everything was handled (see NOT HANDLED / problem above); please report it with the output above.")
        }
    }
}

/// The sandbox's folder: a fresh temporary one (0700) unless the person named one.
struct SandboxFolder {
    let path: String
    let isTemporary: Bool

    var store: String { path + "/store" }
    var testDC: String { path + "/testdc" }

    static func make(_ requested: String?) throws(CLIFailure) -> SandboxFolder {
        let path: String
        if let requested {
            path = GlobalOptions.absolute(requested)
        } else {
            path = FileManager.default.temporaryDirectory.path + "/tgsm-sandbox-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CLIFailure(.failure, "cannot create the sandbox folder \(path): \(error.localizedDescription); pass --folder DIR with a writable place")
        }
        return SandboxFolder(path: path, isTemporary: requested == nil)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
