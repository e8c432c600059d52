import Testing
@testable import MTProto

@Suite struct DeflateCompressorTests {
    @Test func aTakenCompressorIsNobodyElses() throws {
        let first = try #require(DeflateCompressor.take())
        let second = try #require(DeflateCompressor.take())
        #expect(first !== second)
        #expect(first.pointer != second.pointer)
        first.giveBack()
        second.giveBack()
    }

    @Test func concurrentPacksEachGetTheirOwnCompressor() async throws {
        let bodies = (0..<64).map { index in
            (0..<20_000).map { UInt8(truncatingIfNeeded: ($0 / 7) &* (index + 1)) }
        }
        let packed = await withTaskGroup(of: (Int, [UInt8]?).self) { group in
            for (index, body) in bodies.enumerated() {
                group.addTask { (index, GzipPacked.pack(body)) }
            }
            var results = [[UInt8]?](repeating: nil, count: bodies.count)
            for await (index, archive) in group { results[index] = archive }
            return results
        }
        for (index, archive) in packed.enumerated() {
            let archive = try #require(archive)
            #expect(try GzipPacked.unpack(archive, limit: 1 << 20) == bodies[index])
        }
    }
}
