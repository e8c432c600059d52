import MTProto
import MTProtoCrypto

/// Why a login step failed, as a caller switches on it. Phone numbers, codes and passwords are
/// never part of a description.
public enum LoginError: Error, Sendable, CustomStringConvertible {
    /// PHONE_NUMBER_INVALID: the number is malformed or not a Telegram number.
    case phoneNumberInvalid
    /// PHONE_NUMBER_BANNED: the number is banned from Telegram.
    case phoneNumberBanned
    /// PHONE_NUMBER_FLOOD / PHONE_PASSWORD_FLOOD: too many attempts for this number.
    case phoneNumberFlood
    /// PHONE_CODE_INVALID: the code does not match.
    case phoneCodeInvalid
    /// PHONE_CODE_EXPIRED: the code expired or a newer one was sent.
    case phoneCodeExpired
    /// PHONE_CODE_EMPTY: no code was given.
    case phoneCodeEmpty
    /// PASSWORD_HASH_INVALID: the 2FA password is wrong.
    case passwordInvalid
    /// SESSION_PASSWORD_NEEDED: the account has 2FA; continue with `checkPassword`.
    case passwordNeeded(hint: String?)
    /// account.getPassword said the account has no password, yet one was asked for.
    case passwordNotSet
    /// The server's 2FA algorithm is not the one this client implements (update the client).
    case unsupportedPasswordAlgorithm
    /// The server's SRP parameters or srp_B are unsafe; the password proof was not sent.
    case unsafePasswordParameters(SRPError)
    /// SRP_ID_INVALID: the password parameters changed meanwhile; run `checkPassword` again.
    case passwordParametersChanged
    /// The number has no account yet: call `signUp` (the terms of service, if any, are attached).
    case signUpRequired(termsOfService: String?)
    /// FIRSTNAME_INVALID / LASTNAME_INVALID during sign-up.
    case nameInvalid
    /// ACCESS_TOKEN_INVALID / ACCESS_TOKEN_EXPIRED: the bot token is wrong or revoked.
    case botTokenInvalid
    /// API_ID_INVALID / API_ID_PUBLISHED_FLOOD: the api_id/api_hash pair is refused.
    case apiIDInvalid
    /// auth.sentCodePaymentRequired: Telegram asks for a payment before sending a code to this number.
    case paymentRequired
    /// auth.sentCodeTypeSetUpEmailRequired: Telegram sends this number no code before a login email
    /// is set up, and no address was given (`setUpLoginEmail`).
    case loginEmailRequired
    /// EMAIL_INVALID: the address is malformed.
    case emailInvalid
    /// EMAIL_NOT_ALLOWED: Telegram does not accept this address as a login email.
    case emailNotAllowed
    /// EMAIL_CODE_INVALID / CODE_INVALID: the code mailed to the login email does not match.
    case emailCodeInvalid
    /// EMAIL_VERIFY_EXPIRED: the mailed verification code expired.
    case emailVerifyExpired
    /// TASK_ALREADY_EXISTS to auth.resetLoginEmail: a reset of the login email was requested before.
    case loginEmailResetAlreadyRequested
    /// A wait the server asked for (FLOOD_WAIT_X...): try again after `seconds`.
    case floodWait(seconds: Int)
    /// Any other failure of the request (transport, timeouts, unknown RPC errors).
    case request(TelegramError)

    /// Maps an RPC error of a login call to its case; errors that are not about the login stay `.request`.
    public init(_ error: TelegramError) {
        guard let rpc = error.rpcError else {
            // A session manager's stack hands a flood answer over as its rate-limit error (the
            // server's wait recorded in its ledger): still a wait for the login to honour.
            if case .middleware = error, case .wait(let seconds, let reason)? = error.advice, reason != .other {
                self = .floodWait(seconds: seconds)
                return
            }
            // The connection held a repeat back for a FLOOD_WAIT it had seen: the same wait.
            if case .floodWaitHeld(_, let seconds, _) = error {
                self = .floodWait(seconds: seconds)
                return
            }
            self = .request(error)
            return
        }
        if let seconds = rpc.waitSeconds {
            self = .floodWait(seconds: seconds)
            return
        }
        switch rpc.message {
        case "PHONE_NUMBER_INVALID": self = .phoneNumberInvalid
        case "PHONE_NUMBER_BANNED": self = .phoneNumberBanned
        case "PHONE_NUMBER_FLOOD", "PHONE_PASSWORD_FLOOD": self = .phoneNumberFlood
        case "PHONE_CODE_INVALID": self = .phoneCodeInvalid
        // PHONE_HASH_EXPIRED: the code request an email set-up names is over; the same remedy.
        case "PHONE_CODE_EXPIRED", "PHONE_HASH_EXPIRED": self = .phoneCodeExpired
        case "PHONE_CODE_EMPTY": self = .phoneCodeEmpty
        case "PASSWORD_HASH_INVALID": self = .passwordInvalid
        case "SESSION_PASSWORD_NEEDED": self = .passwordNeeded(hint: nil)
        case "SRP_ID_INVALID": self = .passwordParametersChanged
        case "FIRSTNAME_INVALID", "LASTNAME_INVALID": self = .nameInvalid
        case "ACCESS_TOKEN_INVALID", "ACCESS_TOKEN_EXPIRED": self = .botTokenInvalid
        case "API_ID_INVALID", "API_ID_PUBLISHED_FLOOD": self = .apiIDInvalid
        case "PHONE_NUMBER_UNOCCUPIED": self = .signUpRequired(termsOfService: nil)
        case "EMAIL_INVALID": self = .emailInvalid
        case "EMAIL_NOT_ALLOWED": self = .emailNotAllowed
        case "EMAIL_CODE_INVALID", "CODE_INVALID": self = .emailCodeInvalid
        case "EMAIL_VERIFY_EXPIRED": self = .emailVerifyExpired
        // The one documented meaning for a login call (auth.resetLoginEmail).
        case "TASK_ALREADY_EXISTS": self = .loginEmailResetAlreadyRequested
        default: self = .request(error)
        }
    }

    public var description: String {
        switch self {
        case .phoneNumberInvalid:
            "the phone number was refused (PHONE_NUMBER_INVALID): give it in international format, digits only, with the country code"
        case .phoneNumberBanned:
            "this phone number is banned from Telegram (PHONE_NUMBER_BANNED): use another number or contact Telegram support"
        case .phoneNumberFlood:
            "too many login attempts for this number: wait (hours, not minutes) before asking for a code again"
        case .phoneCodeInvalid:
            "the login code is wrong (PHONE_CODE_INVALID): ask the user for the code again, it is the one just received"
        case .phoneCodeExpired:
            "the login code expired or was replaced by a newer one (PHONE_CODE_EXPIRED): call sendCode again and use the new code"
        case .phoneCodeEmpty:
            "no login code was given (PHONE_CODE_EMPTY): ask the user for the code"
        case .passwordInvalid:
            "the 2FA password is wrong (PASSWORD_HASH_INVALID): ask the user again; the password is not kept"
        case .passwordNeeded(let hint):
            "the account is protected by a 2FA password (SESSION_PASSWORD_NEEDED): call checkPassword"
                + (hint.map { " (the account's hint is \"\($0)\")" } ?? "")
        case .passwordNotSet:
            "the account has no 2FA password, so none can be checked: the login is complete without one, or the account changed meanwhile"
        case .unsupportedPasswordAlgorithm:
            "the server's 2FA algorithm is unknown to this client: update the client (or log in from an official app)"
        case .unsafePasswordParameters(let error):
            "the server's 2FA parameters are unsafe, so the password proof was not sent: \(error)"
        case .passwordParametersChanged:
            "the 2FA parameters changed while checking the password (SRP_ID_INVALID): call checkPassword again"
        case .signUpRequired(let terms):
            "no account uses this number yet: call signUp with a first and last name"
                + (terms == nil ? "" : " after showing the user the terms of service attached to this error")
        case .nameInvalid:
            "the first or last name was refused during sign-up (FIRSTNAME_INVALID/LASTNAME_INVALID): give a non-empty name of at most 64 characters"
        case .botTokenInvalid:
            "the bot token is wrong or was revoked (ACCESS_TOKEN_INVALID): get the current token from @BotFather"
        case .apiIDInvalid:
            "the api_id/api_hash pair was refused (API_ID_INVALID): use the values from my.telegram.org for this application"
        case .paymentRequired:
            "Telegram asks for a payment before sending a login code to this number (auth.sentCodePaymentRequired): log in from an official app first"
        case .loginEmailRequired:
            "Telegram sends this number no login code before a login email is set up (auth.sentCodeTypeSetUpEmailRequired): "
                + "give an address with setUpLoginEmail, log in by QR code from a logged-in app, or set the login email in an official app"
        case .emailInvalid:
            "the email address was refused as malformed (EMAIL_INVALID): give a whole address, like name@example.com"
        case .emailNotAllowed:
            "Telegram does not accept this address as a login email (EMAIL_NOT_ALLOWED): give another one"
        case .emailCodeInvalid:
            "the code mailed to the login email is wrong (EMAIL_CODE_INVALID): type the newest code sent to that address"
        case .emailVerifyExpired:
            "the code mailed to the login email expired (EMAIL_VERIFY_EXPIRED): start the login again for a new one"
        case .loginEmailResetAlreadyRequested:
            "a reset of the login email was already requested (TASK_ALREADY_EXISTS): Telegram resets it at the date it gave; "
                + "request a code again after that date, and it comes another way"
        case .floodWait(let seconds):
            "too many login requests: wait \(seconds) s before the next attempt (FLOOD_WAIT)"
        case .request(let error):
            "the login request failed: \(error)"
        }
    }
}
