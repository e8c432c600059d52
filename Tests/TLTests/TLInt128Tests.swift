import Testing
import TL

@Suite struct TLInt128Tests {
    @Test func bytesRoundTripAndIndexInWireOrder() throws {
        let raw = (0..<16).map { UInt8($0 + 1) }
        let value = try #require(TLInt128(bytes: raw))
        #expect(value.bytes == raw)
        #expect((0..<16).map { value[$0] } == raw)
        #expect(value.low == 0x0807_0605_0403_0201)
    }

    @Test func wrongLengthIsRefused() {
        #expect(TLInt128(bytes: [UInt8](repeating: 0, count: 15)) == nil)
        #expect(TLInt256(bytes: [UInt8](repeating: 0, count: 33)) == nil)
    }

    @Test func int256SplitsIntoHalves() throws {
        let raw = (0..<32).map { UInt8($0) }
        let value = try #require(TLInt256(bytes: raw))
        #expect(value.first.bytes == Array(raw[0..<16]))
        #expect(value.second.bytes == Array(raw[16..<32]))
        #expect(value[31] == 31)
        #expect(value.description == raw.map { hexByte($0) }.joined())
    }
}

private func hexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return "\(digits[Int(byte >> 4)])\(digits[Int(byte & 0xf)])"
}
