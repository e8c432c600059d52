import MTProto
import MTProtoClient

/// A service notification as the store keeps it, so `tgsm check` shows what Telegram told an
/// account after the process that heard it has ended. The message is kept masked
/// (`ServiceNotification.redactedMessage`): a login code in it never reaches the disk.
public struct StoredServiceNotification: Sendable, Hashable {
    /// How many the store keeps per account, the newest.
    public static let limit = 50

    public var account: AccountID
    public var type: String
    /// Login-code-like digits masked.
    public var message: String
    public var popup: Bool
    public var receivedAt: UnixTime

    public init(account: AccountID, type: String, message: String, popup: Bool, receivedAt: UnixTime) {
        self.account = account
        self.type = type
        self.message = message
        self.popup = popup
        self.receivedAt = receivedAt
    }

    public init(_ notification: ServiceNotification, account: AccountID, receivedAt: UnixTime) {
        self.init(account: account, type: notification.type, message: notification.redactedMessage, popup: notification.popup, receivedAt: receivedAt)
    }

    /// Telegram asked the session to log out (AUTH_KEY_DROP_...).
    public var asksToDropTheSession: Bool { type.hasPrefix("AUTH_KEY_DROP_") }

    /// A new login to the account (updateNewAuthorization), not a service notification.
    public var isNewLogin: Bool { type == ServiceNotification.newLoginType || type == ServiceNotification.newUnconfirmedLoginType }
}
