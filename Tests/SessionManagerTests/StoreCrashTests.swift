import Foundation
import MTProtoClient
import SessionManager
import Testing

/// A real child process writes in a loop and is killed with SIGKILL mid-write; the store must
/// reopen without recovery and hold exactly one whole iteration, the last committed or the one
/// being written when the kill came.
@Suite struct StoreCrashTests {
    @Test(arguments: [40, 120, 300])
    func aKillMidWriteLeavesTheLastCommittedState(commitsBeforeKill: Int) async throws {
        let dir = TemporaryDirectory("crash")
        defer { dir.remove() }
        let child = try ChildProcess(["write-loop", dir.path])
        var last: Int64 = 0
        while last < commitsBeforeKill {
            guard let line = await child.nextLine() else { break }
            if line.hasPrefix("committed "), let value = Int64(line.dropFirst("committed ".count)) { last = value }
            if line.hasPrefix("error") { Issue.record("probe: \(line)") }
        }
        await child.kill()
        #expect(last >= Int64(commitsBeforeKill), "the probe stopped early")
        // It kept writing until the kill: the last line it printed is the last commit it saw return.
        while let line = await child.nextLine() {
            if line.hasPrefix("committed "), let value = Int64(line.dropFirst("committed ".count)) { last = value }
        }

        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        #expect(store.outcome == .opened, "a crash is not damage: no restore")
        let state = try #require(try await store.loadSession(account: "probe"))
        let iteration = try #require(state.userID)
        #expect(iteration == last || iteration == last + 1, "reopened at \(iteration), last committed \(last)")
        #expect(state.dcs.count == 3)
        for (dc, dcState) in state.dcs {
            #expect(dcState.serverSalt == iteration && dcState.timeOffset == Double(iteration), "DC \(dc) is from another iteration")
            #expect(dcState.authKey != nil)
        }
        // The lease of the killed writer is stale at once on this host: a new owner takes it with the next token.
        let lease = try await store.acquireLease(account: "probe", holder: .current(), now: SystemClock().now(), ttl: 30,
                                                 holderIsDead: LeaseHolder.isDeadOnThisHost)
        #expect(lease.token.rawValue == 2)
        try store.close()
    }
}
