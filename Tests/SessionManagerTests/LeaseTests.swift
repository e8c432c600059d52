#if canImport(Glibc)
import Glibc
#endif
import Foundation
import OffThePool
import MTProto
import SessionManager
import StoreTestSupport
import Synchronization
import Testing

@Suite struct LeaseTests {
    let alive: @Sendable (LeaseHolder) -> Bool = { _ in false }

    @Test(arguments: StoreEngine.allCases) func aSecondHolderIsToldWhoOwnsTheAccount(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let first = LeaseHolder(host: "hostA", pid: 100)
            let t = UnixTime(seconds: 1000)
            let lease = try await store.acquireLease(account: "alice", holder: first, now: t, ttl: 30, holderIsDead: alive)
            #expect(lease.token == LeaseToken(1) && lease.holder == first && lease.expiresAt == t + 30)
            do {
                _ = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "hostB", pid: 200), now: t + 5, ttl: 30, holderIsDead: alive)
                Issue.record("a second holder got the lease")
            } catch let error as SessionStoreError {
                guard case .leaseHeld(let held) = error else { Issue.record("wrong error \(error)"); return }
                #expect(held.holder == first && held.token == LeaseToken(1))
                #expect(error.code == "store.lease_held")
                #expect(error.description.contains("pid 100 on hostA"))
            }
            // Another account is independent.
            #expect(try await store.acquireLease(account: "bob", holder: LeaseHolder(host: "hostB", pid: 200), now: t, ttl: 30, holderIsDead: alive).token == LeaseToken(1))
            try await store.shutDown()
        }
    }

    @Test(arguments: StoreEngine.allCases) func anExpiredHeartbeatIsTakenOverAndTheOldOwnersWritesAreFenced(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            let t = UnixTime(seconds: 1000)
            let old = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "hostA", pid: 100), now: t, ttl: 30, holderIsDead: alive)
            try await store.saveSession(Fixtures.session(salt: 1), account: "alice", fence: old.token)
            let renewed = try await store.renewLease(old, now: t + 20, ttl: 30)
            #expect(renewed.expiresAt == t + 50)
            await #expect(throws: SessionStoreError.self) {
                _ = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "hostB", pid: 200), now: t + 49, ttl: 30, holderIsDead: self.alive)
            }
            let new = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "hostB", pid: 200), now: t + 50, ttl: 30, holderIsDead: alive)
            #expect(new.token == LeaseToken(2))
            try await store.saveSession(Fixtures.session(salt: 2), account: "alice", fence: new.token)

            // The old owner wakes up and writes: rejected, and nothing it wrote lands.
            for write in [
                { try await store.saveSession(Fixtures.session(salt: 3), account: "alice", fence: old.token) },
                { try await store.updateServerSalt(3, dc: 2, account: "alice", fence: old.token) },
                { try await store.saveUpdateState(UpdateState(pts: 1, qts: 1, date: 1, seq: 1), account: "alice", fence: old.token) },
                { _ = try await store.renewLease(old, now: t + 51, ttl: 30) },
            ] as [@Sendable () async throws -> Void] {
                do {
                    try await write()
                    Issue.record("a fenced write succeeded")
                } catch let error as SessionStoreError {
                    guard case .fenced(_, let token, let current) = error else { Issue.record("wrong error \(error)"); continue }
                    #expect(token == LeaseToken(1) && current?.token == LeaseToken(2))
                }
            }
            #expect(try await store.loadSession(account: "alice") == Fixtures.session(salt: 2))
            #expect(try await store.updateState(account: "alice") == nil)
            // Releasing the old lease does not release the new owner's.
            try await store.releaseLease(old)
            #expect(try await store.currentLease(account: "alice")?.token == LeaseToken(2))
            try await store.shutDown()
        }
    }

    /// A holder that exited but that its parent has not reaped yet (a supervisor that SIGKILLed it
    /// and did not wait) still answers `kill(pid, 0)`: it is dead all the same (before: taken for
    /// alive, so the next `tgsm run` was refused until the lease expired).
    @Test func anExitedHolderNotYetReapedIsDead() async throws {
        var pid: pid_t = 0
        let arguments = ["/bin/true"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        #expect(posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ) == 0)
        let holder = LeaseHolder(host: LeaseHolder.current().host, pid: pid)
        // Not reaped: it stays a zombie until waitpid below.
        var state = ""
        for _ in 0..<200 {
            state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            if state.contains(") Z") { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(state.contains(") Z"), "the child is a zombie: \(state)")
        #expect(kill(pid, 0) == 0, "kill(pid, 0) still succeeds on it")
        #expect(LeaseHolder.isDeadOnThisHost(holder))
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        #expect(LeaseHolder.isDeadOnThisHost(holder), "and once reaped")
        #expect(!LeaseHolder.isDeadOnThisHost(.current()))
    }

    @Test(arguments: StoreEngine.allCases) func aDeadHolderOnThisHostIsTakenOverAtOnce(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            // A real process that has exited: its pid no longer exists.
            let gone = Process()
            gone.executableURL = URL(fileURLWithPath: "/bin/true")
            try gone.run()
            await gone.exited()
            let me = LeaseHolder.current()
            let dead = LeaseHolder(host: me.host, pid: gone.processIdentifier)
            #expect(LeaseHolder.isDeadOnThisHost(dead))
            // The host name alone (a lease written before holders carried their boot and PID
            // namespace, or one from a container of this host's name) is never known dead.
            let bareHost = String(me.host.split(separator: "~").first ?? "")
            #expect(me.host.contains("~"), "this Linux tells its boot and PID namespace: \(me.host)")
            #expect(!LeaseHolder.isDeadOnThisHost(LeaseHolder(host: bareHost, pid: gone.processIdentifier)))
            #expect(!LeaseHolder.isDeadOnThisHost(me))
            #expect(!LeaseHolder.isDeadOnThisHost(LeaseHolder(host: "elsewhere", pid: gone.processIdentifier)), "a holder on another host is never known dead")

            let t = UnixTime(seconds: 1000)
            _ = try await store.acquireLease(account: "alice", holder: dead, now: t, ttl: 300, holderIsDead: LeaseHolder.isDeadOnThisHost)
            let taken = try await store.acquireLease(account: "alice", holder: me, now: t + 1, ttl: 300, holderIsDead: LeaseHolder.isDeadOnThisHost)
            #expect(taken.token == LeaseToken(2) && taken.holder == me)
            // A live holder (this process) is not taken over before expiry.
            await #expect(throws: SessionStoreError.self) {
                _ = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: me.host, pid: 1), now: t + 2, ttl: 300,
                                                 holderIsDead: LeaseHolder.isDeadOnThisHost)
            }
            // Released: free for the next owner, with a higher token.
            try await store.releaseLease(taken)
            #expect(try await store.currentLease(account: "alice") == nil)
            let next = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: me.host, pid: 1), now: t + 3, ttl: 300, holderIsDead: alive)
            #expect(next.token == LeaseToken(3))
            try await store.shutDown()
        }
    }

    /// The fence is checked in the write's own transaction, not before it: an old holder's writes
    /// racing a takeover by another process (own store, own connections) either commit before the
    /// takeover or are refused. Four writers each count up one DC's salt; the new holder reads the
    /// session as soon as it has taken over. Each DC must then hold exactly the writer's last
    /// accepted count (a write accepted by a check made before the takeover but landing after it
    /// would be missing from that read, or change the session later), every later write must be
    /// refused as fenced, and nothing may change afterwards.
    @Test(arguments: StoreEngine.allCases) func oldHolderWritesRacingATakeoverLandBeforeItOrNotAtAll(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let holderStore = try await place.open()
            let takerStore = try await place.open()
            let t = UnixTime(seconds: 1000)
            let old = try await holderStore.acquireLease(account: "alice", holder: LeaseHolder(host: "hostA", pid: 100), now: t, ttl: 30, holderIsDead: alive)
            try await holderStore.saveSession(Fixtures.session(), account: "alice", fence: old.token)
            let dcs = [1, 2, 3, 4]
            let accepted = AcceptedWrites()

            /// One writer: salt 1, 2, 3... on its DC until 20 writes in a row were fenced (or a cap).
            /// Returns each write's outcome in order: nil accepted, else the error.
            @Sendable func writer(dc: Int) async -> [SessionStoreError?] {
                var outcomes: [SessionStoreError?] = []
                var fencedInARow = 0
                var count = 0
                while fencedInARow < 20 && count < 20_000 {
                    count += 1
                    do {
                        try await holderStore.updateServerSalt(Int64(count), dc: dc, account: "alice", fence: old.token)
                        outcomes.append(nil)
                        fencedInARow = 0
                        accepted.counts.withLock { $0[dc] = count }
                    } catch let error as SessionStoreError {
                        outcomes.append(error)
                        if case .fenced = error { fencedInARow += 1 }
                    } catch {
                        outcomes.append(.database(operation: "write", reason: "\(error)"))
                    }
                }
                return outcomes
            }

            async let writes = withTaskGroup(of: (Int, [SessionStoreError?]).self) { group in
                for dc in dcs { group.addTask { (dc, await writer(dc: dc)) } }
                var all: [Int: [SessionStoreError?]] = [:]
                for await (dc, outcomes) in group { all[dc] = outcomes }
                return all
            }
            // Take over while every writer is in full flow (each has had 10 writes accepted).
            while accepted.counts.withLock({ state in dcs.contains { (state[$0] ?? 0) < 10 } }) { try await Task.sleep(for: .milliseconds(1)) }
            let new = try await takerStore.acquireLease(account: "alice", holder: LeaseHolder(host: "hostB", pid: 200), now: t + 31, ttl: 30,
                                                        holderIsDead: alive)
            let seen = try #require(try await takerStore.loadSession(account: "alice"))
            let outcomes = await writes
            #expect(new.token == LeaseToken(2))

            for dc in dcs {
                let list = try #require(outcomes[dc])
                let lastAccepted = list.lastIndex { $0 == nil }.map { $0 + 1 } ?? 0
                #expect(list.prefix(lastAccepted).allSatisfy { $0 == nil }, "DC \(dc): a write was refused, then a later one accepted")
                #expect(list.count > lastAccepted, "DC \(dc): the writer never saw the takeover")
                for error in list.dropFirst(lastAccepted) {
                    guard case .fenced(_, let token, let current)? = error else { Issue.record("DC \(dc): not fenced: \(String(describing: error))"); break }
                    #expect(token == old.token && current?.token == new.token)
                }
                #expect(seen.dcs[dc]?.serverSalt == Int64(lastAccepted),
                        "DC \(dc): the new holder saw salt \(seen.dcs[dc]?.serverSalt ?? -1) right after taking over; the old holder's last accepted write was \(lastAccepted)")
            }
            #expect(try await takerStore.loadSession(account: "alice") == seen, "the fenced writes changed nothing")
            try await takerStore.updateServerSalt(-1, dc: 1, account: "alice", fence: new.token)
            try await holderStore.shutDown()
            try await takerStore.shutDown()
        }
    }

    /// Separate stores on the same data are separate processes (own connections, nothing shared in
    /// memory): racing for one account, exactly one wins and the others are told who holds it.
    @Test(arguments: StoreEngine.allCases) func racingProcessesGetExactlyOneLease(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            var stores: [any ClosableSessionStore] = []
            for _ in 0..<4 { stores.append(try await place.open()) }
            let t = UnixTime(seconds: 1000)
            for round in 0..<3 {
                let outcomes = await withTaskGroup(of: Result<Lease, SessionStoreError>.self) { group in
                    for (index, store) in stores.enumerated() {
                        group.addTask {
                            do {
                                return .success(try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "host\(index)", pid: 1),
                                                                             now: t + Double(round) * 100, ttl: 30, holderIsDead: { _ in false }))
                            } catch let error as SessionStoreError { return .failure(error) } catch { return .failure(.database(operation: "", reason: "\(error)")) }
                        }
                    }
                    var all: [Result<Lease, SessionStoreError>] = []
                    for await outcome in group { all.append(outcome) }
                    return all
                }
                let winners = outcomes.compactMap { try? $0.get() }
                #expect(winners.count == 1, "round \(round)")
                // Each round starts after the previous lease expired: the token grows by one per owner.
                #expect(winners.first?.token == LeaseToken(Int64(round) + 1))
                for case .failure(let error) in outcomes { #expect(error.code == "store.lease_held") }
            }
            for store in stores { try await store.shutDown() }
        }
    }
}

/// The last accepted write of each racing writer (a class: a Mutex cannot be captured by the tasks).
private final class AcceptedWrites: Sendable {
    let counts = Mutex<[Int: Int]>([:])
}
