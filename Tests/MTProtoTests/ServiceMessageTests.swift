import Testing
import TL
import MTProtoSchema
@testable import MTProto

/// The session parses service messages by hand; the generated schema (Schema/mtproto.tl via tl-gen)
/// is an independent reading of the same TL. Both must agree byte for byte, both ways.
@Suite struct ServiceMessageTests {
    static let pairs: [(ServiceMessage, any TLEncodable)] = [
        (.msgsAck([1, -2, 1 << 40]), MT.MsgsAck.MsgsAck(msgIds: [1, -2, 1 << 40])),
        (.badMsgNotification(badMessageID: 77, badSeqNo: 5, code: 16), MT.BadMsgNotification.BadMsgNotification(badMsgId: 77, badMsgSeqno: 5, errorCode: 16)),
        (.badServerSalt(badMessageID: 78, badSeqNo: 6, code: 48, newSalt: -9), MT.BadMsgNotification.BadServerSalt(badMsgId: 78, badMsgSeqno: 6, errorCode: 48, newServerSalt: -9)),
        (.msgsStateReq([5, 6]), MT.MsgsStateReq.MsgsStateReq(msgIds: [5, 6])),
        // 0xa4 (received, answer sent, acknowledged) is not UTF-8: the generated type keeps bytes too.
        (.msgsStateInfo(requestMessageID: 9, info: [1, 4, 36, 0xa4]), MT.MsgsStateInfo.MsgsStateInfo(reqMsgId: 9, info: [1, 4, 36, 0xa4])),
        (.msgsAllInfo([3, 5], info: [4, 0x84]), MT.MsgsAllInfo.MsgsAllInfo(msgIds: [3, 5], info: [4, 0x84])),
        (.msgDetailedInfo(messageID: 1, answerMessageID: 2, bytes: 3, status: 0), MT.MsgDetailedInfo.MsgDetailedInfo(msgId: 1, answerMsgId: 2, bytes: 3, status: 0)),
        (.msgNewDetailedInfo(answerMessageID: 2, bytes: 3, status: 0), MT.MsgDetailedInfo.MsgNewDetailedInfo(answerMsgId: 2, bytes: 3, status: 0)),
        (.msgResendReq([8]), MT.MsgResendReq.MsgResendReq(msgIds: [8])),
        (.msgResendAnsReq([8]), MT.MsgResendReq.MsgResendAnsReq(msgIds: [8])),
        (.futureSalts(requestMessageID: 4, now: 100, salts: [FutureSalt(validSince: 1, validUntil: 2, salt: 3)]),
         MT.FutureSalts.FutureSalts(reqMsgId: 4, now: 100, salts: [MT.FutureSalt.FutureSalt(validSince: 1, validUntil: 2, salt: 3)])),
        (.pong(messageID: 10, pingID: 11), MT.Pong.Pong(msgId: 10, pingId: 11)),
        (.ping(pingID: 11), MT.functions.Ping(pingId: 11)),
        (.pingDelayDisconnect(pingID: 11, disconnectDelay: 75), MT.functions.PingDelayDisconnect(pingId: 11, disconnectDelay: 75)),
        (.destroySession(sessionID: 12), MT.functions.DestroySession(sessionId: 12)),
        (.destroySessionResult(sessionID: 12, existed: true), MT.DestroySessionRes.DestroySessionOk(sessionId: 12)),
        (.destroySessionResult(sessionID: 12, existed: false), MT.DestroySessionRes.DestroySessionNone(sessionId: 12)),
        (.newSessionCreated(firstMessageID: 1, uniqueID: 2, serverSalt: 3), MT.NewSession.NewSessionCreated(firstMsgId: 1, uniqueId: 2, serverSalt: 3)),
        (.getFutureSalts(count: 7), MT.functions.GetFutureSalts(num: 7)),
        (.httpWait(maxDelay: 0, waitAfter: 0, maxWait: 25_000), MT.HttpWait.HttpWait(maxDelay: 0, waitAfter: 0, maxWait: 25_000)),
        (.rpcDropAnswer(requestMessageID: 13), MT.functions.RpcDropAnswer(reqMsgId: 13)),
    ]

    @Test func handParsedAndGeneratedSerializationsAgree() throws {
        for (service, generated) in Self.pairs {
            #expect(service.serialized == generated.serialized(), "\(service)")
            #expect(try ServiceMessage.decode(generated.serialized()) == service)
        }
    }

    @Test func rpcErrorAgreesWithTheSchema() throws {
        let error = RPCError(code: 420, message: "FLOOD_WAIT_3")
        #expect(error.serialized == MT.RpcError.RpcError(errorCode: 420, errorMessage: "FLOOD_WAIT_3").serialized())
    }

    @Test func unknownConstructorsAreContentAndTruncationIsTyped() throws {
        #expect(try ServiceMessage.decode(Fixtures.request(0x1234)) == .content)
        for (service, _) in Self.pairs {
            let bytes = service.serialized
            for cut in [0, 3] + (bytes.count > 8 ? [bytes.count - 1] : []) where cut < bytes.count {
                let truncated = Array(bytes.prefix(cut))
                #expect(throws: SessionError.self) { try ServiceMessage.decode(truncated) }
            }
        }
    }

    @Test func idListsLongerThanTheSpecsMaximumAreRefused() {
        var writer = WireWriter()
        writer.write(WireConstructor.msgsAck)
        writer.writeLongVector((0..<Int64(ServiceMessage.maxIDs + 1)).map { $0 })
        #expect(throws: SessionError.self) { try ServiceMessage.decode(writer.bytes) }
        var lying = WireWriter()
        lying.write(WireConstructor.msgsAck)
        lying.write(WireConstructor.vector)
        lying.write(Int32.max)
        #expect(throws: SessionError.self) { try ServiceMessage.decode(lying.bytes) }
    }
}
