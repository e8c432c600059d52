import Testing
import TL

@Suite struct TLWriterTests {
    @Test func integersAreLittleEndian() {
        var writer = TLWriter()
        writer.writeInt32(-2)
        writer.writeInt64(0x0102_0304_0506_0708)
        writer.writeConstructorID(0x1cb5_c415)
        #expect(writer.bytes == [0xfe, 0xff, 0xff, 0xff, 8, 7, 6, 5, 4, 3, 2, 1, 0x15, 0xc4, 0xb5, 0x1c])
    }

    @Test func doubleIsIEEE754LittleEndian() {
        var writer = TLWriter()
        writer.writeDouble(1.5)
        #expect(writer.bytes == [0, 0, 0, 0, 0, 0, 0xf8, 0x3f])
    }

    @Test func boolUsesItsConstructors() {
        var writer = TLWriter()
        writer.writeBool(true)
        writer.writeBool(false)
        #expect(writer.bytes == [0xb5, 0x75, 0x72, 0x99, 0x37, 0x97, 0x79, 0xbc])
    }

    @Test func shortBytesArePaddedToFour() {
        var writer = TLWriter()
        writer.writeBytes([])
        #expect(writer.bytes == [0, 0, 0, 0])
        writer = TLWriter()
        writer.writeBytes([0xaa, 0xbb, 0xcc])
        #expect(writer.bytes == [3, 0xaa, 0xbb, 0xcc])
        writer = TLWriter()
        writer.writeString("abcd")
        #expect(writer.bytes == [4, 0x61, 0x62, 0x63, 0x64, 0, 0, 0])
    }

    @Test func lengthTwoHundredFiftyThreeStillUsesTheShortForm() {
        var writer = TLWriter()
        writer.writeBytes([UInt8](repeating: 7, count: 253))
        #expect(writer.bytes.count == 256)
        #expect(writer.bytes.first == 253)
    }

    @Test func lengthTwoHundredFiftyFourUsesTheLongForm() {
        var writer = TLWriter()
        writer.writeBytes([UInt8](repeating: 7, count: 254))
        #expect(Array(writer.bytes.prefix(4)) == [254, 254, 0, 0])
        #expect(writer.bytes.count == 4 + 256)
        #expect(Array(writer.bytes.suffix(2)) == [0, 0])
    }

    @Test func longFormCarriesAThreeByteLength() {
        var writer = TLWriter()
        writer.writeBytes([UInt8](repeating: 1, count: 0x01_0203))
        #expect(Array(writer.bytes.prefix(4)) == [254, 0x03, 0x02, 0x01])
        #expect(writer.bytes.count % 4 == 0)
    }

    @Test func stringIsUTF8() {
        var writer = TLWriter()
        writer.writeString("é")
        #expect(writer.bytes == [2, 0xc3, 0xa9, 0])
    }

    @Test func int128AndInt256KeepWireOrder() throws {
        let bytes16 = (0..<16).map { UInt8($0) }
        let bytes32 = (0..<32).map { UInt8(100 + $0) }
        let value128 = try #require(TLInt128(bytes: bytes16))
        let value256 = try #require(TLInt256(bytes: bytes32))
        var writer = TLWriter()
        writer.writeInt128(value128)
        writer.writeInt256(value256)
        #expect(writer.bytes == bytes16 + bytes32)
    }

    @Test func vectorsCarryTheirConstructorOnlyWhenBoxed() {
        var writer = TLWriter()
        [Int64(1), 2].encode(to: &writer)
        #expect(writer.bytes == [0x15, 0xc4, 0xb5, 0x1c, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])
        writer = TLWriter()
        writer.writeBareVector([Int32(5)]) { $0.writeInt32($1) }
        #expect(writer.bytes == [1, 0, 0, 0, 5, 0, 0, 0])
        writer = TLWriter()
        writer.writeBytesVector([[1], []])
        #expect(writer.bytes == [0x15, 0xc4, 0xb5, 0x1c, 2, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    }

    @Test func gzipPackedWrapsTheDeflatedSerialization() throws {
        var writer = TLWriter()
        try writer.writeGzipPacked(Int32(0x0102_0304), using: ReversingCodec())
        #expect(writer.bytes == [0xa1, 0xcf, 0x72, 0x30, 4, 1, 2, 3, 4, 0, 0, 0])
    }
}

/// A stand-in for zlib: "compresses" by reversing, so tests can predict the packed bytes exactly.
struct ReversingCodec: TLInflater, TLDeflater {
    func deflate(_ plain: [UInt8]) throws -> [UInt8] { plain.reversed() }

    func inflate(_ compressed: [UInt8], maxOutputCount: Int) throws -> [UInt8] {
        guard compressed.count <= maxOutputCount else { throw FakeInflateError() }
        return compressed.reversed()
    }
}

struct FakeInflateError: Error, CustomStringConvertible {
    var description: String { "fake inflater refused" }
}
