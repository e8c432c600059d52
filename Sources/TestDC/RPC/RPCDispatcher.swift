import MTProtoCrypto
import TL
import TLSchema

/// A handler's answer: a serialized result, or an rpc_error.
public enum RPCAnswer: Sendable, Equatable {
    case result([UInt8])
    case error(code: Int32, message: String)

    static func encode(_ value: some TLEncodable) -> RPCAnswer { .result(value.serialized()) }
}

/// One call after unwrapping, fault rules and the handler: what the connection must do.
public struct HandledCall: Sendable, Equatable {
    /// The TL name of the innermost method (or `#xxxxxxxx` when the schema does not know it).
    public var method: String
    public var decision: FaultDecision
    /// nil when the fault says not to answer (dropped connection, transport error, bad_server_salt).
    public var answer: RPCAnswer?
}

/// Refusal of a request before any handler ran.
struct RequestError: Error {
    var code: Int32
    var message: String
}

enum WrapperID {
    static let invokeWithLayer: UInt32 = 0xda9b0d0d
    static let initConnection: UInt32 = 0xc1cd5ea9
    static let invokeWithoutUpdates: UInt32 = 0xbf9459b7
    static let invokeAfterMsg: UInt32 = 0xcb9f372d
}

extension DCState {
    static let methodNames: [UInt32: String] = {
        var names: [UInt32: String] = [:]
        for type in Api.functionTypes { names[type.constructorID] = type.tlName }
        return names
    }()

    /// Methods that work before login; everything else needs an authorized key (401 AUTH_KEY_UNREGISTERED).
    static let unauthenticatedMethods: Set<String> = [
        "help.getConfig", "help.getNearestDc", "auth.sendCode", "auth.signIn", "auth.signUp", "auth.checkPassword",
        "account.getPassword", "auth.importBotAuthorization", "auth.importAuthorization", "auth.logOut",
        "auth.resendCode", "auth.cancelCode", "help.getAppConfig", "langpack.getLangPack", "langpack.getStrings",
        "langpack.getLanguages", "help.getCountriesList", "auth.exportLoginToken", "auth.importLoginToken",
        "auth.bindTempAuthKey", "account.sendVerifyEmailCode", "account.verifyEmail", "auth.resetLoginEmail",
    ]

    /// The writes a frozen account is refused (FROZEN_METHOD_INVALID); its reads still work.
    static let frozenRefusedMethods: Set<String> = [
        "messages.sendMessage", "messages.sendMedia", "messages.sendMultiMedia", "messages.forwardMessages", "messages.editMessage",
        "messages.deleteMessages", "messages.sendReaction", "messages.importChatInvite", "channels.joinChannel", "contacts.addContact",
        "account.updateProfile", "account.updateUsername",
    ]

    /// What an unbound temporary key may call.
    static let unboundTemporaryKeyMethods: Set<String> = ["auth.bindTempAuthKey", "help.getConfig", "help.getNearestDc"]

    /// Strips invokeWithLayer / initConnection / invokeWithoutUpdates / invokeAfterMsg, returning
    /// the inner query's bytes.
    static func unwrap(_ body: [UInt8]) throws -> [UInt8] {
        var current = body
        for _ in 0..<8 {
            var reader = TLReader(current)
            let id = try reader.readConstructorID()
            switch id {
            case WrapperID.invokeWithLayer:
                _ = try reader.readInt32()
            case WrapperID.invokeWithoutUpdates:
                break
            case WrapperID.invokeAfterMsg:
                _ = try reader.readInt64()
            case WrapperID.initConnection:
                let flags = try reader.readUInt32()
                _ = try reader.readInt32()
                for _ in 0..<6 { _ = try reader.readString() }
                if flags & 1 != 0 { _ = try Api.InputClientProxy(from: &reader) }
                if flags & 2 != 0 { _ = try Api.JSONValue(from: &reader) }
            default:
                return current
            }
            current = Array(current[reader.position...])
        }
        throw RequestError(code: 400, message: "INPUT_REQUEST_TOO_LONG")
    }

    static func methodName(of body: [UInt8]) -> (id: UInt32, name: String) {
        var reader = TLReader(body)
        let id = (try? reader.readConstructorID()) ?? 0
        return (id, methodNames[id] ?? "#" + String(id, radix: 16).leftPadded(8))
    }

    /// Unwraps, applies the fault rules, and answers one RPC request.
    public mutating func handle(_ body: [UInt8], context: CallContext, now: Double) -> HandledCall {
        recordInitConnection(in: body, context: context)
        let inner: [UInt8]
        do {
            inner = try Self.unwrap(body)
        } catch let error as RequestError {
            return HandledCall(method: "?", decision: FaultDecision(), answer: .error(code: error.code, message: error.message))
        } catch {
            return HandledCall(method: "?", decision: FaultDecision(), answer: .error(code: 400, message: "INPUT_FETCH_FAIL"))
        }
        let (id, method) = Self.methodName(of: inner)
        var context = context
        if let temporary = temporaryKeys[AuthKeyRef(dc: context.dc, keyID: context.authKeyID)], id != Api.functions.auth.BindTempAuthKey.constructorID {
            // spec api/pfs: a temporary key works as the permanent key it is bound to; unbound, it
            // can bind itself and read the config, nothing that needs an authorization.
            if temporary.boundTo != nil {
                context = permanentContext(context)
            } else if !Self.unboundTemporaryKeyMethods.contains(method) {
                return HandledCall(method: method, decision: FaultDecision(), answer: .error(code: 401, message: "AUTH_KEY_PERM_EMPTY"))
            }
        }
        let account = userID(for: context)
        // Only fault rules and the call log read the phone; other calls skip finding it.
        let phone = faults.readsCalls ? Self.phoneArgument(of: inner, id: id) ?? account.flatMap { user(id: $0)?.phone } : nil
        let decision = faults.decide(FaultCall(dc: context.dc, method: method, account: account, phone: phone), now: now,
                                     sessionID: context.sessionID, messageID: context.messageID,
                                     subject: faults.recordsCalls ? Self.callSubject(of: inner, id: id) : nil)
        var call = HandledCall(method: method, decision: decision, answer: nil)
        switch decision.outcome {
        case .proceed, .dropAfterAnswer, .swallowAnswer:
            handlerRuns[method, default: 0] += 1
            call.answer = answer(inner, id: id, method: method, context: context, viewer: account, now: now)
        case .rpcError(let code, let message):
            call.answer = .error(code: code, message: message)
        case .revokeAuthorization(let message):
            revokeAuthorization(dc: context.dc, keyID: context.authKeyID)
            call.answer = .error(code: 401, message: message)
        case .dropAuthKey(let message):
            dropAuthKey(dc: context.dc, keyID: context.authKeyID)
            call.answer = .error(code: 406, message: message)
        case .transportError, .dropBeforeAnswer, .badServerSalt:
            call.answer = nil
        }
        return call
    }

    /// What identifies one call among the calls of its method, for the call log (decoded only
    /// while calls are recorded): a send's random_id, a resolve's username.
    static func callSubject(of body: [UInt8], id: UInt32) -> String? {
        switch id {
        case Api.functions.messages.SendMessage.constructorID:
            return (try? Api.functions.messages.SendMessage(serialized: body)).map { String($0.randomId) }
        case Api.functions.contacts.ResolveUsername.constructorID:
            return (try? Api.functions.contacts.ResolveUsername(serialized: body)).map { $0.username.lowercased() }
        default:
            return nil
        }
    }

    /// The phone number a login method is about, so fault rules can match it before login.
    static func phoneArgument(of body: [UInt8], id: UInt32) -> String? {
        switch id {
        case Api.functions.auth.SendCode.constructorID:
            return (try? Api.functions.auth.SendCode(serialized: body)).map { World.normalizePhone($0.phoneNumber) }
        case Api.functions.auth.SignIn.constructorID:
            return (try? Api.functions.auth.SignIn(serialized: body)).map { World.normalizePhone($0.phoneNumber) }
        case Api.functions.auth.SignUp.constructorID:
            return (try? Api.functions.auth.SignUp(serialized: body)).map { World.normalizePhone($0.phoneNumber) }
        case Api.functions.auth.ResetLoginEmail.constructorID:
            return (try? Api.functions.auth.ResetLoginEmail(serialized: body)).map { World.normalizePhone($0.phoneNumber) }
        case Api.functions.account.SendVerifyEmailCode.constructorID:
            return (try? Api.functions.account.SendVerifyEmailCode(serialized: body)).flatMap { loginSetUpPhone($0.purpose) }
        case Api.functions.account.VerifyEmail.constructorID:
            return (try? Api.functions.account.VerifyEmail(serialized: body)).flatMap { loginSetUpPhone($0.purpose) }
        default:
            return nil
        }
    }

    /// `viewer`: the account `context`'s key is logged in to (`userID(for:)`), found once per call.
    mutating func answer(_ body: [UInt8], id: UInt32, method: String, context: CallContext, viewer: Int64?, now: Double) -> RPCAnswer {
        // A session still open on a key the DC has forgotten learns why on every call.
        if droppedKeys.contains(AuthKeyRef(dc: context.dc, keyID: context.authKeyID)) {
            return .error(code: 406, message: "AUTH_KEY_DUPLICATED")
        }
        // A number the schema does not know is refused whoever asks, as Telegram does.
        guard Self.methodNames[id] != nil else { return .error(code: 400, message: "INPUT_METHOD_INVALID") }
        if viewer == nil, !Self.unauthenticatedMethods.contains(method) {
            // As Telegram: a key whose sign-in stopped at the 2FA password is told so, which is how a
            // client that restarted learns that the password alone completes its login.
            let awaits = awaitingPassword[AuthKeyRef(dc: context.dc, keyID: context.authKeyID)] != nil
            return .error(code: 401, message: awaits ? "SESSION_PASSWORD_NEEDED" : "AUTH_KEY_UNREGISTERED")
        }
        // Read in place: a copy of the account is a dozen retains and releases on every call.
        if let viewer, let index = world.users.firstIndex(where: { $0.id == viewer }) {
            if world.users[index].deactivated {
                return .error(code: 401, message: "USER_DEACTIVATED")
            }
            // A frozen account is read-only (api/auth): its writes are refused, with 420 and no seconds.
            if world.users[index].frozen != nil, Self.frozenRefusedMethods.contains(method) {
                return .error(code: 420, message: "FROZEN_METHOD_INVALID")
            }
        }
        do {
            return try route(body, id: id, context: context, viewer: viewer, now: now)
        } catch let error as RequestError {
            return .error(code: error.code, message: error.message)
        } catch {
            // The body did not decode as the schema says.
            return .error(code: 400, message: "INPUT_FETCH_ERROR")
        }
    }

    private mutating func route(_ body: [UInt8], id: UInt32, context: CallContext, viewer: Int64?, now: Double) throws -> RPCAnswer {
        typealias F = Api.functions
        switch id {
        case F.help.GetConfig.constructorID:
            return .encode(config(thisDC: context.dc, now: Self.date(now)))
        case F.help.GetAppConfig.constructorID:
            return .encode(appConfig(viewer: viewer))
        case F.help.GetNearestDc.constructorID:
            return .encode(Api.NearestDc.nearestDc(Api.NearestDc.NearestDc(country: "XX", thisDc: context.dc, nearestDc: context.dc)))
        case F.auth.SendCode.constructorID:
            return try sendCode(F.auth.SendCode(serialized: body), context: context, now: now)
        case F.auth.SignIn.constructorID:
            return try signIn(F.auth.SignIn(serialized: body), context: context, now: now)
        case F.auth.SignUp.constructorID:
            return try signUp(F.auth.SignUp(serialized: body), context: context, now: now)
        case F.account.SendVerifyEmailCode.constructorID:
            return try sendVerifyEmailCode(F.account.SendVerifyEmailCode(serialized: body), now: now)
        case F.account.VerifyEmail.constructorID:
            return try verifyEmail(F.account.VerifyEmail(serialized: body), context: context, now: now)
        case F.auth.ResetLoginEmail.constructorID:
            return try resetLoginEmail(F.auth.ResetLoginEmail(serialized: body), context: context, now: now)
        case F.account.GetPassword.constructorID:
            return try getPassword(context: context, viewer: viewer)
        case F.auth.CheckPassword.constructorID:
            return try checkPassword(F.auth.CheckPassword(serialized: body), context: context, now: now)
        case F.auth.ImportBotAuthorization.constructorID:
            return try importBotAuthorization(F.auth.ImportBotAuthorization(serialized: body), context: context)
        case F.auth.ExportAuthorization.constructorID:
            return try exportAuthorization(F.auth.ExportAuthorization(serialized: body), context: context, viewer: viewer)
        case F.auth.ImportAuthorization.constructorID:
            return try importAuthorization(F.auth.ImportAuthorization(serialized: body), context: context)
        case F.auth.BindTempAuthKey.constructorID:
            return try bindTempAuthKey(F.auth.BindTempAuthKey(serialized: body), context: context, now: now)
        case F.auth.LogOut.constructorID:
            return logOut(context: context, now: now)
        case F.users.GetUsers.constructorID:
            return try getUsers(F.users.GetUsers(serialized: body), viewer: viewer)
        case F.users.GetFullUser.constructorID:
            return try getFullUser(F.users.GetFullUser(serialized: body), viewer: viewer)
        case F.contacts.ResolveUsername.constructorID:
            return try resolveUsername(F.contacts.ResolveUsername(serialized: body), viewer: viewer)
        case F.messages.GetHistory.constructorID:
            return try getHistory(F.messages.GetHistory(serialized: body), viewer: viewer)
        case F.messages.SendMessage.constructorID:
            return try sendMessage(F.messages.SendMessage(serialized: body), viewer: viewer, now: now)
        case F.channels.GetMessages.constructorID:
            return try channelMessages(F.channels.GetMessages(serialized: body), viewer: viewer)
        case F.messages.EditMessage.constructorID:
            return try editMessage(F.messages.EditMessage(serialized: body), viewer: viewer, now: now)
        case F.updates.GetState.constructorID:
            return .encode(updatesState(of: viewer ?? 0, now: now))
        case F.updates.GetDifference.constructorID:
            return getDifference(try F.updates.GetDifference(serialized: body), viewer: viewer ?? 0, now: now)
        case F.updates.GetChannelDifference.constructorID:
            return try getChannelDifference(F.updates.GetChannelDifference(serialized: body), viewer: viewer)
        case F.auth.ExportLoginToken.constructorID:
            return try exportLoginToken(context: context, now: now)
        case F.auth.ImportLoginToken.constructorID:
            return try importLoginToken(F.auth.ImportLoginToken(serialized: body), context: context, now: now)
        case F.auth.AcceptLoginToken.constructorID:
            return try acceptLoginToken(F.auth.AcceptLoginToken(serialized: body), viewer: viewer, now: now)
        default:
            return .error(code: 400, message: "INPUT_METHOD_INVALID")
        }
    }
}
