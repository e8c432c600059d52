import Foundation
import MTProto
import SessionManager
import Testing

@Suite struct LeaseTests {
    let alive: @Sendable (LeaseHolder) -> Bool = { _ in false }

    @Test func aSecondHolderIsToldWhoOwnsTheAccount() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        let first = LeaseHolder(host: "hostA", pid: 100)
        let t = UnixTime(seconds: 1000)
        let lease = try await store.acquireLease(account: "alice", holder: first, now: t, ttl: 30, holderIsDead: alive)
        #expect(lease.token == LeaseToken(1) && lease.holder == first && lease.expiresAt == t + 30)
        do {
            _ = try await store.acquireLease(account: "alice", holder: LeaseHolder(host: "hostB", pid: 200), now: t + 5, ttl: 30, holderIsDead: alive)
            Issue.record("a second holder got the lease")
        } catch {
            guard case .leaseHeld(let held) = error else { Issue.record("wrong error \(error)"); return }
            #expect(held.holder == first && held.token == LeaseToken(1))
            #expect(error.code == "store.lease_held")
            #expect(error.description.contains("pid 100 on hostA"))
        }
        // Another account is independent.
        #expect(try await store.acquireLease(account: "bob", holder: LeaseHolder(host: "hostB", pid: 200), now: t, ttl: 30, holderIsDead: alive).token == LeaseToken(1))
        try store.close()
    }

    @Test func anExpiredHeartbeatIsTakenOverAndTheOldOwnersWritesAreFenced() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
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
        try store.close()
    }

    @Test func aDeadHolderOnThisHostIsTakenOverAtOnce() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
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
        try store.close()
    }
}
