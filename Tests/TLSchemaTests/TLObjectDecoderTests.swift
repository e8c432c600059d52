import Testing
import TL
import TLSchema
import MTProtoSchema

@Suite struct TLObjectDecoderTests {
    static let api = TLObjectDecoder(Api.constructorTypes)
    static let mtproto = TLObjectDecoder(MT.constructorTypes)

    /// Every object Telethon 1.45 serialized in the vectors decodes by its number alone, to the
    /// boxed type the schema gives it, and writes back the same bytes.
    @Test func decodesEveryTelethonObjectByItsConstructorNumber() throws {
        let objects = try TelethonVector.loadAll().filter { $0.kind == "type" }
        #expect(objects.count > 200)
        for vector in objects {
            let decoder = vector.schema == "mtproto" ? Self.mtproto : Self.api
            let bytes = try vector.bytes
            let object = try decoder.decode(bytes)
            #expect(type(of: object).tlTypeName == vector.type, "\(vector.label)")
            #expect(object.serialized(capacity: bytes.count) == bytes, "\(vector.label)")
        }
    }

    @Test func aStoredUpdateComesBackAsItsType() throws {
        let update = Api.Update.updateDeleteMessages(.init(messages: [1, 2, 3], pts: 9, ptsCount: 3))
        let object = try Self.api.decode(update.serialized())
        #expect(object as? Api.Update == update)
        #expect(Self.api.type(for: Api.Update.UpdateDeleteMessages.constructorID) == Api.Update.self)
    }

    @Test func gzipPackedObjectsAreInflated() throws {
        let peer = Api.InputPeer.inputPeerChat(.init(chatId: 42))
        var writer = TLWriter()
        try writer.writeGzipPacked(peer, using: ReversingCodec())
        #expect(try Self.api.decode(writer.bytes, inflater: ReversingCodec()) as? Api.InputPeer == peer)
        #expect(throws: TLDecodingError.self) { try Self.api.decode(writer.bytes) }
    }

    @Test func unknownNumbersFunctionsAndTrailingBytesAreTypedErrors() {
        #expect(throws: TLDecodingError(kind: .unknownConstructor(0xdead_beef), offset: 0, expected: "boxed object")) {
            _ = try Self.api.decode([0xef, 0xbe, 0xad, 0xde])
        }
        // A function is not an object.
        #expect(throws: TLDecodingError.self) { _ = try Self.api.decode(Api.functions.help.GetConfig().serialized()) }
        let peer = Api.InputPeer.inputPeerEmpty(.init()).serialized()
        #expect(throws: TLDecodingError.self) { _ = try Self.api.decode(peer + [0, 0, 0, 0]) }
        #expect(throws: TLDecodingError.self) { _ = try Self.api.decode([0x01]) }
    }
}
