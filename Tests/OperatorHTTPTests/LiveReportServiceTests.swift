import MTProto
@testable import OperatorHTTP
import SessionManager
import Testing

/// What a running process keeps in the store of the accounts it serves: judged as /health judges,
/// written when it changes (not at every look), and only for the accounts whose lease it holds.
@Suite struct LiveReportServiceTests {
    let holder = LeaseHolder(host: "this-host", pid: 4242)

    /// One look as the service makes it: the store read, the reports that changed written.
    private func look(_ reporter: inout LiveReporter, _ fixture: Fixture, live: [AccountID: HealthSnapshot]) async throws -> [LiveReport] {
        let now = fixture.clock.now()
        let snapshot = try await OperatorSnapshot.gather(store: fixture.store, queue: nil, enabled: Array(live.keys), live: live, now: now, historyLimit: 0,
                                                         onlyEnabled: true)
        var written: [LiveReport] = []
        for (report, token) in reporter.changed(snapshot.accounts, now: now) where try await fixture.store.recordLiveReport(report) {
            reporter.written(report, token: token)
            written.append(report)
        }
        return written
    }

    private func refused(_ account: AccountID, failures: Int) -> HealthSnapshot {
        var snapshot = HealthSnapshot(account: account, state: .down, lastFailureCode: SessionManagerError.proxyRefusedCode, consecutiveFailures: failures)
        snapshot.lastFailureSummary = "the SOCKS5 proxy 127.0.0.1:1080 refused the password (attempt \(failures))"
        return snapshot
    }

    @Test func aRefusingProxyIsKeptOnceAndItsEndReplacesIt() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        _ = try await fixture.store.acquireLease(account: account, holder: holder, now: fixture.clock.now(), ttl: 3600, holderIsDead: { _ in false })
        var reporter = LiveReporter(holder: holder)
        let start = fixture.clock.now()

        let first = try await look(&reporter, fixture, live: [account: refused(account, failures: 1)])
        #expect(first.count == 1)
        let report = try #require(first.first)
        #expect(!report.ready && report.needsAPerson && report.health == "down")
        #expect(report.reasons.map(\.code) == [HealthReport.Reason.proxyRefused])
        #expect(report.reasons.first?.text.contains("tgsm session proxy --account \(account.rawValue) --set -") == true)
        #expect(try await fixture.store.liveReports() == [report])

        // The same again, then only the attempt count in the text: no write until a minute passed.
        fixture.clock.advance(by: 10)
        #expect(try await look(&reporter, fixture, live: [account: refused(account, failures: 1)]).isEmpty)
        fixture.clock.advance(by: 10)
        #expect(try await look(&reporter, fixture, live: [account: refused(account, failures: 2)]).isEmpty)
        fixture.clock.advance(by: LiveReportService.textRefreshInterval)
        let refreshed = try await look(&reporter, fixture, live: [account: refused(account, failures: 9)])
        #expect(refreshed.first?.reasons.first?.text.contains("attempt 9") == true)
        #expect(refreshed.first?.since == start, "the same reasons: since the first look that saw them")

        // Fixed: ready from now on.
        fixture.clock.advance(by: 10)
        let healthy = HealthSnapshot(account: account, state: .healthy, lastSuccess: fixture.clock.now(), consecutiveFailures: 0)
        let ready = try await look(&reporter, fixture, live: [account: healthy])
        #expect(ready.first?.ready == true && ready.first?.reasons.isEmpty == true)
        #expect(ready.first?.since == fixture.clock.now())
        #expect(try await fixture.store.liveReports().map(\.ready) == [true])
    }

    @Test func onlyTheLeaseHolderReportsAndATakenBackLeaseIsReportedAgain() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        let other = LeaseHolder(host: "other-host", pid: 7)
        let healthy = HealthSnapshot(account: account, state: .healthy, lastSuccess: fixture.clock.now(), consecutiveFailures: 0)
        var reporter = LiveReporter(holder: holder)

        // Standing by (another process holds the lease): nothing to say, nothing tried.
        _ = try await fixture.store.acquireLease(account: account, holder: other, now: fixture.clock.now(), ttl: 30, holderIsDead: { _ in false })
        #expect(try await look(&reporter, fixture, live: [account: healthy]).isEmpty)

        // Taken over: reported; the other process, back in charge later, writes its own; taken again: reported again,
        // though this process says what it said before.
        fixture.clock.advance(by: 60)
        _ = try await fixture.store.acquireLease(account: account, holder: holder, now: fixture.clock.now(), ttl: 30, holderIsDead: { _ in false })
        #expect(try await look(&reporter, fixture, live: [account: healthy]).count == 1)
        fixture.clock.advance(by: 60)
        _ = try await fixture.store.acquireLease(account: account, holder: other, now: fixture.clock.now(), ttl: 30, holderIsDead: { _ in false })
        var theirReport = try #require(try await fixture.store.liveReports().first)
        theirReport.holder = other
        theirReport.health = "degraded"
        #expect(try await fixture.store.recordLiveReport(theirReport))
        #expect(try await look(&reporter, fixture, live: [account: healthy]).isEmpty)
        fixture.clock.advance(by: 60)
        _ = try await fixture.store.acquireLease(account: account, holder: holder, now: fixture.clock.now(), ttl: 30, holderIsDead: { _ in false })
        #expect(try await look(&reporter, fixture, live: [account: healthy]).count == 1)
        #expect(try await fixture.store.liveReports().first?.holder == holder)
    }

    /// The reasons the store says itself (a mark) are kept too, as /health gives them; `tgsm status`
    /// and `tgsm check` leave those to the store's own lines.
    @Test func aMarkedAccountsReportNamesTheMarkAsTheStoreKnowsIt() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = Fixture.phoneAccount
        _ = try await fixture.store.acquireLease(account: account, holder: holder, now: fixture.clock.now(), ttl: 3600, holderIsDead: { _ in false })
        var reporter = LiveReporter(holder: holder)
        let terminal = HealthSnapshot(account: account, state: .terminal, lastFailureCode: "TGSM-AUTH-002", consecutiveFailures: 0)
        let report = try #require(try await look(&reporter, fixture, live: [account: terminal]).first)
        #expect(report.reasons.map(\.code) == ["marked_revoked"])
        #expect(report.reasons.allSatisfy { HealthReport.Reason.isKnownToTheStore($0.code) })
        #expect(!report.reasons.contains { $0.text.contains(Fixture.phoneDigits) }, "phone-like ids are masked as /health masks them")
    }
}
