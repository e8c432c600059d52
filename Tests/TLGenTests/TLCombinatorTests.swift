import Testing
@testable import TLGen

@Suite struct TLCombinatorTests {
    private func combinator(_ line: String, functions: Bool = false) throws -> TLDeclaration {
        try TLParser(fileName: "test.tl").parse((functions ? "---functions---\n" : "") + line).combinators[0]
    }

    @Test func crc32OfKnownStrings() {
        #expect(CRC32.checksum(Array("".utf8)) == 0)
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xcbf4_3926)
        // The spec's own example (mtproto/TL): user#d23c81a3.
        #expect(CRC32.checksum(Array("user id:int first_name:string last_name:string = User".utf8)) == 0xd23c_81a3)
    }

    @Test func knownLinesVerify() throws {
        let lines = [
            "resPQ#05162463 nonce:int128 server_nonce:int128 pq:bytes server_public_key_fingerprints:Vector<long> = ResPQ;",
            "msg_container#73f1f8dc messages:vector<message> = MessageContainer;",
            "message#5bb8e511 msg_id:long seqno:int bytes:int body:Object = Message;",
            "inputMediaPhoto#e3af4434 flags:# spoiler:flags.1?true live_photo:flags.2?true id:InputPhoto ttl_seconds:flags.0?int video:flags.2?InputDocument = InputMedia;",
            "community#65efe954 flags:# creator:flags.0?true left:flags.2?true min:flags.12?true flags2:# collapsed_in_dialogs:flags2.20?true id:long access_hash:flags.13?long title:string photo:ChatPhoto date:int admin_rights:flags.14?ChatAdminRights default_banned_rights:flags.18?ChatBannedRights = Chat;",
        ]
        for line in lines {
            let parsed = try combinator(line)
            #expect(parsed.declaredID == parsed.computedID, "\(parsed.canonicalText)")
        }
        let wrapper = try combinator("invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X;", functions: true)
        #expect(wrapper.canonicalText == "invokeWithLayer X:Type layer:int query:!X = X")
        #expect(wrapper.computedID == 0xda9b_0d0d)
        let vectorResult = try combinator("users.getUsers#d91a548 id:Vector<InputUser> = Vector<User>;", functions: true)
        #expect(vectorResult.computedID == 0x0d91_a548)
    }

    @Test func canonicalTextDropsFlagOnlyTrueAndRespellsBytes() throws {
        let parsed = try combinator("x#0 flags:# a:flags.0?true b:bytes c:flags.1?bytes d:Vector<bytes> = X;")
        #expect(parsed.canonicalText == "x flags:# b:string c:flags.1?string d:Vector bytes = X")
    }

    @Test func wrongNumberIsDetected() throws {
        let parsed = try combinator("pong#347773c6 msg_id:long ping_id:long = Pong;")
        #expect(parsed.computedID == 0x3477_73c5)
        #expect(parsed.declaredID != parsed.computedID)
    }
}
