import SessionManager
import Synchronization

/// One contacts.resolveUsername in flight per (account, username) for a handler's jobs: twenty
/// jobs to one username that start together missed the cache together, and each resolved it,
/// spending the account's resolve budget (about 200 a day) twenty times, with the rate gate
/// deferring the last ones by minutes. The others now wait for the first one's answer (or error).
final class UsernameResolutions: Sendable {
    private struct Key: Hashable {
        var account: AccountID
        var username: String
    }

    private let inFlight = Mutex<[Key: Task<ResolvedPeer, any Error>]>([:])
    /// Callers so far, for tests that must know every one has joined before the answer comes.
    private let callers = Mutex(0)
    var callerCount: Int { callers.withLock { $0 } }

    init() {}

    /// The running resolution of `username` for `account`, or a new one made by `resolve`.
    func resolve(_ username: String, account: AccountID, _ resolve: @escaping @Sendable () async throws -> ResolvedPeer) async throws -> ResolvedPeer {
        // Usernames are case-insensitive on Telegram.
        let key = Key(account: account, username: username.lowercased())
        let task = inFlight.withLock { inFlight in
            if let running = inFlight[key] { return running }
            let task = Task { try await resolve() }
            inFlight[key] = task
            return task
        }
        callers.withLock { $0 += 1 }
        defer { inFlight.withLock { inFlight in if inFlight[key] == task { inFlight[key] = nil } } }
        return try await task.value
    }
}
