import MTProto
import MTProtoClient
import TL
import TLSchema

/// A login code Telegram sent that no login has used yet, kept with the phone's send-code deadline:
/// a login interrupted at the code prompt (a closed terminal, Ctrl-C, a crash) can then finish
/// with the code already on its way instead of asking for another, which the deadline refuses and
/// which Telegram answers with ever longer flood waits.
public struct PendingLoginCode: Sendable, Hashable {
    /// The server's token tying the code to its request (`auth.sentCode.phone_code_hash`): with the
    /// code, it completes a login, so it is sealed at rest where the store seals auth keys and
    /// never logged.
    public var phoneCodeHash: String
    /// How the code travels: the TL serialization of the answer's `auth.SentCodeType`.
    public var codeType: [UInt8]
    public var sentAt: UnixTime
    /// After this the code is no longer offered (and a new one may be requested).
    public var offeredUntil: UnixTime

    public init(phoneCodeHash: String, codeType: [UInt8], sentAt: UnixTime, offeredUntil: UnixTime) {
        self.phoneCodeHash = phoneCodeHash
        self.codeType = codeType
        self.sentAt = sentAt
        self.offeredUntil = offeredUntil
    }

    init(_ sent: SentLoginCode, sentAt: UnixTime, offeredUntil: UnixTime) {
        self.init(phoneCodeHash: sent.phoneCodeHash, codeType: sent.type.serialized(), sentAt: sentAt, offeredUntil: offeredUntil)
    }

    /// What `TelegramLogin.signIn` needs; nil when the stored type does not decode (a record from a
    /// newer schema), and the code cannot be offered.
    public var sentCode: SentLoginCode? {
        guard let type = try? Api.auth.SentCodeType(serialized: codeType) else { return nil }
        return SentLoginCode(phoneCodeHash: phoneCodeHash, type: type)
    }

    public func isOffered(at now: UnixTime) -> Bool { now < offeredUntil }
}

extension PendingLoginCode: CustomStringConvertible {
    /// Without the hash: this may be logged.
    public var description: String {
        "PendingLoginCode(via: \(sentCode?.channel ?? "?"), sentAt: \(sentAt.seconds), offeredUntil: \(offeredUntil.seconds))"
    }
}
