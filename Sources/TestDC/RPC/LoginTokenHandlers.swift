import TL
import TLSchema

/// A QR-login token: who exported it, until when, and (once a logged-in session accepted it) for whom.
struct LoginTokenRecord: Sendable, Equatable {
    /// The DC and key of the session that exported it (or, for an import token, the DC it is valid on).
    var dc: Int32
    var keyID: Int64
    var expires: Int32
    var acceptedBy: Int64?
    /// A token handed out with auth.loginTokenMigrateTo, for auth.importLoginToken on `dc`.
    var forImport: Bool
}

/// QR login (https://core.telegram.org/api/qr-login): auth.exportLoginToken on the new device,
/// auth.acceptLoginToken on a logged-in one (which pushes updateLoginToken to the new device),
/// then auth.exportLoginToken again, or auth.importLoginToken on the account's home DC.
extension DCState {
    /// How long a token can be scanned, as on the real service.
    static let loginTokenLifetime: Int32 = 30

    mutating func exportLoginToken(context: CallContext, now: Double) throws -> RPCAnswer {
        let date = Self.date(now)
        let ref = (dc: context.dc, keyID: context.authKeyID)
        loginTokens = loginTokens.filter { $0.value.expires > date || $0.value.acceptedBy != nil && $0.value.expires > date - 60 }
        if let (token, record) = loginTokens.first(where: { !$0.value.forImport && $0.value.dc == ref.dc && $0.value.keyID == ref.keyID && $0.value.acceptedBy != nil }),
            let userID = record.acceptedBy, let user = user(id: userID)
        {
            loginTokens[token] = nil
            let home = homeDC(of: user)
            guard home == context.dc else {
                let importToken = entropy.bytes(32)
                loginTokens[importToken] = LoginTokenRecord(dc: home, keyID: 0, expires: date &+ Self.loginTokenLifetime, acceptedBy: userID, forImport: true)
                return .encode(Api.auth.LoginToken.loginTokenMigrateTo(Api.auth.LoginToken.LoginTokenMigrateTo(dcId: home, token: importToken)))
            }
            return try complete(context, as: user, now: now)
        }
        // A new token replaces the key's previous ones, as the app shows one QR code at a time.
        loginTokens = loginTokens.filter { $0.value.forImport || $0.value.dc != ref.dc || $0.value.keyID != ref.keyID }
        let token = entropy.bytes(32)
        let expires = date &+ Self.loginTokenLifetime
        loginTokens[token] = LoginTokenRecord(dc: ref.dc, keyID: ref.keyID, expires: expires, acceptedBy: nil, forImport: false)
        return .encode(Api.auth.LoginToken.loginToken(Api.auth.LoginToken.LoginToken(expires: expires, token: token)))
    }

    mutating func acceptLoginToken(_ request: Api.functions.auth.AcceptLoginToken, viewer: Int64?, now: Double) throws -> RPCAnswer {
        guard let me = viewer else { throw RequestError(code: 401, message: "AUTH_KEY_UNREGISTERED") }
        let date = Self.date(now)
        guard var record = loginTokens[request.token], !record.forImport else { throw RequestError(code: 400, message: "AUTH_TOKEN_INVALID") }
        guard record.expires > date else { throw RequestError(code: 400, message: "AUTH_TOKEN_EXPIRED") }
        guard record.acceptedBy == nil else { throw RequestError(code: 400, message: "AUTH_TOKEN_ALREADY_ACCEPTED") }
        record.acceptedBy = me
        loginTokens[request.token] = record
        let update = Api.Updates.updateShort(Api.Updates.UpdateShort(update: .updateLoginToken(Api.Update.UpdateLoginToken()), date: date))
        outbox.append(PendingPush(target: .authKey(dc: record.dc, keyID: record.keyID), name: Api.Update.UpdateLoginToken.tlName, body: update.serialized()))
        return .encode(Api.Authorization.authorization(Api.Authorization.Authorization(
            hash: randomInt64(), deviceModel: "QR login", platform: "test", systemVersion: "1", apiId: 1, appName: "tgsm test DC",
            appVersion: "1", dateCreated: date, dateActive: date, ip: "127.0.0.1", country: "XX", region: "")))
    }

    mutating func importLoginToken(_ request: Api.functions.auth.ImportLoginToken, context: CallContext, now: Double) throws -> RPCAnswer {
        guard let record = loginTokens[request.token], record.forImport, let userID = record.acceptedBy, let user = user(id: userID) else {
            throw RequestError(code: 400, message: "AUTH_TOKEN_INVALID")
        }
        guard record.expires > Self.date(now) else { throw RequestError(code: 400, message: "AUTH_TOKEN_EXPIRED") }
        guard record.dc == context.dc else { throw RequestError(code: 400, message: "AUTH_TOKEN_INVALID") }
        loginTokens[request.token] = nil
        return try complete(context, as: user, now: now)
    }

    /// As Telegram: an account with a 2FA password is not logged in by the token alone; the key
    /// then waits for auth.checkPassword, as after a code sign-in.
    private mutating func complete(_ context: CallContext, as user: World.User, now: Double) throws -> RPCAnswer {
        if user.password != nil {
            awaitingPassword[AuthKeyRef(dc: context.dc, keyID: context.authKeyID)] = user.id
            throw RequestError(code: 401, message: "SESSION_PASSWORD_NEEDED")
        }
        bind(context, to: user.id)
        return .encode(Api.auth.LoginToken.loginTokenSuccess(Api.auth.LoginToken.LoginTokenSuccess(
            authorization: authorizationValue(for: user, now: now, by: context))))
    }
}
