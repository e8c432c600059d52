import MTProtoClient
import SessionManager
import Synchronization

/// Where the workers mark an account whose session became unusable (revoked, expired, deactivated,
/// duplicated key), with the guidance for the operator. The workers of a marked account do not
/// start until the mark is cleared (after a new login). The session store implements it on its
/// accounts table; `InMemoryAccountStatusStore` serves tests and single runs.
public protocol AccountStatusStore: Sendable {
    func markStopped(_ account: AccountID, _ stop: AccountStop) async throws
    /// The mark, if the account is stopped.
    func stop(for account: AccountID) async throws -> AccountStop?
    /// Clears the mark (after the operator fixed the session).
    func clearStop(for account: AccountID) async throws
}

public final class InMemoryAccountStatusStore: AccountStatusStore {
    private let marks = Mutex<[AccountID: AccountStop]>([:])

    public init() {}

    public func markStopped(_ account: AccountID, _ stop: AccountStop) async throws {
        marks.withLock { $0[account] = stop }
    }

    public func stop(for account: AccountID) async throws -> AccountStop? {
        marks.withLock { $0[account] }
    }

    public func clearStop(for account: AccountID) async throws {
        marks.withLock { _ = $0.removeValue(forKey: account) }
    }

    /// Every mark, for status output and tests.
    public var all: [AccountID: AccountStop] { marks.withLock { $0 } }
}

/// Gives the workers each account's invoker: the session manager's middleware stack around the
/// account's client, once it holds the account's lease.
public protocol AccountInvokers: Sendable {
    func invoker(for account: AccountID) async throws -> any TelegramInvoking
}

/// A fixed map of invokers (tests, benchmarks, embedding without the session manager).
public struct FixedAccountInvokers: AccountInvokers {
    public let invokers: [AccountID: any TelegramInvoking]

    public init(_ invokers: [AccountID: any TelegramInvoking]) { self.invokers = invokers }

    public func invoker(for account: AccountID) async throws -> any TelegramInvoking {
        guard let invoker = invokers[account] else { throw UnknownAccount(account: account) }
        return invoker
    }

    public struct UnknownAccount: Error, CustomStringConvertible {
        public let account: AccountID
        public var description: String { "no session is configured for account \(account); log it in or remove it from the workers' accounts" }
    }
}
