import Foundation
import GRDB
import Logging
import MTProto
import MTProtoClient
import OperatorHTTP
import SessionManager
import Synchronization
import TestDC
import Workers

/// How the run ended: each fault and whether it was handled, and anything else that went wrong.
struct SandboxOutcome {
    var faults: [(name: String, handled: Bool)] = []
    var problems: [String] = []
    var succeeded: Bool { problems.isEmpty && faults.allSatisfy(\.handled) }
}

/// The sandbox's moving parts and its scenario. Used from one task, start to end.
final class Sandbox {
    /// The test DC's world: Alice on DC 1, Bob on DC 1 with a 2FA password, Carol homed on DC 2
    /// (her login follows PHONE_MIGRATE_2). Codes come from the test DC as an SMS would.
    static let demoAccounts = [
        DemoAccount(account: "alice", phone: "15550001", userID: 1001, password: nil, homeDC: 1),
        DemoAccount(account: "bob", phone: "15550002", userID: 1002, password: "hunter2", homeDC: 1),
        DemoAccount(account: "carol", phone: "15550003", userID: 1003, password: nil, homeDC: 2),
    ]

    let folder: SandboxFolder
    let floodSeconds: Int
    let narrator: SandboxNarrator
    let dc: RunningTestDC
    /// Opened anew after the queue's salvage (the damaged file is moved aside under the old one).
    private(set) var queue: SQLiteJobQueue
    private(set) var archive: SQLiteMessageArchive
    let log = SandboxWorkerLog()
    private(set) var store: SQLiteSessionStore
    private(set) var sessions: SandboxSessions?
    private var pool: WorkerPool? {
        didSet { runningPool.set(pool) }
    }
    /// The pool as the dashboard sees it: the sandbox starts its workers again after a crash while
    /// the dashboard runs on.
    private let runningPool = RunningPool()
    private var poolTask: Task<Void, any Error>?
    private var follower: Task<Void, Never>?
    private var dashboard: (server: OperatorHTTPServer, task: Task<Void, any Error>, reports: Task<Void, any Error>)?
    /// The dashboard's port, kept across the store's reopening so its URL stays the same.
    private var dashboardPort = 0
    private var outcome = SandboxOutcome()
    /// Carol's jobs queued after her session was revoked: they run once she is back.
    private var carolJobs: [JobID] = []
    private let logger: Logger
    /// What `tgsm run --alert-webhook` would send, with its defaults, looked for after each step
    /// that calls for one; posted for real when the sandbox was given a webhook.
    private var alertTracker: AlertTracker = {
        let holder = LeaseHolder.current()
        return AlertTracker(host: holder.host, holder: holder)
    }()
    private let alertDelivery: AlertDelivery?

    private init(folder: SandboxFolder, floodSeconds: Int, narrator: SandboxNarrator, dc: RunningTestDC, store: SQLiteSessionStore,
                 queue: SQLiteJobQueue, archive: SQLiteMessageArchive, alertDelivery: AlertDelivery?, logger: Logger) {
        self.alertDelivery = alertDelivery
        self.folder = folder
        self.floodSeconds = floodSeconds
        self.narrator = narrator
        self.dc = dc
        self.store = store
        self.queue = queue
        self.archive = archive
        self.logger = logger
    }

    /// Starts the test DC and opens the store and the queue, narrating each.
    static func start(folder: SandboxFolder, floodSeconds: Int, narrator: SandboxNarrator, alertWebhook: WebhookURL? = nil) async throws -> Sandbox {
        // The parts' own logs would drown the story; the narrator tells what matters.
        let quiet = Logger(label: "tgsm.sandbox") { _ in SwiftLogNoOpLogHandler() }
        narrator.title("tgsm sandbox: the whole system on this machine, against a local test DC; nothing leaves it")
        narrator.info("folder: \(folder.path)" + (folder.isTemporary ? " (deleted at the end)" : ""))
        narrator.info("injected flood waits last \(floodSeconds) s here so the run is short (Telegram's last seconds to hours)")

        narrator.step("1. test DC")
        let running = try await TestDCServer.start(TestDCConfiguration(
            basePort: 0, dcCount: 2, controlEnabled: true, controlPort: 0,
            stateDirectory: URL(fileURLWithPath: folder.testDC, isDirectory: true), world: .default, logger: quiet))
        for entry in running.table.dcs { narrator.info("DC \(entry.id) listening on \(entry.host):\(entry.port)") }
        if let control = running.table.control { narrator.info("control endpoint (faults, login codes): \(control.url)") }

        narrator.step("2. store")
        let store: SQLiteSessionStore
        let queue: SQLiteJobQueue
        let archive: SQLiteMessageArchive
        do {
            store = try SQLiteSessionStore.open(directory: folder.store, options: SQLiteStoreOptions(logger: quiet))
            queue = try SQLiteJobQueue.open(path: folder.store + "/jobs.sqlite")
            archive = try SQLiteMessageArchive(writer: queue.writer)
        } catch {
            try? await running.shutdown()
            throw error
        }
        narrator.info("sessions: \(store.path) (backups in \(folder.store)/backups)")
        narrator.info("jobs and fetched messages: \(folder.store)/jobs.sqlite")
        if let alertWebhook { narrator.info("alerts: posted to \(alertWebhook.redacted) as well as shown here") }
        let delivery = alertWebhook.map { AlertDelivery(url: $0, clock: WallClock(), logger: quiet) }
        return Sandbox(folder: folder, floodSeconds: floodSeconds, narrator: narrator, dc: running, store: store, queue: queue,
                       archive: archive, alertDelivery: delivery, logger: quiet)
    }

    // MARK: - The scenario

    func runScenario() async throws -> SandboxOutcome {
        try await logIn()
        try await sampleJobs()
        try await floodWait()
        try await droppedConnection()
        try await revokedSession()
        try await corruptedStore()
        try await lostBackups()
        try await damagedQueue()
        try await comeBackWithoutACode()
        try await telegramsNotice()
        try await finish()
        return outcome
    }

    private func logIn() async throws {
        narrator.step("3. logging in \(Self.demoAccounts.count) demo accounts (codes are read from the test DC, as from an SMS)")
        let sessions = try SandboxSessions(store: store, cluster: folder.testDC, stack: Self.stackConfiguration, logger: logger)
        self.sessions = sessions
        narrator.info("connection profile: the test DC's \(folder.testDC)/dcs.json (as `--server DIR` would name it)")
        for demo in Self.demoAccounts {
            try await sessions.logIn(demo, dc: dc)
            let summary = try await store.accountSummary(demo.account)
            var how = "code"
            if demo.password != nil { how += " + 2FA password" }
            if demo.homeDC != 1 { how += ", PHONE_MIGRATE_\(demo.homeDC) followed" }
            narrator.ok("\(demo.account) (\(Self.masked(demo.phone))) logged in on DC \(summary?.homeDC ?? demo.homeDC), user \(demo.userID) (\(how))")
        }
    }

    private func sampleJobs() async throws {
        narrator.step("4. workers over sample jobs (2 at a time per account, carol 1)")
        try await startSessions(Self.demoAccounts.map(\.account))
        try await startDashboard()
        narrator.info("dashboard: http://127.0.0.1:\(dashboardPort)/  (health: /health, metrics: /metrics)")
        startWorkers(accounts: Self.demoAccounts.map(\.account))
        var ids: [(JobID, String)] = []
        for demo in Self.demoAccounts {
            ids.append((try await enqueue(NewJob(kind: MeJob.kind, account: demo.account)), "me for \(demo.account)"))
        }
        ids.append((try await enqueue(try NewJob(kind: ResolveJob.kind, account: "alice", json: ResolveJob.Payload(username: "testnews"))),
                    "resolve @testnews for alice"))
        ids.append((try await enqueue(try NewJob(
            kind: SendJob.kind, account: "alice", json: SendJob.Payload(peer: PeerReference(username: "bob"), text: "hello from the tgsm sandbox"),
            idempotencyKey: "sandbox-hello")), "send alice -> @bob"))
        for (id, label) in ids { try await expectCompleted(id, label) }
        // Everyone is ready: the alerts' first look, which says nothing.
        _ = await lookForAlerts()
    }

    private func floodWait() async throws {
        let name = "flood wait"
        narrator.step("5. fault: a flood wait")
        let rule = try dc.addFault(FaultRule(
            match: FaultMatch(method: "messages.getHistory", account: 1001, count: 1), effect: .floodWait(floodSeconds)))
        narrator.inject("FLOOD_WAIT_\(floodSeconds) to alice's next messages.getHistory")
        narrator.info("(the sandbox sleeps through no wait inside a call; by default tgsm does for waits up to 10 s)")
        let id = try await enqueue(try NewJob(
            kind: HistoryJob.kind, account: "alice", json: HistoryJob.Payload(peer: PeerReference(username: "testnews"), pageSize: 20)))
        narrator.info("enqueued \(id): history of @testnews for alice")
        let deferred = try await waitUntil(seconds: 15) { self.log.outcomes(of: id).contains { if case .deferred = $0 { true } else { false } } }
        guard deferred, case .deferred(let until)? = log.outcomes(of: id).first(where: { if case .deferred = $0 { true } else { false } }) else {
            narrator.notHandled(name, "\(id) was not deferred (outcomes: \(log.outcomes(of: id)))")
            outcome.faults.append((name, false))
            return
        }
        let ledger = try await store.activeFloodWaits(account: "alice", at: WallClock().now())
        let recorded = ledger.first { $0.method == "messages.getHistory" }
        let row = try await queue.job(id)
        narrator.info("the flood ledger recorded messages.getHistory for alice until \(recorded.map { TimeText.iso($0.until) } ?? "?")"
            + " (every process on this store now waits instead of calling)")
        narrator.info("\(id) deferred to \(TimeText.iso(until)), attempts spent \(row?.attempts ?? -1) of \(row?.maxAttempts ?? -1)")
        let done = try await waitForEnd(id, seconds: Double(floodSeconds) + 20)
        let fired = dc.core.withState { $0.faults.firedCount(rule: rule.id) }
        if let done, done.state == .completed, done.deferrals >= 1, done.attempts == 1, fired == 1 {
            let result = try? JSONDecoder().decode(HistoryJob.Result.self, from: done.result ?? Data())
            narrator.handled(name, "\(id) waited out the flood wait without spending an attempt (attempts 1, deferrals \(done.deferrals)), "
                + "then fetched \(result?.fetched ?? 0) messages into the archive")
            outcome.faults.append((name, true))
        } else {
            narrator.notHandled(name, "\(id) ended \(done.map { "\($0.state.rawValue), attempts \($0.attempts), deferrals \($0.deferrals)" } ?? "not at all"); fault fired \(fired) time(s)")
            outcome.faults.append((name, false))
        }
    }

    private func droppedConnection() async throws {
        let name = "dropped connection"
        narrator.step("6. fault: a dropped connection")
        guard let sessions else { return }
        let before = await sessions.statistics("bob")
        let rule = try dc.addFault(FaultRule(match: FaultMatch(method: "messages.getHistory", account: 1002, count: 1), effect: .dropBeforeAnswer))
        narrator.inject("the test DC closes bob's connection instead of answering his next messages.getHistory")
        let id = try await enqueue(try NewJob(
            kind: HistoryJob.kind, account: "bob", json: HistoryJob.Payload(peer: PeerReference(username: "testgroup"))))
        narrator.info("enqueued \(id): history of @testgroup for bob")
        let done = try await waitForEnd(id, seconds: 30)
        let after = await sessions.statistics("bob")
        let fired = dc.core.withState { $0.faults.firedCount(rule: rule.id) }
        let reconnected = after.connections > before.connections && after.connectionsLost > before.connectionsLost
        if let done, done.state == .completed, fired == 1, reconnected {
            narrator.handled(name, "bob's client reconnected (connections \(before.connections) -> \(after.connections), "
                + "lost \(after.connectionsLost - before.connectionsLost)) and recovered the call in flight "
                + "(\(after.requestsInDoubt - before.requestsInDoubt) in doubt, asked the DC); \(id) completed, attempts \(done.attempts)")
            outcome.faults.append((name, true))
        } else {
            narrator.notHandled(name, "\(id) ended \(done.map { "\($0.state.rawValue) (\($0.lastError ?? "no error"))" } ?? "not at all"); "
                + "fault fired \(fired) time(s); connections \(before.connections) -> \(after.connections)")
            outcome.faults.append((name, false))
        }
    }

    private func revokedSession() async throws {
        let name = "revoked session"
        narrator.step("7. fault: a revoked session")
        let rule = try dc.addFault(FaultRule(match: FaultMatch(account: 1003, count: 1), effect: FaultEffect(kind: .sessionRevoked)))
        narrator.inject("carol's session is terminated on the DC (SESSION_REVOKED, as from Settings > Devices on another phone)")
        carolJobs = [
            try await enqueue(try NewJob(kind: ResolveJob.kind, account: "carol", json: ResolveJob.Payload(username: "testnews"))),
            try await enqueue(try NewJob(kind: HistoryJob.kind, account: "carol", json: HistoryJob.Payload(peer: PeerReference(username: "testnews")))),
        ]
        narrator.info("enqueued \(carolJobs.map(\.description).joined(separator: ", ")) for carol")
        let stopped = try await waitUntil(seconds: 20) { self.log.stop(of: "carol") != nil && self.log.loopEnded("carol") }
        let fired = dc.core.withState { $0.faults.firedCount(rule: rule.id) }
        // The others go on: work for alice and bob after carol's stop.
        let others = [
            (try await enqueue(try NewJob(
                kind: SendJob.kind, account: "alice", json: SendJob.Payload(peer: PeerReference(username: "bob"), text: "carol's trouble is not mine"),
                idempotencyKey: "sandbox-after-revoke")), "send alice -> @bob"),
            (try await enqueue(NewJob(kind: MeJob.kind, account: "bob")), "me for bob"),
        ]
        var othersDone = true
        for (id, label) in others { othersDone = try await expectCompleted(id, label) && othersDone }
        var carolUntouched = true
        for id in carolJobs {
            let row = try await queue.job(id)
            if row?.state != .queued || row?.attempts != 0 { carolUntouched = false }
        }
        let mark = try await store.status(of: "carol")
        let alerted = await lookForAlerts().contains { $0.event == .accountNeedsAttention && $0.account == "carol" }
        if stopped, let stop = log.stop(of: "carol"), fired == 1, mark?.state == .revoked, othersDone, carolUntouched, alerted {
            narrator.handled(name, "carol's workers stopped cleanly (\(stop.error), \(stop.status.code)); the account is marked "
                + "\(stop.status.state.rawValue) in the store, so no process calls Telegram for it; her \(carolJobs.count) jobs went back "
                + "to the queue with no attempt spent; alice and bob kept working")
            narrator.info("guidance: \(stop.guidance)")
            outcome.faults.append((name, true))
        } else {
            narrator.notHandled(name, "stopped \(stopped), mark \(mark?.state.rawValue ?? "none"), others done \(othersDone), "
                + "carol's jobs untouched \(carolUntouched), fault fired \(fired) time(s), alert \(alerted)")
            outcome.faults.append((name, false))
        }
    }

    private func corruptedStore() async throws {
        let name = "corrupted store"
        narrator.step("8. fault: a corrupted store")
        await stopForTheStore()
        let backup = try store.backup(reason: .manual)
        narrator.info("workers stopped, leases released; verified backup taken: \(backup.file)")
        try store.close()
        let path = folder.store + "/sessions.sqlite"
        try Self.zero(path, count: 100)
        narrator.inject("the first 100 bytes of \(path) overwritten with zeros (as a torn write or a bad disk would)")
        let reopened = try SQLiteSessionStore.open(directory: folder.store, options: SQLiteStoreOptions(logger: logger))
        store = reopened
        guard case .restored(let restoredFrom, let reason, let movedTo) = reopened.outcome else {
            narrator.notHandled(name, "reopening did not restore the store (outcome \(reopened.outcome))")
            outcome.faults.append((name, false))
            return
        }
        narrator.info("reopened: \(reason); restored from \(restoredFrom); the damaged file kept at \(movedTo ?? "?")")
        // The restored sessions work without a login: alice and bob take up jobs again; carol stays stopped.
        try await resumeOnTheStore()
        var working = true
        for account: AccountID in ["alice", "bob"] {
            working = try await expectCompleted(try await enqueue(NewJob(kind: MeJob.kind, account: account)), "me for \(account) on the restored store") && working
        }
        let accounts = try await store.accounts()
        let carol = try await store.status(of: "carol")
        if working, accounts.count == Self.demoAccounts.count, carol?.state == .revoked {
            narrator.handled(name, "the store was restored from its verified backup on reopen: \(accounts.count) accounts, "
                + "their keys and carol's mark intact; alice and bob worked on without a new login")
            outcome.faults.append((name, true))
        } else {
            narrator.notHandled(name, "after the restore: \(accounts.count) accounts, carol \(carol?.state.rawValue ?? "unmarked"), jobs working \(working)")
            outcome.faults.append((name, false))
        }
    }

    /// The store damaged again, its backups lost with it (one disk under both): nothing can be
    /// restored, and `tgsm recover --salvage` builds a new store from what still reads. One byte of
    /// carol's dead key is the damage: her row fails its check and is left out, while alice's and
    /// bob's sessions, bob's flood wait, carol's mark and her future auth token come along (the
    /// next step logs her in by that token).
    private func lostBackups() async throws {
        let name = "store without backups"
        narrator.step("9. fault: the store damaged again, and its backups lost with it")
        await stopForTheStore()
        let now = SystemClock().now()
        // Under the hour at which the operator is alerted: this one is only for the salvage to keep.
        let wait = FloodWait(account: "bob", method: "contacts.resolveUsername", kind: .floodWait, recordedAt: now, until: now + 1800)
        try await store.recordFloodWait(wait)
        let carolSession = try await store.loadSession(account: "carol")
        let carolKey = carolSession.flatMap { $0.dcs[$0.homeDC]?.authKey?.bytes }
        try store.close()
        // Opening checkpoints the WAL into the file, where the damage goes.
        let options = SQLiteStoreOptions(logger: logger)
        try SQLiteSessionStore.open(directory: folder.store, options: options).close()
        let path = folder.store + "/sessions.sqlite"
        guard let carolKey, var file = FileManager.default.contents(atPath: path), let at = file.range(of: Data(carolKey.prefix(32))) else {
            narrator.notHandled(name, "carol's stored key was not found in \(path) to damage")
            outcome.faults.append((name, false))
            store = try SQLiteSessionStore.open(directory: folder.store, options: options)
            return
        }
        file[at.lowerBound + 3] ^= 0x40
        try file.write(to: URL(fileURLWithPath: path))
        try FileManager.default.removeItem(atPath: folder.store + "/backups")
        narrator.inject("\(folder.store)/backups deleted, and one byte of carol's stored key flipped (a bad disk under both); "
            + "the store also holds a 30-minute FLOOD_WAIT on bob's contacts.resolveUsername, as Telegram's answer would leave it")
        do {
            store = try SQLiteSessionStore.open(directory: folder.store, options: options)
            narrator.notHandled(name, "the damaged store opened as it was (outcome \(store.outcome)): the damage was not found")
            outcome.faults.append((name, false))
            return
        } catch {
            narrator.info("opening it: [\(error.code)]: nothing to restore, so `tgsm run` would stop here; the way on is `tgsm recover --salvage`")
        }
        let report = try SQLiteSessionStore.salvage(directory: folder.store, options: options)
        let kept = report.tables.filter { $0.rowsKept > 0 }.map { "\($0.name) \($0.rowsKept)" }.joined(separator: ", ")
        narrator.info("salvaged: rows kept \(kept); failed their check: \(report.rowsFailingTheirCheck.joined(separator: "; ")); "
            + "the damaged file kept at \(report.damagedFileMovedTo)")
        store = try SQLiteSessionStore.open(directory: folder.store, options: options)
        let backup = try store.backup(reason: .afterSalvage)
        narrator.info("a verified backup of the salvaged store: \(backup.file)")
        try await resumeOnTheStore()
        var working = true
        for account: AccountID in ["alice", "bob"] {
            working = try await expectCompleted(try await enqueue(NewJob(kind: MeJob.kind, account: account)), "me for \(account) on the salvaged store") && working
        }
        let waitKept = try await store.activeFloodWaits(account: "bob", at: SystemClock().now()).contains { $0.method == wait.method && $0.until == wait.until }
        let carol = try await store.status(of: "carol")
        if working, waitKept, carol?.state == .revoked, report.accountsWithSession == ["alice", "bob"], report.accountsWithoutSession == ["carol"] {
            narrator.handled(name, "salvaged without a backup: alice and bob worked on without a new login, bob's flood wait and "
                + "carol's mark were kept, and carol, whose key was the damage, is listed for a login")
            outcome.faults.append((name, true))
        } else {
            narrator.notHandled(name, "after the salvage: sessions \(report.accountsWithSession), to log in \(report.accountsWithoutSession), "
                + "wait kept \(waitKept), carol \(carol?.state.rawValue ?? "unmarked"), jobs working \(working)")
            outcome.faults.append((name, false))
        }
    }

    /// The job queue's file damaged (a bad disk zeroes one page of a batch of jobs): the workers'
    /// claims fail at it, which /health, the metrics, the dashboard, `tgsm status` and the webhook
    /// say (before, only the log did); `tgsm jobs salvage` builds a new queue from what still reads
    /// and names the jobs that may be lost, and the rest run. Carol's jobs, queued since her
    /// revocation, are in an older page and wait on for her.
    private func damagedQueue() async throws {
        let name = "damaged job queue"
        narrator.step("10. fault: the job queue's file damaged")
        await stopWorkers()
        // A KiB of caller data on each (the queue keeps a job's payload whatever it is; `me` reads none):
        // 24 jobs cover several pages, and run within the accounts' rate limits (5 calls a second).
        let batch = 24
        let attached = Data(("{\"attached\": \"" + String(repeating: "x", count: 1000) + "\"}").utf8)
        var ids: [JobID] = []
        for index in 0..<batch {
            ids.append(try await enqueue(NewJob(kind: MeJob.kind, account: index % 2 == 0 ? "alice" : "bob", payload: attached)))
        }
        let path = folder.store + "/jobs.sqlite"
        guard let page = try await Self.zeroAJobsPage(path, among: ids) else {
            narrator.notHandled(name, "no page of \(path) held only the new batch's jobs to damage")
            outcome.faults.append((name, false))
            startWorkers(accounts: Self.demoAccounts.map(\.account))
            return
        }
        narrator.inject("\(batch) `me` jobs for alice and bob (1 KiB of caller data each) queued while the workers were down, then page \(page) of \(path) zeroed "
            + "(a bad disk), under the running dashboard; `tgsm jobs enqueue` from another terminal adds one more")
        startWorkers(accounts: Self.demoAccounts.map(\.account))
        var alarm = QueueFailureAlarm.make(holdOff: 0, host: LeaseHolder.current().host)
        let pool = self.pool
        let failing = try await waitUntil(seconds: 20) { pool?.claimFailure != nil }
        let failure = pool?.claimFailure
        var codes: [String: [String]] = [:]
        if let server = dashboard?.server {
            let snapshot = try await server.snapshot()
            let health = HealthReport(snapshot)
            for account in health.accounts where ["alice", "bob"].contains(account.account) { codes[account.account] = account.reasonCodes }
            narrator.info("/health now: " + health.accounts.map { "\($0.account) \($0.ready ? "ready" : "not ready [\($0.reasonCodes.joined(separator: ", "))]")" }
                .joined(separator: "; ") + "; tgsm_queue_claims_failing \(snapshot.claimFailure == nil ? 0 : 1)"
                + (snapshot.claimFailure == nil ? "" : "; the dashboard's queue section says why"))
        }
        if let alert = alarm.observe(failure: failure?.error, since: failure?.since, at: WallClock().now()) { await say([alert]) }

        // What the alert says to do: stop `tgsm run`, then `tgsm jobs salvage`.
        await stopForTheStore()
        try queue.writer.close()
        let report: JobQueueSalvageReport
        do {
            report = try SQLiteJobQueue.salvage(path: path, now: WallClock().now())
        } catch {
            // The file is left as it was: the sandbox goes on over it, and says why this step failed.
            narrator.notHandled(name, "`tgsm jobs salvage` refused or failed: \(error)")
            outcome.faults.append((name, false))
            queue = try SQLiteJobQueue.open(path: path)
            archive = try SQLiteMessageArchive(writer: queue.writer)
            try await resumeOnTheStore()
            return
        }
        let lost = report.possiblyLost.map { "ids \($0.from) to \($0.through.map(String.init) ?? "the end")" } ?? "none"
        // What the history (other pages) says of them: which had not ended, to enqueue again.
        let named = report.lostJobs.map { "\($0.id.rawValue) \($0.kind.rawValue) for \($0.account.rawValue) \($0.hadEnded ? $0.lastEvent.rawValue : "not ended")" }
        narrator.info("`tgsm jobs salvage`: \(report.jobsKept) jobs kept, \(report.historyRowsKept) history rows, \(report.archivedMessagesKept) "
            + "archived messages; may be lost: \(lost)" + (named.isEmpty ? "" : ", which the history names: \(named.joined(separator: ", "))")
            + "; the damaged file kept at \(report.damagedFileMovedTo)")
        queue = try SQLiteJobQueue.open(path: path)
        archive = try SQLiteMessageArchive(writer: queue.writer)
        try await resumeOnTheStore()
        let drained = try await waitUntil(seconds: 30) {
            var open = 0
            for account: AccountID in ["alice", "bob"] {
                let counts = try await self.queue.counts(account: account)
                open += counts[.queued] + counts[.running]
            }
            return open == 0
        }
        if let back = alarm.observe(failure: self.pool?.claimFailure?.error, at: WallClock().now()) { await say([back]) }
        var carolsKept = true
        for id in carolJobs where try await queue.job(id)?.state != .queued { carolsKept = false }
        var kept: [JobID] = []
        var completed = 0
        for id in ids {
            guard let job = try await queue.job(id) else { continue }
            kept.append(id)
            if job.state == .completed { completed += 1 }
        }
        // One job of the batch as `tgsm jobs show` tells it: one the salvage gave back when a worker
        // held it (its completion could not be written to the damaged file), else the first.
        var stories: [(JobID, [JobHistoryEntry])] = []
        for id in kept { stories.append((id, try await queue.history(of: id))) }
        if let (id, changes) = stories.first(where: { $0.1.contains { $0.event == .rescued } }) ?? stories.first {
            narrator.info("`tgsm jobs show \(id.rawValue)`: " + changes.map(\.event.rawValue).joined(separator: " -> ")
                + (changes.first { $0.event == .rescued }?.error.map { " (\($0))" } ?? ""))
        }
        let namedLost = ids.filter { id in !kept.contains(id) }.allSatisfy { id in
            report.possiblyLost.map { id.rawValue >= $0.from && id.rawValue <= ($0.through ?? .max) } ?? false
                && report.lostJobs.contains { $0.id == id && !$0.hadEnded }
        }
        let saidNotReady = ["alice", "bob"].allSatisfy { codes[$0] == [HealthReport.Reason.queueDamaged] }
        if failing, failure?.needsAPerson == true, saidNotReady, drained, carolsKept, namedLost, completed == kept.count, kept.count < ids.count {
            narrator.handled(name, "the workers could not claim jobs, and /health and the alert said so (a person's to end: `tgsm jobs salvage`); "
                + "salvaged, \(kept.count) of the batch's \(ids.count) jobs ran and the \(ids.count - kept.count) lost were named; carol's waited on")
            outcome.faults.append((name, true))
        } else {
            narrator.notHandled(name, "claims failing \(failing), said by /health \(saidNotReady), drained \(drained), carol's kept \(carolsKept), "
                + "lost ones named \(namedLost), batch kept \(kept.count), completed \(completed)")
            outcome.faults.append((name, false))
        }
    }

    /// Zeroes a b-tree leaf of the queue's jobs that holds only jobs of `batch`, after a checkpoint
    /// put every page in the main file; then another connection writes (as `tgsm jobs enqueue`
    /// from another terminal would), so the open connections read the file anew rather than the
    /// pages they cached. Returns the page, or nil when no leaf holds only the batch's jobs.
    private static func zeroAJobsPage(_ path: String, among batch: [JobID]) async throws -> Int? {
        guard let first = batch.first?.rawValue, let last = batch.last?.rawValue else { return nil }
        let (leaves, size) = try checkpointedJobLeaves(path)
        guard let file = FileManager.default.contents(atPath: path) else { return nil }
        let inside = leaves.filter { page in
            let start = (page - 1) * size
            guard page > 1, start + size <= file.count, let ids = LeafPage.rowIDRange(Array(file[start..<start + size])) else { return false }
            return ids.low >= first && ids.high <= last
        }
        guard let page = inside.dropFirst(inside.count / 2).first else { return nil }
        try zero(path, at: (page - 1) * size, count: size)
        let other = try SQLiteJobQueue.open(path: path)
        _ = try await other.enqueue(NewJob(kind: MeJob.kind, account: "alice"), now: WallClock().now())
        try other.writer.close()
        return page
    }

    /// The pages of the jobs' b-tree leaves, and the page size, once every page is in the main file.
    private static func checkpointedJobLeaves(_ path: String) throws -> (pages: [Int], size: Int) {
        let database = try DatabaseQueue(path: path)
        defer { try? database.close() }
        return try database.writeWithoutTransaction { db -> ([Int], Int) in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            return (try Int.fetchAll(db, sql: "SELECT pageno FROM dbstat WHERE name = 'jobs' AND pagetype = 'leaf' ORDER BY pageno"),
                    try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
        }
    }

    /// An alert as the sandbox shows it, and posts it when it has a webhook.
    private func say(_ alerts: [Alert]) async {
        for alert in alerts { narrator.alert(alert.text) }
        guard let alertDelivery, !alerts.isEmpty else { return }
        await alertDelivery.send(alerts)
        await alertDelivery.flush(within: 10)
    }

    /// What `tgsm auth --account carol` does after the revocation: her first login left a future
    /// auth token in the store, offered with the code request; the test DC, as Telegram, logs her
    /// in by it without sending a code, and her queued jobs run.
    private func comeBackWithoutACode() async throws {
        narrator.step("11. recovery: carol logs in again, no code (the future auth token her first login left in the store)")
        guard let sessions, let carol = Self.demoAccounts.first(where: { $0.account == "carol" }) else { return }
        let signIns = try dc.addFault(FaultRule(match: FaultMatch(method: "auth.signIn"), effect: .delay(milliseconds: 0)))
        let codeAsked = try await sessions.logIn(carol, dc: dc)
        let typed = dc.faultFiredCount(rule: signIns.id)
        dc.clearFaults(kind: .delay)
        let mark = try await store.status(of: "carol")
        guard !codeAsked, typed == 0, mark?.isTerminal != true else {
            let problem = "carol's login again: code asked \(codeAsked), auth.signIn calls \(typed), mark \(mark?.state.rawValue ?? "none")"
            narrator.problem(problem)
            outcome.problems.append(problem)
            return
        }
        narrator.ok("carol logged in again with no code: Telegram accepted the token (auth.sentCodeSuccess); her mark is cleared")
        await stopWorkers()
        try await startSessions(["carol"])
        startWorkers(accounts: Self.demoAccounts.map(\.account))
        for id in carolJobs { try await expectCompleted(id, "carol's, queued since the revocation") }
        if !(await lookForAlerts()).contains(where: { $0.event == .accountRecovered && $0.account == "carol" }) {
            let problem = "carol is back, but no alert said she is ready again"
            narrator.problem(problem)
            outcome.problems.append(problem)
        }
    }

    /// Telegram tells a session to log out (updateServiceNotification, type AUTH_KEY_DROP_...),
    /// with a login code in the text: the running account's health keeps it (degraded), the store
    /// keeps it masked for `tgsm check`, and the account keeps working.
    private func telegramsNotice() async throws {
        let name = "Telegram's notice"
        narrator.step("12. Telegram's notice: Telegram asks alice's session to log out")
        guard let sessions else { return }
        try dc.core.pushServiceNotification(to: 1001, type: "AUTH_KEY_DROP_DUPLICATE",
                                            message: "This session was used from two places at once. Login code 54321 was requested.", popup: true)
        narrator.inject("the test DC pushes alice an updateServiceNotification (AUTH_KEY_DROP_DUPLICATE, a popup quoting a login code)")
        let heard = try await waitUntil(seconds: 10) { await sessions.health()["alice"]?.sessionDropAskedAt != nil }
        let kept = try await waitUntil(seconds: 10) {
            !(try await self.store.serviceNotifications(account: "alice", since: UnixTime(seconds: 0))).isEmpty
        }
        let stored = try await store.serviceNotifications(account: "alice", since: UnixTime(seconds: 0)).first
        let state = await sessions.health()["alice"]?.state
        let working = try await expectCompleted(try await enqueue(NewJob(kind: MeJob.kind, account: "alice")), "me for alice after the notice")
        let alert = await lookForAlerts().first { $0.event == .telegramNotice && $0.account == "alice" }
        if heard, kept, let stored, !stored.message.contains("54321"), state == .degraded, working, let alert, !alert.text.contains("54321") {
            narrator.handled(name, "alice's health is degraded and lists it, as /health and the dashboard do; the store keeps it for `tgsm check` "
                + "with the code masked (\"\(stored.message)\"); alice kept working. What to do: look at the account's devices in an official app")
            outcome.faults.append((name, true))
        } else {
            narrator.notHandled(name, "heard \(heard), kept \(kept), health \(state?.rawValue ?? "none"), masked \(stored.map { !$0.message.contains("54321") } ?? false), "
                + "working \(working), alert \(alert.map { !$0.text.contains("54321") } ?? false)")
            outcome.faults.append((name, false))
        }
    }

    private func finish() async throws {
        narrator.step("13. status (what `tgsm status --store \(folder.store)` shows)")
        narrator.terminal.line()
        let report = try await StatusReport.make(store: store, location: store.directory, queue: queue, now: WallClock().now())
        report.print(on: narrator.terminal)
        let counts = try await queue.counts(account: nil)
        let messages = try await archive.messages(account: "alice", peer: "channel:2001").count
            + archive.messages(account: "bob", peer: "channel:2002").count
        narrator.step("summary")
        let handled = outcome.faults.filter(\.handled).count
        narrator.info("faults: \(outcome.faults.count) injected, \(handled) handled"
            + (handled == outcome.faults.count ? "" : " (not handled: \(outcome.faults.filter { !$0.handled }.map(\.name).joined(separator: ", ")))"))
        let carol = try await store.status(of: "carol")
        narrator.info("accounts: \(Self.demoAccounts.count) logged in; carol stopped with guidance when revoked while alice and bob kept "
            + "working, then came back without a code (\(carol?.state.rawValue ?? "not marked") now)")
        narrator.info("jobs: \(counts[.completed]) completed, \(counts[.queued]) queued, \(counts[.dead]) dead; \(messages) messages archived")
        narrator.info(String(format: "time: %.1f s", narrator.elapsed))
        for problem in outcome.problems { narrator.problem(problem) }
    }

    /// One look as `tgsm run`'s alert service takes it (the store, the queue, the live health),
    /// its alerts shown, and posted when the sandbox has a webhook.
    private func lookForAlerts() async -> [Alert] {
        do {
            let snapshot = try await OperatorSnapshot.gather(store: store, queue: queue, enabled: Self.demoAccounts.map(\.account),
                                                             live: await sessions?.health(), now: WallClock().now(), historyLimit: 0,
                                                             deadLettersWithin: AlertService.deadLetterWindow)
            let alerts = alertTracker.observe(snapshot)
            await say(alerts)
            return alerts
        } catch {
            let problem = "the accounts could not be read for alerts: \(error)"
            narrator.problem(problem)
            outcome.problems.append(problem)
            return []
        }
    }

    /// `--keep`: the test DC, the workers and the dashboard stay up until Ctrl-C.
    func keepRunning() async {
        narrator.step("running until Ctrl-C")
        if dashboard != nil { narrator.info("dashboard: http://127.0.0.1:\(dashboardPort)/") }
        if let control = dc.table.control { narrator.info("test DC control endpoint: \(control.url) (docs/TESTDC.md)") }
        narrator.info("DC table and public keys for other clients: \(folder.testDC)/dcs.json")
        narrator.info("in another terminal: tgsm status --store \(folder.store) --watch")
        await Termination.wait()
    }

    func shutdown() async {
        await stopWorkers()
        await stopDashboard()
        await sessions?.shutdown()
        try? store.close()
        try? await dc.shutdown()
    }

    // MARK: - Parts

    /// Short limits so the run is short: a flood wait of a few seconds defers the job (as a long
    /// one would in production) instead of being slept through inside the call.
    static let stackConfiguration = SessionStack.Configuration(
        ledger: FloodLedger.Policy(inlineWaitThreshold: 0), retry: RetryPolicy(baseDelay: 0.1, maximumFloodWait: 0))

    /// Workers, dashboard and sessions stopped (leases released), for work on the store's file.
    private func stopForTheStore() async {
        await stopWorkers()
        await stopDashboard()
        await sessions?.shutdown()
        sessions = nil
    }

    /// Sessions, workers and dashboard again on `store`: every account not marked gets its session.
    private func resumeOnTheStore() async throws {
        sessions = try SandboxSessions(store: store, cluster: folder.testDC, stack: Self.stackConfiguration, logger: logger)
        var usable: [AccountID] = []
        for demo in Self.demoAccounts {
            if try await store.status(of: demo.account)?.isTerminal != true { usable.append(demo.account) }
        }
        try await startSessions(usable)
        startWorkers(accounts: Self.demoAccounts.map(\.account))
        try await startDashboard()
    }

    private func startWorkers(accounts: [AccountID]) {
        guard let sessions else { return }
        let pool = WorkerPool(
            queue: queue,
            handlers: [MeJob(), ResolveJob(archive: archive), HistoryJob(archive: archive, peers: store), SendJob(archive: archive, peers: store)],
            invokers: sessions.runtimes, accountStatus: store, floodLedger: store,
            // Carol runs one job at a time so the narration shows one failed job for the revocation;
            // with two in flight the second meets its consequence (AUTH_KEY_UNREGISTERED), and the
            // first mark (SESSION_REVOKED) is kept either way.
            configuration: WorkerConfiguration(accounts: accounts, concurrencyPerAccount: 2, concurrencyOverrides: ["carol": 1],
                                               pollInterval: 1, gracePeriod: 5, backoff: BackoffPolicy(base: 0.5, cap: 5)),
            logger: logger)
        follower = log.follow(pool)
        poolTask = Task { try await pool.run() }
        self.pool = pool
    }

    /// Starts the accounts' runtimes: lease, client, stack, and the start-up check of the stored
    /// session (one updates.getState; never a login code).
    private func startSessions(_ accounts: [AccountID]) async throws {
        guard let sessions else { return }
        let outcomes = await sessions.start(accounts)
        var lines: [String] = []
        for account in accounts {
            switch outcomes[account] {
            case .running(let verdict)?:
                lines.append("\(account) \(verdict?.label ?? "running")")
            case .failed(let error)?:
                let problem = "\(account) could not start: \(error.summary) [\(error.code)]"
                narrator.problem(problem)
                outcome.problems.append(problem)
            case nil:
                break
            }
        }
        narrator.info("sessions running (lease, client, middleware stack, start-up check): " + lines.joined(separator: ", "))
    }

    /// The operator's dashboard, /health and /metrics (what `tgsm run` serves), on loopback.
    private func startDashboard() async throws {
        guard dashboard == nil else { return }
        let sessions = self.sessions
        let server = try OperatorHTTPServer(
            configuration: OperatorHTTPConfiguration(host: "127.0.0.1", port: dashboardPort, accounts: Self.demoAccounts.map(\.account),
                                                     refreshSeconds: 2, historyWindow: 600),
            store: store, queue: queue, liveHealth: { await sessions?.health() ?? [:] }, claimFailure: { [runningPool] in runningPool.claimFailure },
            logger: logger)
        let task = Task { try await server.run() }
        // What `tgsm run` also keeps: its view of each account, for `tgsm status` (RUNNING) and
        // `tgsm check` on the sandbox's store (`--keep`).
        let reporter = LiveReportService(store: store, liveHealth: { await sessions?.health() ?? [:] },
                                         claimFailure: { [runningPool] in runningPool.claimFailure }, clock: WallClock(), interval: 2, logger: logger)
        let reports = Task { try await reporter.run() }
        dashboard = (server, task, reports)
        dashboardPort = try await server.listeningPort()
    }

    private func stopDashboard() async {
        guard let dashboard else { return }
        dashboard.task.cancel()
        dashboard.reports.cancel()
        _ = try? await dashboard.task.value
        _ = try? await dashboard.reports.value
        self.dashboard = nil
    }

    private func stopWorkers() async {
        pool?.shutdownGracefully()
        _ = try? await poolTask?.value
        follower?.cancel()
        pool = nil
        poolTask = nil
        follower = nil
    }

    private func enqueue(_ job: NewJob) async throws -> JobID {
        try await queue.enqueue(job, now: WallClock().now()).id
    }

    /// The job's row once it completed, died or was cancelled; nil if it did not within `seconds`.
    private func waitForEnd(_ id: JobID, seconds: Double) async throws -> Job? {
        var last: Job?
        let ended = try await waitUntil(seconds: seconds) {
            last = try await self.queue.job(id)
            return [.completed, .dead, .cancelled].contains(last?.state)
        }
        return ended ? last : nil
    }

    @discardableResult
    private func expectCompleted(_ id: JobID, _ label: String) async throws -> Bool {
        let done = try await waitForEnd(id, seconds: 30)
        if done?.state == .completed {
            narrator.ok("\(id) \(label): completed")
            return true
        }
        let problem = "\(id) \(label): \(done.map { "\($0.state.rawValue): \($0.lastError ?? "no error")" } ?? "did not finish within 30 s")"
        narrator.problem(problem)
        outcome.problems.append(problem)
        return false
    }

    /// The project's one masking (the dashboard's and the metrics'): the last two digits only.
    static func masked(_ phone: String) -> String { Redaction.masked("+" + phone) }

    /// `count` zero bytes written over `path` from `offset` on (a torn write, a bad disk).
    private static func zero(_ path: String, at offset: Int = 0, count: Int) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data(count: count))
    }
}

/// The sandbox's current `WorkerPool`, readable from the dashboard's tasks.
private final class RunningPool: Sendable {
    private let pool = Mutex<WorkerPool?>(nil)

    func set(_ running: WorkerPool?) { pool.withLock { $0 = running } }

    var claimFailure: ClaimFailure? { pool.withLock { $0?.claimFailure } }
}

/// A table b-tree leaf page of SQLite's file format (sqlite.org/fileformat2.html, "B-tree Pages"):
/// enough of it to read the rowids it holds.
enum LeafPage {
    /// The lowest and highest rowid of the cells of a table leaf page (type 13), whose cell
    /// pointers are in key order; nil for another kind of page or one that does not parse.
    static func rowIDRange(_ page: [UInt8]) -> (low: Int64, high: Int64)? {
        guard page.count >= 8, page[0] == 13 else { return nil }
        let cells = Int(page[3]) << 8 | Int(page[4])
        guard cells > 0, 8 + cells * 2 <= page.count else { return nil }
        func cell(_ index: Int) -> Int64? {
            let at = Int(page[8 + index * 2]) << 8 | Int(page[9 + index * 2])
            guard let (_, afterPayloadSize) = varint(page, at: at), let (rowID, _) = varint(page, at: afterPayloadSize) else { return nil }
            return rowID
        }
        guard let low = cell(0), let high = cell(cells - 1) else { return nil }
        return (low, high)
    }

    /// SQLite's varint: big-endian, seven bits a byte while the high bit is set, the ninth byte whole.
    static func varint(_ bytes: [UInt8], at start: Int) -> (Int64, Int)? {
        var value: UInt64 = 0
        var index = start
        while index < bytes.count, index - start < 9 {
            let byte = bytes[index]
            index += 1
            if index - start == 9 { return (Int64(bitPattern: value << 8 | UInt64(byte)), index) }
            value = value << 7 | UInt64(byte & 0x7F)
            if byte & 0x80 == 0 { return (Int64(bitPattern: value), index) }
        }
        return nil
    }
}
