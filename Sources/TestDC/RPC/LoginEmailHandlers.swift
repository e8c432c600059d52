import Foundation
import TL
import TLSchema

/// api/auth, "Email verification": a user whose world entry says `codeDelivery: setUpEmail` gets
/// no login code until a login email is set up. account.sendVerifyEmailCode "mails" a verification
/// code (read back like a login code: `/codes`, `loginCode(phone:)`), account.verifyEmail checks it,
/// keeps the address as the user's login email and sends the login code there.
///
/// The mailed code is the phone's last six digits (`emailVerificationCode(for:)`), distinct from
/// the login code. An address under the reserved `.invalid` top-level domain is refused with
/// EMAIL_NOT_ALLOWED, so a test can reach that answer. auth.resetLoginEmail drops a login email
/// nobody can read (at once, or after `loginEmailResetDelay`).
extension DCState {
    public static func emailVerificationCode(for phone: String) -> String {
        let digits = World.normalizePhone(phone)
        let tail = String(digits.suffix(6))
        return String(repeating: "0", count: 6 - tail.count) + tail
    }

    /// "a***@example.com": how Telegram shows an address back.
    static func emailPattern(_ email: String) -> String {
        guard let at = email.firstIndex(of: "@"), let first = email.first else { return "***" }
        return "\(first)***\(email[at...])"
    }

    mutating func forgetLoginEmail(userID: Int64) {
        loginEmails[userID] = nil
        loginEmailResets[userID] = nil
    }

    /// A code to this user's login email: its pattern, when a reset is allowed, and a pending reset's date.
    func loginEmailCodeType(for userID: Int64) -> Api.auth.SentCodeType {
        .sentCodeTypeEmailCode(Api.auth.SentCodeType.SentCodeTypeEmailCode(
            emailPattern: loginEmails[userID].map(Self.emailPattern) ?? "l***@example.com", length: 5,
            resetAvailablePeriod: loginEmailResetAvailablePeriod, resetPendingDate: loginEmailResets[userID].map(Self.date)))
    }

    /// The login email is gone: codes go by SMS (an account the world asks to set one up is asked again).
    mutating func resetLoginEmail(of userID: Int64) {
        forgetLoginEmail(userID: userID)
        if let index = world.users.firstIndex(where: { $0.id == userID }), world.users[index].codeDelivery == .email {
            world.users[index].codeDelivery = .sms
        }
    }

    /// auth.resetLoginEmail, for a code sent to the login email: allowed
    /// `loginEmailResetAvailablePeriod` seconds after it (earlier: FLOOD_WAIT for the rest); resets at
    /// once and sends the code by SMS when `loginEmailResetDelay` is 0, else schedules the reset and
    /// says when (the code stays valid); a second request before then is TASK_ALREADY_EXISTS.
    mutating func resetLoginEmail(_ request: Api.functions.auth.ResetLoginEmail, context: CallContext, now: Double) throws -> RPCAnswer {
        let phone = World.normalizePhone(request.phoneNumber)
        guard let user = user(phone: phone) else { throw RequestError(code: 400, message: "PHONE_NUMBER_INVALID") }
        guard let sent = sentCodes[phone], sent.phoneCodeHash == request.phoneCodeHash, sent.byEmail, now - sent.sentAt <= codeLifetime else {
            throw RequestError(code: 400, message: "PHONE_CODE_EXPIRED")
        }
        let allowedAt = sent.sentAt + Double(loginEmailResetAvailablePeriod)
        if now < allowedAt { throw RequestError(code: 420, message: "FLOOD_WAIT_\(Int((allowedAt - now).rounded(.up)))") }
        if loginEmailResets[user.id] != nil { throw RequestError(code: 400, message: "TASK_ALREADY_EXISTS") }
        if loginEmailResetDelay > 0 {
            loginEmailResets[user.id] = now + loginEmailResetDelay
            return .encode(Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(type: loginEmailCodeType(for: user.id), phoneCodeHash: sent.phoneCodeHash, timeout: 60)))
        }
        resetLoginEmail(of: user.id)
        let hash = randomHex(8)
        recordCode(SentLoginCode(phone: phone, code: Self.loginCode(for: phone), phoneCodeHash: hash, dc: context.dc, sentAt: now))
        return .encode(Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(
            type: .sentCodeTypeSms(Api.auth.SentCodeType.SentCodeTypeSms(length: 5)), phoneCodeHash: hash, timeout: 60)))
    }

    static func loginSetUpPhone(_ purpose: Api.EmailVerifyPurpose) -> String? {
        guard case .emailVerifyPurposeLoginSetup(let setUp) = purpose else { return nil }
        return World.normalizePhone(setUp.phoneNumber)
    }

    mutating func sendVerifyEmailCode(_ request: Api.functions.account.SendVerifyEmailCode, now: Double) throws -> RPCAnswer {
        let (phone, pending) = try pendingSetUp(request.purpose, now: now)
        let email = request.email.trimmingCharacters(in: .whitespaces)
        guard Self.isWellFormed(email) else { throw RequestError(code: 400, message: "EMAIL_INVALID") }
        guard !email.lowercased().hasSuffix(".invalid") else { throw RequestError(code: 400, message: "EMAIL_NOT_ALLOWED") }
        var mailed = pending
        mailed.code = Self.emailVerificationCode(for: phone)
        mailed.verifiedEmail = email
        mailed.sentAt = now
        recordCode(mailed)
        return .encode(Api.account.SentEmailCode.sentEmailCode(Api.account.SentEmailCode.SentEmailCode(
            emailPattern: Self.emailPattern(email), length: Int32(mailed.code.count))))
    }

    mutating func verifyEmail(_ request: Api.functions.account.VerifyEmail, context: CallContext, now: Double) throws -> RPCAnswer {
        let (phone, pending) = try pendingSetUp(request.purpose, now: now)
        guard let email = pending.verifiedEmail else { throw RequestError(code: 400, message: "EMAIL_VERIFY_EXPIRED") }
        guard case .emailVerificationCode(let verification) = request.verification else {
            // Google and Apple ID tokens are not checked by this DC.
            throw RequestError(code: 400, message: "EMAIL_NOT_ALLOWED")
        }
        guard verification.code == pending.code else { throw RequestError(code: 400, message: "EMAIL_CODE_INVALID") }
        guard let user = user(phone: phone) else { throw RequestError(code: 400, message: "PHONE_NUMBER_INVALID") }
        loginEmails[user.id] = email
        let hash = randomHex(8)
        recordCode(SentLoginCode(phone: phone, code: Self.loginCode(for: phone), phoneCodeHash: hash, dc: context.dc, sentAt: now, byEmail: true))
        let sent = Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(type: loginEmailCodeType(for: user.id), phoneCodeHash: hash, timeout: 60))
        return .encode(Api.account.EmailVerified.emailVerifiedLogin(Api.account.EmailVerified.EmailVerifiedLogin(email: email, sentCode: sent)))
    }

    /// The code request a set-up names: this phone's, answered "set up a login email first", with
    /// this hash, not expired.
    private func pendingSetUp(_ purpose: Api.EmailVerifyPurpose, now: Double) throws -> (phone: String, pending: SentLoginCode) {
        guard case .emailVerifyPurposeLoginSetup(let setUp) = purpose else {
            // A change of an existing login email needs a logged-in account; this DC has none to change.
            throw RequestError(code: 400, message: "EMAIL_NOT_SETUP")
        }
        let phone = World.normalizePhone(setUp.phoneNumber)
        guard !phone.isEmpty else { throw RequestError(code: 400, message: "PHONE_NUMBER_INVALID") }
        guard let pending = sentCodes[phone], pending.awaitsLoginEmail, pending.phoneCodeHash == setUp.phoneCodeHash else {
            throw RequestError(code: 400, message: "PHONE_HASH_EXPIRED")
        }
        // A mailed code lives as long as a login code, from when it was mailed.
        guard now - pending.sentAt <= codeLifetime else {
            throw RequestError(code: 400, message: pending.verifiedEmail == nil ? "PHONE_HASH_EXPIRED" : "EMAIL_VERIFY_EXPIRED")
        }
        return (phone, pending)
    }

    /// One "@", something before it, a dotted domain after it, no spaces, at most 254 characters.
    static func isWellFormed(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= 254, parts.count == 2, let local = parts.first, let domain = parts.last else { return false }
        guard !local.isEmpty, domain.contains("."), !domain.hasPrefix("."), !domain.hasSuffix(".") else { return false }
        return !email.contains(where: \.isWhitespace)
    }
}
