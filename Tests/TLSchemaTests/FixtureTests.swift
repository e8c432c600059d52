import Testing
import TL
import TLSchema
import MTProtoSchema

/// Serializations worked out by hand from the schema lines, checked both ways.
@Suite struct FixtureTests {
    private func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    private func le64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    @Test func reqPqMultiFromTheSpecSample() throws {
        // mtproto/samples-auth_key: req_pq_multi with this nonce.
        let nonceBytes: [UInt8] = [0x3e, 0x05, 0x49, 0x82, 0x8c, 0xca, 0x27, 0xe9, 0x66, 0xb3, 0x01, 0xa4, 0x8f, 0xec, 0xe2, 0xfc]
        let request = MT.functions.ReqPqMulti(nonce: try #require(TLInt128(bytes: nonceBytes)))
        #expect(request.serialized() == [0xf1, 0x8e, 0x7e, 0xbe] + nonceBytes)
        #expect(MT.functions.ReqPqMulti.constructorID == 0xbe7e_8ef1)
        #expect(MT.functions.ReqPqMulti.tlName == "req_pq_multi")
        #expect(try MT.functions.ReqPqMulti(serialized: request.serialized()) == request)
        #expect(MT.functions.ReqPqMulti.Result.self == MT.ResPQ.self)
    }

    @Test func boxedConstructorCarriesItsNumber() throws {
        let peer = Api.InputPeer.inputPeerUser(.init(userId: 1, accessHash: 2))
        let expected = [0x4c, 0xa5, 0xe8, 0xdd] + le64(1) + le64(2)
        #expect(peer.serialized() == expected)
        #expect(try Api.InputPeer(serialized: expected) == peer)
        #expect(Api.InputPeer.InputPeerUser.tlName == "inputPeerUser")
        #expect(Api.InputPeer.tlTypeName == "InputPeer")
    }

    @Test func flagsAreComputedFromPresence() throws {
        let media = Api.InputMedia.inputMediaPhoto(.init(spoiler: true, id: .inputPhotoEmpty(.init()), ttlSeconds: 5))
        // flags = spoiler (bit 1) | ttl_seconds (bit 0); live_photo and video absent.
        let expected: [UInt8] = [0x34, 0x44, 0xaf, 0xe3, 3, 0, 0, 0, 0x0d, 0xbf, 0xd7, 0x1c, 5, 0, 0, 0]
        #expect(media.serialized() == expected)
        #expect(try Api.InputMedia(serialized: expected) == media)
    }

    @Test func flags2WordIsItsOwnField() throws {
        let chat = Api.Chat.community(.init(collapsedInDialogs: true, id: 7, title: "t", photo: .chatPhotoEmpty(.init()), date: 9))
        let expected = le32(0x65ef_e954) + le32(0) + le32(1 << 20) + le64(7) + [1, 0x74, 0, 0] + le32(0x37c1_011c) + le32(9)
        #expect(chat.serialized() == expected)
        #expect(try Api.Chat(serialized: expected) == chat)
    }

    @Test func bareVectorOfBareConstructors() throws {
        let salts = MT.FutureSalts.futureSalts(.init(reqMsgId: 1, now: 2, salts: [.init(validSince: 3, validUntil: 4, salt: 5)]))
        let expected = le32(0xae50_0895) + le64(1) + le32(2) + le32(1) + le32(3) + le32(4) + le64(5)
        #expect(salts.serialized() == expected)
        #expect(try MT.FutureSalts(serialized: expected) == salts)
    }

    @Test func genericWrappersNestAndKeepTheInnerResult() throws {
        let request = Api.functions.InvokeWithLayer(
            layer: Api.layer,
            query: Api.functions.InitConnection(
                apiId: 4, deviceModel: "pc", systemVersion: "os", appVersion: "1.0", systemLangCode: "en", langPack: "",
                langCode: "en", query: Api.functions.help.GetConfig()))
        var expected = le32(0xda9b_0d0d) + le32(229)
        expected += le32(0xc1cd_5ea9) + le32(0) + le32(4)
        expected += [2, 0x70, 0x63, 0] + [2, 0x6f, 0x73, 0] + [3, 0x31, 0x2e, 0x30] + [2, 0x65, 0x6e, 0] + [0, 0, 0, 0] + [2, 0x65, 0x6e, 0]
        expected += le32(0xc4f9_186b)
        #expect(request.serialized() == expected)
        let decoded = try Api.functions.InvokeWithLayer<Api.functions.InitConnection<Api.functions.help.GetConfig>>(serialized: expected)
        #expect(decoded == request)
        #expect(type(of: request).Result.self == Api.Config.self)
    }

    @Test func functionResultsMapToRuntimeTypes() {
        #expect(Api.functions.account.UpdateStatus.Result.self == Bool.self)
        #expect(Api.functions.messages.ReceivedQueue.Result.self == [Int64].self)
        #expect(Api.functions.users.GetUsers.Result.self == [Api.User].self)
    }

    @Test func unknownConstructorNamesTheTypeAndOffset() {
        let bytes = le32(0) + le32(0xdead_beef)
        var reader = TLReader(bytes)
        #expect(throws: TLDecodingError(kind: .unknownConstructor(0xdead_beef), offset: 4, expected: "InputPeer")) {
            _ = try reader.readInt32()
            _ = try Api.InputPeer(from: &reader)
        }
    }

    @Test func deeplyNestedRecursiveTypeHitsTheDepthLimitNotTheStack() {
        // textBold#6724abc4 text:RichText, nested 10,000 times around textEmpty.
        let bytes = Array(repeating: le32(0x6724_abc4), count: 10_000).flatMap { $0 } + le32(0xdc3d_824f)
        do {
            _ = try Api.RichText(serialized: bytes)
            Issue.record("10,000 levels decoded")
        } catch let error as TLDecodingError {
            #expect(error.kind == .nestingTooDeep(limit: TLReader.Limits().maxDepth))
        } catch {
            Issue.record("unexpected \(error)")
        }
        let shallow = Array(repeating: le32(0x6724_abc4), count: 10).flatMap { $0 } + le32(0xdc3d_824f)
        #expect(throws: Never.self) { try Api.RichText(serialized: shallow) }
    }

    @Test func gzipPackedObjectIsInflatedByTheInjectedInflater() throws {
        let peer = Api.InputPeer.inputPeerChat(.init(chatId: 42))
        var writer = TLWriter()
        try writer.writeGzipPacked(peer, using: ReversingCodec())
        #expect(writer.bytes.prefix(4) == [0xa1, 0xcf, 0x72, 0x30])
        #expect(try Api.InputPeer(serialized: writer.bytes, inflater: ReversingCodec()) == peer)
        #expect(throws: TLDecodingError.self) { try Api.InputPeer(serialized: writer.bytes) }
    }
}

/// Stands in for zlib: "compresses" by reversing the bytes.
struct ReversingCodec: TLInflater, TLDeflater {
    func deflate(_ plain: [UInt8]) throws -> [UInt8] { plain.reversed() }
    func inflate(_ compressed: [UInt8], maxOutputCount: Int) throws -> [UInt8] { compressed.reversed() }
}
