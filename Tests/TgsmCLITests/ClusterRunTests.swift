#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MTProto
import PostgresStore
import SessionManager
import StoreTestSupport
@testable import TestDC
import Testing
@testable import Workers

/// Scale-out as an operator runs it: four `tgsm run` processes (the built binary) share one
/// PostgreSQL store and one test DC, three accounts and thousands of jobs. The process that met a
/// flood wait is killed with SIGKILL mid-job while the wait runs, another is stopped and started
/// again with the same arguments. Every job ran at the DC once (twice only when it was in flight
/// at the SIGKILL, and a send then delivered once), the DC never answers AUTH_KEY_DUPLICATED,
/// the process that took the flooded account over calls nothing the wait covers, and failover
/// stays within its bound: by the dead pid on one host, and by the lease's expiry for a holder
/// that is frozen (SIGSTOP), which is fenced out when it wakes.
@Suite(.serialized) struct ClusterRunTests {
    static let accounts: [(name: String, phone: String, userID: Int64, password: String?)] = [
        ("alice", "15550001", 1001, nil), ("bob", "15550002", 1002, "hunter2"), ("carol", "15550003", 1003, nil),
    ]
    /// Per account, enqueued interleaved (resolve, resolve, me, resolve, send, ...): resolves and
    /// sends can be told apart at the DC (each resolve names a username of its own, each send
    /// carries its key's random_id), `me` jobs are the cheap bulk.
    static let resolveJobs = 1500
    static let meJobs = 600
    static let sendJobs = 300
    static let concurrency = 4
    /// Same host: a dead holder's pid is seen at once, so the bound is the standby interval, a
    /// connection and a first job, with room for a loaded 2-core CI machine.
    static let failoverBound = 15.0
    static let floodSeconds = 12.0

    final class Member: @unchecked Sendable {
        // Unchecked: Process is not Sendable in corelibs Foundation; started once, then only signalled and read.
        let process = Process()
        let log: String
        let binary: String
        let arguments: [String]
        let environment: [String: String]

        init(binary: String, arguments: [String], environment: [String: String], log: String) throws {
            self.log = log
            self.binary = binary
            self.arguments = arguments
            self.environment = environment
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            process.environment = environment
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            try handle.close()
        }

        /// The same configuration started again (same binary, arguments, environment: the same
        /// store and accounts), logging beside the first life.
        func restarted() throws -> Member {
            try Member(binary: binary, arguments: arguments, environment: environment, log: log + ".restarted")
        }

        var pid: Int32 { process.processIdentifier }
        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        func waitForExit(seconds: Double) async -> Int32? {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            return process.isRunning ? nil : process.terminationStatus
        }
    }

    /// One test DC, one scratch PostgreSQL database with the accounts logged in, the queue and
    /// the store as a test reads them, and the environment `tgsm run` gets.
    struct Bed {
        let database: ScratchPostgresDatabase
        let root: String
        let dc: RunningTestDC
        let queue: PostgresJobQueue
        let store: PostgresSessionStore
        let environment: [String: String]
        /// Every process started, so none outlives a test that failed half-way.
        let started = Started()

        final class Started: @unchecked Sendable {
            // Unchecked: only the test's own task touches it.
            var members: [Member] = []
        }

        static func start(accounts: [(name: String, phone: String, userID: Int64, password: String?)], usernames: [String]) async throws -> Bed {
            let database = try await ScratchPostgresDatabase.create()
            let root = try CLI.temporary().root
            let dc = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false,
                                                                      stateDirectory: URL(fileURLWithPath: root + "/dc"),
                                                                      logger: Logger(label: "testdc") { label in
                                                                          guard ProcessInfo.processInfo.environment["TGSM_CLUSTER_DC_LOG"] != nil else { return SwiftLogNoOpLogHandler() }
                                                                          var handler = StreamLogHandler.standardError(label: label)
                                                                          handler.logLevel = .debug
                                                                          return handler
                                                                      }))
            dc.core.withState { state in
                state.faults.recordsCalls = true
                // A user per resolve job, so each job's call names its own username.
                for (index, name) in usernames.enumerated() {
                    state.world.users.append(World.User(id: 500_000 + Int64(index), accessHash: 77 + Int64(index), firstName: "Job \(index)", username: name))
                }
            }
            // The proactive gate raised knowingly (the test DC has no limits but the injected one):
            // the default 5 calls a second per account would make this a minute-long wait.
            let config = root + "/config.json"
            try Data("""
                {"rateLimits": {"perAccount": {"other": {"perSecond": 500, "burst": 500}, "send": {"perSecond": 500, "burst": 500},
                                               "resolve": {"perSecond": 500, "burst": 500}},
                                "perChat": {"send": {"perSecond": 500, "burst": 500}}}}
                """.utf8).write(to: URL(fileURLWithPath: config))
            var cli = CLI(store: database.url)
            cli.environment = ["TGSM_API_ID": "1", "TGSM_API_HASH": "test-api-hash", "TGSM_SERVER": root + "/dc", "TGSM_CONFIG": config]
            for account in accounts {
                let code = String(account.phone.suffix(5).reversed())
                let answers = code + "\n" + (account.password.map { $0 + "\n" } ?? "")
                let login = try await cli.run(["auth", "--account", account.name, "--phone", account.phone], stdin: answers)
                #expect(login.status == 0, "\(account.name): \(login.stderr)")
            }
            var environment = ProcessInfo.processInfo.environment
            for key in ["TGSM_HOME", "TGSM_NOW", "TGSM_STORE"] { environment.removeValue(forKey: key) }
            for (key, value) in cli.environment { environment[key] = value }
            let queue = try await PostgresJobQueue.connect(url: database.url, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            let store = try await PostgresSessionStore.connect(url: database.url, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
            return Bed(database: database, root: root, dc: dc, queue: queue, store: store, environment: environment)
        }

        func start(_ arguments: [String], log: String) throws -> Member {
            let member = try Member(binary: CLI.binary, arguments: arguments, environment: environment, log: root + "/" + log)
            started.members.append(member)
            return member
        }

        /// Runs a test's body; if it throws, every process it started is killed first.
        func run(_ body: () async throws -> Void) async throws {
            do {
                try await body()
            } catch {
                for member in started.members where member.process.isRunning { kill(member.pid, SIGKILL) }
                throw error
            }
        }

        func holder(_ account: String) async throws -> Int32? { try await store.currentLease(account: AccountID(account))?.holder.pid }
        func completed() async throws -> Int { try await queue.counts(account: nil)[.completed] }

        /// Calls whose method ran at the DC (not refused by a fault rule), by subject.
        func runs(of method: String) -> [String: [FaultEngine.RecordedCall]] {
            dc.core.withState { state in
                state.faults.calls.filter { $0.call.method == method && $0.outcome == .proceed && $0.subject != nil }
            }.reduce(into: [:]) { $0[$1.subject ?? "", default: []].append($1) }
        }

        func close() async throws {
            await store.close()
            await queue.close()
            try await dc.shutdown()
            await database.drop()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    static func username(_ index: Int) -> String { "cluster_job_\(index)" }

    /// Enqueues, per account in turn, resolves (each of its own username), `me` jobs and sends to
    /// the next account, interleaved so every kind runs all along. Keys: `resolve-N`, `me-N`, `send-N`.
    static func enqueue(_ queue: PostgresJobQueue, accounts: [String], resolves: Int, mes: Int, sends: Int) async throws {
        let now = UnixTime(seconds: Date().timeIntervalSince1970)
        let total = resolves + mes + sends
        var made = (resolve: 0, me: 0, send: 0)
        for index in 0..<total {
            let account = accounts[index % accounts.count]
            let job: NewJob
            // Spread evenly: the kind furthest behind its share goes next.
            let shares = [(Double(made.resolve) / Double(max(resolves, 1)), 0), (Double(made.me) / Double(max(mes, 1)), 1),
                          (Double(made.send) / Double(max(sends, 1)), 2)]
            let kind = shares.filter { share in
                share.1 == 0 ? made.resolve < resolves : share.1 == 1 ? made.me < mes : made.send < sends
            }.min { $0.0 < $1.0 }?.1 ?? 1
            switch kind {
            case 0:
                job = NewJob(kind: "resolve", account: AccountID(account), payload: Data("{\"username\": \"\(username(made.resolve))\"}".utf8),
                             idempotencyKey: "resolve-\(made.resolve)")
                made.resolve += 1
            case 2:
                let recipient = accounts[(accounts.firstIndex(of: account).map { $0 + 1 } ?? 0) % accounts.count]
                job = NewJob(kind: "send", account: AccountID(account),
                             payload: Data("{\"peer\": {\"username\": \"\(recipient)\"}, \"text\": \"send-\(made.send)\"}".utf8),
                             idempotencyKey: "send-\(made.send)")
                made.send += 1
            default:
                job = NewJob(kind: "me", account: AccountID(account), payload: Data("{}".utf8), idempotencyKey: "me-\(made.me)")
                made.me += 1
            }
            _ = try await queue.enqueue(job, now: now)
        }
    }

    @Test(.timeLimit(.minutes(10))) func fourProcessesShareAccountsQueueAndLimitsThroughKillAndRestart() async throws {
        let bed = try await Bed.start(accounts: Self.accounts, usernames: (0..<Self.resolveJobs).map(Self.username))
        try await bed.run { try await Self.shareAccountsThroughKillAndRestart(bed) }
    }

    static func shareAccountsThroughKillAndRestart(_ bed: Bed) async throws {
        let names = Self.accounts.map(\.name)
        try await Self.enqueue(bed.queue, accounts: names, resolves: Self.resolveJobs, mes: Self.meJobs, sends: Self.sendJobs)
        let total = Self.resolveJobs + Self.meJobs + Self.sendJobs
        // alice's 100th resolve meets FLOOD_WAIT_12 (longer than the 10 s the ledger sleeps through
        // inline, so the job is deferred and the wait is written to the shared ledger).
        let flood = try bed.dc.addFault(FaultRule(match: FaultMatch(method: "contacts.resolveUsername", account: 1001, skip: 100, count: 1),
                                                  effect: .floodWait(Int(Self.floodSeconds))))

        let arguments = ["run", "--store", bed.database.url, "--standby", "--standby-interval", "0.5", "--concurrency", "\(Self.concurrency)",
                         "--no-http", "--grace-period", "5"] + names.flatMap { ["--account", $0] }
        var members: [Member] = []
        let started = Date().timeIntervalSince1970
        for index in 0..<4 { members.append(try bed.start(arguments, log: "run-\(index).log")) }

        // The flood wait is met, written to the shared ledger and the job deferred; then the process
        // that met it, alice's holder, is SIGKILLed mid-job while the wait still runs. Whoever takes
        // alice over must not call contacts.resolveUsername for her until the wait ends.
        try await Self.waitUntil(seconds: 180, "the flood wait met and its job deferred") {
            guard bed.dc.core.withState({ $0.faults.firedCount(rule: flood.id) }) >= 1 else { return false }
            return try await bed.queue.jobs(state: nil, account: "alice", limit: total).contains { $0.kind == "resolve" && $0.deferrals >= 1 }
        }
        let victimPID = try #require(try await bed.holder("alice"))
        let victim = try #require(members.first { $0.pid == victimPID })
        var victimAccounts: [String] = []
        for account in names where try await bed.holder(account) == victimPID { victimAccounts.append(account) }
        let victimUsers = Set(Self.accounts.filter { victimAccounts.contains($0.name) }.map(\.userID))
        kill(victimPID, SIGKILL)
        let killedAt = Date().timeIntervalSince1970
        #expect(await victim.waitForExit(seconds: 10) != nil)
        try await Self.waitUntil(seconds: 60, "alice served again") {
            guard let pid = try await bed.holder("alice") else { return false }
            return pid != victimPID
        }
        let takeoverPID = try #require(try await bed.holder("alice"))

        // Another process, one that holds an account, is stopped gracefully and started again with
        // the same arguments (same store, same accounts). It must serve again: once the other
        // survivors stop too, it takes every account over and finishes the queue alone.
        try await Self.waitUntil(seconds: 180, "half the jobs done") { try await bed.completed() >= total / 2 }
        var holders: Set<Int32> = []
        for account in names { if let pid = try await bed.holder(account) { holders.insert(pid) } }
        let stoppedIndex = try #require(members.firstIndex { $0.process.isRunning && holders.contains($0.pid) })
        let stopped = members[stoppedIndex]
        kill(stopped.pid, SIGTERM)
        #expect(await stopped.waitForExit(seconds: 30) == 0, "\(stopped.output)")
        let restarted = try stopped.restarted()
        bed.started.members.append(restarted)
        #expect(restarted.arguments == arguments && restarted.environment == stopped.environment)
        members.append(restarted)
        try await Self.waitUntil(seconds: 60, "the restarted process ready") { restarted.output.contains("tgsm run: ready") }
        let others = members.filter { $0 !== restarted && $0.process.isRunning }
        for member in others { kill(member.pid, SIGTERM) }
        for member in others { #expect(await member.waitForExit(seconds: 30) == 0, "\(member.output)") }
        let othersStoppedAt = Date().timeIntervalSince1970
        try await Self.waitUntil(seconds: Self.failoverBound, "the restarted process serving every account") {
            for account in names where try await bed.holder(account) != restarted.pid { return false }
            return true
        }
        let restartedServing = Date().timeIntervalSince1970 - othersStoppedAt

        try await Self.waitUntil(seconds: 300, "every job done") { try await bed.completed() >= total }
        let counts = try await bed.queue.counts(account: nil)
        #expect(counts[.completed] == total && counts[.dead] == 0 && counts[.queued] == 0 && counts[.running] == 0, "\(counts)")
        let done = try await bed.queue.jobs(state: .completed, account: nil, limit: total * 2)
        let keys = done.compactMap(\.idempotencyKey)
        #expect(keys.count == total && Set(keys).count == total)
        let finishedAfterRestart = done.filter { ($0.finishedAt?.seconds ?? 0) > othersStoppedAt + restartedServing }.count
        #expect(finishedAfterRestart > 0, "the restarted process completed jobs once alone")

        // Sessions (the client's MTProto session ids) of the killed process: every call of its
        // accounts before the kill came from it, since only the lease holder connects.
        let calls = bed.dc.core.withState { $0.faults.calls }
        let victimSessions = Set(calls.filter { $0.at < killedAt && victimUsers.contains($0.call.account ?? 0) }.compactMap(\.sessionID))
        func byVictim(_ call: FaultEngine.RecordedCall) -> Bool { call.sessionID.map(victimSessions.contains) ?? false }
        // A job's call can have reached the DC before the kill and its completion not the store:
        // the job runs again after the takeover (at least once). Only such jobs may run twice: at
        // most the victim's jobs in flight (concurrency per account it held), first by the victim
        // before the kill (+ delivery), then by another process.
        let inFlightBound = Self.concurrency * victimAccounts.count
        func rerunIsTheKilledOnes(_ runs: [FaultEngine.RecordedCall]) -> Bool {
            runs.count == 2 && byVictim(runs[0]) && runs[0].at < killedAt + 0.5 && !byVictim(runs[1]) && runs[1].at > killedAt
        }

        // Exactly once at the DC, resolves: each username reached contacts.resolveUsername and ran there.
        let resolves = bed.runs(of: "contacts.resolveUsername")
        let missing = (0..<Self.resolveJobs).map(Self.username).filter { resolves[$0] == nil }
        #expect(missing.isEmpty, "\(missing.count) resolve jobs never ran at the DC: \(missing.prefix(10))")
        let twice = resolves.filter { $0.value.count > 1 }
        let badResolves = twice.filter { !rerunIsTheKilledOnes($0.value) }
        #expect(badResolves.isEmpty, "resolves run more than once, not by a job in flight at the kill: \(badResolves.mapValues { $0.map(\.at) })")
        // Sends: at most once per key as a message, whatever happened; the DC saw a random_id twice
        // only for a send in flight at the kill, and that job completed as already sent.
        let sendCalls = bed.runs(of: "messages.sendMessage")
        var resentBadly: [String] = []
        var resent = 0
        for job in done where job.kind == "send" {
            let runs = sendCalls[String(SendJob.randomID(for: job))] ?? []
            let result = job.result.flatMap { try? JSONDecoder().decode(SendJob.Result.self, from: $0) }
            if runs.count == 2 && rerunIsTheKilledOnes(runs) && result?.alreadySent == true { resent += 1; continue }
            if runs.count != 1 || result?.alreadySent == true { resentBadly.append("\(job.idempotencyKey ?? "?"): \(runs.count) calls") }
        }
        #expect(resentBadly.isEmpty, "\(resentBadly.prefix(20))")
        var texts: [String: Int] = [:]
        for account in Self.accounts {
            let sent = bed.dc.core.withState { ($0.privateBoxes[account.userID] ?? []).filter(\.out).map(\.text) }
            for text in sent { texts[text, default: 0] += 1 }
        }
        #expect(texts.count == Self.sendJobs && texts.values.allSatisfy { $0 == 1 }, "every send delivered once: \(texts.filter { $0.value != 1 })")
        #expect(twice.count + resent <= inFlightBound, "\(twice.count) resolves and \(resent) sends ran twice; at most \(inFlightBound) were in flight")

        // Failover: each account the killed process held finished a job again within the bound.
        var gaps: [String] = []
        for account in victimAccounts {
            let next = done.filter { $0.account.rawValue == account }.compactMap(\.finishedAt?.seconds).filter { $0 > killedAt }.min()
            let gap = try #require(next, "\(account) finished no job after the kill") - killedAt
            #expect(gap <= Self.failoverBound, "\(account) was served again \(gap) s after its holder died")
            gaps.append("\(account) \(String(format: "%.2f", gap)) s")
        }

        // The flood: met once, by the killed process; during the rest of its wait another process
        // served alice (its calls are there) and none of them, nor anyone, called the method.
        #expect(bed.dc.core.withState { $0.duplicatedKeyAnswers } == 0)
        let floods = calls.filter { if case .rpcError(420, _) = $0.outcome { true } else { false } }
        #expect(floods.count == 1)
        let floodCall = try #require(floods.first)
        #expect(byVictim(floodCall), "the flood was met by the process then killed")
        #expect(floodCall.at < killedAt, "the kill came during the wait")
        let waitEnds = floodCall.at + Self.floodSeconds
        // Calls already on the wire when the DC answered the flood (sent before any client could
        // know; the account runs 4 calls at once) arrive within a round trip: not calls made
        // during the wait. Half a second covers a debug build on a loaded 2-core machine.
        let inFlight = 0.5
        let ofAlice = calls.filter { $0.call.account == 1001 }
        let crossed = ofAlice.filter { $0.call.method == floodCall.call.method && $0.at > floodCall.at && $0.at <= floodCall.at + inFlight }
        #expect(crossed.count <= Self.concurrency && crossed.allSatisfy(byVictim),
                "only the flooded process's calls already sent crossed the answer: \(crossed.map { $0.at - floodCall.at })")
        let during = ofAlice.filter { $0.call.method == floodCall.call.method && $0.at > floodCall.at + inFlight && $0.at < waitEnds - 0.05 }
        #expect(during.isEmpty, "\(during.count) calls of \(floodCall.call.method) during its flood wait: \(during.map { $0.at - floodCall.at }) s after it")
        let takerDuringWait = ofAlice.filter { !byVictim($0) && $0.at > killedAt && $0.at < waitEnds - 0.05 }
        #expect(!takerDuringWait.isEmpty, "another process served alice during the wait (else the check above proves nothing)")
        let takerResolvesAfter = ofAlice.filter { !byVictim($0) && $0.call.method == floodCall.call.method && $0.at >= waitEnds - 0.05 }
        #expect(!takerResolvesAfter.isEmpty, "alice's resolves went on after the wait, from the process that took her over")
        let resolved = done.filter { $0.kind == "resolve" && $0.account == "alice" }
        #expect(resolved.contains { $0.deferrals >= 1 && $0.attempts == 1 }, "the flooded job waited without spending an attempt")
        let elapsed = Date().timeIntervalSince1970 - started
        print("ClusterRunTests: \(total) jobs by 4 `tgsm run` processes in \(String(format: "%.1f", elapsed)) s (debug build); "
              + "failover after SIGKILL: " + gaps.joined(separator: ", ")
              + "; reruns of jobs in flight at the kill: \(twice.count) resolves, \(resent) sends (bound \(inFlightBound)); "
              + "alice taken over by pid \(takeoverPID) \(String(format: "%.2f", (takerDuringWait.first?.at ?? 0) - killedAt)) s after the kill, "
              + "\(takerDuringWait.count) of its calls during the flood wait, none of the flooded method; "
              + "restarted process serving all accounts \(String(format: "%.2f", restartedServing)) s after the others stopped")

        // Every process still up stops cleanly.
        for member in members where member.process.isRunning {
            kill(member.pid, SIGTERM)
            #expect(await member.waitForExit(seconds: 30) == 0, "\(member.output)")
        }
        #expect(members.contains { $0.output.contains("standing by") }, "standby processes said so")
        // The jobs the killed process had claimed ran again at the takeover, not after their 60 s claim lease.
        #expect(members.contains { $0.output.contains("ended the claims of a dead worker process") })
        try await bed.close()
    }

    /// Failover by the lease's expiry: the holder is frozen (SIGSTOP: its pid lives, its heartbeats
    /// stop), so the standby cannot know it dead and must wait for the lease to run out. Takeover
    /// within lease TTL + standby interval + a margin; the frozen process, woken (SIGCONT), is
    /// fenced out: it finds its lease taken, stands by and calls nothing more for the account;
    /// no AUTH_KEY_DUPLICATED; a job runs twice only when it was in flight at the freeze.
    @Test(.timeLimit(.minutes(6))) func aFrozenHolderLosesItsAccountByLeaseExpiryAndIsFencedOutWhenItWakes() async throws {
        let resolves = 400, mes = 140, sends = 60
        let account = Self.accounts[0]
        let bed = try await Bed.start(accounts: [account], usernames: (0..<resolves).map(Self.username))
        try await bed.run { try await Self.freezeTheHolder(bed, account: account, resolves: resolves, mes: mes, sends: sends) }
    }

    static func freezeTheHolder(_ bed: Bed, account: (name: String, phone: String, userID: Int64, password: String?),
                                resolves: Int, mes: Int, sends: Int) async throws {
        let total = resolves + mes + sends
        // 6 s: a heartbeat every 2 s and pings every 2 s that the DC's disconnect (3 s) forgives
        // a second late on a loaded machine (AccountRuntimeConfiguration.pingIntervalWithinLease).
        let leaseTTL = 6.0, standbyInterval = 0.5
        // Expiry, one standby try, then a connection, the start-up check and a first job in a debug
        // build on a loaded machine. A holder frozen inside a transaction keeps its locks until the
        // server ends it (PostgresDatabase.idleInTransactionTimeout, 5 s, shorter than the TTL).
        let bound = leaseTTL + standbyInterval + 8
        // The first job after the takeover may wait up to two poll intervals (WorkerConfiguration's
        // 5 s) more: a claim round that finds the account's slots still held by the frozen
        // holder's claims (the per-account limit counts every process) looks again a poll later.
        let servedBound = bound + 2 * 5
        try await Self.enqueue(bed.queue, accounts: [account.name], resolves: resolves, mes: mes, sends: sends)
        let arguments = ["run", "--store", bed.database.url, "--account", account.name, "--standby", "--standby-interval", "\(standbyInterval)",
                         "--lease-ttl", "\(leaseTTL)", "--concurrency", "\(Self.concurrency)", "--no-http", "--grace-period", "5"]
        let holder = try bed.start(arguments, log: "holder.log")
        try await Self.waitUntil(seconds: 60, "the first process holding the account") { try await bed.holder(account.name) == holder.pid }
        let standby = try bed.start(arguments, log: "standby.log")
        try await Self.waitUntil(seconds: 60, "the second process standing by") { standby.output.contains("standing by") }

        try await Self.waitUntil(seconds: 120, "a sixth of the jobs done") { try await bed.completed() >= total / 6 }
        kill(holder.pid, SIGSTOP)
        let frozenAt = Date().timeIntervalSince1970
        try await Self.waitUntil(seconds: bound + 30, "the standby holding the lease") { try await bed.holder(account.name) == standby.pid }
        let takeover = Date().timeIntervalSince1970 - frozenAt
        try await Self.waitUntil(seconds: 60, "a job finished after the freeze") {
            try await bed.queue.jobs(state: .completed, account: nil, limit: total).contains { ($0.finishedAt?.seconds ?? 0) > frozenAt }
        }
        let served = try #require(try await bed.queue.jobs(state: .completed, account: nil, limit: total)
            .compactMap(\.finishedAt?.seconds).filter { $0 > frozenAt }.min()) - frozenAt
        #expect(takeover <= bound, "the lease was taken over \(takeover) s after the freeze; bound \(bound) s")
        #expect(served <= servedBound, "the account was served again \(served) s after the freeze; bound \(servedBound) s")

        // Let the new holder work, then wake the old one while jobs are still queued.
        let before = try await bed.completed()
        try await Self.waitUntil(seconds: 60, "the new holder working") { try await bed.completed() >= before + 60 }
        let wokenAt = Date().timeIntervalSince1970
        kill(holder.pid, SIGCONT)
        do {
            // Each connection the server ended during the freeze may leave a store operation
            // unanswered until its bound (PostgresDatabase.operationTimeout) before the process
            // learns that its lease is gone: a few of them, one after the other.
            try await Self.waitUntil(seconds: 3 * PostgresDatabase.operationTimeout + 30, "the woken process standing by") {
                holder.output.contains("tgsm run: \(account.name): standing by")
            }
        } catch {
            Issue.record("\(error); the woken process printed, last lines: \(holder.output.split(separator: "\n").suffix(40).joined(separator: "\n"))")
            throw error
        }
        let holderAfterWake = try await bed.holder(account.name)
        #expect(holderAfterWake == standby.pid, "the lease stayed with the process that took it over")
        #expect(holder.process.isRunning, "the woken process stands by, it does not die")

        try await Self.waitUntil(seconds: 180, "every job done") { try await bed.completed() >= total }
        let counts = try await bed.queue.counts(account: nil)
        #expect(counts[.completed] == total && counts[.dead] == 0 && counts[.running] == 0, "\(counts)")
        #expect(bed.dc.core.withState { $0.duplicatedKeyAnswers } == 0, "no AUTH_KEY_DUPLICATED")

        // Who called: before the freeze only the holder's sessions; while it was frozen only the
        // new holder's. After the wake-up nothing ran at the DC from a session of neither: the
        // woken process's in-flight calls had reached the DC before it froze, and it sent no new one.
        let calls = bed.dc.core.withState { $0.faults.calls }.filter { $0.call.account == account.userID }
        let holderSessions = Set(calls.filter { $0.at < frozenAt }.compactMap(\.sessionID))
        let takerSessions = Set(calls.filter { $0.at > frozenAt + 0.5 && $0.at < wokenAt }.compactMap(\.sessionID))
        #expect(holderSessions.isDisjoint(with: takerSessions), "the frozen process made no call while frozen")
        let afterWake = calls.filter { $0.at > wokenAt && !takerSessions.contains($0.sessionID ?? 0) }
        #expect(afterWake.isEmpty, "calls after the wake-up from the fenced process: \(afterWake.map { "\($0.call.method) +\($0.at - wokenAt) s" })")
        #expect(!holder.output.contains("TGSM-AUTH-006") && !standby.output.contains("TGSM-AUTH-006"), "neither process met AUTH_KEY_DUPLICATED")

        // Once at the DC per job; twice only for one in flight at the freeze (first by the frozen
        // holder before it, then by the new holder), at most `concurrency` of them.
        func rerunOfFrozen(_ runs: [FaultEngine.RecordedCall]) -> Bool {
            runs.count == 2 && holderSessions.contains(runs[0].sessionID ?? 0) && runs[0].at < frozenAt + 0.5
                && takerSessions.contains(runs[1].sessionID ?? 0)
        }
        let resolveRuns = bed.runs(of: "contacts.resolveUsername")
        #expect((0..<resolves).map(Self.username).allSatisfy { resolveRuns[$0] != nil }, "every resolve ran at the DC")
        let twice = resolveRuns.filter { $0.value.count > 1 }
        #expect(twice.values.allSatisfy(rerunOfFrozen), "\(twice.mapValues { $0.map { "\($0.at - frozenAt)" } })")
        let done = try await bed.queue.jobs(state: .completed, account: nil, limit: total * 2)
        let sendRuns = bed.runs(of: "messages.sendMessage")
        var resent = 0
        for job in done where job.kind == "send" {
            let runs = sendRuns[String(SendJob.randomID(for: job))] ?? []
            let result = job.result.flatMap { try? JSONDecoder().decode(SendJob.Result.self, from: $0) }
            if runs.count == 2, rerunOfFrozen(runs), result?.alreadySent == true { resent += 1 } else {
                #expect(runs.count == 1 && result?.alreadySent != true, "\(job.idempotencyKey ?? "?"): \(runs.count) calls")
            }
        }
        let texts = bed.dc.core.withState { ($0.privateBoxes[account.userID] ?? []).filter(\.out).map(\.text) }
        #expect(texts.count == sends && Set(texts).count == sends, "every send delivered once")
        #expect(twice.count + resent <= Self.concurrency)
        print("ClusterRunTests: frozen holder (SIGSTOP), lease TTL \(leaseTTL) s, standby every \(standbyInterval) s: lease taken over after "
              + "\(String(format: "%.2f", takeover)) s, account served again after \(String(format: "%.2f", served)) s (bound \(servedBound) s); "
              + "reruns of jobs in flight at the freeze: \(twice.count) resolves, \(resent) sends")

        kill(standby.pid, SIGTERM)
        #expect(await standby.waitForExit(seconds: 30) == 0, "\(standby.output)")
        // The woken process's graceful shutdown ends within its bound whatever its jobs in flight
        // at the freeze are doing (their transactions were ended by the server while it was frozen):
        // grace period (5 s), then the group's maximum (grace + 15 s), with room for a loaded machine.
        let terminatedAt = ContinuousClock.now
        kill(holder.pid, SIGTERM)
        let woken = await holder.waitForExit(seconds: 30)
        #expect(woken == 0, "\(holder.output)")
        if woken == nil { kill(holder.pid, SIGKILL) }
        print("ClusterRunTests: the woken process exited \(woken.map { "with \($0)" } ?? "not at all") "
              + "\(ContinuousClock.now - terminatedAt) after SIGTERM (bound 30 s)")
        try await bed.close()
    }

    static func waitUntil(seconds: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw WaitFailure(message: "not within \(seconds) s: \(what)")
    }

    struct WaitFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
