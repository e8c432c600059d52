import MTProto

/// Where the flood ledger and the send-code deadlines are persisted. The SQLite store and the
/// PostgreSQL store implement it on their tables; tests may use an in-memory implementation.
/// Every method is one transaction: a crash leaves either the old or the new record.
public protocol FloodLedgerStore: Sendable {
    /// Records a wait for (account, method, peer). When one is already recorded for that key, the
    /// later `until` wins: a late duplicate answer must never shorten a wait.
    func recordFloodWait(_ wait: FloodWait) async throws

    /// The waits still active at `now`, for one account or (nil) for every account, soonest first.
    func activeFloodWaits(account: AccountID?, at now: UnixTime) async throws -> [FloodWait]

    /// Deletes records that ended before `now`, returning how many went.
    @discardableResult
    func purgeFloodWaits(endedBefore now: UnixTime) async throws -> Int

    /// The key under which a phone's send-code deadline is kept (`PhoneKey`): an HMAC keyed by a
    /// secret of this store, so the stored value does not reveal the number even to a dictionary
    /// attack. Stable for the store's life: the SQLite store keeps its secret in the file.
    func phoneKey(for phone: String) async throws -> String

    /// The earliest time at which auth.sendCode may be asked again for this phone, if one is set.
    /// `phoneKey` comes from `phoneKey(for:)`, never the number itself.
    func sendCodeDeadline(account: AccountID, phoneKey: String) async throws -> UnixTime?

    /// Sets (or, with nil, clears) the send-code deadline for this phone.
    func setSendCodeDeadline(_ deadline: UnixTime?, account: AccountID, phoneKey: String) async throws

    /// The latest send-code deadline any account of this store holds for this phone: Telegram
    /// counts code requests per number, whichever session asked.
    func latestSendCodeDeadline(phoneKey: String) async throws -> SendCodeDeadline?

    /// The code sent for this phone that no login has used yet, if one is recorded (offered or not:
    /// the caller compares `offeredUntil` with its clock).
    func pendingLoginCode(account: AccountID, phoneKey: String) async throws -> PendingLoginCode?

    /// Records (or, with nil, forgets) the code sent for this phone; a new one replaces the old.
    func setPendingLoginCode(_ code: PendingLoginCode?, account: AccountID, phoneKey: String) async throws

    /// The future auth tokens kept for this phone (any account of the store that logged it in),
    /// newest first, at most `FutureAuthToken.limit`.
    func futureAuthTokens(phoneKey: String) async throws -> [FutureAuthToken]

    /// Keeps a token for the phone, received by `account`'s login or log-out; the same token again
    /// changes nothing, and the oldest beyond `FutureAuthToken.limit` for the phone are dropped.
    func addFutureAuthToken(_ token: FutureAuthToken, account: AccountID, phoneKey: String) async throws

    /// Drops every token kept for the phone, returning how many went: the send-code guard spends
    /// them on a code request it lets through before the phone's deadline.
    @discardableResult
    func removeFutureAuthTokens(phoneKey: String) async throws -> Int

    /// The phone key of this account's newest token: auth.loggedOut's token names no phone, and the
    /// store keeps no phone number, only the key its login's token was kept under.
    func futureAuthTokenPhoneKey(account: AccountID) async throws -> String?

    /// Wake-ups for the ledgers of this process when any process (this one or another) records a
    /// wait: the account it is for, or nil when anything may have changed (the store's listener was
    /// down for a while). A ledger reads the store again at once on one, instead of at its next
    /// `refreshInterval`. nil when the store has no such channel (SQLite: a file has no way to
    /// announce a commit), so `refreshInterval` alone bounds how late another process's wait is seen.
    func floodWaitChanges() -> AsyncStream<AccountID?>?
}

/// A phone's send-code deadline and the account that set it.
public struct SendCodeDeadline: Sendable, Hashable {
    public var account: AccountID
    public var deadline: UnixTime

    public init(account: AccountID, deadline: UnixTime) {
        self.account = account
        self.deadline = deadline
    }
}

extension FloodLedgerStore {
    public func floodWaitChanges() -> AsyncStream<AccountID?>? { nil }
}
