import Foundation
import Logging
import struct MTProtoClient.DCAddress
import struct MTProtoClient.DCTable
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import StoreTestSupport
import Synchronization
import TL
import TLSchema
import TestDC
import Testing

/// Issue 13, point 12: one account lives 30 simulated days against the in-process test DC, on a
/// real SQLite store file with its lease, while a seeded schedule injects a fault every few
/// simulated minutes: dropped connections, bad_server_salt, FLOOD_WAIT, DC restarts on the same
/// state directory, DC clock jumps, and kills of the "process" (client and store dropped without
/// closing, then reopened from the file, the lease taken over as stale). Meanwhile another account
/// writes to it, and the account follows its updates (pushes, gaps, getDifference after every
/// drop, kill and DC restart; the DC keeps its message boxes in the state directory). At the end:
/// the account was never logged in again, the stored session and ledger survived every kill, no
/// call reached the DC while a flood wait was active, every message arrived, none twice in one
/// process, and the stored pts is the DC's.
///
/// Time: the DC, the client, the store and the middlewares read one simulated clock. The
/// connections' timers (pings, timeouts, backoff) sleep on it until the driver moves it; a
/// caller's own waits (the ledger's inline wait, retry backoff, the rate gate) fast-forward it,
/// since a caller that waits is exactly time passing. Network I/O is real loopback TCP.
@Suite struct ThirtyDaySoakTests {
    static let account: AccountID = "alice"
    static let phone = "15550001"
    static let userID: Int64 = 1001
    /// Bob, who writes to the account from another device.
    static let writerID: Int64 = 1002
    static let seed: UInt64 = 0x7E57_50A4

    /// One simulated minute per step of the schedule.
    static let step: Double = 180
    static let days = Double(ProcessInfo.processInfo.environment["TGSM_SOAK_DAYS"] ?? "") ?? 30
    static let tracing = ProcessInfo.processInfo.environment["TGSM_SOAK_TRACE"] != nil

    /// A keep-alive failure's code covers several causes; its warning names the one it was.
    static let keepAliveLog = LogCapture()

    /// The last keep-alive failure's reason, of any code or of `code`.
    static func lastKeepAliveFailure(code: String? = nil) -> String {
        let failure = keepAliveLog.all.last { event in code.map { event.metadata["code"] == $0 } ?? true }
        return failure.map { $0.metadata["reason"] ?? $0.message } ?? "none"
    }

    static func trace(_ message: @autoclosure () -> String) {
        if tracing { FileHandle.standardError.write(Data((message() + "\n").utf8)) }
    }
    static let leaseTTL: Double = 900
    static let keepAliveInterval: Double = 4 * 3600

    // A hang fails here, not in CI's job timeout. The issue's bound is two minutes: scripts/test prints
    // the wall time (36-82 s in debug on 2 cores on 2026-12-03, by load); the limit leaves a loaded
    // CI machine a margin over it, since a soak that fails only for being slow would block everything.
    @Test(.timeLimit(.minutes(3))) func thirtySimulatedDaysOfFaultsNeverLoseTheLoginOrTheState() async throws {
        let started = ContinuousClock.now
        let directory = TemporaryDirectory("soak")
        defer { directory.remove() }
        let time = SimulatedTime()
        let random = SeededRandomSource(seed: Self.seed)
        // Its own stream, so the fault schedule stays the one the seed always gave.
        let chatter = SeededRandomSource(seed: Self.seed &+ 0xC4A7)
        var soak = try await Soak.start(directory: directory, time: time)
        var figures = Figures()

        // The one and only login.
        Self.trace("logging in")
        try await soak.logIn()
        Self.trace("logged in")
        try await soak.startUpdates()
        let session = try #require(try await soak.process.store.loadSession(account: Self.account))
        let homeKey = try #require(session.dcs[1]?.authKey)
        #expect(session.userID == Self.userID && session.isAuthorized)

        let end = time.now() + Self.days * 86400
        var nextLeaseExpiryRestart = true
        while time.now() < end {
            time.advance(by: Self.step)
            figures.steps += 1
            if figures.steps % 480 == 0 { Self.trace("day \(figures.steps / 480): \(figures.injected) stalls \(soak.stalls)") }
            try await soak.heartbeat()

            // A fault every few simulated minutes: 45 % of the 3-minute steps.
            if random.nextUnit() < 0.45 {
                let roll = random.nextUnit()
                Self.trace("step \(figures.steps) fault \(roll) at \(Int(time.now().seconds - time.start))")
                switch roll {
                case ..<0.30:
                    let kind: FaultEffect.Kind = random.nextUnit() < 0.5 ? .dropBeforeAnswer : .dropAfterAnswer
                    try soak.dc.addFault(FaultRule(match: FaultMatch(dc: 1, count: 1), effect: FaultEffect(kind: kind)))
                    figures.injected["drop", default: 0] += 1
                case ..<0.52:
                    try soak.dc.addFault(FaultRule(match: FaultMatch(dc: 1, count: 1), effect: FaultEffect(kind: .badServerSalt)))
                    figures.injected["badServerSalt", default: 0] += 1
                case ..<0.74:
                    let seconds = [3, 8, 30, 120, 600, 1800, 3600, 7200][Int(random.next() % 8)]
                    try soak.dc.addFault(FaultRule(match: FaultMatch(dc: 1, method: "users.getUsers", count: 1),
                                                   effect: .rpcError(420, "FLOOD_WAIT_\(seconds)")))
                    figures.injected["floodWait", default: 0] += 1
                case ..<0.86:
                    let offset = Int(random.next() % 1800) - 900
                    // As the control endpoint: the DC's sessions and connections end, clients meet
                    // the new time in new sessions.
                    soak.dc.core.setClockOffset(offset, dc: 1)
                    figures.injected["clockJump", default: 0] += 1
                case ..<0.93:
                    try await soak.restartDC()
                    figures.injected["dcRestart", default: 0] += 1
                default:
                    // Half the restarts come at once (the supervisor sees the pid gone), half after
                    // the dead process's lease expired. Two kills in eight come while a call is in
                    // flight (the DC has it, its answer held back), so both kinds of restart meet one.
                    // (Counted, not drawn: the seeded schedule stays the one the seed always gave.)
                    let inFlight = figures.injected["processKill", default: 0] % 8 < 2
                    if try await soak.kill(afterLeaseExpiry: nextLeaseExpiryRestart, callInFlight: inFlight) {
                        figures.injected["processKillWithACallInFlight", default: 0] += 1
                    }
                    nextLeaseExpiryRestart.toggle()
                    figures.injected["processKill", default: 0] += 1
                }
            }

            // Bob writes now and then (a message every hour on average), at any hour.
            if chatter.nextUnit() < Self.step / 3600 {
                let text = "soak \(soak.inbox.sentCount + 1)"
                try soak.dc.core.sendPrivateMessage(from: Self.writerID, to: Self.userID, text: text)
                soak.inbox.sent(text)
            }

            // Busy two hours a day (a call every step), idle otherwise: the keep-alive must
            // carry the idle hours.
            let hourOfDay = (time.now().seconds.truncatingRemainder(dividingBy: 86400)) / 3600
            if (9..<11).contains(hourOfDay) || random.nextUnit() < 0.02 {
                try await soak.busyCall(&figures)
            }
            let outcome = await soak.drive { [keepAlive = soak.process.keepAlive] in await keepAlive.step() }
            switch outcome {
            case .pinged: figures.keepAlivePings += 1
            case .failed(let code):
                figures.failures[code, default: 0] += 1
                Self.trace("step \(figures.steps) keep-alive failed \(code), \(Int(time.now().seconds - soak.lastAuthorizedSuccess)) s since the last success: \(Self.lastKeepAliveFailure())")
                if Self.tracing {
                    let statistics = await soak.process.client.statistics()[1]
                    let offset = soak.dc.core.withState { $0.faults.clockOffset(dc: 1) }
                    let stored = try await soak.process.store.loadSession(account: Self.account)?.dcs[1]?.timeOffset
                    Self.trace("  DC offset \(offset), client's stored offset \(String(describing: stored)), DC getState count \(soak.dcCount("updates.getState")), client \(String(describing: statistics))")
                }
            case .skipped: break
            }
            if case .pinged = outcome { soak.noteAuthorizedSuccess() }
            try soak.checkLiveKeys(homeKey: homeKey.id)
        }

        // Zero re-logins: one code, one sign-in, the same key bound to the same user on the DC
        // and in the store, which still loads after the last kill.
        let counts = soak.totals()
        #expect(counts["auth.sendCode"] == 1 && counts["auth.signIn"] == 1, "\(counts)")
        #expect(soak.dc.core.withState { $0.authorizations[DCState.AuthKeyRef(dc: 1, keyID: homeKey.id)] } == Self.userID)
        #expect(soak.dc.core.withState { $0.authKeyIDs(dc: 1) } == [homeKey.id])
        let final = try #require(try await soak.process.store.loadSession(account: Self.account))
        #expect(final.dcs[1]?.authKey == homeKey && final.userID == Self.userID && final.isAuthorized && final.homeDC == 1)
        // No code ever said the session or the authorization was lost.
        let lost = figures.failures.keys.filter { $0.hasPrefix("TGSM-AUTH") || $0.hasPrefix("TGSM-SESSION") }
        #expect(lost.isEmpty, "\(figures.failures)")
        // The keep-alive kept the authorization in use: never a gap much longer than its interval
        // (plus a restart after a lease expiry and a few failed attempts, one per step).
        // (A DC clock 30-300 s ahead once made every call time out for hours here: ClientSession
        // dropped the answers as from the future and nobody resynchronized.)
        #expect(soak.longestAuthorizedGap <= Self.keepAliveInterval + Self.leaseTTL + 5 * Self.step, "gap \(soak.longestAuthorizedGap)")
        // Far inside a week, the shortest account TTL.
        #expect(soak.longestAuthorizedGap < 86400)
        // Flood waits: every call of a flooded method came after the wait's end, and the DC saw
        // none while one was active.
        let violations = soak.network.callsDuringFloodWaits(method: "users.getUsers")
        #expect(violations.isEmpty, "calls during a flood wait at \(violations)")
        #expect(figures.floodRefusalsThatReachedDC == 0)
        #expect(figures.floodWaitsHonoured > 0 && soak.process.lease.token.rawValue == Int64(1 + (figures.injected["processKill"] ?? 0)))
        #expect(figures.busyCalls > 0 && figures.keepAlivePings > 0)
        // No call got another's answer: after a clock moved back by a time correction the session
        // reused msg_ids the DC had answered, and the DC gave the old answers (updates.differenceEmpty
        // to users.getUsers: 3-8 undecodable answers, TGSM-RPC-005, in every soak before 2026-12-06).
        // A call in doubt is not that: the DC confirmed it, then its answer did not come in time
        // (TGSM-NET-006, a network outcome like the timeouts' NET-002). Under load the driver moves
        // the timers' clock by the in-doubt deadlines every 20 ms of real time, so one can end so
        // before loopback delivers the answer; it was counted as RPC-005 until 2026-12-06 and made
        // this expectation fail in 1 soak of 20-30.
        #expect(figures.failures["TGSM-RPC-005"] == nil, "\(figures.failures); the last busy call's: \(figures.lastFailure["TGSM-RPC-005"] ?? "none"), the last keep-alive's: \(Self.lastKeepAliveFailure(code: "TGSM-RPC-005"))")
        // Kills with a call in flight happened, of both kinds of restart (nearly every one tried: a
        // call that cannot reach the DC in time, its link still coming back, makes a plain kill).
        let tried = (0..<(figures.injected["processKill"] ?? 0)).filter { $0 % 8 < 2 }.count
        #expect((figures.injected["processKillWithACallInFlight"] ?? 0) >= max(4, tried * 9 / 10), "\(figures.injected)")

        // Updates: one last message makes any lost push a gap; then every message has arrived,
        // none twice within one process, and the store holds the DC's pts.
        try soak.dc.core.sendPrivateMessage(from: Self.writerID, to: Self.userID, text: "soak last")
        soak.inbox.sent("soak last")
        let getDifferenceBefore = soak.dcCount("updates.getDifference")
        let caughtUp = await soak.catchUp()
        if !caughtUp {
            let live = soak.dc.core.liveConnections.map { "#\($0.id) key \($0.authKeyID.map(String.init) ?? "-") user \($0.userID.map(String.init) ?? "-")" }
            Swift.print("soak catch-up failed: DC pts \(soak.dc.core.withState { $0.pts(user: Self.userID) }), stored \(String(describing: try await soak.process.store.loadSession(account: Self.account)?.updates)), getDifference during catch-up \(soak.dcCount("updates.getDifference") - getDifferenceBefore), live connections \(live), client \(String(describing: await soak.process.client.statistics()[1]))")
        }
        let missing = soak.inbox.missing
        #expect(caughtUp && missing.isEmpty, "\(missing.count) of \(soak.inbox.sentCount) messages never arrived: \(missing.prefix(10))")
        #expect(soak.inbox.repeatedWithinAProcess.isEmpty, "delivered twice by one process: \(soak.inbox.repeatedWithinAProcess.prefix(10))")
        let dcPts = soak.dc.core.withState { $0.pts(user: Self.userID) }
        let storedPts = try await soak.process.store.loadSession(account: Self.account)?.updates?.pts
        #expect(storedPts == dcPts && dcPts == Int32(1 + soak.inbox.sentCount))

        soak.reconnects = await soak.connectionsOpened() - 1
        let wall = started.duration(to: .now)
        figures.print(simulatedDays: (time.now().seconds - time.start) / 86400, wall: wall, soak: soak, counts: counts)
        await soak.process.client.close()
        try await soak.dc.shutdown()
    }
}

// MARK: - The simulated time

/// One simulated clock with two views: `timers` (what connections sleep on: suspends until the
/// driver advances past the deadline) and `waits` (what a caller's own waits use: fast-forwards).
final class SimulatedTime: Sendable {
    private struct Sleeper {
        var id: Int
        var deadline: Double
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Double
        var sleepers: [Sleeper] = []
        var cancelled: Set<Int> = []
        var nextID = 0
    }

    let start: Double
    private let state: Mutex<State>

    init(start: Double = 1_800_000_000) {
        self.start = start
        state = Mutex(State(now: start))
    }

    func now() -> UnixTime { UnixTime(seconds: state.withLock { $0.now }) }

    /// The earliest deadline a timer sleeps until.
    var nextDeadline: Double? { state.withLock { $0.sleepers.map(\.deadline).min() } }

    func advance(by seconds: Double) {
        let due = state.withLock { state -> [Sleeper] in
            state.now += max(0, seconds)
            let due = state.sleepers.filter { $0.deadline <= state.now }
            state.sleepers.removeAll { $0.deadline <= state.now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    func wait(for seconds: Double) async throws {
        try Task.checkCancellation()
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = state.withLock { state -> Bool in
                    if state.cancelled.remove(id) != nil { return true }
                    state.sleepers.append(Sleeper(id: id, deadline: state.now + max(0, seconds), continuation: continuation))
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    struct Timers: TelegramClock {
        let time: SimulatedTime
        func now() -> UnixTime { time.now() }
        func sleep(for seconds: Double) async throws { try await time.wait(for: seconds) }
    }

    struct Waits: TelegramClock {
        let time: SimulatedTime
        func now() -> UnixTime { time.now() }
        func sleep(for seconds: Double) async throws {
            try Task.checkCancellation()
            time.advance(by: seconds)
        }
    }

    var timers: Timers { Timers(time: self) }
    var waits: Waits { Waits(time: self) }
}

/// Resolves once a piece of work finished, or after a real-time grace: whichever comes first.
final class Completion: Sendable {
    private struct State {
        var done = false
        var waiter: CheckedContinuation<Bool, Never>?
        var timer: Task<Void, Never>?
    }

    private let state = Mutex(State())

    func finish() {
        let (waiter, timer) = state.withLock { state in
            state.done = true
            defer { state.waiter = nil; state.timer = nil }
            return (state.waiter, state.timer)
        }
        timer?.cancel()
        waiter?.resume(returning: true)
    }

    /// True when the work finished, false when `grace` of real time passed first.
    func wait(grace: Duration) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let done = state.withLock { state -> Bool in
                if state.done { return true }
                state.waiter = continuation
                state.timer = Task { [weak self] in
                    try? await Task.sleep(for: grace)
                    guard !Task.isCancelled, let self else { return }
                    let waiter = self.state.withLock { state in
                        defer { state.waiter = nil; state.timer = nil }
                        return state.waiter
                    }
                    waiter?.resume(returning: false)
                }
                return false
            }
            if done { continuation.resume(returning: true) }
        }
    }
}

// MARK: - What reached the network

/// Every call that left the middlewares for the client (the network boundary), with the
/// simulated time it started and the FLOOD_WAIT it got, if any.
final class NetworkLog: Sendable {
    struct Entry: Sendable {
        var method: String
        var at: Double
        var floodSeconds: Int?
    }

    private let entries = Mutex<[Entry]>([])

    func append(_ entry: Entry) { entries.withLock { $0.append(entry) } }
    var all: [Entry] { entries.withLock { $0 } }

    /// The waits the DC imposed on `method`, as (from, until).
    func floodWindows(method: String) -> [(from: Double, until: Double)] {
        all.filter { $0.method == method }.compactMap { entry in entry.floodSeconds.map { (entry.at, entry.at + Double($0)) } }
    }

    /// Times of calls of `method` that went out while one of its flood waits was running.
    func callsDuringFloodWaits(method: String) -> [Double] {
        let windows = floodWindows(method: method)
        return all.filter { $0.method == method }.map(\.at).filter { at in windows.contains { $0.from < at && at < $0.until } }
    }
}

struct RecordingInvoker: TelegramInvoking {
    let inner: any TelegramInvoking
    let log: NetworkLog
    let clock: any TelegramClock

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        let at = clock.now().seconds
        do {
            let result = try await inner.invoke(request, options: options)
            log.append(.init(method: Request.tlName, at: at))
            return result
        } catch {
            let flood = error.rpcError.flatMap { $0.name.hasPrefix("FLOOD_WAIT") ? $0.waitSeconds : nil }
            log.append(.init(method: Request.tlName, at: at, floodSeconds: flood))
            throw error
        }
    }
}

// MARK: - The soak's world: the DC, one "process", the schedule's bookkeeping

/// The messages Bob sent, and which process of the account saw each.
final class Inbox: Sendable {
    private struct State {
        var sent: [String] = []
        var seen: [Int32: [String: Int]] = [:]
    }

    private let state = Mutex(State())

    func sent(_ text: String) { state.withLock { $0.sent.append(text) } }

    func received(_ text: String, process: Int32) {
        state.withLock { $0.seen[process, default: [:]][text, default: 0] += 1 }
    }

    var sentCount: Int { state.withLock { $0.sent.count } }

    /// Sent, and seen by no process.
    var missing: [String] {
        state.withLock { state in state.sent.filter { text in !state.seen.values.contains { $0[text] != nil } } }
    }

    /// Seen more than once by one process: the updates engine repeated an event.
    var repeatedWithinAProcess: [String] {
        state.withLock { state in state.seen.values.flatMap { $0.filter { $0.value > 1 }.map(\.key) } }
    }

    /// Seen by more than one process: handed out, then the process died before the state after
    /// it was saved (at least once, as documented).
    var redeliveredAfterAKill: Int {
        state.withLock { state in
            var processes: [String: Int] = [:]
            for seen in state.seen.values { for text in seen.keys { processes[text, default: 0] += 1 } }
            return processes.values.filter { $0 > 1 }.count
        }
    }
}

struct Figures {
    var steps = 0
    var injected: [String: Int] = [:]
    var busyCalls = 0
    var keepAlivePings = 0
    var failures: [String: Int] = [:]
    /// The last busy call's error per code, so a failed expectation names the cause, not only its code.
    var lastFailure: [String: String] = [:]
    var floodRefusals = 0
    var floodRefusalsThatReachedDC = 0
    var floodWaitsHonoured = 0

    func print(simulatedDays: Double, wall: Duration, soak: Soak, counts: [String: Int]) {
        let injectedList = injected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let failureList = failures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        let calls = soak.network.all.count
        Swift.print("""
            30-day soak: \(String(format: "%.1f", simulatedDays)) simulated days in \(wall) wall, \(steps) steps of \(Int(ThirtyDaySoakTests.step)) s
              faults injected: \(injectedList); DC fault rules fired: \(soak.firedFaults)
              calls through the client: \(calls) (busy calls \(busyCalls), keep-alive pings \(keepAlivePings)); DC saw users.getUsers \(counts["users.getUsers"] ?? 0), updates.getState \(counts["updates.getState"] ?? 0)
              flood waits received \(soak.network.floodWindows(method: "users.getUsers").count), honoured \(floodWaitsHonoured) (calls refused by the ledger without reaching the DC: \(floodRefusals))
              reconnects \(soak.reconnects), process restarts \(soak.restarts), DC restarts \(soak.dcRestarts), lease token \(soak.process.lease.token)
              stalls (driver moved the timers' clock to unblock a call) \(soak.stalls); longest gap between authorized successes \(Int(soak.longestAuthorizedGap)) s
              failed calls by code: \(failureList.isEmpty ? "none" : failureList)
              logins: auth.sendCode \(counts["auth.sendCode"] ?? 0), auth.signIn \(counts["auth.signIn"] ?? 0)
              updates: \(soak.inbox.sentCount) messages sent to the account, \(soak.inbox.sentCount - soak.inbox.missing.count) arrived, \(soak.inbox.redeliveredAfterAKill) again after a kill (at least once across processes), DC getDifference \(counts["updates.getDifference"] ?? 0)
            """)
    }
}

struct Soak {
    /// One run of the account's "process": its store handle, lease, client and stack.
    struct Process {
        let pid: Int32
        let store: SQLiteSessionStore
        var lease: Lease
        let storage: AccountSessionStorage
        let client: TelegramClient
        let stack: SessionStack
        let keepAlive: KeepAlive
        /// Reads the client's updates into the inbox; cancelled when the process dies.
        var consumer: Task<Void, Never>?
    }

    static let countedMethods = ["auth.sendCode", "auth.signIn", "users.getUsers", "updates.getState", "updates.getDifference"]

    let directory: TemporaryDirectory
    let time: SimulatedTime
    let network: NetworkLog
    let inbox = Inbox()
    var dc: RunningTestDC
    let port: Int
    let keys: [RSAPublicKey]
    var process: Process
    var counterRules: [String: Int] = [:]
    var carried: [String: Int] = [:]
    var carriedFired = 0
    var deadProcessConnections = 0
    var reconnects = 0
    var restarts = 0
    var dcRestarts = 0
    var stalls = 0
    var lastAuthorizedSuccess: Double
    var longestAuthorizedGap: Double = 0

    static func dcConfiguration(directory: TemporaryDirectory, time: SimulatedTime, basePort: Int) -> TestDCConfiguration {
        TestDCConfiguration(basePort: basePort, dcCount: 1, controlEnabled: false, stateDirectory: URL(fileURLWithPath: directory.file("dc")),
                            clock: { time.now().seconds }, logger: quietLogger)
    }

    static func start(directory: TemporaryDirectory, time: SimulatedTime) async throws -> Soak {
        let dc = try await TestDCServer.start(dcConfiguration(directory: directory, time: time, basePort: 0))
        let address = try #require(dc.dcs[1])
        let keys = try dc.publicKeyPEMs.values.map { pem throws(RSAError) in try RSAPublicKey(pem: pem) }
        let network = NetworkLog()
        let process = try await Self.launch(pid: 1, directory: directory, time: time, address: address, keys: keys, network: network, deadPID: nil)
        var soak = Soak(directory: directory, time: time, network: network, dc: dc, port: address.port, keys: keys, process: process,
                        lastAuthorizedSuccess: time.now().seconds)
        try soak.addCounters()
        return soak
    }

    static func launch(pid: Int32, directory: TemporaryDirectory, time: SimulatedTime, address: DCAddress, keys: [RSAPublicKey],
                       network: NetworkLog, deadPID: Int32?) async throws -> Process {
        let store = try SQLiteSessionStore.open(directory: directory.file("store"), options: SQLiteStoreOptions(clock: time.timers, logger: quietLogger))
        let lease = try await store.acquireLease(account: ThirtyDaySoakTests.account, holder: LeaseHolder(host: "soak", pid: pid), now: time.now(),
                                                 ttl: ThirtyDaySoakTests.leaseTTL, holderIsDead: { $0.pid == deadPID })
        let storage = AccountSessionStorage(store: store, account: ThirtyDaySoakTests.account, lease: lease)
        let configuration = TelegramClientConfiguration(
            apiID: 1, apiHash: "test-api-hash", serverKeys: keys, dcTable: DCTable([1: [address]]), initialDC: 1, deviceModel: "soak",
            defaultTimeout: 30, handshakeTimeout: 30)
        var clientLogger = Logger(label: "soak.client") { StreamLogHandler.standardError(label: $0) }
        clientLogger.logLevel = .debug
        let client = TelegramClient(configuration: configuration, storage: storage, clock: time.timers,
                                    logger: ProcessInfo.processInfo.environment["TGSM_SOAK_TRACE"] == "2" ? clientLogger : quietLogger)
        let random = SeededRandomSource(seed: ThirtyDaySoakTests.seed &+ UInt64(pid))
        let stack = SessionStack(account: ThirtyDaySoakTests.account, client: RecordingInvoker(inner: client, log: network, clock: time.waits),
                                 ledgerStore: store, statuses: store, storage: storage, clock: time.waits, random: random, logger: quietLogger)
        let keepAlive = KeepAlive(account: ThirtyDaySoakTests.account, invoker: stack.invoker, health: stack.health,
                                  policy: KeepAlivePolicy(interval: ThirtyDaySoakTests.keepAliveInterval, call: .getState),
                                  clock: time.waits, random: random, logger: ThirtyDaySoakTests.keepAliveLog.logger)
        return Process(pid: pid, store: store, lease: lease, storage: storage, client: client, stack: stack, keepAlive: keepAlive)
    }

    /// Runs `body` to its end. When it has not finished after a real-time grace, it is waiting on
    /// a connection timer (a reconnect backoff after a link died twice quickly): the timers' clock
    /// moves to that deadline, as real time would.
    /// `grace`: real time a call may take before the clock jumps to the next deadline.
    mutating func drive<T: Sendable>(grace: Duration = .milliseconds(20), _ body: @escaping @Sendable () async -> T) async -> T {
        let completion = Completion()
        let work = Task {
            let result = await body()
            completion.finish()
            return result
        }
        while await !completion.wait(grace: grace) {
            stalls += 1
            ThirtyDaySoakTests.trace("stall \(stalls): next deadline \(String(describing: time.nextDeadline.map { $0 - time.now().seconds }))")
            let now = time.now().seconds
            time.advance(by: max(1, (time.nextDeadline ?? now) - now))
        }
        return await work.value
    }

    mutating func logIn() async throws {
        let login = TelegramLogin(invoker: process.stack.invoker, apiID: 1, apiHash: "test-api-hash")
        let dc = dc
        _ = try await login.logIn(phoneNumber: ThirtyDaySoakTests.phone, code: { _ in dc.loginCode(phone: ThirtyDaySoakTests.phone) ?? "" },
                                  password: { _ in "" })
        noteAuthorizedSuccess()
    }

    /// Starts following updates (from the stored state after a restart: getDifference) and reads
    /// them into the inbox under this process's pid.
    mutating func startUpdates() async throws {
        let client = process.client
        let started = await drive { () -> TelegramError? in
            do throws(TelegramError) {
                try await client.startUpdates()
                return nil
            } catch {
                return error
            }
        }
        if let started { throw started }
        let inbox = inbox
        let pid = process.pid
        process.consumer = Task {
            for await event in client.updates {
                guard case .updateNewMessage(let new) = event.update, case .message(let message) = new.message else { continue }
                inbox.received(message.message, process: pid)
            }
        }
    }

    /// Lets time pass (the gap timer, reconnects) until every message sent has arrived and the
    /// store holds the DC's pts (saved once the consumer finished the last one), or a real-time
    /// bound passes; true when both happened.
    mutating func catchUp() async -> Bool {
        for _ in 0..<500 {
            let dcPts = dc.core.withState { $0.pts(user: ThirtyDaySoakTests.userID) }
            let storedPts = try? await process.store.loadSession(account: ThirtyDaySoakTests.account)?.updates?.pts
            if inbox.missing.isEmpty && storedPts == dcPts { return true }
            try? await Task.sleep(for: .milliseconds(20))
            time.advance(by: 1)
        }
        return false
    }

    mutating func noteAuthorizedSuccess() {
        let now = time.now().seconds
        longestAuthorizedGap = max(longestAuthorizedGap, now - lastAuthorizedSuccess)
        lastAuthorizedSuccess = now
    }

    mutating func heartbeat() async throws {
        process.lease = try await process.store.renewLease(process.lease, now: time.now(), ttl: ThirtyDaySoakTests.leaseTTL)
    }

    /// The busy workload's call; checks the ledger kept it off the network during a flood wait.
    mutating func busyCall(_ figures: inout Figures) async throws {
        let now = time.now().seconds
        let waiting = network.floodWindows(method: "users.getUsers").contains { $0.from <= now && now < $0.until }
        let before = dcCount("users.getUsers")
        let invoker = process.stack.invoker
        let error = await drive {
            await failure(invoker, Api.functions.users.GetUsers(id: [.inputUserSelf(.init())]), options: InvokeOptions(isIdempotent: true))
        }
        figures.busyCalls += 1
        let code = error?.guidance(account: ThirtyDaySoakTests.account).code
        if let code {
            figures.failures[code, default: 0] += 1
            figures.lastFailure[code] = String(describing: error)
            ThirtyDaySoakTests.trace("step \(figures.steps) busy call failed \(code): \(String(describing: error))")
        } else {
            noteAuthorizedSuccess()
        }
        if waiting {
            figures.floodRefusals += 1
            if dcCount("users.getUsers") != before { figures.floodRefusalsThatReachedDC += 1 }
            if code == "TGSM-RATE-001" { figures.floodWaitsHonoured += 1 }
        }
    }

    /// Connections opened by every process so far (the first one of each process included).
    func connectionsOpened() async -> Int {
        let live = await process.client.statistics().values.reduce(0) { $0 + $1.connections }
        return deadProcessConnections + live
    }

    /// Every live connection on the DC uses the account's one key, logged in as the account.
    func checkLiveKeys(homeKey: Int64) throws {
        for connection in dc.core.liveConnections where connection.authKeyID != nil {
            #expect(connection.authKeyID == homeKey, "a connection with another auth key: a new key means a new login")
            if let user = connection.userID { #expect(user == ThirtyDaySoakTests.userID) }
        }
    }

    // MARK: Counters across DC restarts

    mutating func addCounters() throws {
        for method in Self.countedMethods {
            counterRules[method] = try dc.addFault(FaultRule(match: FaultMatch(method: method), effect: .delay(milliseconds: 0))).id
        }
    }

    func dcCount(_ method: String) -> Int {
        let live = counterRules[method].map { rule in dc.core.withState { $0.faults.firedCount(rule: rule) } } ?? 0
        return (carried[method] ?? 0) + live
    }

    func totals() -> [String: Int] {
        Dictionary(uniqueKeysWithValues: Self.countedMethods.map { ($0, dcCount($0)) })
    }

    /// Fault rules (not the counters) that fired, over every DC run.
    var firedFaults: Int {
        carriedFired + liveFiredFaults
    }

    private var liveFiredFaults: Int {
        let counters = Set(counterRules.values)
        return dc.core.withState { state in state.faults.rules.filter { !counters.contains($0.id) }.reduce(0) { $0 + state.faults.firedCount(rule: $1.id) } }
    }

    // MARK: Faults that are not rules

    /// Stops the DC and starts it again on the same state directory and port: keys and logins
    /// come back from authkeys.json; sessions, salts, fault rules and clock offsets do not.
    mutating func restartDC() async throws {
        for method in Self.countedMethods { carried[method] = dcCount(method) }
        carriedFired += liveFiredFaults
        try await dc.shutdown()
        dc = try await TestDCServer.start(Self.dcConfiguration(directory: directory, time: time, basePort: port))
        counterRules = [:]
        try addCounters()
        dcRestarts += 1
    }

    /// Kills the process: nothing is closed or flushed, its sockets die with it (the DC side
    /// closes them, as the kernel would). A new process opens the store file, takes the lease over
    /// as stale, and must find the session as the dead one last committed it. With `callInFlight`
    /// the process dies in the middle of a call: the DC has received and handled it, its answer is
    /// held back (a delay fault) so the process never sees it, and the new process must still run
    /// on the stored login and answer a call at once. Returns whether the call was in flight.
    @discardableResult
    mutating func kill(afterLeaseExpiry: Bool, callInFlight: Bool = false) async throws -> Bool {
        let dead = process
        var pending: Task<TelegramError?, Never>?
        var wasInFlight = false
        if callInFlight {
            let held = try dc.addFault(FaultRule(match: FaultMatch(dc: 1, method: "help.getNearestDc", count: 1), effect: .delay(milliseconds: 1000))).id
            let invoker = dead.stack.invoker
            pending = Task { await failure(invoker, Api.functions.help.GetNearestDc(), options: InvokeOptions()) }
            // Until the DC has it: the link may first have to come back (a reconnect waits on the
            // timers' clock, moved on as `drive` does), but the clock is not moved to the call's own
            // timeout: on a loaded host a reconnect outlasted the 40 ms between moves, the next move
            // went to that deadline and the call ended unanswered, a plain kill (13 of 106 in a 146 s
            // soak on 2026-12-06, under the 90% this test expects; 2-7 on a quiet host).
            let timeout = InvokeOptions().timeout ?? 30
            var moved = 0.0
            for attempt in 1...1000 where dc.core.withState({ $0.faults.firedCount(rule: held) }) == 0 {
                try await Task.sleep(for: .milliseconds(5))
                if attempt % 8 == 0 {
                    let now = time.now().seconds
                    let step = max(1, (time.nextDeadline ?? now) - now)
                    guard moved + step < timeout - 5 else { continue }
                    time.advance(by: step)
                    moved += step
                }
            }
            wasInFlight = dc.core.withState { $0.faults.firedCount(rule: held) } == 1
            // A killed process's tasks end with it.
            pending?.cancel()
            if !wasInFlight, ThirtyDaySoakTests.tracing, let pending {
                let ended = await pending.value
                ThirtyDaySoakTests.trace("kill: the call did not reach the DC in time; a plain kill (the call: \(String(describing: ended)))")
            }
        }
        dead.consumer?.cancel()
        deadProcessConnections += await dead.client.statistics().values.reduce(0) { $0 + $1.connections }
        dc.core.disconnectAll()
        if afterLeaseExpiry { time.advance(by: ThirtyDaySoakTests.leaseTTL + 1) }
        let address = DCAddress(host: "127.0.0.1", port: port)
        process = try await Self.launch(pid: dead.pid + 1, directory: directory, time: time, address: address, keys: keys, network: network,
                                        deadPID: afterLeaseExpiry ? nil : dead.pid)
        // Nothing of a killed process runs on. Its client object would: following updates, it
        // fetches the difference after the link loss, reconnecting with the account's key next to
        // the new process (two live sessions on one key: AUTH_KEY_DUPLICATED, as on Telegram). The
        // new lease fences it first, so what it saves while closing is refused, as a kill saves nothing.
        await dead.client.close()
        let before = try #require(try await dead.store.loadSession(account: ThirtyDaySoakTests.account))
        let floodsBefore = try await dead.store.activeFloodWaits(account: ThirtyDaySoakTests.account, at: time.now())
        restarts += 1
        #expect(process.lease.token.rawValue == dead.lease.token.rawValue + 1)
        // The dead process's writes are fenced off from now on.
        await #expect(throws: SessionStoreError.self) { try await dead.storage.save(before) }
        let after = try #require(try await process.store.loadSession(account: ThirtyDaySoakTests.account))
        // What the dead process committed is what the new one runs on (salts may have moved since).
        #expect(after.homeDC == before.homeDC && after.userID == before.userID && after.isAuthorized && after.updates == before.updates)
        #expect(after.dcs.mapValues(\.authKey) == before.dcs.mapValues(\.authKey))
        let floodsAfter = try await process.store.activeFloodWaits(account: ThirtyDaySoakTests.account, at: time.now())
        #expect(Set(floodsAfter.map(\.method)).isSuperset(of: floodsBefore.filter { $0.until > time.now() }.map(\.method)))
        // The new process follows updates from where the dead one's last save left them.
        try await startUpdates()
        if let pending {
            // Whatever became of the dead process's call (its answer never came), the new process
            // runs on the stored login: its first authorized call is answered, no code asked for.
            _ = await pending.value
            let invoker = process.stack.invoker
            // Up to three tries: `drive` moves the timers' clock to the next deadline whenever a
            // call takes more than 20 ms of real time, so on a loaded machine a call can reach its
            // 30 s (simulated) timeout before loopback answers. What must hold is that the stored
            // login still works (no code asked for: counted at the end), not that the first try wins.
            // A quarter second of real time per step, not 20 ms, and a 10-minute timeout, not 30 s:
            // scripts/test runs of 2026-12-04 (16:33, 16:45) timed out all three tries on a machine
            // slowed by the suites before, each jump of the driven clock eating into 30 s. Neither
            // weakens what the step proves: the answer comes on the stored login, no code asked for.
            var error: TelegramError?
            for _ in 1...3 {
                error = await drive(grace: .milliseconds(250)) {
                    await failure(invoker, Api.functions.updates.GetState(), options: InvokeOptions(timeout: 600, isIdempotent: true))
                }
                guard let timedOut = error, Self.isTimeout(timedOut) else { break }
                ThirtyDaySoakTests.trace("kill mid-call: the restarted process's call timed out on the driven clock; again")
            }
            #expect(error == nil, "the restarted process's first call after a kill mid-call: \(String(describing: error))")
            if error == nil { noteAuthorizedSuccess() }
        }
        return wasInFlight
    }
}

extension Soak {
    /// A call that ran out of (driven) time, as opposed to one the DC refused.
    static func isTimeout(_ error: TelegramError) -> Bool {
        switch error {
        case .timeout, .inDoubt: true
        default: false
        }
    }
}
