import Crypto
import MTProto
import MTProtoCrypto

/// A `future_auth_token` Telegram handed a login of this phone (in auth.authorization, or in
/// auth.loggedOut). Offered back in auth.sendCode's `codeSettings.logout_tokens`, it lets Telegram
/// log a lost session in again without sending a code (api/auth, "Future auth tokens"): an account
/// with a 2FA password is then asked for the password alone. For an unattended account that is a
/// re-login without a person holding the phone.
///
/// It logs the account in, so it is a secret like an auth key: sealed at rest where the store seals
/// those, never logged (the description hides it).
public struct FutureAuthToken: Sendable, Hashable {
    /// api/auth: "the future auth token database should contain at most 20 tokens".
    public static let limit = 20

    public var bytes: [UInt8]
    public var receivedAt: UnixTime

    public init(bytes: [UInt8], receivedAt: UnixTime) {
        self.bytes = bytes
        self.receivedAt = receivedAt
    }

    /// The token's identity in a table (SHA-256, hex): the same token received twice is kept once.
    /// A digest of 32 random bytes reveals nothing of them and cannot stand in for them.
    public var digest: String {
        Hex.encode(SHA256.hash(data: bytes))
    }
}

extension FutureAuthToken: CustomStringConvertible {
    /// Without the token: this may be logged.
    public var description: String { "FutureAuthToken(receivedAt: \(receivedAt.seconds))" }
}
