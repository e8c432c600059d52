import MTProto
import MTProtoCrypto
import TL
import TLSchema
@testable import MTProtoClient
import SeededRandom

/// A deterministic entropy source (SplitMix64) so SRP and ids replay identically.
struct SeededTestEntropy: EntropySource {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: generator.next()) }
    }
}

/// A fake invoker: each call is answered by `answer`, which returns the serialized result (so the
/// real decoding runs) or throws; every call is recorded with its options.
actor ScriptedInvoker: TelegramInvoking {
    struct Call: Sendable {
        let method: String
        let request: any TLFunction
        let options: InvokeOptions
    }

    typealias Answer = @Sendable (any TLFunction, InvokeOptions) throws(TelegramError) -> [UInt8]

    private(set) var calls: [Call] = []
    private let answer: Answer

    init(answer: @escaping Answer) {
        self.answer = answer
    }

    func invoke<Request: TLFunction>(_ request: Request, options: InvokeOptions) async throws(TelegramError) -> Request.Result {
        calls.append(Call(method: Request.tlName, request: request, options: options))
        let bytes = try answer(request, options)
        do {
            var reader = TLReader(bytes)
            return try Request.Result(from: &reader)
        } catch {
            throw .undecodableResult(method: Request.tlName, reason: "\(error)")
        }
    }

    var methods: [String] { calls.map(\.method) }
}

func rpcError(_ code: Int32, _ message: String, method: String = "test") -> TelegramError {
    .rpc(RPCError(code: code, message: message), method: method)
}

func makeUser(id: Int64, bot: Bool = false) -> Api.User {
    .user(Api.User.User(bot: bot, id: id, firstName: "Test", botInfoVersion: bot ? 1 : nil))
}

func authorization(for user: Api.User) -> Api.auth.Authorization {
    .authorization(Api.auth.Authorization.Authorization(user: user))
}
