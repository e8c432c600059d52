import Crypto
import MTProto

/// A `FloodLedgerStore` in memory, with the same rules as the persistent stores (the later `until`
/// wins per key; purge by end time). For tests and throwaway runs: it dies with the process, so it
/// cannot protect against restart loops.
public actor InMemoryFloodLedgerStore: FloodLedgerStore {
    private struct Key: Hashable {
        var account: AccountID
        var method: String
        var peer: String?
    }

    private var waits: [Key: FloodWait] = [:]
    private var deadlines: [String: UnixTime] = [:]
    private var pendingCodes: [String: PendingLoginCode] = [:]
    /// This store's phone-key secret: it lives as long as the deadlines it keys.
    private let phoneSecret = SymmetricKey(size: .bits256)

    public init() {}

    public nonisolated func phoneKey(for phone: String) -> String {
        PhoneKey.digest(phone, secret: phoneSecret)
    }

    public func recordFloodWait(_ wait: FloodWait) {
        let key = Key(account: wait.account, method: wait.method, peer: wait.peer)
        if let existing = waits[key], existing.until >= wait.until { return }
        waits[key] = wait
    }

    public func activeFloodWaits(account: AccountID?, at now: UnixTime) -> [FloodWait] {
        waits.values
            .filter { (account == nil || $0.account == account) && $0.isActive(at: now) }
            .sorted { ($0.until, $0.method, $0.peer ?? "") < ($1.until, $1.method, $1.peer ?? "") }
    }

    @discardableResult
    public func purgeFloodWaits(endedBefore now: UnixTime) -> Int {
        let ended = waits.filter { $0.value.until < now }.map(\.key)
        for key in ended { waits[key] = nil }
        return ended.count
    }

    public func sendCodeDeadline(account: AccountID, phoneKey: String) -> UnixTime? {
        deadlines[Self.phoneEntry(account, phoneKey)]
    }

    public func setSendCodeDeadline(_ deadline: UnixTime?, account: AccountID, phoneKey: String) {
        deadlines[Self.phoneEntry(account, phoneKey)] = deadline
    }

    public func pendingLoginCode(account: AccountID, phoneKey: String) -> PendingLoginCode? {
        pendingCodes[Self.phoneEntry(account, phoneKey)]
    }

    public func setPendingLoginCode(_ code: PendingLoginCode?, account: AccountID, phoneKey: String) {
        pendingCodes[Self.phoneEntry(account, phoneKey)] = code
    }

    private static func phoneEntry(_ account: AccountID, _ phoneKey: String) -> String { account.rawValue + "\u{0}" + phoneKey }
}
