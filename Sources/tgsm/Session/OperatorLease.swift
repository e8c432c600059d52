import MTProto
import SessionManager

/// The account's lease, taken for an operator's change to it (a removal, a cleared mark): a runtime
/// starting meanwhile meets it, and a live holder refuses the change (exit 6) before anything is done.
enum OperatorLease {
    /// `refusal`: what the refusal adds after who holds the account (nothing done, what to do).
    static func take(_ account: AccountID, store: any SessionStore, now: UnixTime, refusal: String) async throws -> Lease {
        do {
            return try await store.acquireLease(account: account, holder: .current(), now: now, ttl: 60,
                                                holderIsDead: LeaseHolder.isDeadOnThisHost)
        } catch let error as SessionStoreError {
            if case .leaseHeld(let held) = error {
                throw CLIFailure(.leaseHeld, "account \(account.rawValue) is in use by \(held.holder) (lease until \(TimeText.iso(held.expiresAt))); " + refusal)
            }
            throw CLIFailure(error)
        }
    }
}
