import CLibdeflate
import Foundation
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

    // MARK: libdeflate: the trailer's size, lies, odd streams

    /// Real TL: the messages.* objects Telethon serialized for the TL vectors (channelMessages,
    /// messagesSlice, messages: users, chats, entities, media), one after the other.
    static func realHistory() throws -> [UInt8] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Interop/tl-vectors.jsonl")
        var bytes: [UInt8] = []
        for line in try String(contentsOf: url, encoding: .utf8).split(separator: "\n") {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard let name = object["name"] as? String, name.hasPrefix("messages.") else { continue }
            let hex = Array(try #require(object["hex"] as? String).utf8)
            for index in stride(from: 0, to: hex.count - 1, by: 2) {
                bytes.append(try #require(UInt8(String(decoding: hex[index...index + 1], as: UTF8.self), radix: 16)))
            }
        }
        return bytes
    }

    /// `archive` with its trailer's ISIZE replaced by `size`.
    static func withSize(_ archive: [UInt8], _ size: UInt32) -> [UInt8] {
        var lying = archive
        for index in 0..<4 { lying[lying.count - 4 + index] = UInt8(truncatingIfNeeded: size >> (8 * UInt32(index))) }
        return lying
    }

    static func size(of archive: [UInt8]) -> Int {
        (0..<4).reduce(0) { $0 | Int(archive[archive.count - 4 + $1]) << (8 * $1) }
    }

    @Test func realAndRandomPayloadsRoundTrip() throws {
        let history = try Self.realHistory()
        #expect(history.count > 20_000)
        let packed = try #require(GzipPacked.pack(history))
        #expect(packed.count < history.count * 2 / 3, "TL shrinks at level 1")
        #expect(try GzipPacked.unpack(packed, limit: history.count) == history)

        var entropy = SeededEntropy(seed: 11)
        for count in [0, 1, 253, 254, 4096, 70_000, 300_000] {
            let random = entropy.bytes(count)
            let archive = try #require(GzipPacked.deflate(random))
            #expect(Self.size(of: archive) == count, "the trailer holds the size")
            #expect(try GzipPacked.inflate(archive, limit: count) == random, "\(count) bytes")
        }
    }

    @Test func libdeflateIsLoadedOnThisMachine() {
        // Debian's libdeflate0 is on every machine of this kind; without it everything still works
        // on zlib (below), only slower, and the benchmarks' figures would not be what they say.
        #expect(tgsm_libdeflate_available() == 1, "libdeflate.so.0 was not found: gzip_packed runs on zlib (apt-get install libdeflate0)")
    }

    @Test func withoutLibdeflateZlibPacksAndUnpacksTheSameStreams() throws {
        let history = try Self.realHistory()
        var entropy = SeededEntropy(seed: 12)
        for payload in [history, [], [0x41], entropy.bytes(5000)] {
            let byZlib = try #require(GzipPacked.deflateWithZlib(payload))
            #expect(Self.size(of: byZlib) == payload.count)
            #expect(try GzipPacked.inflate(byZlib, limit: payload.count) == payload, "zlib's archive, libdeflate's inflate")
            #expect(try GzipPacked.inflateWithZlib(byZlib, limit: payload.count) == payload)
            let byLibdeflate = try #require(GzipPacked.deflate(payload))
            #expect(try GzipPacked.inflateWithZlib(byLibdeflate, limit: payload.count) == payload, "libdeflate's archive, zlib's inflate")
        }
        #expect(throws: GzipPacked.Failure.outputTooLarge(limit: 100)) {
            try GzipPacked.inflateWithZlib(try #require(GzipPacked.deflateWithZlib(history)), limit: 100)
        }
    }

    @Test func aTrailerOverTheLimitIsRefusedBeforeInflating() throws {
        // A gzip header, 2,000 bytes that are no deflate stream at all, a trailer claiming 1 MiB + 1:
        // inflating would find the garbage; refusing on the trailer alone says too large.
        let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]
        let fake = header + [UInt8](repeating: 0xff, count: 2000) + [0, 0, 0, 0] + [1, 0, 0x10, 0]
        #expect(throws: GzipPacked.Failure.outputTooLarge(limit: 1 << 20)) { try GzipPacked.inflate(fake, limit: 1 << 20) }
        // The same bytes under a limit the trailer fits: now they are inflated, and found corrupt.
        #expect(throws: GzipPacked.Failure.corrupt(zlibCode: -3)) { try GzipPacked.inflate(fake, limit: 2 << 20) }
        // The limit is inclusive.
        let archive = try #require(GzipPacked.deflate([UInt8](repeating: 9, count: 50_000)))
        #expect(try GzipPacked.inflate(archive, limit: 50_000).count == 50_000)
        #expect(throws: GzipPacked.Failure.outputTooLarge(limit: 49_999)) { try GzipPacked.inflate(archive, limit: 49_999) }
    }

    @Test func aLyingTrailerIsATypedError() throws {
        let plain = try Self.realHistory()
        let archive = try #require(GzipPacked.deflate(plain))
        let limit = 16 << 20
        for size in [0, 1, plain.count - 1, plain.count + 1, plain.count * 2] {
            #expect(throws: GzipPacked.Failure.corrupt(zlibCode: -3), "ISIZE \(size) for \(plain.count)") {
                try GzipPacked.inflate(Self.withSize(archive, UInt32(size)), limit: limit)
            }
        }
        // More than any deflate stream of this length could produce (1032:1), yet under the limit:
        // nothing is allocated for it, and zlib finds the mismatch.
        #expect(throws: GzipPacked.Failure.corrupt(zlibCode: -3)) {
            try GzipPacked.inflate(Self.withSize(archive, UInt32(archive.count * 1100)), limit: Int(UInt32.max))
        }
        // Too small for what the stream holds, which is itself over the limit: never more than the limit.
        let bomb = try #require(GzipPacked.deflate([UInt8](repeating: 0, count: 4 << 20)))
        #expect(throws: GzipPacked.Failure.outputTooLarge(limit: 1 << 20)) {
            try GzipPacked.inflate(Self.withSize(bomb, 1000), limit: 1 << 20)
        }
    }

    /// A cut stream is truncated, except when the four bytes it now ends with read as a size over
    /// the limit: that is refused unread, as a zip bomb would be (the trailer cannot be told from
    /// deflate data without inflating).
    @Test func everyTruncationIsATypedError() throws {
        let archive = try #require(GzipPacked.deflate(try Self.realHistory()))
        let limit = 16 << 20
        var refusedUnread = 0
        for length in 0..<archive.count {
            let cut = Array(archive.prefix(length))
            do {
                _ = try GzipPacked.inflate(cut, limit: limit)
                Issue.record("\(length) of \(archive.count) bytes inflated")
            } catch .truncated {
            } catch .outputTooLarge where Self.size(of: cut) > limit {
                refusedUnread += 1
            } catch {
                Issue.record("\(length) of \(archive.count) bytes: \(error)")
            }
        }
        #expect(refusedUnread < archive.count / 100)
    }

    @Test func garbageAndEmptyInputAreTypedErrors() throws {
        #expect(throws: GzipPacked.Failure.truncated) { try GzipPacked.inflate([], limit: 1 << 20) }
        var empty = WireWriter()
        empty.write(WireConstructor.gzipPacked)
        empty.writeBytes([UInt8]())
        #expect(throws: SessionError.gzip(.truncated)) { try GzipPacked.unpack(empty.bytes, limit: 1 << 20) }

        let valid = try #require(GzipPacked.deflate([UInt8](repeating: 3, count: 3000)))
        var entropy = SeededEntropy(seed: 5)
        for round in 0..<300 {
            let count = entropy.int(in: 0...600)
            var bytes = entropy.bytes(count)
            // Half of the rounds behind a real gzip header, so libdeflate gets to read the garbage.
            if round % 2 == 1 { bytes = Array(valid.prefix(10)) + bytes }
            // A random bit flipped in a valid archive, every third round.
            if round % 3 == 0 {
                bytes = valid
                let bit = entropy.int(in: 0...(bytes.count * 8 - 1))
                bytes[bit / 8] ^= 1 << UInt8(bit % 8)
            }
            do {
                let output = try GzipPacked.inflate(bytes, limit: 1 << 20)
                #expect(output.count <= 1 << 20)
            } catch {
                // Any typed failure will do; reaching here without a crash is the point.
            }
        }
    }

    @Test func concatenatedStreamsAndTrailingBytesAreRefused() throws {
        let first = try #require(GzipPacked.deflate(Array("first".utf8)))
        let second = try #require(GzipPacked.deflate(Array("second member".utf8)))
        #expect(throws: GzipPacked.Failure.corrupt(zlibCode: -3)) { try GzipPacked.inflate(first + second, limit: 1 << 20) }
        #expect(throws: GzipPacked.Failure.corrupt(zlibCode: -3)) { try GzipPacked.inflate(first + [0, 0, 0, 0], limit: 1 << 20) }
        #expect(throws: GzipPacked.Failure.corrupt(zlibCode: -3)) { try GzipPacked.inflate(first + [0], limit: 1 << 20) }
    }

    @Test func gzipHeaderFieldsAndZlibHeadersAreRead() throws {
        let plain = Array("gzip_packed, with a file name in its header".utf8)
        let archive = try #require(GzipPacked.deflate(plain))
        // FNAME (flag 8): a zero-terminated name after the 10-byte header.
        var named = archive
        named[3] |= 8
        named.insert(contentsOf: Array("history.tl".utf8) + [0], at: 10)
        #expect(try GzipPacked.inflate(named, limit: 1 << 20) == plain)

        // A zlib stream (header 78 01, one stored block, Adler-32): what a lax peer might send.
        var a: UInt32 = 1
        var b: UInt32 = 0
        for byte in plain {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        let adler = b << 16 | a
        let length = UInt16(plain.count)
        let zlib: [UInt8] = [0x78, 0x01, 0x01, UInt8(length & 0xff), UInt8(length >> 8), UInt8(~length & 0xff), UInt8(~length >> 8)]
            + plain + [UInt8(adler >> 24), UInt8(truncatingIfNeeded: adler >> 16), UInt8(truncatingIfNeeded: adler >> 8), UInt8(truncatingIfNeeded: adler)]
        #expect(try GzipPacked.inflate(zlib, limit: 1 << 20) == plain)
        #expect(throws: GzipPacked.Failure.outputTooLarge(limit: 10)) { try GzipPacked.inflate(zlib, limit: 10) }
    }
}
