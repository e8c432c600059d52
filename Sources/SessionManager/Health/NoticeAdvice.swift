import MTProtoClient

/// What a person should make of a service notification: the same words in `tgsm check`, `tgsm
/// status` and the alerts `tgsm run` sends.
public enum NoticeAdvice: Sendable, Hashable {
    /// AUTH_KEY_DROP_...: Telegram asks this session to log out.
    case logOutRequested
    /// A new login shown as a popup (updateNewAuthorization, unconfirmed).
    case newLogin
    /// Any other popup: Telegram's apps show it in the middle of the screen.
    case popup
    /// A note filed in the chat with Telegram: nothing to do.
    case note

    public init(type: String, popup: Bool) {
        if type.hasPrefix("AUTH_KEY_DROP_") {
            self = .logOutRequested
        } else if type == ServiceNotification.newLoginType || type == ServiceNotification.newUnconfirmedLoginType {
            self = popup ? .newLogin : .note
        } else {
            self = popup ? .popup : .note
        }
    }

    public var needsAPerson: Bool { self != .note }

    /// What happened, in a few words, before the notice itself.
    public var headline: String {
        switch self {
        case .logOutRequested: "Telegram asked this session to log out"
        case .newLogin: "a new login Telegram reported"
        case .popup: "Telegram's notice"
        case .note: "Telegram's note"
        }
    }

    public var steps: [String] {
        switch self {
        case .logOutRequested:
            ["Look at the account's devices in an official app (Settings > Devices) and end any session nobody recognises.",
             "If this session is the one expected there, nothing else is needed: should Telegram end it, the account is marked and `tgsm check` says so."]
        case .newLogin:
            ["If nobody here made it (a `tgsm auth`, an app of yours), end it in an official app (Settings > Devices) and change the 2FA password."]
        case .popup:
            ["Read it: Telegram's apps show it as a popup; it may limit what the account can do."]
        case .note:
            []
        }
    }
}
