/// A message waiting to be sent, with what the session must remember about it.
struct Outbound: Sendable, Equatable {
    enum Purpose: Sendable, Hashable {
        case request(RequestID)
        case ping(Int64)
        case futureSalts
        case destroySession(Int64)
        case dropAnswer
        case stateRequest([Int64])
        /// msg_resend_ans_req for these requests' msg_ids: the server answers with msgs_state_info.
        case answerRequest([Int64])
        case stateInfo
        case acks([Int64])
        case resendRequest
        case container([Int64])
        case response(toMessageID: Int64)
        case notification

        var requestID: RequestID? {
            if case .request(let id) = self { return id }
            return nil
        }

        /// Kept until answered, however long that takes.
        var awaitsAnswer: Bool {
            switch self {
            case .request, .ping, .futureSalts, .destroySession, .dropAnswer, .stateRequest, .answerRequest: true
            default: false
            }
        }
    }

    var purpose: Purpose
    var body: [UInt8]
    var contentRelated: Bool
    /// A PFS binding request: its body depends on its own msg_id and session, so it is built (again)
    /// whenever a msg_id is assigned.
    var binding: TemporaryKeyBinding? = nil
}

struct SentMessage: Sendable, Equatable {
    var outbound: Outbound
    var messageID: Int64
    var seqNo: Int32
    var sentAt: UnixTime
    var acknowledged = false
}

extension Array {
    func chunked(_ size: Int) -> [[Element]] {
        precondition(size > 0, "chunk size must be positive")
        return stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
