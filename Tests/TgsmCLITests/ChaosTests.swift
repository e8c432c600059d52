#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MTProto
import SessionManager
@testable import TestDC
import Testing
import Workers

/// The chaos campaign of docs/RELIABILITY.md (issue 17), run by `scripts/chaos`, not by
/// `scripts/test` (it takes half an hour): the built `tgsm` binary abused as an operator's machine
/// would abuse it, loopback only, each part bounded in time. Every part prints `chaos:` lines the
/// script copies into the report, and asserts its goal (zero).
///
/// - SIGKILLs of a working `tgsm run` (and of `tgsm session backup` beside it) at random moments:
///   start-up and key creation (PFS on, so every start makes and binds a temporary key), store
///   writes, backups, job completion. Goal: no unusable session, no lost job, no message sent twice.
/// - Two and four `tgsm run --standby` processes on one account, the holder killed again and
///   again. Goal: no AUTH_KEY_DUPLICATED, never two holders.
/// - A fault storm: every transient fault kind of the test DC at once, for minutes, against two
///   processes serving three accounts. Goal: no crash, no re-login, no call during a flood wait.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["TGSM_CHAOS"] != nil, "scripts/chaos sets TGSM_CHAOS"))
struct ChaosTests {
    static let environment = ProcessInfo.processInfo.environment
    static let kills = Int(environment["TGSM_CHAOS_KILLS"] ?? "") ?? 1000
    static let stormSeconds = Double(environment["TGSM_CHAOS_STORM_SECONDS"] ?? "") ?? 600
    static let takeovers = Int(environment["TGSM_CHAOS_TAKEOVERS"] ?? "") ?? 10
    /// Kills come 0.05 s to this many seconds after a start: start-up takes most of a second in a
    /// debug build, so the window reaches well into job processing.
    static let killWindow = Double(environment["TGSM_CHAOS_KILL_WINDOW"] ?? "") ?? 2.5

    static func report(_ line: String) {
        // Unbuffered: a run that hits its time limit still leaves what it measured.
        FileHandle.standardOutput.write(Data(("chaos: " + line + "\n").utf8))
    }

    struct Bed {
        let root: String
        let cli: CLI
        let dc: RunningTestDC
        var environment: [String: String]

        static func start(config: String) async throws -> Bed {
            let temporary = try CLI.temporary()
            let root = temporary.root
            var cli = temporary.cli
            let dc = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false,
                                                                      stateDirectory: URL(fileURLWithPath: root + "/dc"),
                                                                      logger: Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }))
            try Data(config.utf8).write(to: URL(fileURLWithPath: root + "/config.json"))
            cli.environment = ["TGSM_API_ID": "1", "TGSM_API_HASH": "test-api-hash", "TGSM_SERVER": root + "/dc", "TGSM_CONFIG": root + "/config.json"]
            var environment = ProcessInfo.processInfo.environment
            for key in ["TGSM_HOME", "TGSM_NOW", "TGSM_STORE"] { environment.removeValue(forKey: key) }
            for (key, value) in cli.environment { environment[key] = value }
            return Bed(root: root, cli: cli, dc: dc, environment: environment)
        }

        func logIn(_ accounts: [(name: String, phone: String, password: String?)]) async throws {
            for account in accounts {
                let code = String(account.phone.suffix(5).reversed())
                let answers = code + "\n" + (account.password.map { $0 + "\n" } ?? "")
                let login = try await cli.run(["auth", "--account", account.name, "--phone", account.phone], stdin: answers)
                #expect(login.status == 0, "\(account.name): \(login.stderr)")
            }
        }

        func start(_ arguments: [String], log: String) throws -> ClusterRunTests.Member {
            try ClusterRunTests.Member(binary: CLI.binary, arguments: arguments + ["--store", cli.store], environment: environment, log: root + "/" + log)
        }

        /// Counts calls of `method` that reach the DC (a rule that delays by nothing).
        func counter(_ method: String) throws -> Int {
            try dc.addFault(FaultRule(match: FaultMatch(method: method), effect: .delay(milliseconds: 0))).id
        }

        func fired(_ rule: Int) -> Int { dc.core.withState { $0.faults.firedCount(rule: rule) } }

        func queue() throws -> SQLiteJobQueue { try SQLiteJobQueue.open(path: cli.store + "/jobs.sqlite") }

        /// The texts of the messages `sender` sent, with how many times each was sent.
        func sentTexts(by sender: Int64) -> [String: Int] {
            dc.core.withState { state in
                (state.privateBoxes[sender] ?? []).filter(\.out).reduce(into: [:]) { $0[$1.text, default: 0] += 1 }
            }
        }

        func close() async throws {
            try await dc.shutdown()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    static let generousLimits = """
        "rateLimits": {"perAccount": {"other": {"perSecond": 500, "burst": 500}, "send": {"perSecond": 500, "burst": 500}, "resolve": {"perSecond": 100, "burst": 100}},
                       "perChat": {"send": {"perSecond": 500, "burst": 500}}}
        """

    /// Keeps at least `low` jobs waiting: `send` jobs to bob (text = idempotency key, so the DC's
    /// box tells how often each was sent) and `me` jobs, alternating accounts.
    static func topUp(_ queue: SQLiteJobQueue, accounts: [String], next: inout Int, low: Int = 20, batch: Int = 40) async throws {
        let counts = try await queue.counts(account: nil)
        guard counts[.queued] + counts[.running] < low else { return }
        let now = UnixTime(seconds: Date().timeIntervalSince1970)
        for _ in 0..<batch {
            let account = accounts[next % accounts.count]
            let key = "chaos-\(next)"
            let job: NewJob
            if next % 2 == 0 {
                job = NewJob(kind: "send", account: AccountID(account), payload: Data("{\"peer\": {\"username\": \"bob\"}, \"text\": \"\(key)\"}".utf8), idempotencyKey: key)
            } else {
                job = NewJob(kind: "me", account: AccountID(account), payload: Data("{}".utf8), idempotencyKey: key)
            }
            _ = try await queue.enqueue(job, now: now)
            next += 1
        }
    }

    /// What the process was doing when it died: the last log line's message, shortened.
    static func moment(_ output: String) -> String {
        guard let line = output.split(separator: "\n").last(where: { $0.contains("tgsm") || $0.contains("[") }) else { return "nothing logged yet (process start-up)" }
        let text = String(line)
        let lower = text.lowercased()
        if lower.contains("temporary key") || lower.contains("key exchange") || lower.contains("bind") { return "key creation" }
        if lower.contains("backup") { return "backup" }
        if lower.contains("job") { return "jobs (claim, run, complete)" }
        if lower.contains("lease") || lower.contains("standing by") { return "lease" }
        if lower.contains("connect") || lower.contains("ready") || lower.contains("serving") || lower.contains("check") { return "start-up (connect, check)" }
        return "other: " + String(text.suffix(60))
    }

    @Test(.timeLimit(.minutes(60))) func sigkillsOfAWorkingRunLoseNothing() async throws {
        let bed = try await Bed.start(config: "{\(Self.generousLimits), \"pfs\": {\"keyLifetime\": 3600}}")
        defer { Task { try? await bed.close() } }
        try await bed.logIn([("alice", "15550001", nil), ("carol", "15550003", nil)])
        let sendCodes = try bed.counter("auth.sendCode")
        let signIns = try bed.counter("auth.signIn")
        let bindsBefore = bed.dc.core.withState { $0.temporaryKeyBinds }
        let queue = try bed.queue()
        var next = 0
        // Seeded: the kill moments are reproducible, the machine's timing is not.
        let dice = SeededRandomSource(seed: 0xC4A0_5EED)
        var moments: [String: Int] = [:]
        var backupKills = 0
        var selfExits: [String] = []
        let started = Date()
        for cycle in 0..<Self.kills {
            try await Self.topUp(queue, accounts: ["alice", "carol"], next: &next)
            // Every third start begins with a key exchange and auth.bindTempAuthKey: the DC forgot
            // the temporary keys (as a restart of Telegram's DC does).
            if cycle % 3 == 0 { bed.dc.core.withState { $0.forgetTemporaryKeys() } }
            let run = try bed.start(["run", "--account", "alice", "--account", "carol", "--no-http", "--concurrency", "4", "--grace-period", "1",
                                     "--log-level", "info"], log: "run.log")
            // Every fourth cycle an operator takes a backup at the same time; it dies with the run.
            let backup = cycle % 4 == 0 ? try bed.start(["session", "backup"], log: "backup.log") : nil
            let delay = 0.05 + dice.nextUnit() * Self.killWindow
            // A backup of a small store is quick: its own kill comes within its first tenth of a second.
            if let backup {
                try await Task.sleep(for: .milliseconds(Int(dice.nextUnit() * 100)))
                if backup.process.isRunning {
                    kill(backup.pid, SIGKILL)
                    backupKills += 1
                }
                try await Task.sleep(for: .milliseconds(max(0, Int(delay * 1000) - 100)))
            } else {
                try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            }
            if run.process.isRunning {
                moments[Self.moment(run.output), default: 0] += 1
                kill(run.pid, SIGKILL)
            } else {
                selfExits.append("cycle \(cycle): exit \(run.process.terminationStatus): \(run.output.suffix(300))")
            }
            _ = await run.waitForExit(seconds: 10)
            _ = await backup?.waitForExit(seconds: 10)
            if (cycle + 1) % 100 == 0 {
                Self.report("sigkill campaign: \(cycle + 1) kills in \(Int(Date().timeIntervalSince(started))) s")
            }
        }
        let campaignSeconds = Date().timeIntervalSince(started)

        // One last run drains the queue and stops cleanly.
        let last = try bed.start(["run", "--account", "alice", "--account", "carol", "--no-http", "--concurrency", "4", "--grace-period", "5"], log: "last.log")
        try await ClusterRunTests.waitUntil(seconds: 300, "the queue drained") {
            let counts = try await queue.counts(account: nil)
            return counts[.queued] + counts[.running] == 0
        }
        // SIGTERM once it is serving, so the drain above is followed by a graceful stop of a working run.
        try await Task.sleep(for: .seconds(3))
        kill(last.pid, SIGTERM)
        let lastExit = await last.waitForExit(seconds: 30)
        #expect(lastExit == 0, "exit \(String(describing: lastExit)): \(last.output.suffix(2000))")

        // Sessions: usable after every kill, without a new login.
        var unusable: [String] = []
        let check = try await bed.cli.run(["check", "--json"])
        if check.status != 0 { unusable.append("tgsm check: exit \(check.status): \(check.stdout.suffix(1500)) \(check.stderr.suffix(500))") }
        for account in ["alice", "carol"] {
            let status = try await bed.cli.run(["status", "--json"])
            if !status.stdout.contains("\"\(account)\"") { unusable.append("\(account) missing from tgsm status") }
        }
        // Jobs: every key exactly once in the queue, none still waiting; a send killed between the
        // call and its completion is resolved by the next attempt (same random_id: sent now, or
        // RANDOM_ID_DUPLICATE and completed as already sent), never a second message.
        let jobs = try await queue.jobs(state: nil, account: nil, limit: next * 2)
        let keys = jobs.compactMap(\.idempotencyKey)
        let completed = jobs.filter { $0.state == .completed }
        let dead = jobs.filter { $0.state == .dead }
        let lost = next - Set(keys).count + jobs.filter { $0.state == .queued || $0.state == .running }.count
        let texts = bed.sentTexts(by: 1001).merging(bed.sentTexts(by: 1003), uniquingKeysWith: +)
        let duplicated = texts.filter { $0.value > 1 }
        let completedSends = completed.filter { $0.kind == "send" }
        let completedButUnsent = completedSends.filter { texts[$0.idempotencyKey ?? ""] == nil }
        let alreadySent = completedSends.filter { job in
            (job.result.flatMap { try? JSONDecoder().decode(SendJob.Result.self, from: $0) })?.alreadySent == true
        }.count
        let inDoubt = dead.filter { $0.kind == "send" }
        let inDoubtSent = inDoubt.filter { texts[$0.idempotencyKey ?? ""] != nil }.count
        let otherDead = dead.filter { $0.kind != "send" }
        let duplicatedKeys = bed.dc.core.withState { $0.duplicatedKeyAnswers }

        Self.report("sigkill campaign: \(Self.kills) SIGKILLs of `tgsm run` (alice and carol, PFS on, 4 jobs at once) in \(Int(campaignSeconds)) s, "
                    + "each 0.05-\(String(format: "%.2f", 0.05 + Self.killWindow)) s after its start (seeded); \(backupKills) `tgsm session backup` processes killed with them")
        Self.report("sigkill campaign: moments of the kills (last thing logged): "
                    + moments.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        Self.report("sigkill campaign: temporary keys bound \(bed.dc.core.withState { $0.temporaryKeyBinds } - bindsBefore); logins asked for: auth.sendCode \(bed.fired(sendCodes)), auth.signIn \(bed.fired(signIns)); AUTH_KEY_DUPLICATED \(duplicatedKeys)")
        Self.report("sigkill campaign: unusable sessions \(unusable.count); processes that exited by themselves \(selfExits.count)")
        Self.report("sigkill campaign: jobs \(next) (\(next / 2) send, \(next - next / 2) me): completed \(completed.count), dead \(dead.count) "
                    + "(send in doubt \(inDoubt.count), of which the DC had \(inDoubtSent); other \(otherDead.count)), lost \(lost); "
                    + "messages sent twice \(duplicated.count); sends completed without a message \(completedButUnsent.count); "
                    + "interrupted sends completed as already sent (RANDOM_ID_DUPLICATE) \(alreadySent)")
        #expect(unusable.isEmpty, "\(unusable)")
        #expect(selfExits.isEmpty, "\(selfExits.prefix(5))")
        #expect(bed.fired(sendCodes) == 0 && bed.fired(signIns) == 0 && duplicatedKeys == 0)
        #expect(lost == 0 && duplicated.isEmpty && completedButUnsent.isEmpty)
        #expect(otherDead.isEmpty, "\(otherDead.prefix(5).map { "\($0.kind) \($0.lastError ?? "")" })")
        #expect(inDoubt.allSatisfy { ($0.lastError ?? "").contains("may already have happened") }, "\(inDoubt.prefix(5).map { $0.lastError ?? "" })")
    }

    @Test(.timeLimit(.minutes(30)), arguments: [2, 4]) func processesSharingOneAccountNeverDuplicateItsKey(processes: Int) async throws {
        let bed = try await Bed.start(config: "{\(Self.generousLimits)}")
        defer { Task { try? await bed.close() } }
        try await bed.logIn([("alice", "15550001", nil)])
        let queue = try bed.queue()
        var next = 0
        let store = try SQLiteSessionStore.open(directory: bed.cli.store, options: SQLiteStoreOptions(logger: Logger(label: "chaos") { _ in SwiftLogNoOpLogHandler() }))
        let arguments = ["run", "--account", "alice", "--no-http", "--standby", "--standby-interval", "0.2", "--concurrency", "4", "--grace-period", "1"]
        var members: [ClusterRunTests.Member] = []
        for index in 0..<processes { members.append(try bed.start(arguments, log: "member-\(index).log")) }
        var takeovers: [Double] = []
        var holderSamples = 0
        let started = Date()
        for _ in 0..<Self.takeovers {
            try await Self.topUp(queue, accounts: ["alice"], next: &next, low: 40, batch: 80)
            // Let the holder work, then kill it mid-job.
            try await ClusterRunTests.waitUntil(seconds: 60, "a holder") { try await store.currentLease(account: "alice") != nil }
            try await Task.sleep(for: .milliseconds(700))
            holderSamples += 1
            guard let holder = try await store.currentLease(account: "alice")?.holder.pid,
                  let victim = members.firstIndex(where: { $0.pid == holder && $0.process.isRunning }) else { continue }
            kill(holder, SIGKILL)
            let killedAt = Date()
            _ = await members[victim].waitForExit(seconds: 10)
            members[victim] = try bed.start(arguments, log: "member-\(victim)-\(takeovers.count).log")
            try await ClusterRunTests.waitUntil(seconds: 60, "another holder") {
                guard let pid = try await store.currentLease(account: "alice")?.holder.pid else { return false }
                return pid != holder
            }
            takeovers.append(Date().timeIntervalSince(killedAt))
        }
        // A member restarted moments ago may not have reached `tgsm run` yet: a SIGTERM then ends it
        // by the signal's default action (status 15), which says nothing about shutting down. Each
        // prints "connecting" after trapping its signals.
        for member in members where member.process.isRunning {
            try await ClusterRunTests.waitUntil(seconds: 30, "member \(member.pid) running") { member.output.contains("tgsm run: connecting") }
        }
        for member in members where member.process.isRunning { kill(member.pid, SIGTERM) }
        var exits: [Int32?] = []
        for member in members { exits.append(await member.waitForExit(seconds: 30)) }
        let duplicated = bed.dc.core.withState { $0.duplicatedKeyAnswers }
        let sorted = takeovers.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        Self.report("one account, \(processes) processes: \(takeovers.count) holders killed in \(Int(Date().timeIntervalSince(started))) s, "
                    + "takeover median \(String(format: "%.2f", median)) s, max \(String(format: "%.2f", sorted.last ?? 0)) s; AUTH_KEY_DUPLICATED \(duplicated); "
                    + "clean exits at the end \(exits.filter { $0 == 0 }.count)/\(processes)")
        #expect(duplicated == 0)
        #expect(exits.allSatisfy { $0 == 0 }, "\(exits)")
        try store.close()
    }

    @Test(.timeLimit(.minutes(40))) func aFaultStormCrashesNothingAndLogsNobodyOut() async throws {
        let bed = try await Bed.start(config: "{\(Self.generousLimits)}")
        defer { Task { try? await bed.close() } }
        try await bed.logIn([("alice", "15550001", nil), ("bob", "15550002", "hunter2"), ("carol", "15550003", nil)])
        bed.dc.core.withState { $0.faults.recordsCalls = true }
        let queue = try bed.queue()
        var next = 0
        let arguments = ["run", "--account", "alice", "--account", "bob", "--account", "carol", "--no-http", "--standby", "--standby-interval", "0.5",
                         "--concurrency", "4", "--grace-period", "5"]
        let members = [try bed.start(arguments, log: "storm-0.log"), try bed.start(arguments, log: "storm-1.log")]
        let dice = SeededRandomSource(seed: 0x5709_3A11)
        var injected: [String: Int] = [:]
        let methods = ["users.getUsers", "messages.sendMessage", "contacts.resolveUsername", nil]
        // The flood waits tgsm learnt, as its shared ledger holds them (polled every half second;
        // a wait lasts at least a second): a call made during one of these is a broken promise; a
        // call made during a wait whose answer never reached tgsm (lost with its connection or
        // session) is not one tgsm could have refused.
        // Read-only, as `tgsm status` reads: no recovery, checkpoint or backup beside the workers.
        let ledger = try #require(SQLiteSessionStore.openForReading(directory: bed.cli.store, options: SQLiteStoreOptions(logger: Logger(label: "chaos") { _ in SwiftLogNoOpLogHandler() })))
        var known: [String: FloodWait] = [:]
        func pollLedger() async throws {
            for wait in try await ledger.activeFloodWaits(account: nil, at: UnixTime(seconds: Date().timeIntervalSince1970)) {
                known["\(wait.account)/\(wait.method)/\(wait.peer ?? "")/\(wait.until.seconds)"] = wait
            }
        }
        let started = Date()
        while Date().timeIntervalSince(started) < Self.stormSeconds {
            try await pollLedger()
            // bob's sends go to alice, so the storm also carries updates (dropUpdates has pushes to drop).
            try await Self.topUp(queue, accounts: ["alice", "bob", "carol"], next: &next, low: 30, batch: 60)
            let method = methods[Int(dice.next() % UInt64(methods.count))]
            let effects: [(String, FaultEffect)] = [
                ("floodWait", .floodWait(Int(1 + dice.next() % 20))),
                ("slowmodeWait", FaultEffect(kind: .slowmodeWait, seconds: Int(1 + dice.next() % 10))),
                ("floodPremiumWait", FaultEffect(kind: .floodPremiumWait, seconds: Int(1 + dice.next() % 10))),
                ("internalError", FaultEffect(kind: .internalError)),
                ("rpcError", .rpcError(500, "RPC_CALL_FAIL")),
                ("transportError", .transportError(429)),
                ("dropBeforeAnswer", FaultEffect(kind: .dropBeforeAnswer)),
                ("dropAfterAnswer", FaultEffect(kind: .dropAfterAnswer)),
                ("swallowAnswer", FaultEffect(kind: .swallowAnswer)),
                ("delay", .delay(milliseconds: Int(dice.next() % 3000))),
                ("badServerSalt", FaultEffect(kind: .badServerSalt)),
                ("dropUpdates", FaultEffect(kind: .dropUpdates)),
            ]
            // Every kind at once: one rule of each, for the next matching call.
            for (name, effect) in effects {
                _ = try bed.dc.addFault(FaultRule(match: FaultMatch(method: name == "dropUpdates" ? nil : method, count: 1), effect: effect))
                injected[name, default: 0] += 1
            }
            // Now and then the DC's clock jumps (its sessions end).
            if dice.nextUnit() < 0.05 {
                bed.dc.core.setClockOffset(Int(dice.next() % 600) - 300, dc: 1)
                injected["clockJump", default: 0] += 1
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        bed.dc.core.setClockOffset(0, dc: 1)
        bed.dc.clearFaults()
        try await ClusterRunTests.waitUntil(seconds: 600, "the queue drained after the storm") {
            try await pollLedger()
            let counts = try await queue.counts(account: nil)
            return counts[.queued] + counts[.running] == 0
        }
        let crashed = members.filter { !$0.process.isRunning }
        // A member restarted moments ago may not have reached `tgsm run` yet: a SIGTERM then ends it
        // by the signal's default action (status 15), which says nothing about shutting down. Each
        // prints "connecting" after trapping its signals.
        for member in members where member.process.isRunning {
            try await ClusterRunTests.waitUntil(seconds: 30, "member \(member.pid) running") { member.output.contains("tgsm run: connecting") }
        }
        for member in members where member.process.isRunning { kill(member.pid, SIGTERM) }
        var exits: [Int32?] = []
        for member in members { exits.append(await member.waitForExit(seconds: 30)) }

        let calls = bed.dc.core.withState { $0.faults.calls }
        let logins = calls.filter { ["auth.sendCode", "auth.signIn", "auth.checkPassword"].contains($0.call.method) }.count
        var violations: [String] = []
        var newDuringFlood = 0
        var lateDuringFlood = 0
        var unknownToTgsm = 0
        var floods = 0
        let names: [Int64: String] = [1001: "alice", 1002: "bob", 1003: "carol"]
        for flood in calls {
            // FLOOD_WAIT (per method) only: SLOWMODE_WAIT is per chat and FLOOD_PREMIUM_WAIT per
            // upload, so other calls of the method may rightly go on during them.
            guard case .rpcError(420, let message) = flood.outcome, message.hasPrefix("FLOOD_WAIT_"),
                  let seconds = Double(message.dropFirst("FLOOD_WAIT_".count)) else { continue }
            floods += 1
            // As in ClusterRunTests: calls already on the wire when the flood was answered are not
            // calls made during it (half a second covers a debug build on a loaded machine).
            // Real times (the DC's clock jumps during the storm; `at` includes its offset).
            let floodAt = flood.at - Double(flood.clockOffset)
            for call in calls where call.call.method == flood.call.method && call.call.account == flood.call.account
                && call.at - Double(call.clockOffset) > floodAt + 0.5 && call.at - Double(call.clockOffset) < floodAt + seconds - 0.05 {
                let callAt = call.at - Double(call.clockOffset)
                // The msg_id carries the time the client made the message (server time, seconds
                // in its high 32 bits): a request made before the flood answer and delivered late
                // (a reconnect, a resend) is not a call made during the wait.
                let madeAt = call.messageID.map { Double($0 >> 32) } ?? call.at
                let seenBefore = calls.contains { $0.at < call.at && $0.sessionID == call.sessionID && $0.messageID == call.messageID }
                let account = call.call.account.flatMap { names[$0] } ?? "?"
                let learnt = known.values.contains {
                    $0.account.rawValue == account && $0.method == call.call.method
                        && $0.recordedAt.seconds <= callAt && callAt < $0.until.seconds - 0.05
                }
                let kind = seenBefore ? "resent" : madeAt < flood.at ? "made before the flood" : learnt ? "new" : "new, the wait never reached tgsm"
                switch kind {
                case "new": newDuringFlood += 1
                case "new, the wait never reached tgsm": unknownToTgsm += 1
                default: lateDuringFlood += 1
                }
                violations.append("\(kind): \(call.call.method) of \(account) \(String(format: "%.2f", callAt - floodAt)) s into \(message), made \(String(format: "%.0f", madeAt - flood.at)) s from it")
            }
        }
        let duringFlood = newDuringFlood
        let deadJobs = try await queue.jobs(state: .dead, account: nil, limit: next)
        let deadReasons = Dictionary(grouping: deadJobs) { "\($0.kind): \(($0.lastError ?? "").prefix(70))" }.mapValues(\.count)
        let counts = try await queue.counts(account: nil)
        let duplicated = bed.dc.core.withState { $0.duplicatedKeyAnswers }
        Self.report("fault storm: \(Int(Self.stormSeconds)) s, 2 `tgsm run` processes, 3 accounts; injected "
                    + injected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        Self.report("fault storm: DC calls \(calls.count), flood waits answered \(floods); calls made during a flood wait tgsm had learnt \(duringFlood) (during a wait whose FLOOD_WAIT answer never reached tgsm: \(unknownToTgsm); requests made before it that reached the DC late: \(lateDuringFlood)); ledger entries seen \(known.count); "
                    + "crashes \(crashed.count); re-logins \(logins); AUTH_KEY_DUPLICATED \(duplicated); "
                    + "jobs \(next): completed \(counts[.completed]), dead \(counts[.dead]), still waiting \(counts[.queued] + counts[.running])")
        if !violations.isEmpty { Self.report("fault storm: calls in a flood window: " + violations.joined(separator: "; ")) }
        Self.report("fault storm: dead jobs by cause: " + deadReasons.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: "; "))
        #expect(crashed.isEmpty && exits.allSatisfy { $0 == 0 }, "\(exits) \(crashed.map { $0.output.suffix(1000) })")
        #expect(logins == 0 && duringFlood == 0 && duplicated == 0, "\(violations.prefix(20))")
        #expect(counts[.queued] + counts[.running] == 0)
    }
}
