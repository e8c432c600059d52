import Foundation
import MTProto
import MTProtoClient
import OperatorHTTP
import SessionManager
import Synchronization
import Testing
import Workers

/// The dashboard as a person sees it: Debian's Chromium, headless, loads it from the running
/// server, and the test reads the DOM Chromium built and keeps a screenshot.
@Suite struct DashboardChromiumTests {
    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
    /// scripts/test installs Chromium and sets this: there, a missing browser fails instead of skipping.
    static let required = ProcessInfo.processInfo.environment["TGSM_REQUIRE_CHROMIUM"] == "1"
    /// Where the screenshot is kept: .build/operator-http/ of the package.
    static let artifacts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/operator-http")

    @Test func chromiumIsThereWhereTheTestRunRequiresIt() {
        if Self.required {
            #expect(Self.chromium != nil, "TGSM_REQUIRE_CHROMIUM=1 but no chromium: run scripts/setup-system (apt-get install chromium)")
        } else if Self.chromium == nil {
            print("SKIPPING the dashboard's Chromium tests: no /usr/bin/chromium (install it: apt-get install chromium; scripts/test does)")
        }
    }

    @Test(.enabled(if: chromium != nil, "needs Debian's chromium (apt-get install chromium); scripts/test installs it"))
    func theDashboardShowsTheInjectedFloodWaitAndIsSavedAsAScreenshot() async throws {
        let chromium = try #require(Self.chromium)
        let fixture = try await Fixture.make(tag: "dash")
        defer { fixture.remove() }
        // The running account heard Telegram ask its session to log out, the text quoting a login code.
        var snapshot = HealthSnapshot(account: fixture.account, state: .degraded, lastSuccess: UnixTime(seconds: Fixture.now - 60))
        snapshot.serviceNotifications = [ReceivedServiceNotification(
            notification: ServiceNotification(type: "AUTH_KEY_DROP_DUPLICATE", message: "Session used twice; login code 54321 was requested", popup: true, inboxDate: nil),
            receivedAt: UnixTime(seconds: Fixture.now - 30), isRepeat: false)]
        snapshot.sessionDropAskedAt = UnixTime(seconds: Fixture.now - 30)
        let live = [fixture.account: snapshot]
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, refreshSeconds: 30), live: { live })
        let (dom, screenshot) = try await Self.render(server, with: chromium, screenshot: "dashboard.png")

        // The flood wait recorded through the ledger: its lane, method and exact until-time.
        let lane = "class=\"lane flood\" data-account=\"\(fixture.account.rawValue)\" data-method=\"\(Fixture.floodMethod)\""
        #expect(dom.contains(lane))
        #expect(dom.contains("FLOOD_WAIT until <time>2027-01-15T08:30:00Z</time> (30m00s left)"))
        // The bar ends at the until-time: the axis ends just after the latest until-time.
        #expect(dom.contains("class=\"bar FLOOD_WAIT\""))
        // Accounts with their state and health; the revoked one with its code and steps.
        #expect(dom.contains("id=\"overall\">not ready<"))
        #expect(dom.contains("data-account=\"\(Fixture.maskedPhone)\""))
        #expect(dom.contains("TGSM-AUTH-002"))
        #expect(dom.contains("Someone terminated this session from another device"))
        // The queue and its outcomes over time.
        #expect(dom.contains("id=\"depth\">4<"))
        #expect(dom.contains("class=\"total-completed\">1<") && dom.contains("class=\"total-dead\">1<") && dom.contains("class=\"total-deferred\">1<"))
        #expect(dom.contains("class=\"outcome completed\""))
        // Recent errors with guidance; what a job's error quoted is escaped text, never markup.
        #expect(dom.contains("tgsm jobs retry \(fixture.deadJob.rawValue)"))
        #expect(dom.contains("Its every change and error: `tgsm jobs show \(fixture.deadJob.rawValue)`."))
        #expect(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(!dom.contains("<script"))
        #expect(!dom.contains(Fixture.phoneDigits))
        // Telegram's notice, as Chromium built it: marked, the code masked.
        #expect(dom.contains("<div id=\"notices\"><h3>Telegram's notices</h3>"), "\(dom)")
        #expect(dom.contains("<code>AUTH_KEY_DROP_DUPLICATE</code> Session used twice; login code ••••• was requested"))
        #expect(!dom.contains("54321"))

        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        #expect(png.count > 10_000)
    }

    /// Workers that cannot claim jobs, as a person at the dashboard sees it: the queue section says
    /// no job runs and what to do, and the account's row says why it is not ready.
    @Test(.enabled(if: chromium != nil, "needs Debian's chromium (apt-get install chromium); scripts/test installs it"))
    func theDashboardSaysWhenTheWorkersCannotClaimJobs() async throws {
        let chromium = try #require(Self.chromium)
        let fixture = try await Fixture.make(tag: "claims")
        defer { fixture.remove() }
        let failure = ClaimFailure(error: "the job queue's file jobs.sqlite is damaged (database disk image is malformed): its jobs cannot all be read. "
                                       + "Stop the processes using it and run `tgsm jobs salvage`",
                                   since: UnixTime(seconds: Fixture.now - 300), needsAPerson: true)
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account], refreshSeconds: 30), live: fixture.healthyLive(),
                                        claimFailure: { failure })
        let (dom, screenshot) = try await Self.render(server, with: chromium, screenshot: "dashboard-claims-failing.png")
        #expect(dom.contains("id=\"overall\">not ready<"))
        #expect(dom.contains("<p class=\"bad\" id=\"claims-failing\">No job runs: this process's workers cannot claim jobs since 2027-01-15T07:55:00Z UTC: the job queue"),
                "\(dom)")
        #expect(dom.contains("run `tgsm jobs salvage`"))
        #expect(dom.contains("its jobs do not run: this process's workers cannot claim jobs from the queue since 2027-01-15T07:55:00Z"))
        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000)
    }

    /// The dashboard as Chromium built it (its DOM), and a screenshot of it kept in `artifacts`.
    static func render(_ server: OperatorHTTPServer, with chromium: String, screenshot name: String) async throws -> (dom: String, screenshot: URL) {
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let screenshot = artifacts.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: screenshot)
        let dom = try await withServer(server) { port in
            let url = "http://127.0.0.1:\(port)/"
            let dom = try await runChromium(chromium, ["--dump-dom", url])
            _ = try await runChromium(chromium, ["--screenshot=\(screenshot.path)", "--window-size=1280,1400", url])
            return dom
        }
        print("dashboard screenshot: \(screenshot.path)")
        return (dom, screenshot)
    }

    /// Runs headless Chromium (as root it needs --no-sandbox) with its own profile, bounded in time.
    static func runChromium(_ path: String, _ arguments: [String]) async throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--hide-scrollbars", "--user-data-dir=\(profile.path)"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let collected = Mutex(Data())
        output.fileHandleForReading.readabilityHandler = { handle in
            let chunk = handle.availableData
            collected.withLock { $0.append(chunk) }
        }
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            // A browser that hangs must not hang the suite.
            DispatchQueue.global().asyncAfter(deadline: .now() + 90) { if process.isRunning { process.terminate() } }
        }
        output.fileHandleForReading.readabilityHandler = nil
        let rest = try output.fileHandleForReading.readToEnd() ?? Data()
        let text = collected.withLock { String(decoding: $0 + rest, as: UTF8.self) }
        #expect(status == 0, "chromium \(arguments) exited \(status)")
        return text
    }
}
