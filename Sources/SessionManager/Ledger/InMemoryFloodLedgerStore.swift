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
    private struct PhoneEntry: Hashable {
        var account: AccountID
        var phoneKey: String
    }

    private var deadlines: [PhoneEntry: UnixTime] = [:]
    private var pendingCodes: [PhoneEntry: PendingLoginCode] = [:]
    private var tokens: [String: [(account: AccountID, token: FutureAuthToken)]] = [:]
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
        deadlines[PhoneEntry(account: account, phoneKey: phoneKey)]
    }

    public func setSendCodeDeadline(_ deadline: UnixTime?, account: AccountID, phoneKey: String) {
        deadlines[PhoneEntry(account: account, phoneKey: phoneKey)] = deadline
    }

    public func latestSendCodeDeadline(phoneKey: String) -> SendCodeDeadline? {
        deadlines.filter { $0.key.phoneKey == phoneKey }
            .max { ($0.value, $0.key.account.rawValue) < ($1.value, $1.key.account.rawValue) }
            .map { SendCodeDeadline(account: $0.key.account, deadline: $0.value) }
    }

    public func pendingLoginCode(account: AccountID, phoneKey: String) -> PendingLoginCode? {
        pendingCodes[PhoneEntry(account: account, phoneKey: phoneKey)]
    }

    public func setPendingLoginCode(_ code: PendingLoginCode?, account: AccountID, phoneKey: String) {
        pendingCodes[PhoneEntry(account: account, phoneKey: phoneKey)] = code
    }

    public func futureAuthTokens(phoneKey: String) -> [FutureAuthToken] {
        (tokens[phoneKey] ?? []).map(\.token)
    }

    public func addFutureAuthToken(_ token: FutureAuthToken, account: AccountID, phoneKey: String) {
        var kept = tokens[phoneKey] ?? []
        guard !kept.contains(where: { $0.token.bytes == token.bytes }) else { return }
        kept.append((account, token))
        // Newest first, as the stores' ORDER BY received_at DESC, token_digest.
        kept.sort { $0.token.receivedAt != $1.token.receivedAt ? $0.token.receivedAt > $1.token.receivedAt : $0.token.digest < $1.token.digest }
        tokens[phoneKey] = Array(kept.prefix(FutureAuthToken.limit))
    }

    @discardableResult
    public func removeFutureAuthTokens(phoneKey: String) -> Int {
        tokens.removeValue(forKey: phoneKey)?.count ?? 0
    }

    public func futureAuthTokenPhoneKey(account: AccountID) -> String? {
        tokens.flatMap { phoneKey, kept in kept.filter { $0.account == account }.map { (phoneKey, $0.token.receivedAt) } }
            .max { $0.1 < $1.1 }?.0
    }
}
