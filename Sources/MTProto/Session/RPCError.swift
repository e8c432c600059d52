/// rpc_error#2144ca19 error_code:int error_message:string, with the number some messages carry
/// (`FLOOD_WAIT_30`, `PHONE_MIGRATE_2`, `FILE_PART_7_MISSING`) split out so callers can branch on
/// the documented name (`FLOOD_WAIT_X`) and read the argument (api/errors).
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    public let code: Int32
    /// The message exactly as the server sent it.
    public let message: String
    /// The message with its numeric part replaced by `X`, as api/errors names errors.
    public let name: String
    /// The number inside the message, if any (seconds to wait, a DC id, a file part).
    public let argument: Int?

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
        var parts = message.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        var argument: Int?
        // The first segment is never the argument: "2FA_CONFIRM_WAIT_X" starts with a digit.
        for index in parts.indices.dropFirst() where !parts[index].isEmpty && parts[index].allSatisfy(\.isASCIIDigitCharacter) {
            // A number too large for Int is not an argument anyone can use: keep the name as sent.
            guard let value = Int(parts[index]) else { break }
            argument = value
            parts[index] = "X"
            break
        }
        self.argument = argument
        self.name = argument == nil ? message : parts.joined(separator: "_")
    }

    /// Seconds to wait before repeating the request: FLOOD_WAIT_X, FLOOD_PREMIUM_WAIT_X,
    /// SLOWMODE_WAIT_X, 2FA_CONFIRM_WAIT_X and any other `*_WAIT_X`.
    public var waitSeconds: Int? {
        guard let argument, name.hasSuffix("_WAIT_X") else { return nil }
        return argument
    }

    /// The DC a 303 error (`PHONE_MIGRATE_X`, `USER_MIGRATE_X`, `FILE_MIGRATE_X`, `NETWORK_MIGRATE_X`,
    /// `STATS_MIGRATE_X`) sends the request to.
    public var migrateToDC: Int? {
        guard let argument, name.hasSuffix("_MIGRATE_X") else { return nil }
        return argument
    }

    /// FROZEN_METHOD_INVALID (420, the method is closed to frozen accounts) or
    /// FROZEN_PARTICIPANT_MISSING (400, the peer is): the account is frozen (api/auth, "Frozen
    /// accounts"). Neither is a wait, though the first comes with the flood code.
    public var isAccountFrozen: Bool {
        message == "FROZEN_METHOD_INVALID" || message == "FROZEN_PARTICIPANT_MISSING"
    }

    public var category: String {
        switch code {
        case 303: "SEE_OTHER"
        case 400: "BAD_REQUEST"
        case 401: "UNAUTHORIZED"
        case 403: "FORBIDDEN"
        case 404: "NOT_FOUND"
        case 406: "NOT_ACCEPTABLE"
        case 420: "FLOOD"
        case 500: "INTERNAL"
        case -503: "TIMEOUT"
        default: "UNKNOWN"
        }
    }

    public var description: String {
        let head = "RPC error \(code) \(message)"
        if let seconds = waitSeconds {
            return "\(head): the server asks to wait \(seconds) s before repeating this request"
        }
        if let dc = migrateToDC {
            return "\(head): repeat the request on DC \(dc)"
        }
        if message == "AUTH_KEY_PERM_EMPTY" {
            return "\(head): the temporary key (PFS) is no longer bound to the permanent key, often because another binding "
                + "of the same permanent key replaced it; a new binding fixes it, the login is intact: repeat the call"
        }
        if message == "PEER_FLOOD" {
            return "\(head): Telegram limits this account after spam reports (or as a new account): it may not start chats "
                + "with people who have not contacted it, or do this action, for now; @SpamBot tells until when; repeating only "
                + "makes it longer"
        }
        if isAccountFrozen {
            return "\(head): Telegram has frozen this account for a violation of its terms; it is read-only, and calls like this "
                + "one fail until an appeal is accepted (help.getAppConfig gives freeze_appeal_url and freeze_until_date, when the "
                + "account is deleted unless the appeal succeeds); repeating it changes nothing"
        }
        if let meaning = Self.meanings[message] { return "\(head): \(meaning)" }
        switch code {
        case 400: return "\(head): the request's parameters were rejected; fix them before repeating it"
        case 401: return "\(head): the authorization is missing or no longer valid; log in again"
        case 403: return "\(head): the account may not do this (privacy or permissions)"
        case 404: return "\(head): the method or object does not exist on this server"
        case 406: return "\(head): rejected; the server sends an updateServiceNotification with the text to show"
        case 420: return "\(head): too many requests; slow down before repeating"
        case 500, -503: return "\(head): a server-side failure; repeating the request later may succeed"
        default: return "\(head): treat as an internal server error (api/errors)"
        }
    }

    /// What the errors jobs meet most often mean (api/errors and the methods' pages), in words an
    /// operator can act on: "the request's parameters were rejected" said nothing of a username
    /// that does not exist.
    static let meanings: [String: String] = [
        "USERNAME_NOT_OCCUPIED": "no account, channel or bot has this username; check its spelling (repeating it fails again)",
        "USERNAME_INVALID": "the username is malformed (5 to 32 letters, digits or underscores); fix it before repeating",
        "PEER_ID_INVALID": "this account does not know the peer (a wrong id, or no access hash for it): address it by username, "
            + "or let it write to the account first",
        "CHAT_WRITE_FORBIDDEN": "the account may not write in this chat (not a member, or muted by its admins)",
        "USER_IS_BLOCKED": "the user blocked this account; messages to them fail until they unblock it",
        "YOU_BLOCKED_USER": "this account blocked the user; unblock them before writing",
        "INPUT_USER_DEACTIVATED": "the user's account was deleted",
        "MESSAGE_EMPTY": "the message has no text; give it some",
        "MESSAGE_TOO_LONG": "the text is longer than Telegram allows (4096 characters); split it",
        "CHANNEL_PRIVATE": "the channel is private, or the account was removed or banned from it",
        "CHANNEL_INVALID": "the channel is unknown to this account (a wrong id or access hash): resolve it by username first",
        "CHAT_ADMIN_REQUIRED": "this needs admin rights in the chat",
        "USER_BANNED_IN_CHANNEL": "the account is banned from sending in this chat (or in public groups and channels)",
        "MSG_ID_INVALID": "no such message in this chat",
    ]

    /// Parses a serialized rpc_error (constructor included).
    static func decode(_ body: [UInt8]) throws(SessionError) -> RPCError {
        var reader = WireReader(body)
        do {
            guard try reader.readUInt32() == WireConstructor.rpcError else {
                throw WireError.unexpectedConstructor(0)
            }
            let code = try reader.readInt32()
            let text = try reader.readBytes()
            return RPCError(code: code, message: String(decoding: text, as: UTF8.self))
        } catch {
            throw .malformedMessage(reason: "rpc_error: \(error)")
        }
    }

    /// The serialized rpc_error (constructor included).
    public var serialized: [UInt8] {
        var writer = WireWriter()
        writer.write(WireConstructor.rpcError)
        writer.write(code)
        writer.writeBytes(Array(message.utf8))
        return writer.bytes
    }
}

extension Character {
    fileprivate var isASCIIDigitCharacter: Bool { isASCII && isNumber }
}
