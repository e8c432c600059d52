import MTProto
import Synchronization
import TLSchema

/// A notice Telegram sent the account itself (updateServiceNotification): "the message must be
/// displayed in a popup" or kept in the chat with Telegram (777000). It is how Telegram tells a
/// session that it should log out (a `type` starting with AUTH_KEY_DROP_), that the account was
/// limited, or that a login code was requested, so an unattended session must not drop it. A new
/// login to the account (updateNewAuthorization) is kept as one too (`isNewLogin`).
///
/// The text may hold a login code (5 to 7 digits, dashes allowed between them, api/auth) or a phone
/// number: it is kept as received in `message`, and `redactedMessage` (what `description`, logs,
/// operator views and the store use) shows such runs as "•••••".
public struct ServiceNotification: Sendable, Hashable, CustomStringConvertible {
    /// Identical in form to an API error's type ("AUTH_KEY_DROP_DUPLICATE", ...); repeats of a type
    /// within 15 minutes may be ignored (the spec's words).
    public let type: String
    public let message: String
    /// Telegram asks for a popup: a person should read it now.
    public let popup: Bool
    /// When Telegram filed it in the chat with 777000 (unix seconds); nil for a popup only.
    public let inboxDate: Int32?

    public init(type: String, message: String, popup: Bool, inboxDate: Int32?) {
        self.type = type
        self.message = message
        self.popup = popup
        self.inboxDate = inboxDate
    }

    /// Telegram asks the session to log out (the apps offer "Log out" and destroy local data).
    public var asksToDropTheSession: Bool { type.hasPrefix("AUTH_KEY_DROP_") }

    /// The message with every login code or phone number masked, at most 1,000 characters.
    public var redactedMessage: String { Self.redacted(message) }

    public var description: String {
        "ServiceNotification(type: \(type), popup: \(popup), message: \(redactedMessage))"
    }

    /// The notices inside an `Updates` (pushed, or the answer of a call).
    public static func all(in updates: Api.Updates) -> [ServiceNotification] {
        switch updates {
        case .updateShort(let short): notification(short.update).map { [$0] } ?? []
        case .updates(let value): value.updates.compactMap(notification)
        case .updatesCombined(let value): value.updates.compactMap(notification)
        case .updatesTooLong, .updateShortMessage, .updateShortChatMessage, .updateShortSentMessage: []
        }
    }

    /// The notices a difference recovered (updates.getDifference's `other_updates`): those sent
    /// while the client was away or missed in a gap.
    public static func all(in difference: Api.updates.Difference) -> [ServiceNotification] {
        switch difference {
        case .difference(let value): value.otherUpdates.compactMap(notification)
        case .differenceSlice(let slice): slice.otherUpdates.compactMap(notification)
        case .differenceEmpty, .differenceTooLong: []
        }
    }

    /// Bounded as they come off the network: the type is kept to 128 characters, the message to
    /// 4,096 (Telegram's longest message); they are kept in memory, logged and stored.
    static func notification(_ update: Api.Update) -> ServiceNotification? {
        switch update {
        case .updateServiceNotification(let notice):
            return ServiceNotification(type: String(notice.type.prefix(128)), message: String(notice.message.prefix(4_096)),
                                       popup: notice.popup, inboxDate: notice.inboxDate)
        case .updateNewAuthorization(let login):
            return newLogin(login)
        default:
            return nil
        }
    }

    /// api/auth, "Confirming login": Telegram tells the account's other sessions of a new login
    /// (updateNewAuthorization); one still `unconfirmed` is to be shown to a person, who confirms it
    /// or ends it from an official app. Kept as a notice of type `newLoginType` (or
    /// `newUnconfirmedLoginType`), a popup when unconfirmed, naming the device and the place.
    static func newLogin(_ login: Api.Update.UpdateNewAuthorization) -> ServiceNotification {
        var message = "A new login to this account"
        let details = [login.device, login.location].compactMap { $0.map { String($0.prefix(256)) } }.filter { !$0.isEmpty }
        if !details.isEmpty { message += ": " + details.joined(separator: ", ") }
        message += login.unconfirmed
            ? ". Not confirmed yet: if nobody here made it, end it in an official app (Settings > Devices)."
            : "."
        return ServiceNotification(type: login.unconfirmed ? newUnconfirmedLoginType : newLoginType, message: message,
                                   popup: login.unconfirmed, inboxDate: login.date)
    }

    /// The types a new login's notice carries (updateNewAuthorization has no type of its own).
    public static let newLoginType = "NEW_AUTHORIZATION"
    public static let newUnconfirmedLoginType = "NEW_AUTHORIZATION_UNCONFIRMED"

    /// A notice of a new login to the account (updateNewAuthorization), not a service notification.
    public var isNewLogin: Bool { type == Self.newLoginType || type == Self.newUnconfirmedLoginType }

    /// Masks every run of five or more digits, separators allowed between them (spaces, dashes,
    /// dots, parentheses, a leading +): login codes (5 to 7 digits, dashes allowed, api/auth) and
    /// phone numbers ("+1 555 0001") alike, which must never reach a log. Shorter numbers (times,
    /// counts, years) stay; a date written with digits only is masked too, a price to pay.
    static func redacted(_ text: String) -> String {
        let characters = Array(text.prefix(1_000))
        var output = ""
        var index = 0
        while index < characters.count {
            let (end, digits) = digitRun(characters, from: index)
            if digits >= 5 {
                if characters[index] == "+" { output.append("+") }
                output += String(repeating: "•", count: digits)
                index = end
            } else {
                output.append(characters[index])
                index += 1
            }
        }
        return output
    }

    /// The end of the digit run that starts at `start` (a digit, or "+"/"(" before one) and how many
    /// digits it holds; up to two separators in a row may stand between two digits ("(555) 000").
    private static func digitRun(_ characters: [Character], from start: Int) -> (end: Int, digits: Int) {
        func isDigit(_ index: Int) -> Bool { index < characters.count && characters[index].isASCII && characters[index].isNumber }
        var index = start
        if characters[index] == "+" || characters[index] == "(" { index += 1 }
        var digits = 0
        var end = start
        while index < characters.count {
            if isDigit(index) {
                digits += 1
                index += 1
                end = index
                continue
            }
            var next = index
            while next < characters.count, next - index < 2, " -.()".contains(characters[next]) { next += 1 }
            guard digits > 0, next > index, isDigit(next) else { break }
            index = next
        }
        return (end, digits)
    }
}

/// Where a client hands the notices it receives: one handler, set at any time (the session
/// manager's runtime sets it when it starts the client).
final class ServiceNotificationSink: Sendable {
    private let handler = Mutex<(@Sendable (ServiceNotification) -> Void)?>(nil)

    func set(_ handler: (@Sendable (ServiceNotification) -> Void)?) {
        self.handler.withLock { $0 = handler }
    }

    func deliver(_ updates: Api.Updates) {
        deliver(ServiceNotification.all(in: updates))
    }

    func deliver(_ notices: [ServiceNotification]) {
        guard !notices.isEmpty, let handler = handler.withLock({ $0 }) else { return }
        for notice in notices { handler(notice) }
    }
}

/// Where the home link's losses go (`TelegramClient.onHomeLinkLost`).
final class LinkLossSink: Sendable {
    private let handler = Mutex<(@Sendable () -> Void)?>(nil)

    func set(_ handler: (@Sendable () -> Void)?) {
        self.handler.withLock { $0 = handler }
    }

    func deliver() {
        handler.withLock { $0 }?()
    }
}
