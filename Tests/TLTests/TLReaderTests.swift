import Testing
import TL

@Suite struct TLReaderTests {
    private func written(_ body: (inout TLWriter) -> Void) -> [UInt8] {
        var writer = TLWriter()
        body(&writer)
        return writer.bytes
    }

    private func decodingError(_ bytes: [UInt8], limits: TLReader.Limits = TLReader.Limits(), inflater: (any TLInflater)? = nil,
                               _ read: (inout TLReader) throws -> Void) -> TLDecodingError? {
        var reader = TLReader(bytes, limits: limits, inflater: inflater)
        do {
            try read(&reader)
            return nil
        } catch let error as TLDecodingError {
            return error
        } catch {
            return nil
        }
    }

    // MARK: Every primitive, both ways

    @Test func integersRoundTrip() throws {
        let bytes = written {
            $0.writeInt32(.min)
            $0.writeInt64(.max)
            $0.writeUInt32(0xdead_beef)
            $0.writeUInt64(42)
        }
        var reader = TLReader(bytes)
        #expect(try reader.readInt32() == .min)
        #expect(try reader.readInt64() == .max)
        #expect(try reader.readUInt32() == 0xdead_beef)
        #expect(try reader.readUInt64() == 42)
        #expect(reader.isAtEnd)
    }

    @Test func doubleRoundTripsBitForBit() throws {
        for value in [0.0, -0.0, 1.5, .pi, .infinity, -.greatestFiniteMagnitude, .leastNonzeroMagnitude] {
            var reader = TLReader(written { $0.writeDouble(value) })
            #expect(try reader.readDouble().bitPattern == value.bitPattern)
        }
        var nanReader = TLReader(written { $0.writeDouble(.nan) })
        #expect(try nanReader.readDouble().isNaN)
    }

    @Test func int128AndInt256RoundTrip() throws {
        let value128 = try #require(TLInt128(bytes: (0..<16).map { UInt8($0 * 3) }))
        let value256 = try #require(TLInt256(bytes: (0..<32).map { UInt8(255 - $0) }))
        var reader = TLReader(written { $0.writeInt128(value128); $0.writeInt256(value256) })
        #expect(try reader.readInt128() == value128)
        #expect(try reader.readInt256() == value256)
        #expect(value128[15] == 45)
        #expect(value256[0] == 255)
        #expect(value256.bytes.count == 32)
    }

    @Test func boolRoundTrips() throws {
        var reader = TLReader(written { $0.writeBool(true); $0.writeBool(false) })
        #expect(try reader.readBool() == true)
        #expect(try reader.readBool() == false)
    }

    @Test(arguments: [0, 1, 2, 3, 4, 253, 254, 255, 256, 1000, 65_536, 300_001])
    func bytesOfEveryLengthFormRoundTrip(length: Int) throws {
        let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let bytes = written { $0.writeBytes(data); $0.writeInt32(7) }
        #expect(bytes.count % 4 == 0)
        var reader = TLReader(bytes)
        #expect(try reader.readBytes() == data)
        #expect(try reader.readInt32() == 7)
        #expect(reader.isAtEnd)
    }

    @Test func stringRoundTripsUnicode() throws {
        let text = "Привет, 世界 👋"
        var reader = TLReader(written { $0.writeString(text); $0.writeString("") })
        #expect(try reader.readString() == text)
        #expect(try reader.readString() == "")
    }

    @Test func invalidUTF8BecomesReplacementCharacters() throws {
        var reader = TLReader([2, 0xff, 0x41, 0])
        #expect(try reader.readString() == "\u{FFFD}A")
    }

    @Test func vectorsRoundTrip() throws {
        let bytes = written {
            [Int32(1), -1].encode(to: &$0)
            [[Int64(5)], []].encode(to: &$0)
            ["a", "bc"].encode(to: &$0)
            [true, false].encode(to: &$0)
            $0.writeBytesVector([[9, 9], []])
            $0.writeBareVector([Int64(3)]) { $0.writeInt64($1) }
        }
        var reader = TLReader(bytes)
        #expect(try [Int32](from: &reader) == [1, -1])
        #expect(try [[Int64]](from: &reader) == [[5], []])
        #expect(try [String](from: &reader) == ["a", "bc"])
        #expect(try [Bool](from: &reader) == [true, false])
        #expect(try reader.readBytesVector() == [[9, 9], []])
        #expect(try reader.readBareVector(minimumElementSize: 8) { try $0.readInt64() } == [3])
        #expect(reader.isAtEnd)
    }

    @Test func rawBytesAndSeek() throws {
        var reader = TLReader([1, 2, 3, 4, 5, 6, 7, 8])
        #expect(try reader.readRawBytes(3) == [1, 2, 3])
        #expect(reader.position == 3)
        reader.seek(to: 4)
        #expect(try reader.readInt32() == 0x0807_0605)
    }

    @Test func rangedReaderReportsOffsetsInTheWholeBuffer() throws {
        let bytes: [UInt8] = [0, 0, 0, 0, 1, 0, 0, 0, 9, 9]
        var reader = TLReader(bytes, range: 4..<10)
        #expect(try reader.readInt32() == 1)
        #expect(throws: TLDecodingError(kind: .truncated(needed: 4, available: 2), offset: 8, expected: "int")) {
            _ = try reader.readInt32()
        }
    }

    @Test func peekDoesNotConsume() throws {
        var reader = TLReader([0x15, 0xc4, 0xb5, 0x1c, 0, 0, 0, 0])
        #expect(try reader.peekConstructorID() == TLBuiltinID.vector)
        #expect(reader.position == 0)
        #expect(try [Int32](from: &reader) == [])
    }

    @Test func decodeWholeValueRejectsTrailingBytes() throws {
        #expect(try Int32(serialized: [1, 0, 0, 0]) == 1)
        #expect(throws: TLDecodingError.self) { try Int32(serialized: [1, 0, 0, 0, 0]) }
    }

    // MARK: Every error path names its offset

    @Test func truncatedPrimitivesReportWhereAndWhat() {
        #expect(decodingError([1, 2, 3]) { _ = try $0.readInt32() }
            == TLDecodingError(kind: .truncated(needed: 4, available: 3), offset: 0, expected: "int"))
        #expect(decodingError([1, 0, 0, 0, 1, 2, 3, 4]) { _ = try $0.readInt32(); _ = try $0.readInt64() }
            == TLDecodingError(kind: .truncated(needed: 8, available: 4), offset: 4, expected: "long"))
        #expect(decodingError([1, 2, 3, 4, 5, 6, 7]) { _ = try $0.readDouble() }
            == TLDecodingError(kind: .truncated(needed: 8, available: 7), offset: 0, expected: "double"))
        #expect(decodingError([UInt8](repeating: 0, count: 15)) { _ = try $0.readInt128() }
            == TLDecodingError(kind: .truncated(needed: 16, available: 15), offset: 0, expected: "int128"))
        #expect(decodingError([UInt8](repeating: 0, count: 31)) { _ = try $0.readInt256() }
            == TLDecodingError(kind: .truncated(needed: 32, available: 31), offset: 0, expected: "int256"))
        #expect(decodingError([]) { _ = try $0.readBytes() }
            == TLDecodingError(kind: .truncated(needed: 1, available: 0), offset: 0, expected: "bytes"))
        #expect(decodingError([254, 1]) { _ = try $0.readString() }
            == TLDecodingError(kind: .truncated(needed: 4, available: 2), offset: 0, expected: "string"))
        #expect(decodingError([1, 2]) { _ = try $0.readRawBytes(3, expected: "auth_key_id") }
            == TLDecodingError(kind: .truncated(needed: 3, available: 2), offset: 0, expected: "auth_key_id"))
    }

    @Test func unknownBoolConstructor() {
        #expect(decodingError([0, 0, 0, 0, 1, 2, 3, 4]) { _ = try $0.readInt32(); _ = try $0.readBool() }
            == TLDecodingError(kind: .unknownConstructor(0x0403_0201), offset: 4, expected: "Bool"))
    }

    @Test func lengthBeyondTheBuffer() {
        #expect(decodingError([8, 1, 2, 3]) { _ = try $0.readBytes() }
            == TLDecodingError(kind: .lengthBeyondBuffer(length: 8, available: 3), offset: 0, expected: "bytes"))
        // The data fits but its padding does not.
        #expect(decodingError([0, 0, 0, 0, 5, 1, 2, 3, 4, 5]) { _ = try $0.readInt32(); _ = try $0.readBytes() }
            == TLDecodingError(kind: .lengthBeyondBuffer(length: 5, available: 5), offset: 4, expected: "bytes"))
        #expect(decodingError([254, 0, 1, 0, 0]) { _ = try $0.readBytes() }
            == TLDecodingError(kind: .lengthBeyondBuffer(length: 256, available: 1), offset: 0, expected: "bytes"))
    }

    @Test func lengthOverTheLimit() throws {
        let limits = TLReader.Limits(maxBytesLength: 4)
        let bytes = [UInt8](repeating: 0, count: 12)
        #expect(decodingError([5] + bytes, limits: limits) { _ = try $0.readString() }
            == TLDecodingError(kind: .lengthOverLimit(length: 5, limit: 4), offset: 0, expected: "string"))
        var reader = TLReader([4, 1, 2, 3, 4, 0, 0, 0], limits: limits)
        #expect(try reader.readBytes() == [1, 2, 3, 4])
    }

    @Test func reservedLengthByte() {
        let error = decodingError([255, 0, 0, 0]) { _ = try $0.readBytes() }
        #expect(error?.offset == 0)
        #expect(error?.expected == "bytes")
        if case .invalidValue = error?.kind {} else { Issue.record("expected invalidValue, got \(String(describing: error))") }
    }

    @Test func nonZeroPadding() {
        #expect(decodingError([0, 0, 0, 0, 1, 0x41, 0, 1]) { _ = try $0.readInt32(); _ = try $0.readString() }
            == TLDecodingError(kind: .nonZeroPadding, offset: 4, expected: "string"))
    }

    @Test func vectorWithTheWrongConstructor() {
        #expect(decodingError([1, 0, 0, 0, 0, 0, 0, 0]) { _ = try [Int32](from: &$0) }
            == TLDecodingError(kind: .unknownConstructor(1), offset: 0, expected: "Vector"))
        #expect(decodingError([1, 0, 0, 0, 0, 0, 0, 0]) { _ = try $0.readVectorHeader() }
            == TLDecodingError(kind: .unknownConstructor(1), offset: 0, expected: "Vector"))
    }

    @Test func vectorCountThatCannotFit() {
        let header: [UInt8] = [0x15, 0xc4, 0xb5, 0x1c]
        // Three longs need 24 bytes; 16 remain.
        #expect(decodingError(header + [3, 0, 0, 0] + [UInt8](repeating: 0, count: 16)) { _ = try [Int64](from: &$0) }
            == TLDecodingError(kind: .vectorCountBeyondBuffer(count: 3, available: 16), offset: 0, expected: "Vector"))
        #expect(decodingError([0, 0, 0, 0] + [0xff, 0xff, 0xff, 0x7f]) { _ = try $0.readInt32(); _ = try $0.readBareVector { try $0.readInt32() } }
            == TLDecodingError(kind: .vectorCountOverLimit(count: Int(Int32.max), limit: 1 << 20), offset: 4, expected: "vector"))
    }

    @Test func negativeOrOverLimitVectorCount() {
        let header: [UInt8] = [0x15, 0xc4, 0xb5, 0x1c]
        #expect(decodingError(header + [0xff, 0xff, 0xff, 0xff]) { _ = try [Int32](from: &$0) }
            == TLDecodingError(kind: .vectorCountOverLimit(count: -1, limit: 1 << 20), offset: 0, expected: "Vector"))
        let limits = TLReader.Limits(maxVectorCount: 2)
        #expect(decodingError(header + [3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0], limits: limits) { _ = try [Int32](from: &$0) }
            == TLDecodingError(kind: .vectorCountOverLimit(count: 3, limit: 2), offset: 0, expected: "Vector"))
    }

    @Test func nestingDepthIsBounded() throws {
        // Vectors of vectors nest through Array's TLDecodable, so use enterObject directly as the
        // generated code does.
        var reader = TLReader([], limits: TLReader.Limits(maxDepth: 2))
        try reader.enterObject()
        try reader.enterObject()
        #expect(throws: TLDecodingError(kind: .nestingTooDeep(limit: 2), offset: 0, expected: "object")) {
            try reader.enterObject()
        }
        reader.leaveObject()
        try reader.enterObject()
    }

    @Test func descriptionsSayWhatWhyAndWhatToDo() {
        let error = TLDecodingError(kind: .unknownConstructor(0xdead_beef), offset: 12, expected: "constructor of InputPeer")
        #expect(error.description.contains("byte 12"))
        #expect(error.description.contains("0xdeadbeef"))
        #expect(error.description.contains("InputPeer"))
        #expect(error.description.contains("regenerate"))
    }

    // MARK: gzip_packed

    private func gzipPacked(_ plain: [UInt8]) -> [UInt8] {
        written { try? $0.writeGzipPacked(serialized: plain, using: ReversingCodec()) }
    }

    @Test func gzipPackedIsInflatedWhereABoxedValueIsExpected() throws {
        let packedVector = gzipPacked([Int64(7), 8].serialized())
        var reader = TLReader(packedVector + gzipPacked(true.serialized()), inflater: ReversingCodec())
        #expect(try [Int64](from: &reader) == [7, 8])
        #expect(try reader.readBool() == true)
        #expect(reader.isAtEnd)
    }

    @Test func gzipPackedWithoutAnInflaterIsAnError() {
        #expect(decodingError(gzipPacked(true.serialized())) { _ = try $0.readBool() }
            == TLDecodingError(kind: .gzipWithoutInflater, offset: 0, expected: "Bool"))
    }

    @Test func failingInflaterIsReported() {
        let limits = TLReader.Limits(maxInflatedLength: 3)
        #expect(decodingError(gzipPacked(true.serialized()), limits: limits, inflater: ReversingCodec()) { _ = try $0.readBool() }
            == TLDecodingError(kind: .inflateFailed(reason: "fake inflater refused"), offset: 0, expected: "Bool"))
    }

    @Test func errorsInsideGzipCountFromTheInflatedBytes() {
        let packed = gzipPacked([0x15, 0xc4, 0xb5, 0x1c, 1, 0, 0, 0, 9, 9])
        #expect(decodingError(packed, inflater: ReversingCodec()) { _ = try [Int32](from: &$0) }
            == TLDecodingError(kind: .vectorCountBeyondBuffer(count: 1, available: 2), offset: 0, expected: "Vector"))
    }
}
