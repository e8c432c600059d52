import Foundation
import MTProtoCrypto
import TL
import TLSchema

/// Login: codes, sign-in and sign-up, 2FA (SRP), bots, and moving an authorization to another DC.
extension DCState {
    /// A world user without a home DC lives on DC 1, like most accounts on the real service.
    static let defaultHomeDC: Int32 = 1

    func homeDC(of user: World.User) -> Int32 { user.homeDC ?? Self.defaultHomeDC }

    mutating func sendCode(_ request: Api.functions.auth.SendCode, context: CallContext, now: Double) throws -> RPCAnswer {
        let phone = World.normalizePhone(request.phoneNumber)
        guard !phone.isEmpty else { throw RequestError(code: 400, message: "PHONE_NUMBER_INVALID") }
        if let user = user(phone: phone) {
            if user.deactivated { throw RequestError(code: 400, message: "PHONE_NUMBER_BANNED") }
            let home = homeDC(of: user)
            if home != context.dc { throw RequestError(code: 303, message: "PHONE_MIGRATE_\(home)") }
        }
        if case .codeSettings(let settings) = request.settings, let tokens = settings.logoutTokens, let user = user(phone: phone),
           let answer = try logIn(user, byOneOf: tokens, context: context, now: now) {
            return answer
        }
        let hash = randomHex(8)
        if let account = user(phone: phone), let date = loginEmailResets[account.id], date <= now { resetLoginEmail(of: account.id) }
        let account = user(phone: phone)
        // A login email set up here takes the codes whatever the world file says.
        let delivery = account.flatMap { loginEmails[$0.id] } == nil ? account?.codeDelivery ?? .sms : .email
        let type: Api.auth.SentCodeType
        switch delivery {
        case .email:
            type = account.map { loginEmailCodeType(for: $0.id) } ?? .sentCodeTypeEmailCode(.init(emailPattern: "l***@example.com", length: 5))
        case .fragment:
            type = .sentCodeTypeFragmentSms(Api.auth.SentCodeType.SentCodeTypeFragmentSms(url: "https://fragment.com/login/\(randomHex(8))", length: 5))
        case .setUpEmail:
            // No code goes out until a login email is set up; the set-up names this request's hash.
            recordCode(SentLoginCode(phone: phone, code: "", phoneCodeHash: hash, dc: context.dc, sentAt: now, awaitsLoginEmail: true))
            return .encode(Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(
                type: .sentCodeTypeSetUpEmailRequired(Api.auth.SentCodeType.SentCodeTypeSetUpEmailRequired()), phoneCodeHash: hash)))
        case .sms:
            type = .sentCodeTypeSms(Api.auth.SentCodeType.SentCodeTypeSms(length: 5))
        }
        recordCode(SentLoginCode(phone: phone, code: Self.loginCode(for: phone), phoneCodeHash: hash, dc: context.dc, sentAt: now,
                                 byEmail: delivery == .email))
        return .encode(Api.auth.SentCode.sentCode(Api.auth.SentCode.SentCode(type: type, phoneCodeHash: hash, timeout: 60)))
    }

    /// Checks a phone's code and hash; the record stays until sign-in completes (sign-up needs it).
    /// A code sent to the login email counts only as email_verification; a phone code, only as phone_code.
    private func checkCode(phone: String, hash: String, phoneCode: String?, emailVerification: Api.EmailVerification?, now: Double) throws {
        guard let sent = sentCodes[phone], sent.phoneCodeHash == hash else {
            throw RequestError(code: 400, message: hash.isEmpty ? "PHONE_CODE_HASH_EMPTY" : "PHONE_CODE_EXPIRED")
        }
        guard now - sent.sentAt <= codeLifetime else { throw RequestError(code: 400, message: "PHONE_CODE_EXPIRED") }
        // No login code went out for this request: only a verified login email makes one.
        guard !sent.awaitsLoginEmail else { throw RequestError(code: 400, message: "PHONE_CODE_INVALID") }
        let code: String?
        if sent.byEmail {
            guard case .emailVerificationCode(let verification)? = emailVerification else { throw RequestError(code: 400, message: "PHONE_CODE_INVALID") }
            code = verification.code
        } else {
            code = phoneCode
        }
        guard let code, !code.isEmpty else { throw RequestError(code: 400, message: "PHONE_CODE_EMPTY") }
        guard code == sent.code else { throw RequestError(code: 400, message: "PHONE_CODE_INVALID") }
    }

    mutating func signIn(_ request: Api.functions.auth.SignIn, context: CallContext, now: Double) throws -> RPCAnswer {
        let phone = World.normalizePhone(request.phoneNumber)
        try checkCode(phone: phone, hash: request.phoneCodeHash, phoneCode: request.phoneCode, emailVerification: request.emailVerification, now: now)
        guard let user = user(phone: phone) else {
            return .encode(Api.auth.Authorization.authorizationSignUpRequired(Api.auth.Authorization.AuthorizationSignUpRequired()))
        }
        consumeCode(phone: phone)
        if user.password != nil {
            awaitingPassword[AuthKeyRef(dc: context.dc, keyID: context.authKeyID)] = user.id
            throw RequestError(code: 401, message: "SESSION_PASSWORD_NEEDED")
        }
        bind(context, to: user.id)
        return authorization(for: user, now: now, by: context)
    }

    mutating func signUp(_ request: Api.functions.auth.SignUp, context: CallContext, now: Double) throws -> RPCAnswer {
        let phone = World.normalizePhone(request.phoneNumber)
        guard let sent = sentCodes[phone], sent.phoneCodeHash == request.phoneCodeHash, now - sent.sentAt <= codeLifetime else {
            throw RequestError(code: 400, message: "PHONE_CODE_EXPIRED")
        }
        guard user(phone: phone) == nil else { throw RequestError(code: 400, message: "PHONE_NUMBER_OCCUPIED") }
        let name = request.firstName.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 64 else { throw RequestError(code: 400, message: "FIRSTNAME_INVALID") }
        let (id, overflow) = (world.users.map(\.id).max() ?? 1000).addingReportingOverflow(1)
        guard !overflow else { throw RequestError(code: 400, message: "PHONE_NUMBER_INVALID") }
        let user = World.User(
            id: id, accessHash: randomInt64(), phone: phone, firstName: name,
            lastName: request.lastName.isEmpty ? nil : request.lastName, homeDC: context.dc)
        world.users.append(user)
        consumeCode(phone: phone)
        bind(context, to: id)
        return authorization(for: user, now: now)
    }

    mutating func authorization(for user: World.User, now: Double?, by context: CallContext? = nil) -> RPCAnswer {
        .encode(authorizationValue(for: user, now: now, by: context))
    }

    /// The login's answer; an account without a 2FA password may be pushed to set one, as Telegram
    /// does. A person's login (`now` given) carries a new future auth token, and, made on
    /// `context`'s key, is announced to the account's other sessions; a bot's or a moved
    /// authorization's does neither.
    mutating func authorizationValue(for user: World.User, now: Double?, by context: CallContext? = nil) -> Api.auth.Authorization {
        let days = user.password == nil ? user.reloginDaysWithoutPassword : nil
        if let now, let context, !user.bot { announceLogin(of: user.id, by: context, now: now) }
        let token = now.flatMap { user.bot ? nil : issueFutureAuthToken(for: user.id, now: $0) }
        return .authorization(Api.auth.Authorization.Authorization(
            setupPasswordRequired: days != nil, otherwiseReloginDays: days, futureAuthToken: token, user: apiUser(user, viewer: user.id)))
    }

    private mutating func issueFutureAuthToken(for userID: Int64, now: Double) -> [UInt8] {
        futureAuthTokens = futureAuthTokens.filter { $0.value.expires > now }
        let token = entropy.bytes(32)
        futureAuthTokens[token] = (userID, now + futureAuthTokenLifetime)
        return token
    }

    /// api/auth, "Future auth tokens": one of `tokens` that is this user's and not expired logs the
    /// key in without a code (auth.sentCodeSuccess), or, with a 2FA password, makes the key wait for
    /// it (SESSION_PASSWORD_NEEDED). nil: none matched, and a code is sent as usual. A token logs in
    /// once; the login hands out a new one.
    private mutating func logIn(_ user: World.User, byOneOf tokens: [[UInt8]], context: CallContext, now: Double) throws -> RPCAnswer? {
        guard let token = tokens.first(where: { futureAuthTokens[$0].map { $0.userID == user.id && $0.expires > now } ?? false }) else { return nil }
        futureAuthTokens[token] = nil
        if user.password != nil {
            awaitingPassword[AuthKeyRef(dc: context.dc, keyID: context.authKeyID)] = user.id
            throw RequestError(code: 401, message: "SESSION_PASSWORD_NEEDED")
        }
        bind(context, to: user.id)
        return .encode(Api.auth.SentCode.sentCodeSuccess(Api.auth.SentCode.SentCodeSuccess(authorization: authorizationValue(for: user, now: now, by: context))))
    }

    /// auth.logOut: the key is logged out, and a person's account gets a future auth token back.
    mutating func logOut(context: CallContext, now: Double) -> RPCAnswer {
        let account = userID(for: context).flatMap { user(id: $0) }
        revokeAuthorization(dc: context.dc, keyID: context.authKeyID)
        let token = account.flatMap { $0.bot ? nil : issueFutureAuthToken(for: $0.id, now: now) }
        return .encode(Api.auth.LoggedOut.loggedOut(Api.auth.LoggedOut.LoggedOut(futureAuthToken: token)))
    }

    private mutating func passwordVerifier(for user: World.User, password: String) throws -> (parameters: SRP.Parameters, verifier: [UInt8]) {
        if let known = passwordVerifiers[user.id] { return known }
        // Like Telegram's server, keep only v = g^x mod p; the plain password is used once, here.
        let parameters = SRP.Parameters(salt1: entropy.bytes(40), salt2: entropy.bytes(16), g: 3, p: DHGroup.telegramPrime)
        let verifier = try SRP.verifier(password: password, parameters: parameters)
        passwordVerifiers[user.id] = (parameters, verifier)
        return (parameters, verifier)
    }

    mutating func getPassword(context: CallContext, viewer: Int64?) throws -> RPCAnswer {
        let ref = AuthKeyRef(dc: context.dc, keyID: context.authKeyID)
        let newAlgo = Api.PasswordKdfAlgo.passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            Api.PasswordKdfAlgo.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
                salt1: entropy.bytes(32), salt2: entropy.bytes(16), g: 3, p: DHGroup.telegramPrime))
        let newSecureAlgo = Api.SecurePasswordKdfAlgo.securePasswordKdfAlgoPBKDF2HMACSHA512iter100000(
            Api.SecurePasswordKdfAlgo.SecurePasswordKdfAlgoPBKDF2HMACSHA512iter100000(salt: entropy.bytes(8)))
        guard let userID = viewer ?? awaitingPassword[ref], let user = user(id: userID), let password = user.password else {
            return .encode(Api.account.Password.password(Api.account.Password.Password(
                newAlgo: newAlgo, newSecureAlgo: newSecureAlgo, secureRandom: entropy.bytes(32))))
        }
        let (parameters, verifier) = try passwordVerifier(for: user, password: password)
        let session = try SRPServerSession(parameters: parameters, verifier: verifier, entropy: &entropy)
        let srpID = randomInt64()
        pendingPasswordChecks[ref] = (srpID, session)
        let current = Api.PasswordKdfAlgo.passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            Api.PasswordKdfAlgo.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
                salt1: parameters.salt1, salt2: parameters.salt2, g: parameters.g, p: parameters.p))
        return .encode(Api.account.Password.password(Api.account.Password.Password(
            hasPassword: true, currentAlgo: current, srpB: session.b, srpId: srpID,
            newAlgo: newAlgo, newSecureAlgo: newSecureAlgo, secureRandom: entropy.bytes(32))))
    }

    mutating func checkPassword(_ request: Api.functions.auth.CheckPassword, context: CallContext, now: Double) throws -> RPCAnswer {
        let ref = AuthKeyRef(dc: context.dc, keyID: context.authKeyID)
        guard case .inputCheckPasswordSRP(let check) = request.password else {
            throw RequestError(code: 400, message: "PASSWORD_HASH_INVALID")
        }
        guard let pending = pendingPasswordChecks[ref], pending.srpID == check.srpId else {
            throw RequestError(code: 400, message: "SRP_ID_INVALID")
        }
        // srp_id is single-use: a wrong guess needs a fresh account.getPassword.
        pendingPasswordChecks[ref] = nil
        let valid: Bool
        do {
            valid = try pending.session.verify(SRPCheck(a: check.A, m1: check.M1))
        } catch {
            throw RequestError(code: 400, message: "SRP_A_INVALID")
        }
        guard valid else { throw RequestError(code: 400, message: "PASSWORD_HASH_INVALID") }
        guard let userID = awaitingPassword[ref] ?? userID(for: context), let user = user(id: userID) else {
            throw RequestError(code: 400, message: "PASSWORD_HASH_INVALID")
        }
        bind(context, to: user.id)
        return authorization(for: user, now: now, by: context)
    }

    mutating func importBotAuthorization(_ request: Api.functions.auth.ImportBotAuthorization, context: CallContext) throws -> RPCAnswer {
        guard let bot = world.users.first(where: { $0.bot && $0.botToken == request.botAuthToken }) else {
            throw RequestError(code: 400, message: "ACCESS_TOKEN_INVALID")
        }
        let home = homeDC(of: bot)
        if home != context.dc { throw RequestError(code: 303, message: "USER_MIGRATE_\(home)") }
        bind(context, to: bot.id)
        return authorization(for: bot, now: nil)
    }

    mutating func exportAuthorization(_ request: Api.functions.auth.ExportAuthorization, context: CallContext, viewer: Int64?) throws -> RPCAnswer {
        guard let viewer else { throw RequestError(code: 401, message: "AUTH_KEY_UNREGISTERED") }
        guard dcs[request.dcId] != nil, request.dcId != context.dc else {
            throw RequestError(code: 400, message: "DC_ID_INVALID")
        }
        let id = randomInt64()
        let bytes = entropy.bytes(32)
        exportedAuthorizations[id] = (viewer, bytes, request.dcId)
        return .encode(Api.auth.ExportedAuthorization.exportedAuthorization(Api.auth.ExportedAuthorization.ExportedAuthorization(id: id, bytes: bytes)))
    }

    mutating func importAuthorization(_ request: Api.functions.auth.ImportAuthorization, context: CallContext) throws -> RPCAnswer {
        guard let exported = exportedAuthorizations[request.id], exported.dc == context.dc,
              ConstantTime.equals(exported.bytes, request.bytes), let user = user(id: exported.userID) else {
            throw RequestError(code: 400, message: "AUTH_BYTES_INVALID")
        }
        exportedAuthorizations[request.id] = nil
        bind(context, to: user.id)
        return authorization(for: user, now: nil)
    }
}
