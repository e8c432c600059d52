import Foundation
import OffThePool
import OperatorHTTP
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import WebhookTestSupport

/// `tgsm sandbox`, the README's first command, run as a person runs it: the built binary, no
/// setup, output to a pipe.
@Suite(.timeLimit(.minutes(3))) struct SandboxCLITests {
    @Test func theSandboxShowsEveryFaultHandledAndEndsWithTheStatusTable() async throws {
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var cli = base
        // Its temporary folder goes inside ours, so we can see it is removed.
        cli.environment["TMPDIR"] = root
        // The alerts it shows also go to a webhook, as `tgsm run --alert-webhook` sends them.
        let receiver = WebhookReceiver()
        let port = await receiver.start()
        let result = try await cli.run(["sandbox", "--alert-webhook", "http://127.0.0.1:\(port)/hook"], withStore: false)
        await receiver.stop()
        let out = result.stdout
        #expect(!result.crashed)
        #expect(result.status == 0, "stdout:\n\(out)\nstderr:\n\(result.stderr)")

        for fault in ["flood wait", "dropped connection", "revoked session", "corrupted store", "store without backups", "damaged job queue", "Telegram's notice"] {
            #expect(out.contains("handled (\(fault)):"), "no handled line for \(fault):\n\(out)")
        }
        #expect(!out.contains("NOT HANDLED") && !out.contains("problem:"), "\(out)")
        #expect(out.contains("faults: 7 injected, 7 handled"))

        // Each fault's evidence, as printed.
        #expect(out.contains("FLOOD_WAIT_3") && out.contains("without spending an attempt"))
        #expect(out.contains("bob's client reconnected"))
        #expect(out.contains("carol's workers stopped cleanly (SESSION_REVOKED, TGSM-AUTH-002)") && out.contains("guidance:"))
        #expect(out.contains("restored from its verified backup on reopen"))
        #expect(out.contains("salvaged without a backup: alice and bob worked on without a new login"), "\(out)")
        // The queue's file damaged: every view says no job runs, the salvage names what may be lost, the rest run.
        #expect(out.contains("/health now: alice not ready [queue_damaged]; bob not ready [queue_damaged]") && out.contains("tgsm_queue_claims_failing 1"),
                "\(out)")
        #expect(out.contains(": the workers cannot claim jobs since ") && out.contains("`tgsm jobs salvage`: ") && out.contains("may be lost: ids "), "\(out)")
        #expect(out.contains("handled (damaged job queue):") && out.contains("carol's waited on"), "\(out)")
        // A job of the batch as `tgsm jobs show` tells it; one a worker held (most runs) says why it was given back.
        #expect(out.contains("`tgsm jobs show ") && out.contains("-> completed"), "\(out)")
        if out.contains("-> rescued ->") { #expect(out.contains("held it when the queue's file was found damaged"), "\(out)") }
        #expect(out.contains("which the history names: ") && out.contains(" not ended"), "\(out)")
        #expect(out.contains("carol logged in again with no code: Telegram accepted the token"), "\(out)")
        #expect(out.contains("carol's, queued since the revocation: completed"), "\(out)")
        #expect(out.contains("alice's health is degraded and lists it") && out.contains("Login code ••••• was requested."), "\(out)")
        #expect(out.contains("dashboard: http://127.0.0.1:"))

        // The operator is told of each thing a person should know, once: carol revoked, carol back, alice's notice.
        #expect(out.contains("alert: [critical] tgsm on ") && out.contains(": carol needs a person"), "\(out)")
        #expect(out.contains("alert: [ok] tgsm on ") && out.contains(": carol is ready again"), "\(out)")
        #expect(out.contains(": alice: Telegram asked this session to log out (AUTH_KEY_DROP_DUPLICATE)"), "\(out)")
        let posted = try receiver.requests.map { try JSONDecoder().decode(Alert.self, from: $0.body) }
        #expect(posted.map(\.event) == [.accountNeedsAttention, .queueFailing, .queueRecovered, .accountRecovered, .telegramNotice], "\(posted)")
        #expect(posted.map(\.account) == ["carol", nil, nil, "carol", "alice"])

        // The final table is `tgsm status`'s: all three active again (carol back without a code), the queue drained.
        let table = try #require(out.range(of: "ACCOUNT  HOME DC  AUTHORIZED")).lowerBound
        let rows = out[table...].split(separator: "\n")
        for account in ["alice", "bob", "carol"] {
            #expect(rows.contains { $0.hasPrefix(account) && $0.contains("active") }, "\(account): \(out)")
        }
        #expect(out.contains("queue: queued 0, running 0, completed"), "\(out)")
        #expect(out[table...].contains("Telegram's notices (last 7 days") && out[table...].contains("AUTH_KEY_DROP_DUPLICATE"), "\(out)")

        // The temporary folder is gone.
        let folderLine = try #require(out.split(separator: "\n").first { $0.contains("folder: ") })
        let folder = String(try #require(folderLine.split(separator: " ").first { $0.hasPrefix("/") }))
        #expect(folder.hasPrefix(root))
        #expect(!FileManager.default.fileExists(atPath: folder))

        // A pipe gets no colors; no phone number, login code or password is printed (the random
        // folder name is taken out first: its digits are not a secret).
        #expect(!out.contains("\u{1B}["))
        let bodies = receiver.requests.map { String(decoding: $0.body, as: UTF8.self) }.joined()
        let text = (out + result.stderr + bodies).replacingOccurrences(of: root, with: "ROOT")
        for secret in ["15550001", "15550002", "15550003", "10005", "20005", "30005", "hunter2", "54321"] {
            #expect(!text.contains(secret), "\(secret) printed")
        }
    }

    /// `--keep`: after the summary the dashboard stays up (it shows the accounts and carol's mark)
    /// until Ctrl-C, which ends the run with exit 0 and removes the folder.
    @Test func keepServesTheDashboardUntilInterrupted() async throws {
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["sandbox", "--keep"]
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = root
        environment.removeValue(forKey: "NO_COLOR")
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // A sandbox that stops printing would hold the reads below for ever.
        let ends = ChildDeadline(process, seconds: 240)

        // Read until the sandbox says it keeps running (the scenario's output comes first).
        let reader = out.fileHandleForReading
        var text = ""
        let deadline = Date().addingTimeInterval(120)
        while !text.contains("in another terminal:"), Date() < deadline {
            let chunk = await offThePool { reader.availableData }
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        #expect(text.contains("faults: 7 injected, 7 handled"), "\(text)")
        let url = try #require(text.split(separator: "\n").last { $0.contains("dashboard: http://") }?
            .split(separator: " ").first { $0.hasPrefix("http://") })

        let (page, response) = try await URLSession.shared.data(from: try #require(URL(string: String(url))))
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        let html = String(decoding: page, as: UTF8.self)
        #expect(html.contains("alice") && html.contains("bob") && html.contains("carol"))

        let folderLine = try #require(text.split(separator: "\n").first { $0.contains("folder: ") })
        let folder = String(try #require(folderLine.split(separator: " ").first { $0.hasPrefix("/") }))
        #expect(FileManager.default.fileExists(atPath: folder + "/store/sessions.sqlite"))
        // `tgsm status` in another terminal says what the sandbox sees of each account, as it does
        // of a `tgsm run` (its RUNNING column said "-" for all three).
        struct Status: Decodable {
            struct Account: Decodable { var account: String; var running: Running? }
            struct Running: Decodable { var ready: Bool }
            var accounts: [Account]
        }
        var running: [String] = []
        for _ in 0..<100 where running.count < 3 {
            let status = try await cli.run(["status", "--store", folder + "/store", "--json"], withStore: false)
            running = ((try? JSONDecoder().decode(Status.self, from: Data(status.stdout.utf8)))?.accounts ?? []).filter { $0.running != nil }.map(\.account)
            if running.count < 3 { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(running.sorted() == ["alice", "bob", "carol"], "\(running)")

        kill(process.processIdentifier, SIGINT)
        let rest = await CLI.readToEnd(reader)
        await process.exited()
        #expect(!ends.finish(), "the sandbox was killed by its deadline: \(text)")
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(String(decoding: rest, as: UTF8.self))")
        #expect(!FileManager.default.fileExists(atPath: folder))
    }
}
