import Foundation
import MTProto
import MTProtoCrypto
import MTProtoClient
import OperatorHTTP
import ServiceLifecycle
import SessionManager
import TLSchema
import Synchronization
import Testing
import Workers

@Suite struct OperatorHTTPServerTests {
    @Test func healthIs503WithTheReasonsWhileAnEnabledAccountIsRevoked() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0), live: fixture.healthyLive())
        let response = try await withServer(server) { port in try await get(port, "/health") }
        #expect(response.status == 503)
        #expect(response.headers["content-type"] == "application/json")
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(response.body.utf8))
        #expect(report.ready == false)
        #expect(report.checkedAt == "2027-01-15T08:00:00Z")
        let ours = try #require(report.accounts.first { $0.account == fixture.account.rawValue })
        #expect(ours.ready)
        #expect(ours.sessionState == "active")
        #expect(ours.health == "healthy")
        #expect(ours.lastSuccess == "2027-01-15T07:59:00Z")
        #expect(ours.activeFloodWaits == 1)
        #expect(ours.reasons.isEmpty)
        let phone = try #require(report.accounts.first { $0.account == Fixture.maskedPhone })
        #expect(!phone.ready)
        #expect(phone.sessionState == "revoked")
        #expect(phone.code == "TGSM-AUTH-002")
        #expect(phone.reasons.contains { $0.contains("marked revoked") && $0.contains("SESSION_REVOKED") })
        // Its mark says why nothing runs it; "not running in this process" would say it twice.
        #expect(phone.reasonCodes == ["marked_revoked"], "\(phone.reasons)")
        #expect(!response.body.contains(Fixture.phoneDigits))
    }

    /// A store that cannot be read (a PostgreSQL server down, a file gone): /health answers 503
    /// with why, /metrics still serves the process's own metrics with tgsm_store_reachable 0, the
    /// dashboard says so. Before: HTTP 500 with an empty body (and on PostgreSQL only after its own
    /// timeout, 11 s: past most probes'). A store that hangs is cut at `storeBound` (`withBound`).
    @Test func aStoreThatCannotBeReadIsSaidByEveryView() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account]), live: fixture.healthyLive())
        let (before, health, metrics, page) = try await withServer(server) { port in
            let before = try await get(port, "/metrics")
            try fixture.store.close()
            return (before, try await get(port, "/health"), try await get(port, "/metrics"), try await get(port, "/"))
        }
        #expect(before.body.contains("tgsm_store_reachable 1"))
        #expect(health.status == 503 && health.headers["content-type"] == "application/json")
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(health.body.utf8))
        #expect(!report.ready && report.accounts.isEmpty)
        #expect(report.reasons.first?.hasPrefix("the store could not be read (") == true, "\(report.reasons)")
        #expect(metrics.status == 200 && metrics.body.contains("tgsm_store_reachable 0"), "\(metrics.body.prefix(300))")
        #expect(page.status == 503 && page.body.contains("The store could not be read"))
    }

    /// A running account whose session cannot be saved (a full disk, a store re-keyed under the
    /// process) is not ready, saying why: before, /health said healthy while a restart would have
    /// lost the session's changes.
    @Test func anAccountWhoseSessionCannotBeSavedIsNotReady() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        var live = HealthSnapshot(account: account, state: .degraded, lastSuccess: UnixTime(seconds: Fixture.now - 60), consecutiveFailures: 0)
        live.sessionNotSavedSince = UnixTime(seconds: Fixture.now - 30)
        live.sessionSaveError = "SQLite error 13: database or disk is full"
        let snapshot = live
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [account]), live: { [account: snapshot] })
        let response = try await withServer(server) { port in try await get(port, "/health") }
        #expect(response.status == 503)
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(response.body.utf8))
        let ours = try #require(report.accounts.first)
        #expect(ours.reasonCodes == ["session_not_saved"], "\(ours.reasons)")
        #expect(ours.reasons.first?.contains("could not be saved to the store since 2027-01-15T07:59:30Z (SQLite error 13: database or disk is full)") == true,
                "\(ours.reasons)")
    }

    /// Workers that cannot claim jobs (a damaged queue file; a queue server down): every view of
    /// the process says no job of its accounts runs, and whose move it is. Before, /health said
    /// ready, the dashboard and tgsm_jobs showed counts (read off an index that still reads), and
    /// only the log and the webhook knew.
    @Test func workersThatCannotClaimJobsAreSaidByEveryView() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let failing = Mutex<ClaimFailure?>(ClaimFailure(
            error: "the job queue's file jobs.sqlite is damaged (database disk image is malformed): ... run `tgsm jobs salvage` ...",
            since: UnixTime(seconds: Fixture.now - 90), needsAPerson: true))
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account]), live: fixture.healthyLive(),
                                        claimFailure: { failing.withLock { $0 } })
        let (damaged, metrics, page, stalled, clear, clearMetrics) = try await withServer(server) { port in
            let damaged = try await get(port, "/health"), metrics = try await get(port, "/metrics"), page = try await get(port, "/")
            failing.withLock { $0 = ClaimFailure(error: "the job queue's database failed (connection refused)", since: UnixTime(seconds: Fixture.now - 5),
                                                 needsAPerson: false) }
            let stalled = try await get(port, "/health")
            failing.withLock { $0 = nil }
            return (damaged, metrics, page, stalled, try await get(port, "/health"), try await get(port, "/metrics"))
        }
        #expect(damaged.status == 503)
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(damaged.body.utf8))
        let ours = try #require(report.accounts.first)
        #expect(!ours.ready && ours.health == "healthy" && ours.reasonCodes == ["queue_damaged"], "\(ours)")
        #expect(ours.reasons.first?.hasPrefix("its jobs do not run: this process's workers cannot claim jobs from the queue since 2027-01-15T07:58:30Z") == true,
                "\(ours.reasons)")
        #expect(ours.reasons.first?.contains("tgsm jobs salvage") == true && HealthReport.Reason.needsAPerson("queue_damaged"))
        #expect(try parsePrometheus(metrics.body).value("tgsm_queue_claims_failing") == 1)
        #expect(try parsePrometheus(metrics.body).value("tgsm_account_ready", ["account": fixture.account.rawValue]) == 0)
        #expect(page.body.contains("id=\"claims-failing\"") && page.body.contains("No job runs") && page.body.contains("[queue_damaged]") == false,
                "the reasons column shows the text, the queue section the cause")
        #expect(page.body.contains("since 2027-01-15T07:58:30Z UTC"), "\(page.body)")
        // A queue that fails by itself waits for it, not for a person.
        let waiting = try JSONDecoder().decode(HealthReport.self, from: Data(stalled.body.utf8))
        #expect(waiting.accounts.first?.reasonCodes == ["queue_unavailable"] && !HealthReport.Reason.needsAPerson("queue_unavailable"))
        #expect(waiting.accounts.first?.reasons.first?.contains("go on as soon as a claim works") == true)
        #expect(clear.status == 200, "\(clear.body)")
        #expect(try parsePrometheus(clearMetrics.body).value("tgsm_queue_claims_failing") == 0)
    }

    @Test func healthIs200WhenEveryEnabledAccountIsReady() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account]), live: fixture.healthyLive())
        let response = try await withServer(server) { port in try await get(port, "/health") }
        #expect(response.status == 200)
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(response.body.utf8))
        #expect(report.ready)
        #expect(report.accounts.map(\.account) == [fixture.account.rawValue])
    }

    /// A standby of a cluster: an enabled account this process does not run while another live
    /// process holds its lease is that process's to be ready for. Before, every standby answered
    /// 503 and exported `tgsm_account_ready 0` for it, forever.
    @Test func anAccountAnotherLiveProcessHoldsIsNotCountedAgainstAStandby() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        _ = try await fixture.store.acquireLease(account: fixture.account, holder: LeaseHolder(host: "other-host", pid: 7), now: fixture.clock.now(),
                                                 ttl: 30, holderIsDead: { _ in false })
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account]), live: { [:] })
        let (health, metrics, later) = try await withServer(server) { port in
            let health = try await get(port, "/health"), metrics = try await get(port, "/metrics")
            // Once that lease ran out with nobody running the account, it is not running anywhere.
            fixture.clock.advance(by: 31)
            return (health, metrics, try await get(port, "/health"))
        }
        #expect(health.status == 200, "\(health.body)")
        #expect(try parsePrometheus(metrics.body).value("tgsm_account_ready", ["account": fixture.account.rawValue]) == 1)
        #expect(later.status == 503 && later.body.contains("not_running"), "\(later.body)")
    }

    /// The dashboard of any process of a cluster shows what the process serving an account reports
    /// of it (before: "not run here" and nothing else), while /health stays this process's own.
    @Test func theDashboardShowsWhatTheProcessServingAnAccountReports() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let other = LeaseHolder(host: "other-host", pid: 7)
        _ = try await fixture.store.acquireLease(account: fixture.account, holder: other, now: fixture.clock.now(), ttl: 30, holderIsDead: { _ in false })
        #expect(try await fixture.store.recordLiveReport(LiveReport(
            account: fixture.account, holder: other, ready: false, health: "down",
            reasons: [LiveReport.Reason(code: "proxy_refused", text: "its proxy <refused> the password: correct its link", needsAPerson: true)],
            since: fixture.clock.now(), reportedAt: fixture.clock.now())))
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account]), live: { [:] })
        let (health, metrics, page, later) = try await withServer(server) { port in
            let health = try await get(port, "/health"), metrics = try await get(port, "/metrics"), page = try await get(port, "/")
            // Its lease ran out (the process died): its report speaks for nobody.
            fixture.clock.advance(by: 31)
            return (health, metrics, page.body, try await get(port, "/").body)
        }
        // /health and the metrics of a standby say what the serving process reports, as its dashboard does
        // (before: 200 and ready 1 while the holder's proxy refused the account).
        #expect(health.status == 503 && health.body.contains("proxy_refused") && health.body.contains("in pid 7 on other-host, which serves it"),
                "\(health.body)")
        // And its health with whose it is (before: no `health` at all for an account run elsewhere).
        let served = try JSONDecoder().decode(HealthReport.self, from: Data(health.body.utf8)).accounts.first { $0.account == fixture.account.rawValue }
        #expect(served?.health == "down" && served?.servedBy == "pid 7 on other-host", "\(health.body)")
        #expect(try parsePrometheus(metrics.body).value("tgsm_account_ready", ["account": fixture.account.rawValue]) == 0)
        func row(_ page: String) -> String {
            page.components(separatedBy: "<tr class=\"account\" data-account=\"\(fixture.account.rawValue)\"").dropFirst()
                .map { $0.components(separatedBy: "</tr>").first ?? "" }.joined()
        }
        #expect(row(page).contains("down <span class=\"dim\">in pid 7@other-host</span>") && row(page).contains(">no</td>"), "\(row(page))")
        #expect(row(page).contains("[proxy_refused] its proxy &lt;refused&gt; the password"), "\(row(page))")
        #expect(!row(later).contains("other-host") && !row(later).contains("proxy_refused"), "\(row(later))")
    }

    /// Two accounts named by numbers ending alike: their masked names differ by their tags, so each
    /// has its own row and series (before the tags they shared one name, one series: the worse of
    /// the two, and an operator could not tell which account was down).
    @Test func accountsNamedByNumbersEndingAlikeAreTwoAccountsEverywhere() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let twin: AccountID = "+70001112267"  // masks like Fixture.phoneAccount, which is revoked
        _ = try await fixture.store.saveSession(
            SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: try AuthKey((0..<256).map { UInt8(truncatingIfNeeded: $0 * 7 + 5) }),
                                                           isAuthorized: true)], userID: 1009), account: twin, fence: nil)
        let live: OperatorHTTPServer.LiveHealth = { [
            twin: HealthSnapshot(account: twin, state: .healthy, lastSuccess: UnixTime(seconds: Fixture.now - 5), consecutiveFailures: 0),
            Fixture.phoneAccount: HealthSnapshot(account: Fixture.phoneAccount, state: .healthy, consecutiveFailures: 0),
        ] }
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [twin, Fixture.phoneAccount]), live: live)
        let (metrics, page) = try await withServer(server) { port in (try await get(port, "/metrics"), try await get(port, "/")) }
        let samples = try parsePrometheus(metrics.body)
        let maskedTwin = Redaction.masked(twin.rawValue)
        #expect(maskedTwin.hasPrefix("+•••••••••67#") && maskedTwin != Fixture.maskedPhone)
        #expect(samples.value("tgsm_account_ready", ["account": Fixture.maskedPhone]) == 0, "revoked")
        #expect(samples.value("tgsm_account_ready", ["account": maskedTwin]) == 1)
        #expect(samples.value("tgsm_session_state", ["account": Fixture.maskedPhone, "state": "revoked"]) == 1)
        func row(_ name: String) -> String {
            page.body.components(separatedBy: "<tr class=\"account\" data-account=\"\(name)\"").dropFirst()
                .map { $0.components(separatedBy: "</tr>").first ?? "" }.joined()
        }
        #expect(row(maskedTwin).contains(">yes</td>") && row(Fixture.maskedPhone).contains(">no</td>"), "\(page.body)")
        #expect(!metrics.body.contains(Fixture.phoneDigits) && !page.body.contains("70001112267"))
    }

    /// What the dashboard says of accounts this process does not run, and of send-code deadlines:
    /// "not run here" rather than a bare "-" beside a revoked mark, and a deadline only for an
    /// account that waits for a login (one logged in since its code needs none).
    @Test func theDashboardSaysWhatItDoesNotRunAndOnlyTheDeadlinesALoginWaitsFor() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let deadline = UnixTime(seconds: Fixture.now + 300)
        try await fixture.store.setSendCodeDeadline(deadline, account: fixture.account, phoneKey: try await fixture.store.phoneKey(for: "15550001"))
        try await fixture.store.setSendCodeDeadline(deadline, account: Fixture.phoneAccount, phoneKey: try await fixture.store.phoneKey(for: "15550002"))
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account, Fixture.phoneAccount]),
                                        live: { [fixture.account: HealthSnapshot(account: fixture.account, state: .healthy, consecutiveFailures: 0)] })
        let page = try await withServer(server) { port in try await get(port, "/") }.body
        let banner = page.components(separatedBy: "No login code may be requested before: ").dropFirst().first?.components(separatedBy: "</p>").first ?? ""
        #expect(banner.contains(Fixture.maskedPhone) && !banner.contains(fixture.account.rawValue), "\(banner)")
        #expect(page.contains(">not run here</td>"), "\(page)")
    }

    @Test func anAccountNotYetConnectedOrDownIsNotReady() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [account, "nobody"])) {
            var down = HealthSnapshot(account: account, state: .down, lastFailureCode: "TGSM-NET-001", consecutiveFailures: 4)
            down.lastFailureSummary = "no connection to DC 2 after 6 attempts (Connection refused connecting to the SOCKS5 proxy 127.0.0.1:1080)"
            return [account: down]
        }
        let response = try await withServer(server) { port in try await get(port, "/health") }
        #expect(response.status == 503)
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(response.body.utf8))
        let ours = try #require(report.accounts.first { $0.account == account.rawValue })
        #expect(ours.reasons == ["down: 4 network failures in a row (last TGSM-NET-001: no connection to DC 2 after 6 attempts "
            + "(Connection refused connecting to the SOCKS5 proxy 127.0.0.1:1080)); check connectivity to Telegram and the account's proxy (`tgsm session proxy`)"])
        let unknown = try #require(report.accounts.first { $0.account == "nobody" })
        // Failing from the first try, with too few failures to be down: not ready either (it was 200).
        let never = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [account])) {
            var failing = HealthSnapshot(account: account, state: .degraded, lastFailureCode: "TGSM-NET-001", consecutiveFailures: 1)
            failing.lastFailureSummary = "no connection to DC 2 after 6 attempts (Connection refused connecting to 127.0.0.1:1)"
            return [account: failing]
        }
        let neverConnected = try await withServer(never) { port in try await get(port, "/health") }
        #expect(neverConnected.status == 503 && neverConnected.body.contains("not connected yet") && neverConnected.body.contains("Connection refused"),
                "\(neverConnected.body)")
        #expect(unknown.reasons.first?.contains("no session for this account") == true)
    }

    @Test func aFrozenAccountIsNotReadyAndSaysWhereToAppeal() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [account])) {
            [account: HealthSnapshot(account: account, state: .degraded, lastSuccess: UnixTime(seconds: 1_800_000_100),
                                     lastFailureCode: "TGSM-RPC-002", frozenSince: UnixTime(seconds: 1_800_000_000))]
        }
        let response = try await withServer(server) { port in try await get(port, "/health") }
        #expect(response.status == 503)
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(response.body.utf8))
        let ours = try #require(report.accounts.first)
        #expect(!ours.ready && ours.reasons.contains { $0.contains("Telegram froze this account") && $0.contains("freeze_appeal_url") }, "\(ours.reasons)")
    }

    /// Once help.getAppConfig was read, the reason says when Telegram deletes the account and where to appeal.
    @Test func aFrozenAccountsDeletionDateAndAppealAreShown() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        var snapshot = HealthSnapshot(account: account, state: .degraded, lastFailureCode: "TGSM-RPC-002", frozenSince: UnixTime(seconds: 1_800_000_500))
        snapshot.freeze = AccountFreeze(since: UnixTime(seconds: 1_800_000_000), deletedAfter: UnixTime(seconds: 1_802_592_000), appealURL: "https://t.me/spambot")
        let live = snapshot
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [account])) { [account: live] }
        let response = try await withServer(server) { port in try await get(port, "/health") }
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(response.body.utf8))
        let reason = try #require(report.accounts.first?.reasons.first { $0.contains("Telegram froze this account") })
        #expect(reason.contains("since 2027-01-15T08:00:00Z"), "\(reason)")
        #expect(reason.contains("deletes it on 2027-02-14T08:00:00Z unless an appeal is accepted"), "\(reason)")
        #expect(reason.contains("appeal at https://t.me/spambot"), "\(reason)")
    }

    /// Telegram's service notifications to a running account are listed with the account, login
    /// codes masked; one asking the session to log out is flagged (the account stays ready: it still
    /// works, a person should look).
    @Test func serviceNotificationsAreListedWithTheAccountCodesMasked() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        var snapshot = HealthSnapshot(account: account, state: .degraded, lastSuccess: UnixTime(seconds: 1_800_000_100))
        snapshot.serviceNotifications = [
            ReceivedServiceNotification(notification: ServiceNotification(type: "LOGIN_CODE", message: "Login code: 12345", popup: false, inboxDate: 1),
                                        receivedAt: UnixTime(seconds: 1_800_000_000), isRepeat: false),
            ReceivedServiceNotification(notification: ServiceNotification(type: "AUTH_KEY_DROP_DUPLICATE", message: "Session ended", popup: true, inboxDate: nil),
                                        receivedAt: UnixTime(seconds: 1_800_000_060), isRepeat: false),
        ]
        snapshot.sessionDropAskedAt = UnixTime(seconds: 1_800_000_060)
        let live = snapshot
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [account])) { [account: live] }
        let (response, page) = try await withServer(server) { port in (try await get(port, "/health"), try await get(port, "/").body) }
        #expect(!response.body.contains("12345"))
        let report = try JSONDecoder().decode(HealthReport.self, from: Data(response.body.utf8))
        let ours = try #require(report.accounts.first)
        #expect(ours.ready && ours.health == "degraded", "\(ours.reasons)")
        #expect(ours.serviceNotifications == [
            HealthReport.Notice(type: "LOGIN_CODE", message: "Login code: •••••", popup: false, receivedAt: "2027-01-15T08:00:00Z", asksToLogOut: false),
            HealthReport.Notice(type: "AUTH_KEY_DROP_DUPLICATE", message: "Session ended", popup: true, receivedAt: "2027-01-15T08:01:00Z", asksToLogOut: true),
        ])
        // The dashboard lists them too, newest first, the request to log out standing out.
        #expect(!page.contains("12345"))
        let drop = try #require(page.range(of: "<li class=\"bad\">2027-01-15T08:01:00Z"), "\(page)")
        let code = try #require(page.range(of: "<code>LOGIN_CODE</code> Login code: •••••"), "\(page)")
        #expect(drop.lowerBound < code.lowerBound && page.contains("Telegram asks this session to log out"))
    }

    @Test func metricsExportTheStoreTheQueueAndTheLedgerInPrometheusText() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        // A counter through swift-metrics with a phone-number account: the label must be masked.
        let phoneLedger = FloodLedger(account: Fixture.phoneAccount, store: InMemoryFloodLedgerStore(), clock: fixture.clock, logger: quietLogger)
        await phoneLedger.record(FloodWait(account: Fixture.phoneAccount, method: "auth.sendCode", kind: .floodWait,
                                           recordedAt: fixture.clock.now(), until: fixture.clock.now() + 60))
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0), live: fixture.healthyLive())
        let response = try await withServer(server) { port in try await get(port, "/metrics") }
        #expect(response.status == 200)
        #expect(response.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        let samples = try parsePrometheus(response.body)
        let account = fixture.account.rawValue

        #expect(samples.value("tgsm_flood_waits_total", ["account": account, "method": Fixture.floodMethod, "kind": "FLOOD_WAIT"]) == 1)
        #expect(samples.value("tgsm_flood_waits_active", ["account": account]) == 1)
        #expect(samples.value("tgsm_flood_wait_remaining_seconds", ["account": account, "method": Fixture.floodMethod]) == Fixture.floodSeconds)
        #expect(samples.value("tgsm_session_state", ["account": account, "state": "active"]) == 1)
        #expect(samples.value("tgsm_session_state", ["account": account, "state": "revoked"]) == 0)
        #expect(samples.value("tgsm_session_state", ["account": Fixture.maskedPhone, "state": "revoked"]) == 1)
        #expect(samples.value("tgsm_account_ready", ["account": account]) == 1)
        #expect(samples.value("tgsm_account_ready", ["account": Fixture.maskedPhone]) == 0)
        #expect(samples.value("tgsm_jobs", ["state": "completed"]) == 1)
        #expect(samples.value("tgsm_jobs", ["state": "queued"]) == 3)
        #expect(samples.value("tgsm_jobs", ["state": "running"]) == 1)
        #expect(samples.value("tgsm_jobs", ["state": "dead"]) == 1)
        #expect(samples.value("tgsm_jobs", ["state": "cancelled"]) == 0)
        #expect(samples.value("tgsm_queue_depth") == 3)
        #expect(samples.value("tgsm_flood_waits_total", ["account": Fixture.maskedPhone, "method": "auth.sendCode", "kind": "FLOOD_WAIT"]) ?? 0 >= 1)
        #expect(!response.body.contains(Fixture.phoneDigits))
        // Every family says what it is, those counted through swift-metrics too (their factory
        // registers them without help text), once each.
        let lines = response.body.split(separator: "\n")
        for (index, line) in lines.enumerated() where line.hasPrefix("# TYPE tgsm_") {
            let name = line.split(separator: " ")[2]
            #expect(index > 0 && lines[index - 1].hasPrefix("# HELP \(name) "), "no help for \(name)")
        }
        #expect(lines.filter { $0.hasPrefix("# HELP tgsm_flood_waits_total ") }.count == 1)
        #expect(response.body.contains("# HELP tgsm_flood_waits_total Flood waits Telegram imposed, by account, method and kind"), "\(response.body)")
    }

    @Test func aFloodWaitThatEndedDropsToZeroInTheGauges() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0))
        let (before, after) = try await withServer(server) { port in
            let before = try parsePrometheus(try await get(port, "/metrics").body)
            fixture.clock.advance(by: Fixture.floodSeconds + 1)
            let after = try parsePrometheus(try await get(port, "/metrics").body)
            return (before, after)
        }
        let labels = ["account": fixture.account.rawValue, "method": Fixture.floodMethod]
        #expect(before.value("tgsm_flood_wait_remaining_seconds", labels) == Fixture.floodSeconds)
        #expect(after.value("tgsm_flood_wait_remaining_seconds", labels) == 0)
        #expect(after.value("tgsm_flood_waits_active", ["account": fixture.account.rawValue]) == 0)
    }

    @Test func offLoopbackTheServerRefusesToStartWithoutAToken() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        for host in ["0.0.0.0", "::", "192.0.2.10", "example.org"] {
            #expect(throws: OperatorHTTPError.tokenRequired(host: host)) { try fixture.server(OperatorHTTPConfiguration(host: host, port: 0)) }
        }
        #expect(throws: OperatorHTTPError.weakToken(minimumLength: 16)) {
            try fixture.server(OperatorHTTPConfiguration(host: "0.0.0.0", port: 0, accessToken: "short"))
        }
        let message = OperatorHTTPError.tokenRequired(host: "0.0.0.0").description
        #expect(message.contains("without an access token") && message.contains("Authorization: Bearer") && message.contains("127.0.0.1"))
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] {
            #expect(OperatorHTTPConfiguration.isLoopback(host))
        }
        #expect(!OperatorHTTPConfiguration.isLoopback("127.0.0.1.example.org"))
    }

    @Test func aConfiguredTokenIsRequiredOnEveryRouteByHeaderOrQuery() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let token = "s3cret-token-0123456789"
        // A wildcard bind with a token starts; the test talks to it over loopback only.
        let server = try fixture.server(OperatorHTTPConfiguration(host: "0.0.0.0", port: 0, accessToken: token, accounts: [fixture.account]),
                                        live: fixture.healthyLive())
        try await withServer(server) { port in
            for path in ["/health", "/metrics", "/"] {
                let refused = try await get(port, path)
                #expect(refused.status == 401, "\(path) without the token")
                #expect(refused.headers["www-authenticate"] == "Bearer realm=\"tgsm\"")
                #expect(!refused.body.contains(fixture.account.rawValue))
                #expect(try await get(port, path, bearer: "wrong-token-0123456789").status == 401)
                #expect(try await get(port, path + "?token=wrong").status == 401)
                #expect(try await get(port, path, bearer: token).status == 200, "\(path) with the bearer token")
                #expect(try await get(port, path + "?token=\(token)").status == 200, "\(path) with ?token=")
            }
            // Links on the dashboard keep the token, so a browser session keeps working.
            let page = try await get(port, "/?token=\(token)").body
            #expect(page.contains("href=\"/health?token=\(token)\""))
        }
    }

    @Test func aPortInUseIsReportedWhenWaitingForTheServer() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let first = try fixture.server(OperatorHTTPConfiguration(port: 0))
        try await withServer(first) { port in
            let second = try fixture.server(OperatorHTTPConfiguration(port: port))
            let task = Task { try await second.run() }
            await #expect(throws: OperatorHTTPError.self) { try await second.listeningPort() }
            await #expect(throws: OperatorHTTPError.self) { try await task.value }
        }
    }

    /// As `tgsm run` uses it: one service of a ServiceGroup, ended by its graceful shutdown (SIGTERM).
    @Test func aServiceGroupsGracefulShutdownStopsTheServer() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account]), live: fixture.healthyLive())
        let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: quietLogger))
        let running = Task { try await group.run() }
        let port = try await server.listeningPort()
        #expect(try await get(port, "/health").status == 200)
        await group.triggerGracefulShutdown()
        try await running.value
        await #expect(throws: (any Error).self) { try await get(port, "/health") }
    }
}

extension OperatorHTTPServerTests {
    /// `tgsm run` hands the server its stacks' health monitors: a call that succeeded makes the account ready.
    @Test func liveHealthComesFromTheSessionStacksHealthMonitors() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let stack = SessionStack(
            account: fixture.account, client: RPCMetricsMiddlewareTests.SlowInvoker(clock: fixture.clock, latency: 0, error: nil),
            ledgerStore: fixture.store, statuses: fixture.store, clock: fixture.clock, random: SystemRandomSource(), logger: quietLogger)
        let live = OperatorHTTPServer.liveHealth(of: [stack])
        #expect(await live()[fixture.account]?.state == .unknown)
        let server = try fixture.server(OperatorHTTPConfiguration(port: 0, accounts: [fixture.account]), live: live)
        try await withServer(server) { port in
            #expect(try await get(port, "/health").status == 503)
            _ = try await stack.invoker.invoke(Api.functions.help.GetNearestDc(), options: InvokeOptions(isIdempotent: true))
            #expect(try await get(port, "/health").status == 200)
        }
    }
}
