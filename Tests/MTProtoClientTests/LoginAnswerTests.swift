import TL
import TLSchema
import Testing
@testable import MTProtoClient

/// The one reading of "which calls are a login's, and which answers finish one" that the client,
/// the terminal guard and the future-auth-token keeper share.
@Suite struct LoginAnswerTests {
    static let user = makeUser(id: 7)

    @Test func everyAnswerThatCarriesALoginIsFound() {
        let done = authorization(for: Self.user)
        let answers: [(String, Any)] = [
            ("auth.authorization", done),
            ("auth.sentCodeSuccess", Api.auth.SentCode.sentCodeSuccess(.init(authorization: done))),
            ("auth.loginTokenSuccess", Api.auth.LoginToken.loginTokenSuccess(.init(authorization: done))),
            ("account.emailVerifiedLogin", Api.account.EmailVerified.emailVerifiedLogin(.init(
                email: "me@example.com", sentCode: .sentCodeSuccess(.init(authorization: done))))),
        ]
        for (name, answer) in answers {
            guard case .authorization? = LoginAnswer.authorization(in: answer) else { Issue.record("\(name) carries a login"); continue }
            #expect(LoginAnswer.mayCarryAuthorization(type(of: answer)), "\(name)")
        }
    }

    @Test func answersThatAreStepsOfALoginCarryNone() {
        let codeSent = Api.auth.SentCode.sentCode(.init(type: .sentCodeTypeSms(.init(length: 5)), phoneCodeHash: "h"))
        let steps: [(String, Any)] = [
            ("auth.sentCode", codeSent),
            ("account.emailVerifiedLogin with a code sent", Api.account.EmailVerified.emailVerifiedLogin(.init(email: "me@example.com", sentCode: codeSent))),
            ("account.emailVerified", Api.account.EmailVerified.emailVerified(.init(email: "me@example.com"))),
            ("auth.loginToken", Api.auth.LoginToken.loginToken(.init(expires: 1, token: [1]))),
            ("a user", Self.user),
        ]
        for (name, answer) in steps {
            if case .authorization? = LoginAnswer.authorization(in: answer) { Issue.record("\(name) is not a finished login") }
        }
        // A sign-up request is an auth.Authorization, returned as it is for the caller to tell apart.
        guard case .authorizationSignUpRequired? = LoginAnswer.authorization(in: Api.auth.Authorization.authorizationSignUpRequired(.init())) else {
            Issue.record("expected the sign-up request back")
            return
        }
        #expect(!LoginAnswer.mayCarryAuthorization(Api.User.self))
    }

    @Test func theLoginsCallsAreEveryAuthMethodAndTheAccountCallsAnUnauthorizedKeyMakes() {
        for method in ["auth.sendCode", "auth.signIn", "auth.checkPassword", "auth.importLoginToken", "account.getPassword",
                       "account.sendVerifyEmailCode", "account.verifyEmail"] {
            #expect(LoginAnswer.isLoginCall(method), "\(method)")
        }
        for method in ["account.updateProfile", "account.getAuthorizations", "messages.sendMessage", "users.getUsers", "authx.thing"] {
            #expect(!LoginAnswer.isLoginCall(method), "\(method)")
        }
    }
}
