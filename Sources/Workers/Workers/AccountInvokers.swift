import MTProtoClient
import SessionManager

/// Gives the workers each account's invoker: the session manager's middleware stack around the
/// account's client, once it holds the account's lease.
public protocol AccountInvokers: Sendable {
    func invoker(for account: AccountID) async throws -> any TelegramInvoking
    /// Whether an invoker is handed out only to the one process holding the account (its lease):
    /// then, once this process has it, other owners' claims on the account's jobs are stale (their
    /// process lost the account and cannot call for it) and are ended at once. Default false:
    /// invokers shared by several processes at a time.
    var invokersAreExclusive: Bool { get }
}

extension AccountInvokers {
    public var invokersAreExclusive: Bool { false }
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
