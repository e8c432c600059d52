import Foundation
import MTProto
import SessionManager
import StoreTestSupport
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

    @Test(arguments: StoreEngine.allCases) func aDeadHolderOnThisHostIsTakenOverAtOnce(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let store = try await place.open()
            // A real process that has exited: its pid no longer exists.
            let gone = Process()
            gone.executableURL = URL(fileURLWithPath: "/bin/true")
            try gone.run()
            gone.waitUntilExit()
            let me = LeaseHolder.current()
            let dead = LeaseHolder(host: me.host, pid: gone.processIdentifier)
            #expect(LeaseHolder.isDeadOnThisHost(dead))
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
