import Testing
@testable import MTProto

@Suite struct GzipPackedTests {
    @Test func packsCompressibleBodiesAndUnpacksThemBack() throws {
        let body = Fixtures.request(0x1234_5678) + [UInt8](repeating: 0x41, count: 4096)
        let packed = try #require(GzipPacked.pack(body))
        #expect(WireConstructor.of(packed) == WireConstructor.gzipPacked)
        #expect(packed.count < body.count)
        #expect(try GzipPacked.unpack(packed, limit: 1 << 20) == body)
    }

    @Test func leavesIncompressibleBodiesAlone() {
        var entropy = SeededEntropy(seed: 3)
        #expect(GzipPacked.pack(entropy.bytes(600)) == nil)
        #expect(GzipPacked.pack(entropy.bytes(100_000)) == nil, "judged by its first 8 KiB")
        let compressibleTail = entropy.bytes(100) + [UInt8](repeating: 7, count: 100_000)
        #expect(GzipPacked.pack(compressibleTail) != nil)
    }

    @Test func aZipBombStopsAtTheLimit() throws {
        let bomb = try #require(GzipPacked.pack([UInt8](repeating: 0, count: 8 << 20)))
        #expect(bomb.count < 64 * 1024)
        #expect(throws: SessionError.gzip(.outputTooLarge(limit: 1 << 20))) {
            try GzipPacked.unpack(bomb, limit: 1 << 20)
        }
    }

    @Test func corruptAndTruncatedStreamsAreTypedErrors() throws {
        var writer = WireWriter()
        writer.write(WireConstructor.gzipPacked)
        writer.writeBytes([UInt8](repeating: 0x55, count: 40))
        #expect(throws: SessionError.self) { try GzipPacked.unpack(writer.bytes, limit: 1 << 20) }
        do {
            _ = try GzipPacked.unpack(writer.bytes, limit: 1 << 20)
        } catch {
            guard case .gzip(.corrupt) = error else { Issue.record("expected a corrupt-stream error, got \(error)"); return }
        }

        let archive = try #require(GzipPacked.deflate([UInt8](repeating: 7, count: 5000)))
        #expect(throws: GzipPacked.Failure.truncated) { try GzipPacked.inflate(Array(archive.prefix(archive.count / 2)), limit: 1 << 20) }
    }

    @Test func theTLHookInflatesWithTheSameBound() throws {
        let codec = ZlibGzip()
        let archive = try codec.deflate([UInt8](repeating: 1, count: 10_000))
        #expect(try codec.inflate(archive, maxOutputCount: 10_000).count == 10_000)
        #expect(throws: GzipPacked.Failure.outputTooLarge(limit: 9_999)) { try codec.inflate(archive, maxOutputCount: 9_999) }
    }
}
