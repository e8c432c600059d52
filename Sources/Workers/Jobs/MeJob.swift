import Foundation
import MTProtoClient
import TLSchema

/// `me`: the account's own user (users.getFullUser on inputUserSelf): a cheap check that the
/// session works, and the account's id, name and username as the result. The phone number is
/// deliberately left out of the result: it is a secret.
public struct MeJob: JobHandler {
    public static let kind: JobKind = "me"
    public var kind: JobKind { Self.kind }

    public struct Result: Codable, Sendable, Hashable {
        public var id: Int64
        public var firstName: String?
        public var lastName: String?
        public var username: String?
        public var bot: Bool
    }

    public init() {}

    public func run(_ context: JobContext) async throws -> Data? {
        let answer = try await context.invoker.invoke(Api.functions.users.GetFullUser(id: .inputUserSelf(.init())))
        guard case .userFull(let full) = answer else {
            throw JobFailure.permanent("users.getFullUser answered with an unknown constructor")
        }
        for case .user(let user) in full.users where user.isSelf || full.users.count == 1 {
            return try JSONEncoder.jobs.encode(
                Result(id: user.id, firstName: user.firstName, lastName: user.lastName, username: user.username, bot: user.bot))
        }
        throw JobFailure.retry("users.getFullUser returned no user for the account itself")
    }
}
