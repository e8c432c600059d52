import Foundation
import Testing

/// `tgsm sandbox`, the README's first command, run as a person runs it: the built binary, no
/// setup, output to a pipe.
@Suite(.timeLimit(.minutes(3))) struct SandboxCLITests {
    @Test func theSandboxShowsEveryFaultHandledAndEndsWithTheStatusTable() async throws {
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var cli = base
        // Its temporary folder goes inside ours, so we can see it is removed.
        cli.environment["TMPDIR"] = root
        let result = try await cli.run(["sandbox"], withStore: false)
        let out = result.stdout
        #expect(!result.crashed)
        #expect(result.status == 0, "stdout:\n\(out)\nstderr:\n\(result.stderr)")

        for fault in ["flood wait", "dropped connection", "revoked session", "corrupted store"] {
            #expect(out.contains("handled (\(fault)):"), "no handled line for \(fault):\n\(out)")
        }
        #expect(!out.contains("NOT HANDLED") && !out.contains("problem:"), "\(out)")
        #expect(out.contains("faults: 4 injected, 4 handled"))

        // Each fault's evidence, as printed.
        #expect(out.contains("FLOOD_WAIT_3") && out.contains("without spending an attempt"))
        #expect(out.contains("bob's client reconnected"))
        #expect(out.contains("carol's workers stopped cleanly (SESSION_REVOKED, TGSM-AUTH-002)") && out.contains("guidance:"))
        #expect(out.contains("restored from its verified backup on reopen"))

        // The final table is `tgsm status`'s: carol marked revoked, alice and bob active, the queue.
        let table = try #require(out.range(of: "ACCOUNT  HOME DC  AUTHORIZED")).lowerBound
        let rows = out[table...].split(separator: "\n")
        #expect(rows.contains { $0.hasPrefix("carol") && $0.contains("revoked (TGSM-AUTH-002") })
        #expect(rows.contains { $0.hasPrefix("alice") && $0.contains("active") })
        #expect(rows.contains { $0.hasPrefix("bob") && $0.contains("active") })
        #expect(out.contains("queue: queued 2, running 0, completed"))

        // The temporary folder is gone.
        let folderLine = try #require(out.split(separator: "\n").first { $0.contains("folder: ") })
        let folder = String(try #require(folderLine.split(separator: " ").first { $0.hasPrefix("/") }))
        #expect(folder.hasPrefix(root))
        #expect(!FileManager.default.fileExists(atPath: folder))

        // A pipe gets no colors; no phone number, login code or password is printed (the random
        // folder name is taken out first: its digits are not a secret).
        #expect(!out.contains("\u{1B}["))
        let text = (out + result.stderr).replacingOccurrences(of: root, with: "ROOT")
        for secret in ["15550001", "15550002", "15550003", "10005", "20005", "30005", "hunter2"] {
            #expect(!text.contains(secret), "\(secret) printed")
        }
    }
}
