import SessionManager
import Synchronization
import Testing
@testable import Workers

/// One resolution per username in flight: jobs to one username that start together share it.
@Suite struct UsernameResolutionsTests {
    struct Refused: Error {}

    /// Ten callers for "bob" (in any case) while the first resolution waits: one call to Telegram,
    /// the same peer for all. Another account's "bob" is its own resolution. Before, an audit saw
    /// twenty sends to one username spend twenty resolves and one deferred by the rate gate.
    @Test func callersForOneUsernameShareTheResolutionInFlight() async throws {
        let resolutions = UsernameResolutions()
        let gate = Gate()
        let calls = Mutex(0)
        let bob = ResolvedPeer(type: .user, id: 1002, accessHash: 77)
        let resolve: @Sendable () async throws -> ResolvedPeer = {
            calls.withLock { $0 += 1 }
            await gate.wait()
            return bob
        }
        let peers = Task {
            try await withThrowingTaskGroup(of: ResolvedPeer.self) { group in
                for index in 0..<10 {
                    group.addTask { try await resolutions.resolve(index.isMultiple(of: 2) ? "bob" : "BOB", account: "alice", resolve) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        let other = Task { try await resolutions.resolve("bob", account: "carol", resolve) }
        // Every caller has joined a resolution before the first answers.
        while resolutions.callerCount < 11 { try await Task.sleep(for: .milliseconds(1)) }
        gate.open()
        #expect(try await peers.value == Array(repeating: bob, count: 10))
        #expect(try await other.value == bob)
        #expect(calls.withLock { $0 } == 2, "one for alice's bob, one for carol's")
        // Done: the next one asks again (the archive and the peer cache keep what was learnt).
        _ = try await resolutions.resolve("bob", account: "alice", resolve)
        #expect(calls.withLock { $0 } == 3)
    }

    /// A refusal (a flood wait, the rate gate) reaches every caller that waited for it.
    @Test func aRefusalReachesEveryCaller() async throws {
        let resolutions = UsernameResolutions()
        let gate = Gate()
        let resolve: @Sendable () async throws -> ResolvedPeer = {
            await gate.wait()
            throw Refused()
        }
        let first = Task { try await resolutions.resolve("bob", account: "alice", resolve) }
        let second = Task { try await resolutions.resolve("bob", account: "alice", resolve) }
        while resolutions.callerCount < 2 { try await Task.sleep(for: .milliseconds(1)) }
        gate.open()
        await #expect(throws: Refused.self) { try await first.value }
        await #expect(throws: Refused.self) { try await second.value }
    }
}
