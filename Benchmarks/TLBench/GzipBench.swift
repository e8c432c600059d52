// gzip_packed of the TL payload: MTProto's GzipPacked (libdeflate) against the zlib code it replaced
// (ZlibPacked below, the old GzipPacked kept here only to be measured: level 1, gzip header, an
// 8 KiB probe of big bodies, a z_stream reused between calls as its pool did, and the 64 KiB zeroed
// chunk per inflate appended into a growing array). Times are thread CPU time per call, the best of
// a few rounds that alternate the two implementations (the machine is shared).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CZlib
import MTProto

enum GzipBench {
    struct Mismatch: Error, CustomStringConvertible {
        var description: String
    }

    static func run(_ payload: [UInt8]) throws {
        let limit = 16 << 20
        let zlib = ZlibPacked()
        guard let oldPacked = zlib.pack(payload), let newPacked = GzipPacked.pack(payload) else {
            throw Mismatch(description: "the payload does not shrink")
        }
        // Each side reads the other's archive: the formats are the same.
        guard try zlib.unpack(newPacked, limit: limit) == payload, try GzipPacked.unpack(oldPacked, limit: limit) == payload,
              try zlib.unpack(oldPacked, limit: limit) == payload, try GzipPacked.unpack(newPacked, limit: limit) == payload
        else { throw Mismatch(description: "an unpacked payload differs") }

        var best: [String: Double] = [:]
        func time(_ name: String, _ body: () throws -> Void) rethrows {
            // Calls for about 0.3 s of CPU time; µs per call.
            var calls = 0
            let start = threadCPUSeconds()
            var elapsed = 0.0
            repeat {
                try body()
                calls += 1
                elapsed = threadCPUSeconds() - start
            } while elapsed < 0.3
            best[name] = min(best[name] ?? .infinity, elapsed / Double(calls) * 1e6)
        }
        for _ in 0..<5 {
            time("zlib pack") { consume(zlib.pack(payload)) }
            time("libdeflate pack") { consume(GzipPacked.pack(payload)) }
            try time("zlib unpack") { consume(try zlib.unpack(oldPacked, limit: limit)) }
            try time("libdeflate unpack") { consume(try GzipPacked.unpack(newPacked, limit: limit)) }
        }
        for (name, size) in [("zlib", oldPacked.count), ("libdeflate", newPacked.count)] {
            for operation in ["pack", "unpack"] {
                let micros = best["\(name) \(operation)"] ?? 0
                print("gzip \(name) \(operation) \(String(format: "%.1f", micros)) \(size)")
            }
        }
    }

    static func threadCPUSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

/// The zlib gzip_packed code before libdeflate (Sources/MTProto/Session/GzipPacked.swift and
/// ZlibStream.swift at 2edddc4), one deflate and one inflate stream reused between calls.
final class ZlibPacked {
    struct Failed: Error {
        var status: Int32
    }

    let deflater = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    let inflater = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init() {
        deflater.initialize(to: z_stream())
        inflater.initialize(to: z_stream())
        let size = Int32(MemoryLayout<z_stream>.size)
        let deflateStatus = deflateInit2_(deflater, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), size)
        let inflateStatus = inflateInit2_(inflater, 15 + 32, zlibVersion(), size)
        precondition(deflateStatus == Z_OK && inflateStatus == Z_OK, "zlib cannot set up its streams")
    }

    deinit {
        deflateEnd(deflater)
        inflateEnd(inflater)
        deflater.deinitialize(count: 1)
        deflater.deallocate()
        inflater.deinitialize(count: 1)
        inflater.deallocate()
    }

    func pack(_ object: [UInt8]) -> [UInt8]? {
        let sample = 8 * 1024
        if object.count > 2 * sample {
            guard let probe = deflate(Array(object[0..<sample])), probe.count < sample * 9 / 10 else { return nil }
        }
        guard let archive = deflate(object), archive.count < 1 << 24 else { return nil }
        // gzip_packed#3072cfa1 packed_data:bytes, as WireWriter writes it.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(archive.count + 12)
        bytes += [0xa1, 0xcf, 0x72, 0x30]
        let length = archive.count
        if length < 254 {
            bytes.append(UInt8(length))
        } else {
            bytes += [254, UInt8(truncatingIfNeeded: length), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length >> 16)]
        }
        bytes += archive
        bytes += repeatElement(0, count: (4 - bytes.count % 4) % 4)
        return bytes.count < object.count ? bytes : nil
    }

    func unpack(_ body: [UInt8], limit: Int) throws -> [UInt8] {
        guard body.count >= 8, body[0..<4] == [0xa1, 0xcf, 0x72, 0x30] else { throw Failed(status: Z_DATA_ERROR) }
        var start = 5
        var length = Int(body[4])
        if length == 254 {
            length = Int(body[5]) | Int(body[6]) << 8 | Int(body[7]) << 16
            start = 8
        }
        guard start + length <= body.count else { throw Failed(status: Z_BUF_ERROR) }
        return try inflate(Array(body[start..<(start + length)]), limit: limit)
    }

    func deflate(_ input: [UInt8]) -> [UInt8]? {
        defer { deflateReset(deflater) }
        let stream = deflater
        let bound = Int(deflateBound(stream, uLong(input.count))) + 32
        var output = [UInt8](repeating: 0, count: bound)
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inputBuffer in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                stream.pointee.next_in = inputBuffer.baseAddress
                stream.pointee.avail_in = uInt(inputBuffer.count)
                stream.pointee.next_out = outputBuffer.baseAddress
                stream.pointee.avail_out = uInt(outputBuffer.count)
                return CZlib.deflate(stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { return nil }
        output.removeSubrange(Int(stream.pointee.total_out)...)
        return output
    }

    func inflate(_ archive: [UInt8], limit: Int) throws -> [UInt8] {
        defer { inflateReset(inflater) }
        let stream = inflater
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = archive
        var status: Int32 = Z_OK
        var failure: Failed?
        input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.pointee.next_in = inputBuffer.baseAddress
            stream.pointee.avail_in = uInt(inputBuffer.count)
            while status == Z_OK {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { chunkBuffer in
                    stream.pointee.next_out = chunkBuffer.baseAddress
                    stream.pointee.avail_out = uInt(chunkBuffer.count)
                    status = CZlib.inflate(stream, Z_NO_FLUSH)
                    return chunkBuffer.count - Int(stream.pointee.avail_out)
                }
                if status != Z_OK && status != Z_STREAM_END {
                    failure = Failed(status: status)
                    return
                }
                guard output.count + produced <= limit else {
                    failure = Failed(status: Z_BUF_ERROR)
                    return
                }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_OK && produced == 0 && stream.pointee.avail_in == 0 {
                    failure = Failed(status: Z_BUF_ERROR)
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }
}
