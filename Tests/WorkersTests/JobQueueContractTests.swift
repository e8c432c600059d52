import Foundation
import MTProto
import SessionManager
import StoreTestSupport
import Testing
@testable import Workers

/// The `JobQueue` contract, run on every engine (SQLite always, PostgreSQL when a server is given:
/// see StoreTestSupport). Several queues opened on the same data are what several processes see.
// The limit catches a hang, not slowness: a loaded 2-core machine can stall the whole test process for minutes.
@Suite(.timeLimit(.minutes(5))) struct JobQueueContractTests {
    let t0 = UnixTime(seconds: 1_800_000_000)

    func request(_ accounts: Set<AccountID> = ["alice"], limit: Int = 10, perAccount: Int = 10, owner: String = "w1", lease: Double = 30) -> ClaimRequest {
        ClaimRequest(accounts: accounts, limit: limit, perAccountLimit: perAccount, owner: owner, leaseSeconds: lease)
    }

    @Test(arguments: StoreEngine.allCases) func enqueueClaimCompleteKeepsTheResult(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let id = try await queue.enqueue(NewJob(kind: "me", account: "alice", payload: Data("{}".utf8)), now: t0).id
            let claimed = try await queue.claim(request(), now: t0)
            #expect(claimed.map(\.job.id) == [id])
            #expect(claimed.first?.job.attempts == 1)
            #expect(claimed.first?.leaseUntil == t0 + 30)
            let claim = try #require(claimed.first?.claim)
            try await queue.complete(claim, result: Data("done".utf8), now: t0 + 1)
            let job = try #require(try await queue.job(id))
            #expect(job.state == .completed && job.result == Data("done".utf8) && job.finishedAt == t0 + 1 && job.leaseOwner == nil)
            #expect(try await queue.claim(request(), now: t0 + 2).isEmpty)
            // Completing twice is refused: the claim is spent.
            await #expect(throws: JobQueueError.claimLost(claim)) { try await queue.complete(claim, result: nil, now: t0 + 3) }
        }
    }

    /// A busy slot completes its job and claims the next in one step; the slot it frees is the one
    /// it takes (the per-account limit counts the completed job out), and a lost claim takes nothing.
    @Test(arguments: StoreEngine.allCases) func completingClaimsTheSlotsNextJob(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            var ids: [JobID] = []
            for _ in 0..<3 { ids.append(try await queue.enqueue(NewJob(kind: "me", account: "alice"), now: t0).id) }
            let first = try #require(try await queue.claim(request(limit: 1, perAccount: 1), now: t0).first)
            #expect(first.job.id == ids[0])
            #expect(try await queue.claim(request(perAccount: 1), now: t0).isEmpty, "the account's one slot is taken")

            let next = try await queue.complete(first.claim, result: Data("1".utf8), now: t0 + 1, thenClaim: request(limit: 1, perAccount: 1))
            #expect(next.map(\.job.id) == [ids[1]])
            #expect(next.first?.job.attempts == 1 && next.first?.leaseUntil == t0 + 31)
            let done = try #require(try await queue.job(ids[0]))
            #expect(done.state == .completed && done.result == Data("1".utf8))

            // The spent claim completes nothing and claims nothing.
            await #expect(throws: JobQueueError.claimLost(first.claim)) {
                try await queue.complete(first.claim, result: nil, now: t0 + 2, thenClaim: request(limit: 1, perAccount: 1))
            }
            #expect(try await queue.job(ids[2])?.state == .queued)

            let second = try #require(next.first)
            let last = try await queue.complete(second.claim, result: nil, now: t0 + 3, thenClaim: request(limit: 1, perAccount: 1))
            let third = try #require(last.first)
            #expect(third.job.id == ids[2])
            #expect(try await queue.complete(third.claim, result: nil, now: t0 + 4, thenClaim: request(limit: 1, perAccount: 1)).isEmpty)
            #expect(try await queue.counts(account: "alice")[.completed] == 3)
        }
    }

    @Test(arguments: StoreEngine.allCases) func anIdempotencyKeyStoresOneJobForever(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let first = try await queue.enqueue(NewJob(kind: "send", account: "alice", idempotencyKey: "greeting-1"), now: t0)
            let second = try await queue.enqueue(NewJob(kind: "send", account: "bob", idempotencyKey: "greeting-1"), now: t0)
            guard case .created(let id) = first else {
                Issue.record("the first enqueue should create")
                return
            }
            #expect(second == .duplicate(id))
            let claim = try #require(try await queue.claim(request(), now: t0).first?.claim)
            try await queue.complete(claim, result: nil, now: t0)
            #expect(try await queue.enqueue(NewJob(kind: "send", account: "alice", idempotencyKey: "greeting-1"), now: t0 + 100) == .duplicate(id))
            #expect(try await queue.counts(account: nil)[.completed] == 1)
            #expect(try await queue.jobs(state: nil, account: nil, limit: 10).count == 1)
        }
    }

    @Test(arguments: StoreEngine.allCases) func claimsByPriorityThenRunAtAndNeverBeforeRunAt(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let low = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 0, runAt: t0), now: t0).id
            let high = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 5, runAt: t0 + 1), now: t0).id
            let later = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 9, runAt: t0 + 60), now: t0).id
            let older = try await queue.enqueue(NewJob(kind: "k", account: "alice", priority: 0, runAt: UnixTime(seconds: t0.seconds - 10)), now: t0).id
            let claimed = try await queue.claim(request(), now: t0 + 2)
            #expect(claimed.map(\.job.id) == [high, older, low])
            #expect(try await queue.nextWakeup(accounts: ["alice"], kinds: nil) == t0 + 30 + 2)
            for job in claimed { try await queue.complete(job.claim, result: nil, now: t0 + 3) }
            #expect(try await queue.nextWakeup(accounts: ["alice"], kinds: nil) == t0 + 60)
            #expect(try await queue.claim(request(), now: t0 + 59).isEmpty)
            #expect(try await queue.claim(request(), now: t0 + 60).map(\.job.id) == [later])
        }
    }

    @Test(arguments: StoreEngine.allCases) func claimsOnlyTheAccountsAndKindsAsked(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            _ = try await queue.enqueue(NewJob(kind: "history", account: "bob"), now: t0)
            let mine = try await queue.enqueue(NewJob(kind: "history", account: "alice"), now: t0).id
            _ = try await queue.enqueue(NewJob(kind: "unknown", account: "alice"), now: t0)
            var asked = request()
            asked.kinds = ["history"]
            #expect(try await queue.claim(asked, now: t0).map(\.job.id) == [mine])
        }
    }

    @Test(arguments: StoreEngine.allCases) func thePerAccountLimitHoldsAcrossWorkers(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            for _ in 0..<5 { _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0) }
            for _ in 0..<5 { _ = try await queue.enqueue(NewJob(kind: "k", account: "bob"), now: t0) }
            let first = try await queue.claim(request(["alice", "bob"], perAccount: 2, owner: "w1"), now: t0)
            let second = try await queue.claim(request(["alice", "bob"], perAccount: 2, owner: "w2"), now: t0)
            #expect(first.count == 4 && second.isEmpty)
            #expect(first.filter { $0.job.account == "alice" }.count == 2)
            try await queue.complete(try #require(first.first { $0.job.account == "alice" }).claim, result: nil, now: t0)
            let third = try await queue.claim(request(["alice", "bob"], perAccount: 2, owner: "w2"), now: t0)
            #expect(third.map(\.job.account) == ["alice"])
        }
    }

    /// Many claimers at once on the same data (each with its own connections, as separate processes
    /// would be): every job is claimed exactly once.
    @Test(arguments: StoreEngine.allCases) func concurrentClaimsNeverHandOneJobTwice(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let setup = try await database.queue()
            for index in 0..<200 { _ = try await setup.enqueue(NewJob(kind: "k", account: AccountID("a\(index % 4)")), now: t0) }
            var queues: [any JobQueue] = []
            for _ in 0..<4 { queues.append(try await database.queue()) }
            let claimedIDs = try await withThrowingTaskGroup(of: [JobID].self) { group in
                for (index, queue) in queues.enumerated() {
                    group.addTask {
                        var mine: [JobID] = []
                        while true {
                            let batch = try await queue.claim(
                                ClaimRequest(accounts: ["a0", "a1", "a2", "a3"], limit: 3, perAccountLimit: 1000, owner: "w\(index)", leaseSeconds: 30),
                                now: self.t0)
                            if batch.isEmpty { return mine }
                            for claimed in batch {
                                mine.append(claimed.job.id)
                                try await queue.complete(claimed.claim, result: nil, now: self.t0)
                            }
                        }
                    }
                }
                var all: [JobID] = []
                for try await ids in group { all += ids }
                return all
            }
            #expect(claimedIDs.count == 200)
            #expect(Set(claimedIDs).count == 200)
            #expect(try await setup.counts(account: nil)[.completed] == 200)
        }
    }

    @Test(arguments: StoreEngine.allCases) func anExpiredClaimIsRescuedAndTheOldClaimIsFencedOut(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let id = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
            let dead = try #require(try await queue.claim(request(owner: "crashed", lease: 30), now: t0).first)
            // Before the lease ends nobody else gets it.
            #expect(try await queue.claim(request(owner: "w2"), now: t0 + 29).isEmpty)
            let rescued = try #require(try await queue.claim(request(owner: "w2"), now: t0 + 30).first)
            #expect(rescued.job.id == id && rescued.job.attempts == 2 && rescued.claim.token > dead.claim.token)
            #expect(rescued.job.lastError?.contains("crashed") == true)
            await #expect(throws: JobQueueError.claimLost(dead.claim)) { try await queue.complete(dead.claim, result: nil, now: t0 + 31) }
            await #expect(throws: JobQueueError.claimLost(dead.claim)) { _ = try await queue.heartbeat(dead.claim, leaseSeconds: 30, now: t0 + 31) }
            try await queue.complete(rescued.claim, result: nil, now: t0 + 32)
            #expect(try await queue.job(id)?.state == .completed)
        }
    }

    /// A worker process known dead (its pid gone on this host): its claims end at once, so the
    /// next claim rescues its jobs without waiting for the lease; other owners' claims stay.
    @Test(arguments: StoreEngine.allCases) func aDeadOwnersClaimsEndAtOnceAndOnlyTheirs(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            for _ in 0..<3 { _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0) }
            let dead = try await queue.claim(request(limit: 2, owner: "host:1", lease: 60), now: t0)
            let alive = try #require(try await queue.claim(request(limit: 1, owner: "host:2", lease: 60), now: t0).first)
            #expect(dead.count == 2)
            #expect(try await queue.abandonClaims(ownedBy: "host:1", account: "bob", now: t0 + 1) == 0, "another account's jobs")
            #expect(try await queue.abandonClaims(ownedBy: "host:1", account: "alice", now: t0 + 1) == 2)
            #expect(try await queue.abandonClaims(ownedBy: "host:1", account: "alice", now: t0 + 1) == 0, "already ended")
            let rescued = try await queue.claim(request(owner: "host:3", lease: 60), now: t0 + 1)
            #expect(Set(rescued.map(\.job.id)) == Set(dead.map(\.job.id)))
            for old in dead {
                await #expect(throws: JobQueueError.claimLost(old.claim)) { try await queue.complete(old.claim, result: nil, now: t0 + 2) }
            }
            try await queue.complete(alive.claim, result: nil, now: t0 + 2)
            #expect(try await queue.job(alive.job.id)?.state == .completed)
        }
    }

    @Test(arguments: StoreEngine.allCases) func aHeartbeatKeepsTheClaim(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            _ = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0)
            let claimed = try #require(try await queue.claim(request(lease: 30), now: t0).first)
            #expect(try await queue.heartbeat(claimed.claim, leaseSeconds: 30, now: t0 + 20) == t0 + 50)
            #expect(try await queue.claim(request(owner: "w2"), now: t0 + 40).isEmpty)
            #expect(try await queue.claim(request(owner: "w2"), now: t0 + 50).count == 1)
        }
    }

    @Test(arguments: StoreEngine.allCases) func retriesUntilMaxAttemptsThenTheDeadLetterKeepsTheLastError(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let id = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 3), now: t0).id
            var now = t0
            for attempt in 1...3 {
                let claimed = try #require(try await queue.claim(request(), now: now).first)
                #expect(claimed.job.attempts == attempt)
                let state = try await queue.retry(claimed.claim, error: "boom \(attempt)", retryAt: now + 10, now: now)
                #expect(state == (attempt < 3 ? .queued : .dead))
                #expect(try await queue.claim(request(), now: now + 9).isEmpty)
                now = now + 10
            }
            let job = try #require(try await queue.job(id))
            #expect(job.state == .dead && job.lastError == "boom 3" && job.attempts == 3)
            #expect(try await queue.jobs(state: .dead, account: "alice", limit: 10).map(\.id) == [id])
            // An operator puts it back with fresh attempts.
            try await queue.requeue(id, now: now)
            let again = try #require(try await queue.claim(request(), now: now).first)
            #expect(again.job.attempts == 1)
        }
    }

    /// A scheduled job cancelled and retried (an operator undoing a mistake) keeps its time: before,
    /// it ran at once, and a send went out hours early. A dead one runs again now.
    @Test(arguments: StoreEngine.allCases) func aRetriedScheduledJobKeepsItsTime(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let scheduled = try await queue.enqueue(NewJob(kind: "k", account: "alice", runAt: t0 + 3600), now: t0).id
            try await queue.cancel(scheduled, now: t0 + 5)
            try await queue.requeue(scheduled, now: t0 + 10)
            let job = try #require(try await queue.job(scheduled))
            #expect(job.state == .queued && job.runAt == t0 + 3600, "\(job)")
            #expect(try await queue.claim(request(), now: t0 + 3599).isEmpty)
            #expect(try await queue.claim(request(), now: t0 + 3600).map(\.job.id) == [scheduled])
        }
    }

    @Test(arguments: StoreEngine.allCases) func deferringAndReleasingSpendNoAttempt(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let id = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 1), now: t0).id
            let first = try #require(try await queue.claim(request(), now: t0).first)
            try await queue.deferJob(first.claim, until: t0 + 300, reason: "FLOOD_WAIT_300", now: t0)
            var job = try #require(try await queue.job(id))
            #expect(job.state == .queued && job.attempts == 0 && job.deferrals == 1 && job.runAt == t0 + 300 && job.lastError == "FLOOD_WAIT_300")
            #expect(try await queue.claim(request(), now: t0 + 299).isEmpty)
            let second = try #require(try await queue.claim(request(), now: t0 + 300).first)
            try await queue.release(second.claim, reason: "shutdown", now: t0 + 301)
            job = try #require(try await queue.job(id))
            #expect(job.state == .queued && job.attempts == 0 && job.deferrals == 2 && job.runAt == t0 + 301)
            // With one attempt allowed, it still runs: neither deferral nor release spent it.
            let third = try #require(try await queue.claim(request(), now: t0 + 301).first)
            #expect(third.job.attempts == 1)
        }
    }

    @Test(arguments: StoreEngine.allCases) func aJobWhoseWorkerDiesOnItsLastAttemptGoesToTheDeadLetters(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let id = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 1), now: t0).id
            _ = try await queue.claim(request(lease: 10), now: t0)
            #expect(try await queue.claim(request(), now: t0 + 10).isEmpty)
            let job = try #require(try await queue.job(id))
            #expect(job.state == .dead && job.lastError?.contains("stopped renewing its lease") == true)
        }
    }

    @Test(arguments: StoreEngine.allCases) func checkpointsSurviveAnotherAttempt(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let id = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
            let first = try #require(try await queue.claim(request(lease: 10), now: t0).first)
            try await queue.checkpoint(first.claim, progress: Data("page 3".utf8), now: t0)
            let second = try #require(try await queue.claim(request(), now: t0 + 10).first)
            #expect(second.job.id == id && second.job.progress == Data("page 3".utf8))
            await #expect(throws: JobQueueError.claimLost(first.claim)) {
                try await queue.checkpoint(first.claim, progress: Data(), now: t0 + 11)
            }
        }
    }

    @Test(arguments: StoreEngine.allCases) func cancelAndRequeueFollowTheStates(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            let id = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
            _ = try await queue.claim(request(), now: t0)
            await #expect(throws: JobQueueError.invalidTransition(id, from: .running, action: "cancelled")) { try await queue.cancel(id, now: t0) }
            await #expect(throws: JobQueueError.notFound(JobID(999))) { try await queue.cancel(JobID(999), now: t0) }
            let other = try await queue.enqueue(NewJob(kind: "k", account: "alice"), now: t0).id
            try await queue.cancel(other, now: t0)
            #expect(try await queue.job(other)?.state == .cancelled)
            try await queue.requeue(other, now: t0)
            #expect(try await queue.job(other)?.state == .queued)
        }
    }

    @Test(arguments: StoreEngine.allCases) func anEnqueueWakesSubscribers(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            var signals = queue.enqueueSignals().makeAsyncIterator()
            _ = try await queue.enqueue(NewJob(kind: "k", account: "carol"), now: t0)
            #expect(await signals.next() == "carol")
        }
    }

    @Test(arguments: StoreEngine.allCases) func refusesAJobThatCannotRun(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            await #expect(throws: JobQueueError.self) { _ = try await queue.enqueue(NewJob(kind: "k", account: "alice", maxAttempts: 0), now: t0) }
            await #expect(throws: JobQueueError.self) { _ = try await queue.enqueue(NewJob(kind: "", account: "alice"), now: t0) }
        }
    }

    /// Claimers in several processes at once, none finishing its jobs: together they never hold
    /// more than the per-account limit, round after round.
    @Test(arguments: StoreEngine.allCases) func thePerAccountLimitHoldsWhenProcessesClaimAtOnce(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let setup = try await database.queue()
            for _ in 0..<12 { _ = try await setup.enqueue(NewJob(kind: "k", account: "alice"), now: t0) }
            var queues: [any JobQueue] = []
            for _ in 0..<4 { queues.append(try await database.queue()) }
            for round in 0..<3 {
                let held = try await withThrowingTaskGroup(of: [ClaimedJob].self) { group in
                    for (index, queue) in queues.enumerated() {
                        group.addTask { try await queue.claim(self.request(limit: 10, perAccount: 2, owner: "p\(index)"), now: self.t0) }
                    }
                    var all: [ClaimedJob] = []
                    for try await batch in group { all += batch }
                    return all
                }
                #expect(held.count == 2, "round \(round): \(held.count) running at once, limit 2")
                for claimed in held { try await setup.complete(claimed.claim, result: nil, now: t0) }
            }
            #expect(try await setup.counts(account: "alice")[.completed] == 6)
        }
    }

    /// Enqueuers in several processes racing with one idempotency key: one job, one id for all.
    @Test(arguments: StoreEngine.allCases) func anIdempotencyKeyIsUniqueAcrossProcessesRacing(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            var queues: [any JobQueue] = []
            for _ in 0..<4 { queues.append(try await database.queue()) }
            for key in ["k1", "k2", "k3"] {
                let outcomes = try await withThrowingTaskGroup(of: EnqueueOutcome.self) { group in
                    for (index, queue) in queues.enumerated() {
                        group.addTask {
                            try await queue.enqueue(NewJob(kind: "send", account: AccountID("a\(index)"), idempotencyKey: key), now: self.t0)
                        }
                    }
                    var all: [EnqueueOutcome] = []
                    for try await outcome in group { all.append(outcome) }
                    return all
                }
                #expect(outcomes.filter { if case .created = $0 { true } else { false } }.count == 1, "\(key)")
                #expect(Set(outcomes.map(\.id)).count == 1, "\(key)")
            }
            #expect(try await queues[0].jobs(state: nil, account: nil, limit: 100).count == 3)
        }
    }

    /// A purge removes jobs that finished before its cutoff in the states it names, and nothing
    /// live: a queued job, a running one, a dead letter not named, a job finished too recently stay.
    /// A purged job's idempotency key takes a new job.
    /// Every state change leaves a history entry (the dashboard's outcomes over time and recent
    /// errors) stamped with the caller's `now`; entries a week old go as new ones are written.
    @Test(arguments: StoreEngine.allCases) func everyStateChangeLeavesAHistoryEntryWithTheCallersTime(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let opened = try await database.queue()
            let queue = try #require(opened as? any JobQueue & JobHistoryReading, "the \(engine) queue keeps no history")
            let ids = try await (0..<5).asyncMap { index in
                try await queue.enqueue(NewJob(kind: "me", account: "alice", payload: Data("{\"n\":\(index)}".utf8), maxAttempts: 2), now: t0).id
            }
            func claimOne(_ at: UnixTime) async throws -> JobClaim { try #require(try await queue.claim(request(limit: 1), now: at).first?.claim) }
            try await queue.complete(try await claimOne(t0 + 1), result: nil, now: t0 + 2)
            try await queue.retry(try await claimOne(t0 + 3), error: "timeout", retryAt: t0 + 1000, now: t0 + 4)
            try await queue.deferJob(try await claimOne(t0 + 5), until: t0 + 2000, reason: "FLOOD_WAIT_2000", now: t0 + 6)
            try await queue.release(try await claimOne(t0 + 7), reason: "shutdown", now: t0 + 8)
            try await queue.retry(try await claimOne(t0 + 9), error: "refused", retryAt: nil, now: t0 + 10)
            try await queue.cancel(ids[4], now: t0 + 11)
            try await queue.requeue(ids[4], now: t0 + 12)
            // A claim whose lease runs out is rescued by the next claim (here one for another account).
            _ = try await claimOne(t0 + 13)
            _ = try await queue.claim(request(["nobody"]), now: t0 + 100)
            _ = try await queue.claim(request(), now: t0 + 100)

            let history = try await queue.history(since: t0, limit: 100)
            let events = history.filter { $0.event != .enqueued }.map { [$0.event.rawValue, "\($0.at.seconds - t0.seconds)", "\($0.depthDelta)", $0.error ?? "-"] }
            #expect(history.filter { $0.event == .enqueued }.count == 5)
            // One job's changes (`tgsm jobs show`): exactly its entries, oldest first.
            for id in ids { #expect(try await queue.history(of: id) == history.filter { $0.job == id }, "job \(id)") }
            #expect(try await queue.history(of: ids[0]).map(\.event) == [.enqueued, .completed])
            #expect(try await queue.history(of: JobID(999_999)).isEmpty)
            #expect(history.filter { $0.event == .enqueued }.allSatisfy { $0.at == t0 && $0.depthDelta == 1 && $0.account == "alice" && $0.kind == "me" })
            #expect(Array(events.prefix(7)) == [
                ["completed", "2.0", "-1", "-"],
                ["retried", "4.0", "0", "timeout"],
                ["deferred", "6.0", "0", "FLOOD_WAIT_2000"],
                ["released", "8.0", "0", "shutdown"],
                ["dead", "10.0", "-1", "refused"],
                ["cancelled", "11.0", "0", "-"],  // from the dead letters: it was not open
                ["requeued", "12.0", "1", "-"],
            ])
            #expect(events.dropFirst(7).first?.prefix(3) == ["rescued", "100.0", "0"])
            // The depth now equals the sum of every change: nothing open was missed.
            let counts = try await queue.counts(account: nil)
            #expect(history.map(\.depthDelta).reduce(0, +) == counts[.queued] + counts[.running])
            #expect(try await queue.history(since: t0 + 11, limit: 100).first?.event == .cancelled)
            // A limit keeps the newest entries, still oldest first.
            #expect(try await queue.history(since: t0, limit: 2) == Array(history.suffix(2)))
            // Only the events asked for (the alerts read the dead letters alone).
            #expect(try await queue.history(since: t0, limit: 100, events: [.dead]) == history.filter { $0.event == .dead })
            #expect(try await queue.history(since: t0, limit: 100, events: [.cancelled, .requeued]).map(\.event) == [.cancelled, .requeued])

            // A week later, the next writes take the old entries away.
            let weekLater = t0 + Double(SQLiteJobQueue.historyRetentionSeconds) + 200
            _ = try await queue.enqueue(NewJob(kind: "me", account: "bob"), now: weekLater)
            #expect(try await queue.history(since: t0, limit: 100).map(\.account) == ["bob"])
        }
    }

    @Test(arguments: StoreEngine.allCases) func aPurgeRemovesOnlyFinishedJobsPastTheCutoff(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            func finish(_ key: String?, at offset: Double, _ end: (JobClaim) async throws -> Void) async throws -> JobID {
                let id = try await queue.enqueue(NewJob(kind: "send", account: "alice", idempotencyKey: key), now: t0).id
                let claimed = try #require(try await queue.claim(request(limit: 1), now: t0 + offset).first)
                #expect(claimed.job.id == id)
                try await end(claimed.claim)
                return id
            }
            let completed = try await finish("k-done", at: 1) { try await queue.complete($0, result: Data("ok".utf8), now: t0 + 1) }
            let dead = try await finish(nil, at: 2) { try await queue.retry($0, error: "USER_BANNED_IN_CHANNEL", retryAt: nil, now: t0 + 2) }
            let recent = try await finish(nil, at: 3) { try await queue.complete($0, result: nil, now: t0 + 100) }
            let cancelled = try await queue.enqueue(NewJob(kind: "me", account: "alice"), now: t0).id
            try await queue.cancel(cancelled, now: t0 + 4)
            let running = try await queue.enqueue(NewJob(kind: "me", account: "alice"), now: t0).id
            #expect(try await queue.claim(request(limit: 1), now: t0 + 5).first?.job.id == running)
            let queued = try await queue.enqueue(NewJob(kind: "me", account: "alice", runAt: t0 + 3600), now: t0).id

            let retention = JobRetention(finishedFor: 50)
            let purge = try #require(retention.purge(now: t0 + 60))
            #expect(try await queue.countPurgeable(purge) == 2)
            #expect(try await queue.purgeAll(purge) == 2)
            #expect(try await queue.job(completed) == nil)
            #expect(try await queue.job(cancelled) == nil)
            for kept in [dead, recent, running, queued] { #expect(try await queue.job(kept) != nil, "\(kept)") }
            #expect(try await queue.purgeAll(purge) == 0, "a second purge finds nothing")

            // Dead letters go only when named.
            let deadToo = try #require(JobPurge(states: [.dead], finishedBefore: t0 + 60))
            #expect(try await queue.purge(deadToo, limit: 10) == 1)
            #expect(try await queue.job(dead) == nil)
            #expect(try await queue.job(recent) != nil)

            // The key of the purged job takes a new one.
            let again = try await queue.enqueue(NewJob(kind: "send", account: "alice", idempotencyKey: "k-done"), now: t0 + 61)
            guard case .created(let fresh) = again else { Issue.record("the purged job's key was still taken: \(again)"); return }
            #expect(fresh != completed, "ids are never reused")
            #expect(JobPurge(states: [.queued], finishedBefore: t0) == nil && JobPurge(states: [], finishedBefore: t0) == nil)
        }
    }

    /// A large backlog goes in batches (each its own transaction), all of it.
    @Test(arguments: StoreEngine.allCases) func aPurgeOfABacklogGoesInBatches(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let queue = try await database.queue()
            for _ in 0..<7 {
                let id = try await queue.enqueue(NewJob(kind: "me", account: "alice"), now: t0).id
                try await queue.cancel(id, now: t0 + 1)
            }
            let purge = try #require(JobPurge(states: [.cancelled], finishedBefore: t0 + 2))
            #expect(try await queue.purge(purge, limit: 3) == 3)
            #expect(try await queue.countPurgeable(purge) == 4)
            #expect(try await queue.purgeAll(purge, batchSize: 3) == 4)
            #expect(try await queue.counts(account: nil)[.cancelled] == 0)
        }
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
