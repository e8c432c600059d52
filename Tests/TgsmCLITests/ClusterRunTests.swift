#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import MTProto
import PostgresStore
import SessionManager
import StoreTestSupport
import TestDC
import Testing
import Workers

/// Scale-out as an operator runs it: four `tgsm run` processes (the built binary) share one
/// PostgreSQL store and one test DC, three accounts and thousands of jobs. One process is killed
/// with SIGKILL mid-job, another is stopped and started again. Every job completes exactly once,
/// the DC never answers AUTH_KEY_DUPLICATED, nobody calls during a flood wait another process met,
/// and the killed process's accounts are served again within the failover bound.
@Suite(.serialized) struct ClusterRunTests {
    static let accounts: [(name: String, phone: String, userID: Int64, password: String?)] = [
        ("alice", "15550001", 1001, nil), ("bob", "15550002", 1002, "hunter2"), ("carol", "15550003", 1003, nil),
    ]
    static let meJobs = 2400
    static let resolveJobs = 60
    /// Same host: a dead holder's pid is seen at once, so the bound is the standby interval, a
    /// connection and a first job, with room for a loaded 2-core CI machine.
    static let failoverBound = 15.0

    final class Member: @unchecked Sendable {
        // Unchecked: Process is not Sendable in corelibs Foundation; started once, then only signalled and read.
        let process = Process()
        let log: String

        init(binary: String, arguments: [String], environment: [String: String], log: String) throws {
            self.log = log
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

        var pid: Int32 { process.processIdentifier }
        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

        func waitForExit(seconds: Double) async -> Int32? {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while process.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            return process.isRunning ? nil : process.terminationStatus
        }
    }

    @Test(.timeLimit(.minutes(10))) func fourProcessesShareAccountsQueueAndLimitsThroughKillAndRestart() async throws {
        let database = try await ScratchPostgresDatabase.create()
        let temporary = try CLI.temporary()
        let root = temporary.root
        let dc = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false,
                                                                  stateDirectory: URL(fileURLWithPath: root + "/dc"),
                                                                  logger: Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }))
        dc.core.withState { $0.faults.recordsCalls = true }
        // The proactive gate raised knowingly (the test DC has no limits but the injected one):
        // the default 5 calls a second per account would make this a minute-long wait.
        let config = root + "/config.json"
        try Data("""
            {"rateLimits": {"perAccount": {"other": {"perSecond": 500, "burst": 500}, "resolve": {"perSecond": 100, "burst": 100}}}}
            """.utf8).write(to: URL(fileURLWithPath: config))
        var cli = CLI(store: database.url)
        cli.environment = ["TGSM_API_ID": "1", "TGSM_API_HASH": "test-api-hash", "TGSM_SERVER": root + "/dc", "TGSM_CONFIG": config]

        for account in Self.accounts {
            let code = String(account.phone.suffix(5).reversed())
            let answers = code + "\n" + (account.password.map { $0 + "\n" } ?? "")
            let login = try await cli.run(["auth", "--account", account.name, "--phone", account.phone], stdin: answers)
            #expect(login.status == 0, "\(account.name): \(login.stderr)")
        }

        // Jobs, each with its idempotency key; alice's resolves meet one FLOOD_WAIT_12 (longer than
        // the 10 s the ledger sleeps through inline, so the jobs are deferred).
        let queue = try await PostgresJobQueue.connect(url: database.url, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let now = UnixTime(seconds: Date().timeIntervalSince1970)
        for index in 0..<Self.meJobs {
            let account = Self.accounts[index % Self.accounts.count].name
            _ = try await queue.enqueue(NewJob(kind: "me", account: AccountID(account), payload: Data("{}".utf8), idempotencyKey: "me-\(index)"), now: now)
        }
        for index in 0..<Self.resolveJobs {
            _ = try await queue.enqueue(NewJob(kind: "resolve", account: "alice", payload: Data("{\"username\": \"bob\"}".utf8),
                                               idempotencyKey: "resolve-\(index)"), now: now)
        }
        _ = try dc.addFault(FaultRule(match: FaultMatch(method: "contacts.resolveUsername", account: 1001, skip: 5, count: 1), effect: .floodWait(12)))

        var environment = ProcessInfo.processInfo.environment
        for key in ["TGSM_HOME", "TGSM_NOW", "TGSM_STORE"] { environment.removeValue(forKey: key) }
        for (key, value) in cli.environment { environment[key] = value }
        let arguments = ["run", "--store", database.url, "--standby", "--standby-interval", "0.5", "--concurrency", "4", "--no-http",
                         "--grace-period", "5"] + Self.accounts.flatMap { ["--account", $0.name] }
        var members: [Member] = []
        func start() throws -> Member {
            let member = try Member(binary: CLI.binary, arguments: arguments, environment: environment, log: root + "/run-\(members.count).log")
            members.append(member)
            return member
        }
        let started = Date().timeIntervalSince1970
        for _ in 0..<4 { _ = try start() }

        let store = try await PostgresSessionStore.connect(url: database.url, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        func completed() async throws -> Int { try await queue.counts(account: nil)[.completed] }
        func holder(_ account: String) async throws -> Int32? { try await store.currentLease(account: AccountID(account))?.holder.pid }

        // Mid-run: SIGKILL the process serving alice while its jobs are in flight.
        try await Self.waitUntil(seconds: 120, "a tenth of the jobs done") { try await completed() >= Self.meJobs / 10 }
        let victimPID = try #require(try await holder("alice"))
        let victim = try #require(members.first { $0.pid == victimPID })
        var victimAccounts: [String] = []
        for account in Self.accounts where try await holder(account.name) == victimPID { victimAccounts.append(account.name) }
        kill(victimPID, SIGKILL)
        let killedAt = Date().timeIntervalSince1970
        #expect(await victim.waitForExit(seconds: 10) != nil)

        // Another holder is stopped gracefully and started again.
        try await Self.waitUntil(seconds: 60, "alice served again") {
            guard let pid = try await holder("alice") else { return false }
            return pid != victimPID
        }
        try await Self.waitUntil(seconds: 120, "half the jobs done") { try await completed() >= Self.meJobs / 2 }
        let restartedPID = try #require(try await holder("alice"))
        let restarted = try #require(members.first { $0.pid == restartedPID })
        kill(restartedPID, SIGTERM)
        #expect(await restarted.waitForExit(seconds: 30) == 0, "\(restarted.output)")
        _ = try start()

        let total = Self.meJobs + Self.resolveJobs
        try await Self.waitUntil(seconds: 300, "every job done") { try await completed() >= total }
        let counts = try await queue.counts(account: nil)
        #expect(counts[.completed] == total && counts[.dead] == 0 && counts[.queued] == 0 && counts[.running] == 0, "\(counts)")

        // Exactly once by idempotency key: one completed job per key, every key there.
        let done = try await queue.jobs(state: .completed, account: nil, limit: total * 2)
        let keys = done.compactMap(\.idempotencyKey)
        #expect(keys.count == total && Set(keys).count == total)

        // Failover: each account the killed process held finished a job again within the bound.
        var gaps: [String] = []
        for account in victimAccounts {
            let next = done.filter { $0.account.rawValue == account }.compactMap(\.finishedAt?.seconds).filter { $0 > killedAt }.min()
            let gap = try #require(next, "\(account) finished no job after the kill") - killedAt
            #expect(gap <= Self.failoverBound, "\(account) was served again \(gap) s after its holder died")
            gaps.append("\(account) \(String(format: "%.2f", gap)) s")
        }
        let elapsed = Date().timeIntervalSince1970 - started
        print("ClusterRunTests: \(total) jobs by 4 `tgsm run` processes in \(String(format: "%.1f", elapsed)) s (debug build); "
              + "failover after SIGKILL: " + gaps.joined(separator: ", "))

        // The DC's view: no duplicated key, and nothing sent during the flood wait it imposed.
        #expect(dc.core.withState { $0.duplicatedKeyAnswers } == 0)
        let calls = dc.core.withState { $0.faults.calls }
        var floods = 0
        for flood in calls {
            guard case .rpcError(420, let message) = flood.outcome, let seconds = Double(message.dropFirst("FLOOD_WAIT_".count)) else { continue }
            floods += 1
            // Calls already on the wire when the DC answered the flood (sent before any client could
            // know; the account runs 4 calls at once) arrive within a round trip: not calls made
            // during the wait. Half a second covers a debug build on a loaded 2-core machine.
            let inFlight = 0.5
            let during = calls.filter {
                $0.call.method == flood.call.method && $0.call.account == flood.call.account
                    && $0.at > flood.at + inFlight && $0.at < flood.at + seconds - 0.05
            }
            let crossed = calls.filter {
                $0.call.method == flood.call.method && $0.call.account == flood.call.account && $0.at > flood.at && $0.at <= flood.at + inFlight
            }
            #expect(crossed.count <= 4, "no more calls crossed the flood's answer than the account runs at once: \(crossed.map { $0.at - flood.at })")
            let around = calls.filter { $0.call.method == flood.call.method && abs($0.at - flood.at) < 1 }.map { $0.at - flood.at }
            #expect(during.isEmpty, "\(during.count) calls of \(flood.call.method) during its flood wait: \(during.map { $0.at - flood.at }) s after it; around it: \(around)")
        }
        #expect(floods == 1)
        let resolved = done.filter { $0.kind == "resolve" }
        #expect(resolved.contains { $0.deferrals >= 1 && $0.attempts == 1 }, "the flooded job waited without spending an attempt")

        // Every process still up stops cleanly.
        for member in members where member.process.isRunning {
            kill(member.pid, SIGTERM)
            #expect(await member.waitForExit(seconds: 30) == 0, "\(member.output)")
        }
        #expect(members.contains { $0.output.contains("standing by") }, "standby processes said so")
        // The jobs the killed process had claimed ran again at the takeover, not after their 60 s claim lease.
        #expect(members.contains { $0.output.contains("ended the claims of a dead worker process") })
        await store.close()
        await queue.close()
        try await dc.shutdown()
        await database.drop()
        try? FileManager.default.removeItem(atPath: root)
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
