import TL
import TLSchema

/// Which calls make up a login, and where a finished login shows in their answers: read by the
/// client (the account's user and home DC), the session manager's terminal guard (a logged-out
/// account logs in again) and its future-auth-token keeper, so that all three agree.
public enum LoginAnswer {
    /// The account.* calls a login makes before it is authorized: the 2FA password's parameters and
    /// the login email's set-up (api/auth lists them among the methods an unauthorized key may call).
    static let accountCallsOfALogin: Set<String> = ["account.getPassword", "account.sendVerifyEmailCode", "account.verifyEmail"]

    /// Whether `method` is one of a login's calls: every auth.* method, and the account.* ones above.
    public static func isLoginCall(_ method: String) -> Bool {
        method.hasPrefix("auth.") || (method.hasPrefix("account.") && accountCallsOfALogin.contains(method))
    }

    /// Whether an answer of this type can carry a login; `authorization(in:)` looks only at these.
    public static func mayCarryAuthorization(_ type: Any.Type) -> Bool {
        type == Api.auth.Authorization.self || type == Api.auth.LoginToken.self || type == Api.auth.SentCode.self
            || type == Api.account.EmailVerified.self
    }

    /// The authorization an answer carries: auth.authorization itself (sign-in, sign-up, password,
    /// bot), a QR token's success, or a code request a future auth token answered at once, also
    /// the one a login email's verification returns. A sign-up request is returned too (it is an
    /// `Api.auth.Authorization`); callers look for `.authorization`.
    public static func authorization(in result: Any) -> Api.auth.Authorization? {
        if let authorization = result as? Api.auth.Authorization { return authorization }
        if let sent = result as? Api.auth.SentCode { return authorization(in: sent) }
        if let token = result as? Api.auth.LoginToken, case .loginTokenSuccess(let success) = token { return success.authorization }
        if let verified = result as? Api.account.EmailVerified, case .emailVerifiedLogin(let login) = verified { return authorization(in: login.sentCode) }
        return nil
    }

    private static func authorization(in sent: Api.auth.SentCode) -> Api.auth.Authorization? {
        if case .sentCodeSuccess(let success) = sent { return success.authorization }
        return nil
    }
}
