import MTProtoCrypto
import Testing

@Suite struct HexTests {
    @Test func decodesEitherCaseAndEncodesLowerCase() {
        #expect(Hex.decode("00ff7Fa1") == [0x00, 0xff, 0x7f, 0xa1])
        #expect(Hex.decode("") == [])
        #expect(Hex.encode([0x00, 0xff, 0x7f, 0xa1]) == "00ff7fa1")
        let bytes = (0...255).map(UInt8.init)
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
    }

    @Test(arguments: ["0", "abc", "0g", "zz", " 00", "00\n", "é0"])
    func malformedTextIsRefusedNeverTruncated(text: String) {
        #expect(Hex.decode(text) == nil)
    }
}
