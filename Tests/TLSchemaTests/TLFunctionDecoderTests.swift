import Testing
import TL
import TLSchema
import MTProtoSchema

@Suite struct TLFunctionDecoderTests {
    @Test func decodesARequestByItsConstructorNumber() throws {
        let decoder = TLFunctionDecoder(MT.functionTypes)
        let ping = MT.functions.Ping(pingId: 77)
        var reader = TLReader(ping.serialized())
        let decoded = try decoder.decode(from: &reader)
        #expect(decoded as? MT.functions.Ping == ping)
        #expect(reader.isAtEnd)
        #expect(decoder.type(for: MT.functions.ReqPqMulti.constructorID) == MT.functions.ReqPqMulti.self)
    }

    @Test func decodesTheCallInsideAWrapperReadByHand() throws {
        let call = Api.functions.InvokeWithLayer(layer: Api.layer, query: Api.functions.help.GetConfig())
        var reader = TLReader(call.serialized())
        #expect(try reader.readConstructorID() == Api.functions.InvokeWithLayer<Api.functions.help.GetConfig>.constructorID)
        #expect(try reader.readInt32() == 229)
        let inner = try TLFunctionDecoder(Api.functionTypes).decode(from: &reader)
        #expect(inner as? Api.functions.help.GetConfig == Api.functions.help.GetConfig())
    }

    @Test func unknownNumberIsATypedError() {
        var reader = TLReader([0xef, 0xbe, 0xad, 0xde])
        #expect(throws: TLDecodingError(kind: .unknownConstructor(0xdead_beef), offset: 0, expected: "function")) {
            _ = try TLFunctionDecoder(MT.functionTypes).decode(from: &reader)
        }
    }
}
