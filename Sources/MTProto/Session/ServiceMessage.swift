/// future_salt#0949d9dc valid_since:int valid_until:int salt:long.
public struct FutureSalt: Sendable, Hashable {
    public var validSince: Int32
    public var validUntil: Int32
    public var salt: Int64

    public init(validSince: Int32, validUntil: Int32, salt: Int64) {
        self.validSince = validSince
        self.validUntil = validUntil
        self.salt = salt
    }

    public func isValid(at time: Double) -> Bool { Double(validSince) <= time && time < Double(validUntil) }
}

/// The service-layer constructors the session handles itself (Schema/mtproto.tl, "System messages"),
/// parsed by hand: rpc_result's `result:Object` and message's `body:Object` have lengths the schema
/// cannot state, and the session must read these without knowing the API layer's types.
enum ServiceMessage: Sendable, Equatable {
    case rpcResult(requestMessageID: Int64, result: [UInt8])
    case msgsAck([Int64])
    case badMsgNotification(badMessageID: Int64, badSeqNo: Int32, code: Int32)
    case badServerSalt(badMessageID: Int64, badSeqNo: Int32, code: Int32, newSalt: Int64)
    case msgsStateReq([Int64])
    case msgsStateInfo(requestMessageID: Int64, info: [UInt8])
    case msgsAllInfo([Int64], info: [UInt8])
    case msgDetailedInfo(messageID: Int64, answerMessageID: Int64, bytes: Int32, status: Int32)
    case msgNewDetailedInfo(answerMessageID: Int64, bytes: Int32, status: Int32)
    case msgResendReq([Int64])
    case msgResendAnsReq([Int64])
    case futureSalts(requestMessageID: Int64, now: Int32, salts: [FutureSalt])
    case pong(messageID: Int64, pingID: Int64)
    case ping(pingID: Int64)
    case pingDelayDisconnect(pingID: Int64, disconnectDelay: Int32)
    case destroySession(sessionID: Int64)
    case destroySessionResult(sessionID: Int64, existed: Bool)
    case newSessionCreated(firstMessageID: Int64, uniqueID: Int64, serverSalt: Int64)
    case getFutureSalts(count: Int32)
    case httpWait(maxDelay: Int32, waitAfter: Int32, maxWait: Int32)
    case rpcDropAnswer(requestMessageID: Int64)
    case messageCopy(SessionMessage)
    /// Not a service constructor: an RPC query, an API object or an update, for the layer above.
    case content

    /// The largest id list a peer may put in one msgs_ack/msgs_state_req/msg_resend_req.
    static let maxIDs = 8192

    static func decode(_ body: [UInt8]) throws(SessionError) -> ServiceMessage {
        guard let constructor = WireConstructor.of(body) else {
            throw .malformedMessage(reason: "body of \(body.count) bytes has no constructor")
        }
        var reader = WireReader(body)
        do {
            _ = try reader.readUInt32()
            switch constructor {
            case WireConstructor.rpcResult:
                let requestID = try reader.readInt64()
                let result = try reader.readRaw(reader.remaining)
                return .rpcResult(requestMessageID: requestID, result: result)
            case WireConstructor.msgsAck:
                return .msgsAck(try ids(&reader))
            case WireConstructor.badMsgNotification:
                return .badMsgNotification(badMessageID: try reader.readInt64(), badSeqNo: try reader.readInt32(), code: try reader.readInt32())
            case WireConstructor.badServerSalt:
                return .badServerSalt(
                    badMessageID: try reader.readInt64(), badSeqNo: try reader.readInt32(),
                    code: try reader.readInt32(), newSalt: try reader.readInt64())
            case WireConstructor.msgsStateReq:
                return .msgsStateReq(try ids(&reader))
            case WireConstructor.msgsStateInfo:
                return .msgsStateInfo(requestMessageID: try reader.readInt64(), info: try reader.readBytes())
            case WireConstructor.msgsAllInfo:
                let list = try ids(&reader)
                return .msgsAllInfo(list, info: try reader.readBytes())
            case WireConstructor.msgDetailedInfo:
                return .msgDetailedInfo(
                    messageID: try reader.readInt64(), answerMessageID: try reader.readInt64(),
                    bytes: try reader.readInt32(), status: try reader.readInt32())
            case WireConstructor.msgNewDetailedInfo:
                return .msgNewDetailedInfo(answerMessageID: try reader.readInt64(), bytes: try reader.readInt32(), status: try reader.readInt32())
            case WireConstructor.msgResendReq:
                return .msgResendReq(try ids(&reader))
            case WireConstructor.msgResendAnsReq:
                return .msgResendAnsReq(try ids(&reader))
            case WireConstructor.futureSalts:
                let requestID = try reader.readInt64()
                let now = try reader.readInt32()
                // vector<future_salt> is bare: a count, then bare future_salt entries of 16 bytes.
                let count = try reader.readInt32()
                guard count >= 0, Int(count) <= reader.remaining / 16 else { throw WireError.invalidLength(Int(count)) }
                var salts: [FutureSalt] = []
                for _ in 0..<count {
                    salts.append(FutureSalt(validSince: try reader.readInt32(), validUntil: try reader.readInt32(), salt: try reader.readInt64()))
                }
                return .futureSalts(requestMessageID: requestID, now: now, salts: salts)
            case WireConstructor.pong:
                return .pong(messageID: try reader.readInt64(), pingID: try reader.readInt64())
            case WireConstructor.ping:
                return .ping(pingID: try reader.readInt64())
            case WireConstructor.pingDelayDisconnect:
                return .pingDelayDisconnect(pingID: try reader.readInt64(), disconnectDelay: try reader.readInt32())
            case WireConstructor.destroySession:
                return .destroySession(sessionID: try reader.readInt64())
            case WireConstructor.destroySessionOK:
                return .destroySessionResult(sessionID: try reader.readInt64(), existed: true)
            case WireConstructor.destroySessionNone:
                return .destroySessionResult(sessionID: try reader.readInt64(), existed: false)
            case WireConstructor.newSessionCreated:
                return .newSessionCreated(firstMessageID: try reader.readInt64(), uniqueID: try reader.readInt64(), serverSalt: try reader.readInt64())
            case WireConstructor.getFutureSalts:
                return .getFutureSalts(count: try reader.readInt32())
            case WireConstructor.httpWait:
                return .httpWait(maxDelay: try reader.readInt32(), waitAfter: try reader.readInt32(), maxWait: try reader.readInt32())
            case WireConstructor.rpcDropAnswer:
                return .rpcDropAnswer(requestMessageID: try reader.readInt64())
            case WireConstructor.messageCopy:
                // orig_message is a bare `message`.
                let messageID = try reader.readInt64()
                let seqNo = try reader.readInt32()
                let length = try reader.readInt32()
                guard length >= 0, length % 4 == 0 else { throw WireError.invalidLength(Int(length)) }
                return .messageCopy(SessionMessage(messageID: messageID, seqNo: seqNo, body: try reader.readRaw(Int(length))))
            default:
                return .content
            }
        } catch let error as WireError {
            throw .malformedMessage(reason: "constructor \(String(constructor, radix: 16)): \(error)")
        } catch let error as SessionError {
            throw error
        } catch {
            throw .malformedMessage(reason: "constructor \(String(constructor, radix: 16))")
        }
    }

    private static func ids(_ reader: inout WireReader) throws(WireError) -> [Int64] {
        let list = try reader.readLongVector()
        guard list.count <= maxIDs else { throw .invalidLength(list.count) }
        return list
    }

    var serialized: [UInt8] {
        var writer = WireWriter()
        switch self {
        case .rpcResult(let requestID, let result):
            writer.write(WireConstructor.rpcResult)
            writer.write(requestID)
            writer.writeRaw(result)
        case .msgsAck(let ids):
            writer.write(WireConstructor.msgsAck)
            writer.writeLongVector(ids)
        case .badMsgNotification(let id, let seqNo, let code):
            writer.write(WireConstructor.badMsgNotification)
            writer.write(id)
            writer.write(seqNo)
            writer.write(code)
        case .badServerSalt(let id, let seqNo, let code, let salt):
            writer.write(WireConstructor.badServerSalt)
            writer.write(id)
            writer.write(seqNo)
            writer.write(code)
            writer.write(salt)
        case .msgsStateReq(let ids):
            writer.write(WireConstructor.msgsStateReq)
            writer.writeLongVector(ids)
        case .msgsStateInfo(let requestID, let info):
            writer.write(WireConstructor.msgsStateInfo)
            writer.write(requestID)
            writer.writeBytes(info)
        case .msgsAllInfo(let ids, let info):
            writer.write(WireConstructor.msgsAllInfo)
            writer.writeLongVector(ids)
            writer.writeBytes(info)
        case .msgDetailedInfo(let id, let answerID, let bytes, let status):
            writer.write(WireConstructor.msgDetailedInfo)
            writer.write(id)
            writer.write(answerID)
            writer.write(bytes)
            writer.write(status)
        case .msgNewDetailedInfo(let answerID, let bytes, let status):
            writer.write(WireConstructor.msgNewDetailedInfo)
            writer.write(answerID)
            writer.write(bytes)
            writer.write(status)
        case .msgResendReq(let ids):
            writer.write(WireConstructor.msgResendReq)
            writer.writeLongVector(ids)
        case .msgResendAnsReq(let ids):
            writer.write(WireConstructor.msgResendAnsReq)
            writer.writeLongVector(ids)
        case .futureSalts(let requestID, let now, let salts):
            writer.write(WireConstructor.futureSalts)
            writer.write(requestID)
            writer.write(now)
            writer.write(Int32(salts.count))
            for salt in salts {
                writer.write(salt.validSince)
                writer.write(salt.validUntil)
                writer.write(salt.salt)
            }
        case .pong(let id, let pingID):
            writer.write(WireConstructor.pong)
            writer.write(id)
            writer.write(pingID)
        case .ping(let pingID):
            writer.write(WireConstructor.ping)
            writer.write(pingID)
        case .pingDelayDisconnect(let pingID, let delay):
            writer.write(WireConstructor.pingDelayDisconnect)
            writer.write(pingID)
            writer.write(delay)
        case .destroySession(let id):
            writer.write(WireConstructor.destroySession)
            writer.write(id)
        case .destroySessionResult(let id, let existed):
            writer.write(existed ? WireConstructor.destroySessionOK : WireConstructor.destroySessionNone)
            writer.write(id)
        case .newSessionCreated(let first, let unique, let salt):
            writer.write(WireConstructor.newSessionCreated)
            writer.write(first)
            writer.write(unique)
            writer.write(salt)
        case .getFutureSalts(let count):
            writer.write(WireConstructor.getFutureSalts)
            writer.write(count)
        case .httpWait(let maxDelay, let waitAfter, let maxWait):
            writer.write(WireConstructor.httpWait)
            writer.write(maxDelay)
            writer.write(waitAfter)
            writer.write(maxWait)
        case .rpcDropAnswer(let id):
            writer.write(WireConstructor.rpcDropAnswer)
            writer.write(id)
        case .messageCopy(let message):
            writer.write(WireConstructor.messageCopy)
            writer.write(message.messageID)
            writer.write(message.seqNo)
            writer.write(Int32(message.body.count))
            writer.writeRaw(message.body)
        case .content:
            preconditionFailure("content is not a service message")
        }
        return writer.bytes
    }
}
