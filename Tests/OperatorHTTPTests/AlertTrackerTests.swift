import Foundation
import MTProto
import MTProtoClient
import MTProtoCrypto
import OperatorHTTP
import SessionManager
import Testing
import Workers

/// The alert tracker fed snapshots gathered from a real store and queue (the fixture: a healthy
/// account with a flood wait, a phone-number account marked revoked, one dead job), at times the
/// test chooses.
@Suite struct AlertTrackerTests {
    static let me = LeaseHolder(host: "host-a", pid: 100)

    func look(_ fixture: Fixture, _ tracker: inout AlertTracker, at offset: Double, accounts: [AccountID],
              live: [AccountID: HealthSnapshot], claimFailure: ClaimFailure? = nil) async throws -> [Alert] {
        let snapshot = try await OperatorSnapshot.gather(store: fixture.store, queue: fixture.queue, enabled: accounts, live: live,
                                                         now: UnixTime(seconds: Fixture.now + offset), historyLimit: 0, claimFailure: claimFailure)
        return tracker.observe(snapshot)
    }

    func healthy(_ account: AccountID) -> HealthSnapshot {
        HealthSnapshot(account: account, state: .healthy, lastSuccess: UnixTime(seconds: Fixture.now - 10), consecutiveFailures: 0)
    }

    @Test func anAccountThatNeedsAPersonIsReportedAtOnceAndOnlyOnceMasked() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        var tracker = AlertTracker(host: "host-a", holder: Self.me)
        let accounts = [fixture.account, Fixture.phoneAccount]
        let live = [fixture.account: healthy(fixture.account), Fixture.phoneAccount: HealthSnapshot(account: Fixture.phoneAccount, state: .terminal,
                                                                                                      lastFailureCode: "TGSM-AUTH-002", consecutiveFailures: 0)]
        let first = try await look(fixture, &tracker, at: 0, accounts: accounts, live: live)
        #expect(first.count == 1, "\(first)")
        let alert = try #require(first.first)
        #expect(alert.event == .accountNeedsAttention && alert.severity == .critical)
        #expect(alert.account == Fixture.maskedPhone && alert.codes == ["marked_revoked"])
        #expect(alert.summary == "\(Fixture.maskedPhone) needs a person")
        #expect(alert.steps.first?.hasPrefix("marked revoked (TGSM-AUTH-002, SESSION_REVOKED)") == true, "\(alert.steps)")
        #expect(alert.text.hasPrefix("[critical] tgsm on host-a: \(Fixture.maskedPhone) needs a person — marked revoked"), "\(alert.text)")
        let json = String(decoding: try JSONEncoder().encode(first), as: UTF8.self)
        #expect(!json.contains(Fixture.phoneDigits), "a phone number in \(json)")
        // The dead job was there at the first look: no alert for it. Nothing changed: nothing said.
        #expect(try await look(fixture, &tracker, at: 10, accounts: accounts, live: live).isEmpty)
        #expect(try await look(fixture, &tracker, at: 3600, accounts: accounts, live: live).isEmpty)
    }

    /// Workers that cannot claim jobs make every account they serve not ready in /health, but the
    /// webhook hears it once for the process (`queue_failing`), not once per account as well.
    @Test func workersThatCannotClaimAreNotAnAlertPerAccount() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        var tracker = AlertTracker(policy: .init(holdOff: 0), host: "host-a", holder: Self.me)
        let failure = ClaimFailure(error: "the job queue's file jobs.sqlite is damaged", since: UnixTime(seconds: Fixture.now), needsAPerson: true)
        let live = [fixture.account: healthy(fixture.account)]
        let snapshot = try await OperatorSnapshot.gather(store: fixture.store, queue: fixture.queue, enabled: [fixture.account], live: live,
                                                         now: UnixTime(seconds: Fixture.now), historyLimit: 0, claimFailure: failure)
        #expect(HealthReport(snapshot).accounts.first?.reasonCodes == ["queue_damaged"], "the precondition: /health says it")
        #expect(try await look(fixture, &tracker, at: 0, accounts: [fixture.account], live: live, claimFailure: failure).isEmpty)
        #expect(try await look(fixture, &tracker, at: 60, accounts: [fixture.account], live: live).isEmpty, "and no \"ready again\" either")
    }

    @Test func whatMayPassByItselfWaitsForTheHoldOffAndItsEndIsSaid() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        var tracker = AlertTracker(policy: .init(holdOff: 60), host: "host-a", holder: Self.me)
        let account = fixture.account
        let down = [account: HealthSnapshot(account: account, state: .down, lastFailureCode: "TGSM-NET-001", consecutiveFailures: 4)]
        let up = [account: healthy(account)]
        // A blip: down, then up within the hold-off. Nothing at all.
        #expect(try await look(fixture, &tracker, at: 0, accounts: [account], live: down).isEmpty)
        #expect(try await look(fixture, &tracker, at: 30, accounts: [account], live: up).isEmpty)
        // Down for longer: one warning after 60 s (counted from the first look that saw it), then its end.
        #expect(try await look(fixture, &tracker, at: 100, accounts: [account], live: down).isEmpty)
        #expect(try await look(fixture, &tracker, at: 150, accounts: [account], live: down).isEmpty)
        let reported = try await look(fixture, &tracker, at: 160, accounts: [account], live: down)
        #expect(reported.map(\.event) == [.accountNeedsAttention] && reported.first?.severity == .warning, "\(reported)")
        #expect(reported.first?.summary == "\(account) cannot work" && reported.first?.codes == ["down"])
        #expect(try await look(fixture, &tracker, at: 170, accounts: [account], live: down).isEmpty)
        let recovered = try await look(fixture, &tracker, at: 200, accounts: [account], live: up)
        #expect(recovered.map(\.event) == [.accountRecovered] && recovered.first?.severity == .info)
        #expect(recovered.first?.text == "[ok] tgsm on host-a: \(account) is ready again")
        #expect(try await look(fixture, &tracker, at: 210, accounts: [account], live: up).isEmpty)
    }

    /// A proxy that refuses the account's credentials does not pass by itself: critical at once,
    /// even after a success (a running account whose link someone changed to a wrong password),
    /// with the command that fixes it, and nothing in /health or the alert that names the proxy's
    /// user. Ready again once a call gets through.
    @Test func aProxyThatRefusesTheAccountNeedsAPersonAtOnce() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        var tracker = AlertTracker(policy: .init(holdOff: 600), host: "host-a", holder: Self.me)
        var refused = HealthSnapshot(account: account, state: .degraded, lastSuccess: UnixTime(seconds: Fixture.now - 30),
                                     lastFailureCode: SessionManagerError.proxyRefusedCode, consecutiveFailures: 1)
        refused.lastFailureSummary = "the account's proxy refused the connection to DC 2 (the SOCKS5 proxy rejected the username and password "
            + "(status 1): check the credentials configured for it. [SOCKS5 proxy 127.0.0.1:1080 (with a user name and password)])"
        let alerts = try await look(fixture, &tracker, at: 0, accounts: [account], live: [account: refused])
        let alert = try #require(alerts.first, "\(alerts)")
        #expect(alert.severity == .critical && alert.codes == ["proxy_refused"] && alert.summary == "\(account) needs a person", "\(alert)")
        #expect(alert.steps.first?.contains("tgsm session proxy --account \(account) --set -") == true, "\(alert.steps)")
        let snapshot = try await OperatorSnapshot.gather(store: fixture.store, queue: fixture.queue, enabled: [account], live: [account: refused],
                                                         now: UnixTime(seconds: Fixture.now), historyLimit: 0)
        let health = HealthReport(snapshot)
        #expect(!health.ready && health.accounts.first?.reasonCodes == ["proxy_refused"], "\(health)")
        // A plain network failure after a success is still no reason (a blip).
        var blip = refused
        blip.lastFailureCode = "TGSM-NET-001"
        #expect(HealthReport(try await OperatorSnapshot.gather(store: fixture.store, queue: fixture.queue, enabled: [account], live: [account: blip],
                                                               now: UnixTime(seconds: Fixture.now), historyLimit: 0)).ready)
        // Unless the proxy changed since that success: nothing has got through the new way yet.
        var moved = blip
        moved.routeChangedAt = UnixTime(seconds: Fixture.now - 20)
        let notYet = HealthReport(try await OperatorSnapshot.gather(store: fixture.store, queue: fixture.queue, enabled: [account], live: [account: moved],
                                                                    now: UnixTime(seconds: Fixture.now), historyLimit: 0))
        #expect(!notYet.ready && notYet.accounts.first?.reasonCodes == ["not_connected"], "\(notYet)")
        #expect(notYet.accounts.first?.reasons.first?.contains("since its proxy changed at") == true)
        let recovered = try await look(fixture, &tracker, at: 30, accounts: [account], live: [account: healthy(account)])
        #expect(recovered.map(\.event) == [.accountRecovered], "\(recovered)")
    }

    /// Still needing a person a day later: said again, as a reminder. A reason added to "needs a
    /// person" is detail in /health, not a second page; a waiting condition that comes to need a
    /// person is said at once. With reminders off, only that.
    @Test func remindersAndNewReasons() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let phone = Fixture.phoneAccount
        let live = [phone: HealthSnapshot(account: phone, state: .terminal, consecutiveFailures: 0)]
        var tracker = AlertTracker(policy: .init(repeatAfter: 86_400), host: "host-a", holder: Self.me)
        #expect(try await look(fixture, &tracker, at: 0, accounts: [phone], live: live).count == 1)
        #expect(try await look(fixture, &tracker, at: 86_000, accounts: [phone], live: live).isEmpty)
        let reminder = try await look(fixture, &tracker, at: 86_400, accounts: [phone], live: live)
        #expect(reminder.first?.summary == "\(Fixture.maskedPhone) needs a person (still, since 2027-01-15T08:00:00Z)", "\(reminder)")
        // The process stops running it (no live health): one more reason, not a second page.
        #expect(try await look(fixture, &tracker, at: 86_500, accounts: [phone], live: [:]).isEmpty)

        // Not connected yet, then down: one outage, one warning, in this process and after a restart.
        var outage = AlertTracker(policy: .init(holdOff: 10), host: "host-a", holder: Self.me)
        let notYet = [fixture.account: HealthSnapshot(account: fixture.account, state: .degraded, lastFailureCode: "TGSM-NET-001", consecutiveFailures: 1)]
        let downNow = [fixture.account: HealthSnapshot(account: fixture.account, state: .down, lastFailureCode: "TGSM-NET-001", consecutiveFailures: 5)]
        #expect(try await look(fixture, &outage, at: 0, accounts: [fixture.account], live: notYet).isEmpty)
        let first = try await look(fixture, &outage, at: 10, accounts: [fixture.account], live: notYet)
        #expect(first.first?.codes == ["not_connected"], "\(first)")
        #expect(try await look(fixture, &outage, at: 40, accounts: [fixture.account], live: downNow).isEmpty, "the same outage")
        var memory: [String: UnixTime] = [:]
        for key in first.flatMap(\.memoryKeys) { memory[key] = UnixTime(seconds: Fixture.now + 10) }
        var restarted = AlertTracker(policy: .init(holdOff: 10), host: "host-a", holder: Self.me, remembered: memory)
        #expect(try await look(fixture, &restarted, at: 50, accounts: [fixture.account], live: downNow).isEmpty)
        #expect(try await look(fixture, &restarted, at: 70, accounts: [fixture.account], live: downNow).isEmpty, "said before the restart")

        // Down (a warning after the hold-off), then logged out: said at once, as needing a person.
        let account = fixture.account
        var escalating = AlertTracker(policy: .init(holdOff: 60), host: "host-a", holder: Self.me)
        let down = [account: HealthSnapshot(account: account, state: .down, lastFailureCode: "TGSM-NET-001", consecutiveFailures: 4)]
        #expect(try await look(fixture, &escalating, at: 0, accounts: [account], live: down).isEmpty)
        #expect(try await look(fixture, &escalating, at: 60, accounts: [account], live: down).first?.severity == .warning)
        try await fixture.store.setStatus(AccountStatus(state: .revoked, since: UnixTime(seconds: Fixture.now + 70), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: account)
        let person = try await look(fixture, &escalating, at: 70, accounts: [account], live: down)
        #expect(person.first?.severity == .critical && person.first?.codes.contains("marked_revoked") == true, "\(person)")

        var quiet = AlertTracker(policy: .init(repeatAfter: 0), host: "host-a", holder: Self.me)
        #expect(try await look(fixture, &quiet, at: 0, accounts: [phone], live: live).count == 1)
        #expect(try await look(fixture, &quiet, at: 10 * 86_400, accounts: [phone], live: live).isEmpty)
    }

    /// Revoked, logged in again ("ready again"), revoked again: the second time is a new incident,
    /// said at once, in this process and in one started after the first was said (before: taken for
    /// the first, said a day later at the earliest).
    @Test func aSecondIncidentAfterReadyAgainIsSaidAgain() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        let revoked = [account: HealthSnapshot(account: account, state: .terminal, lastFailureCode: "TGSM-AUTH-002", consecutiveFailures: 0)]
        let ready = [account: healthy(account)]
        var memory: [String: UnixTime] = [:]
        func note(_ alerts: [Alert], at offset: Double) {
            for key in alerts.flatMap(\.memoryKeys) { memory[key] = UnixTime(seconds: Fixture.now + offset) }
        }
        var tracker = AlertTracker(host: "host-a", holder: Self.me)
        let first = try await look(fixture, &tracker, at: 0, accounts: [account], live: revoked)
        #expect(first.first?.severity == .critical, "\(first)")
        note(first, at: 0)
        let back = try await look(fixture, &tracker, at: 100, accounts: [account], live: ready)
        #expect(back.map(\.event) == [.accountRecovered])
        note(back, at: 100)
        let second = try await look(fixture, &tracker, at: 200, accounts: [account], live: revoked)
        #expect(second.map(\.event) == [.accountNeedsAttention] && second.first?.severity == .critical, "\(second)")

        // A process started after that recovery, remembering both: the incident after it is new.
        var restarted = AlertTracker(host: "host-a", holder: Self.me, remembered: memory)
        let afterRestart = try await look(fixture, &restarted, at: 300, accounts: [account], live: revoked)
        #expect(afterRestart.map(\.event) == [.accountNeedsAttention], "\(afterRestart)")
        note(afterRestart, at: 300)
        var again = AlertTracker(host: "host-a", holder: Self.me, remembered: memory)
        #expect(try await look(fixture, &again, at: 400, accounts: [account], live: revoked).isEmpty, "this incident was said")
        // The same incident with one reason fewer (a process that runs it again): not said again.
        let running = [account: HealthSnapshot(account: account, state: .terminal, lastFailureCode: "TGSM-AUTH-002", consecutiveFailures: 0)]
        #expect(try await look(fixture, &again, at: 410, accounts: [account], live: running).isEmpty)
    }

    @Test func telegramNoticesThatNeedAPersonAreSaidOnceEachCodesMasked() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        var snapshot = healthy(account)
        func received(_ type: String, _ message: String, popup: Bool, at offset: Double, repeat isRepeat: Bool = false) -> ReceivedServiceNotification {
            ReceivedServiceNotification(notification: ServiceNotification(type: type, message: message, popup: popup, inboxDate: nil),
                                        receivedAt: UnixTime(seconds: Fixture.now + offset), isRepeat: isRepeat)
        }
        snapshot.serviceNotifications = [
            received("LOGIN_CODE", "Login code: 12345", popup: false, at: -30),
            received("AUTH_KEY_DROP_DUPLICATE", "Log out now, code 98765", popup: true, at: -20),
        ]
        var tracker = AlertTracker(host: "host-a", holder: Self.me)
        let first = try await look(fixture, &tracker, at: 0, accounts: [account], live: [account: snapshot])
        #expect(first.map(\.event) == [.telegramNotice], "a note is no alert: \(first)")
        let drop = try #require(first.first)
        #expect(drop.severity == .critical && drop.codes == ["AUTH_KEY_DROP_DUPLICATE"])
        #expect(drop.summary == "\(account): Telegram asked this session to log out (AUTH_KEY_DROP_DUPLICATE): Log out now, code •••••", "\(drop.summary)")
        #expect(drop.steps == NoticeAdvice.logOutRequested.steps && drop.at == "2027-01-15T07:59:40Z")
        #expect(try await look(fixture, &tracker, at: 10, accounts: [account], live: [account: snapshot]).isEmpty)

        snapshot.serviceNotifications.append(received("NEW_AUTHORIZATION_UNCONFIRMED", "Pixel 7, Berlin", popup: true, at: 15))
        snapshot.serviceNotifications.append(received("AUTH_KEY_DROP_DUPLICATE", "again", popup: true, at: 16, repeat: true))
        let next = try await look(fixture, &tracker, at: 20, accounts: [account], live: [account: snapshot])
        #expect(next.map(\.codes) == [["NEW_AUTHORIZATION_UNCONFIRMED"]] && next.first?.severity == .warning, "a repeat is not said again: \(next)")
    }

    @Test func aLongFloodWaitIsSaidOnce() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        var tracker = AlertTracker(policy: .init(longFloodWait: 3600), host: "host-a", holder: Self.me)
        #expect(try await look(fixture, &tracker, at: 0, accounts: [account], live: [account: healthy(account)]).isEmpty,
                "the fixture's wait is 32 minutes: under the threshold")
        var sensitive = AlertTracker(policy: .init(longFloodWait: 1800), host: "host-a", holder: Self.me)
        let first = try await look(fixture, &sensitive, at: 0, accounts: [account], live: [account: healthy(account)])
        let wait = try #require(first.first)
        #expect(wait.event == .longFloodWait && wait.severity == .warning && wait.codes == ["FLOOD_WAIT", Fixture.floodMethod])
        #expect(wait.summary == "\(account): Telegram made messages.sendMessage wait 32m00s, until 2027-01-15T08:30:00Z", "\(wait.summary)")
        #expect(try await look(fixture, &sensitive, at: 60, accounts: [account], live: [account: healthy(account)]).isEmpty)
    }

    /// Each dead letter is said once, with its account and error, by the process that serves the
    /// account. A dead letter retried and another job dead between two looks (as many dead as
    /// before) is no longer missed, and a cluster's other processes leave it alone.
    @Test func eachDeadLetterIsSaidOnceWithItsAccountAndErrorByTheProcessServingIt() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        let now = UnixTime(seconds: Fixture.now)
        _ = try await fixture.store.acquireLease(account: account, holder: Self.me, now: now, ttl: 3600, holderIsDead: { _ in false })
        var mine = AlertTracker(host: "host-a", holder: Self.me)
        var other = AlertTracker(host: "host-b", holder: LeaseHolder(host: "host-b", pid: 7))
        func look(_ tracker: inout AlertTracker, at offset: Double, serving: Bool) async throws -> [Alert] {
            let snapshot = try await OperatorSnapshot.gather(
                store: fixture.store, queue: fixture.queue, enabled: [account], live: serving ? [account: healthy(account)] : [:],
                now: now + offset, historyLimit: 0, deadLettersWithin: 600)
            return tracker.observe(snapshot)
        }
        // The fixture's dead letter is in the history's window and no process said it: said at the
        // first look, by the process serving the account only.
        let first = try await look(&mine, at: 0, serving: true)
        #expect(first.map(\.event) == [.jobsDeadLettered] && first.first?.memoryKeys.count == 1, "\(first)")
        #expect(try await look(&other, at: 0, serving: false).isEmpty)
        #expect(try await look(&mine, at: 5, serving: true).isEmpty)
        var memory: [String: UnixTime] = [:]
        for key in first.flatMap(\.memoryKeys) { memory[key] = now }
        try await fixture.queue.requeue(fixture.deadJob, now: now + 1)
        let claimed = try #require(try await fixture.queue.claim(
            ClaimRequest(accounts: [account], limit: 1, perAccountLimit: 10, owner: "w", leaseSeconds: 60), now: now + 2).first)
        _ = try await fixture.queue.retry(claimed.claim, error: "PEER_ID_INVALID for \(Fixture.phoneAccount)", retryAt: nil, now: now + 3)
        #expect(try await fixture.queue.counts(account: nil)[.dead] == 1)

        let said = try await look(&mine, at: 10, serving: true)
        #expect(said.map(\.event) == [.jobsDeadLettered], "\(said)")
        let alert = try #require(said.first)
        #expect(alert.account == account.rawValue)
        #expect(alert.summary == "1 job of \(account) ended dead-lettered (1 dead in all): PEER_ID_INVALID for \(Fixture.maskedPhone)",
                "\(alert.summary)")
        #expect(alert.steps.first?.contains("(jobs \(claimed.job.id.rawValue))") == true, "\(alert.steps)")
        #expect(!"\(said)".contains(Fixture.phoneDigits))
        // The process holding the account said it; another one does not, and neither says it twice.
        #expect(try await look(&other, at: 10, serving: false).isEmpty)
        #expect(try await look(&mine, at: 20, serving: true).isEmpty)
        // A process started since, with what the first process said in the store: its first look
        // says only the second death, which no process said (the job retried and dead again while
        // no process watched).
        var restarted = AlertTracker(host: "host-a", holder: Self.me, remembered: memory)
        let atRestart = try await look(&restarted, at: 30, serving: true)
        #expect(atRestart.count == 1 && atRestart.first?.summary.contains("PEER_ID_INVALID") == true, "\(atRestart)")
        for key in (first + said).flatMap(\.memoryKeys) { memory[key] = now }
        var again = AlertTracker(host: "host-a", holder: Self.me, remembered: memory)
        #expect(try await look(&again, at: 40, serving: true).isEmpty, "both were said")
    }

    /// Without the queue's history (a snapshot that did not read it), a growing number of dead
    /// letters is said.
    @Test func deadLettersAreSaidWhenTheyGrow() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        var tracker = AlertTracker(host: "host-a", holder: Self.me)
        #expect(try await look(fixture, &tracker, at: 0, accounts: [account], live: [account: healthy(account)]).isEmpty)
        let now = UnixTime(seconds: Fixture.now)
        let claimed = try await fixture.queue.claim(
            ClaimRequest(accounts: [account], limit: 1, perAccountLimit: 10, owner: "test", leaseSeconds: 60), now: now)
        let job = try #require(claimed.first)
        try await fixture.queue.retry(job.claim, error: "PEER_ID_INVALID", retryAt: nil, now: now)
        let alerts = try await look(fixture, &tracker, at: 10, accounts: [account], live: [account: healthy(account)])
        #expect(alerts.map(\.event) == [.jobsDeadLettered] && alerts.first?.account == nil, "\(alerts)")
        #expect(alerts.first?.summary.hasPrefix("1 job ended dead-lettered (") == true, "\(alerts)")
        #expect(try await look(fixture, &tracker, at: 20, accounts: [account], live: [account: healthy(account)]).isEmpty)
    }

    /// A network outage takes every account down at once: one alert naming them, not one each;
    /// their recovery likewise.
    @Test func manyAccountsAtOnceAreOneAlert() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let accounts = (1...7).map { AccountID("acct-\($0)") }
        for account in accounts {
            try await fixture.store.saveSession(SessionState(homeDC: 2, dcs: [2: DCSessionState(authKey: try AuthKey(Array(repeating: 7, count: 256)), isAuthorized: true)],
                                                             userID: 1), account: account, fence: nil)
        }
        func live(_ state: HealthState) -> [AccountID: HealthSnapshot] {
            Dictionary(uniqueKeysWithValues: accounts.map { ($0, HealthSnapshot(account: $0, state: state, lastSuccess: UnixTime(seconds: Fixture.now - 5),
                                                                                   lastFailureCode: "TGSM-NET-001", consecutiveFailures: state == .down ? 3 : 0)) })
        }
        var tracker = AlertTracker(policy: .init(holdOff: 0, groupAbove: 5), host: "host-a", holder: Self.me)
        #expect(try await look(fixture, &tracker, at: 0, accounts: accounts, live: live(.healthy)).isEmpty)
        let down = try await look(fixture, &tracker, at: 10, accounts: accounts, live: live(.down))
        #expect(down.count == 1, "\(down)")
        let alert = try #require(down.first)
        #expect(alert.event == .accountNeedsAttention && alert.account == nil && alert.severity == .warning && alert.codes == ["down"])
        #expect(alert.summary == "7 accounts cannot work: acct-1, acct-2, acct-3, acct-4, acct-5, acct-6, acct-7", "\(alert.summary)")
        #expect(alert.steps.first == "acct-1, for one:" && alert.steps.count == 2, "\(alert.steps)")
        let up = try await look(fixture, &tracker, at: 20, accounts: accounts, live: live(.healthy))
        #expect(up.map(\.summary) == ["7 accounts are ready again: acct-1, acct-2, acct-3, acct-4, acct-5, acct-6, acct-7"], "\(up)")
        // At or under the threshold, each its own.
        var small = AlertTracker(policy: .init(holdOff: 0, groupAbove: 7), host: "host-a", holder: Self.me)
        _ = try await look(fixture, &small, at: 0, accounts: accounts, live: live(.healthy))
        #expect(try await look(fixture, &small, at: 10, accounts: accounts, live: live(.down)).count == 7)
    }

    /// A restarted process (a deploy, a restart loop) is given what earlier ones said: it does not
    /// say it again within the reminder interval, and says "ready again" for an account they reported.
    @Test func aRestartedProcessNeitherRepeatsNorLosesWhatEarlierOnesSaid() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let phone = Fixture.phoneAccount
        let revoked = [phone: HealthSnapshot(account: phone, state: .terminal, consecutiveFailures: 0)]
        var first = AlertTracker(host: "host-a", holder: Self.me)
        let said = try await look(fixture, &first, at: 0, accounts: [phone], live: revoked)
        #expect(said.count == 1 && said.first?.memoryKeys == ["account:\(phone.rawValue):marked_revoked"], "\(said)")
        // The key names the account unmasked: it stays in the store, never in what is sent.
        let json = String(decoding: try JSONEncoder().encode(said), as: UTF8.self)
        #expect(!json.contains("\"key\"") && !json.contains(Fixture.phoneDigits), "\(json)")
        var memory: [String: UnixTime] = [:]
        for key in said.flatMap(\.memoryKeys) { memory[key] = UnixTime(seconds: Fixture.now) }

        var restarted = AlertTracker(host: "host-a", holder: Self.me, remembered: memory)
        #expect(try await look(fixture, &restarted, at: 30, accounts: [phone], live: revoked).isEmpty, "said by the earlier process")
        let reminder = try await look(fixture, &restarted, at: 86_400, accounts: [phone], live: revoked)
        #expect(reminder.first?.summary.contains("(still, since") == true, "the reminder keeps the earlier time: \(reminder)")

        // An account an earlier process reported as down, ready after the restart: said once.
        let account = fixture.account
        let told = ["account:\(account.rawValue):down": UnixTime(seconds: Fixture.now - 600)]
        var afterFix = AlertTracker(host: "host-a", holder: Self.me, remembered: told)
        let recovered = try await look(fixture, &afterFix, at: 0, accounts: [account], live: [account: healthy(account)])
        #expect(recovered.map(\.event) == [.accountRecovered] && recovered.first?.memoryKeys == ["recovered:\(account.rawValue)"], "\(recovered)")
        #expect(try await look(fixture, &afterFix, at: 10, accounts: [account], live: [account: healthy(account)]).isEmpty)
        var later = AlertTracker(host: "host-a", holder: Self.me, remembered: told.merging(["recovered:\(account.rawValue)": UnixTime(seconds: Fixture.now)]) { $1 })
        #expect(try await look(fixture, &later, at: 20, accounts: [account], live: [account: healthy(account)]).isEmpty, "its recovery was said too")
    }

    /// A frozen account after a restart: the freeze the store keeps is what the new process sees
    /// (its own health knows nothing yet), so it neither says "ready again" nor repeats the alert an
    /// earlier process sent; a new process with no memory says it once, with where to appeal.
    @Test func aKeptFreezeIsNeitherRepeatedNorTakenForARecoveryAfterARestart() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        try await fixture.store.recordFreeze(StoredAccountFreeze(account: account, since: UnixTime(seconds: Fixture.now - 3600),
                                                                 deletedAfter: UnixTime(seconds: Fixture.now + 30 * 86_400), appealURL: "https://t.me/spambot",
                                                                 confirmedAt: UnixTime(seconds: Fixture.now - 3600)))
        var fresh = AlertTracker(host: "host-a", holder: Self.me)
        let said = try await look(fixture, &fresh, at: 0, accounts: [account], live: [account: healthy(account)])
        #expect(said.map(\.event) == [.accountNeedsAttention] && said.first?.codes == ["frozen"], "\(said)")
        #expect(said.first?.steps.first?.contains("appeal at https://t.me/spambot") == true, "\(said)")

        var restarted = AlertTracker(host: "host-a", holder: Self.me, remembered: ["account:\(account.rawValue):frozen": UnixTime(seconds: Fixture.now - 3000)])
        #expect(try await look(fixture, &restarted, at: 0, accounts: [account], live: [account: healthy(account)]).isEmpty)
    }

    /// In a cluster, an account another live process holds is that process's to report.
    @Test func anAccountHeldByAnotherLiveProcessIsLeftToIt() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        let now = UnixTime(seconds: Fixture.now)
        _ = try await fixture.store.acquireLease(account: account, holder: LeaseHolder(host: "host-b", pid: 7), now: now, ttl: 30, holderIsDead: { _ in false })
        var tracker = AlertTracker(host: "host-a", holder: Self.me)
        #expect(try await look(fixture, &tracker, at: 0, accounts: [account], live: [:]).isEmpty)
        // Its lease expired (that process died): this one reports it once that lasts the hold-off
        // (a standby takes such an account over within seconds; a store stall ends by itself).
        #expect(try await look(fixture, &tracker, at: 31, accounts: [account], live: [:]).isEmpty)
        let orphaned = try await look(fixture, &tracker, at: 91, accounts: [account], live: [:])
        #expect(orphaned.first?.codes == ["not_running"] && orphaned.first?.severity == .warning, "\(orphaned)")
    }

    /// An account taken over from another process of the store (its lease let go, a standby
    /// took it) brings what that process said: its long flood wait is not said again minutes
    /// later. Before, this process knew only what the memory held at its own start.
    @Test func whatAProcessSaidOfAnAccountIsNotSaidAgainByTheProcessThatTakesItOver() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.remove() }
        let account = fixture.account
        let other = LeaseHolder(host: "host-b", pid: 7)
        let policy = AlertTracker.Policy(longFloodWait: 1800)
        var standby = AlertTracker(policy: policy, host: "host-a", holder: Self.me, remembered: try await fixture.store.recentlySent(now: UnixTime(seconds: Fixture.now)))
        let lease = try await fixture.store.acquireLease(account: account, holder: other, now: UnixTime(seconds: Fixture.now), ttl: 600, holderIsDead: { _ in false })
        var holder = AlertTracker(policy: policy, host: "host-b", holder: other)
        let said = try await look(fixture, &holder, at: 0, accounts: [account], live: [account: healthy(account)])
        #expect(said.map(\.event) == [.longFloodWait])
        try await fixture.store.remember(said.flatMap(\.memoryKeys), at: UnixTime(seconds: Fixture.now))
        #expect(try await look(fixture, &standby, at: 0, accounts: [account], live: [:]).isEmpty, "held by host-b")

        try await fixture.store.releaseLease(lease)
        _ = try await fixture.store.acquireLease(account: account, holder: Self.me, now: UnixTime(seconds: Fixture.now + 180), ttl: 600, holderIsDead: { _ in false })
        let snapshot = try await OperatorSnapshot.gather(store: fixture.store, queue: fixture.queue, enabled: [account], live: [account: healthy(account)],
                                                         now: UnixTime(seconds: Fixture.now + 180), historyLimit: 0)
        #expect(standby.newlyWatched(in: snapshot) == [account])
        var forgetful = standby
        #expect(forgetful.observe(snapshot).map(\.event) == [.longFloodWait], "without the memory read again: said twice")
        standby.recall(try await fixture.store.recentlySent(now: UnixTime(seconds: Fixture.now + 180)))
        #expect(standby.observe(snapshot).isEmpty)
        #expect(standby.newlyWatched(in: snapshot).isEmpty)
    }
}
