import CLibdeflate
import CZlib

/// gzip_packed#3072cfa1 packed_data:string: a serialized object replaced by its gzip archive.
/// Inflating is bounded: a few KiB of hostile input can claim gigabytes, so an archive whose gzip
/// trailer announces more than `limit` bytes is refused before anything is inflated, and no path
/// ever produces more than `limit` bytes.
///
/// libdeflate does the work (whole-buffer deflate and inflate: on a 100-message history, level 1
/// packs about 4x faster than zlib's level 1 into a slightly smaller archive, and unpacks about 2x
/// faster; Benchmarks/TLBench's gzip rows). zlib re-reads what libdeflate refused or cannot take
/// (a zlib header instead of gzip's), streaming and bounded, so the errors say what went wrong, and
/// does all the work on a machine without libdeflate (it is loaded at run time: CLibdeflate).
public enum GzipPacked {
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        case outputTooLarge(limit: Int)
        /// `zlibCode`: zlib's status when it read the stream (Z_DATA_ERROR, -3, for bad data, a
        /// checksum or size that does not match, or bytes after the end of the gzip stream).
        case corrupt(zlibCode: Int32)
        case truncated

        public var description: String {
            switch self {
            case .outputTooLarge(let limit):
                "gzip_packed inflates past \(limit) bytes; the message was dropped as a likely zip bomb (raise SessionConfiguration.maxInflatedBytes if such payloads are legitimate)"
            case .corrupt(let code):
                "gzip_packed data is not a valid gzip stream (zlib status \(code)); the message was dropped"
            case .truncated:
                "gzip_packed data ends before the gzip stream does; the message was dropped"
            }
        }
    }

    /// Serialized `gzip_packed` around `object`, or nil when compressing would not make it smaller.
    public static func pack(_ object: [UInt8]) -> [UInt8]? {
        // Large bodies are often incompressible (file parts, media): judge a sample first so a
        // wasted attempt costs 8 KiB of deflate, not the whole body.
        let sample = 8 * 1024
        if object.count > 2 * sample {
            guard let probe = deflate(Array(object[0..<sample])), probe.count < sample * 9 / 10 else { return nil }
        }
        // TL bytes stop at 16 MiB; an archive that large travels uncompressed instead.
        guard let archive = deflate(object), archive.count < 1 << 24 else { return nil }
        var writer = WireWriter(capacity: archive.count + 12)
        writer.write(WireConstructor.gzipPacked)
        writer.writeBytes(archive)
        return writer.bytes.count < object.count ? writer.bytes : nil
    }

    /// The object inside a serialized `gzip_packed` (constructor included), at most `limit` bytes.
    public static func unpack(_ body: [UInt8], limit: Int) throws(SessionError) -> [UInt8] {
        var reader = WireReader(body)
        do {
            guard try reader.readUInt32() == WireConstructor.gzipPacked else {
                throw SessionError.malformedMessage(reason: "not a gzip_packed object")
            }
            let archive = try reader.readBytes()
            do {
                return try inflate(archive, limit: limit)
            } catch {
                throw SessionError.gzip(error)
            }
        } catch let error as WireError {
            throw SessionError.malformedMessage(reason: "gzip_packed: \(error)")
        } catch let error as SessionError {
            throw error
        } catch {
            throw SessionError.malformedMessage(reason: "gzip_packed")
        }
    }

    /// A gzip archive of `input` (level 1: most bodies tried are incompressible and the attempt is
    /// wasted, so it must be cheap; TL's repetitive text still shrinks well), or nil when libdeflate
    /// cannot allocate its compressor.
    static func deflate(_ input: [UInt8]) -> [UInt8]? {
        guard let compressor = DeflateCompressor.take() else { return deflateWithZlib(input) }
        defer { compressor.giveBack() }
        let bound = tgsm_libdeflate_gzip_compress_bound(compressor.pointer, input.count)
        let archive = input.withUnsafeBytes { source in
            [UInt8](unsafeUninitializedCapacity: bound) { output, initialized in
                initialized = tgsm_libdeflate_gzip_compress(compressor.pointer, source.baseAddress, source.count, output.baseAddress, bound)
            }
        }
        // 0: the archive did not fit in its bound, which libdeflate promises cannot happen.
        return archive.isEmpty ? nil : archive
    }

    /// `deflate` where libdeflate is missing: zlib, level 1, gzip header, in one call.
    static func deflateWithZlib(_ input: [UInt8]) -> [UInt8]? {
        // On the heap: zlib keeps the stream's address and checks it on every call.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        // windowBits 15 + 16: a gzip header and trailer.
        guard deflateInit2_(stream, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return nil
        }
        defer { deflateEnd(stream) }
        let bound = Int(deflateBound(stream, uLong(input.count)))
        var input = input
        let archive = input.withUnsafeMutableBufferPointer { source in
            [UInt8](unsafeUninitializedCapacity: bound) { output, initialized in
                stream.pointee.next_in = source.baseAddress
                stream.pointee.avail_in = uInt(source.count)
                stream.pointee.next_out = output.baseAddress
                stream.pointee.avail_out = uInt(output.count)
                initialized = CZlib.deflate(stream, Z_FINISH) == Z_STREAM_END ? Int(stream.pointee.total_out) : 0
            }
        }
        return archive.isEmpty ? nil : archive
    }

    /// The bytes `archive` (one gzip stream, nothing after it) inflates to, at most `limit` of them.
    ///
    /// The gzip trailer's ISIZE (the last 4 bytes: the output's size mod 2^32) says how much to
    /// allocate; libdeflate then inflates in one call into exactly that, and checks the CRC-32 and
    /// ISIZE against what it produced. A trailer over `limit` is refused before any inflating, when
    /// the stream is long enough to hold that much (deflate expands at most 1032:1); a trailer no
    /// stream of this length could honour, or any stream libdeflate refuses, is re-read by zlib
    /// (bounded by `limit`) to tell a truncated stream from a corrupt one.
    static func inflate(_ archive: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        let count = archive.count
        // 10 bytes of header, at least 2 of deflate, 8 of trailer; 1f 8b: the gzip magic.
        guard count >= 20, archive[0] == 0x1f, archive[1] == 0x8b else { return try inflateWithZlib(archive, limit: limit) }
        let size = Int(archive[count - 4]) | Int(archive[count - 3]) << 8 | Int(archive[count - 2]) << 16 | Int(archive[count - 1]) << 24
        guard size <= (count - 10) * 1032 else { return try inflateWithZlib(archive, limit: limit) }
        guard size <= limit else { throw .outputTooLarge(limit: limit) }
        // Nil without libdeflate (or out of memory): zlib does it.
        guard let decompressor = tgsm_libdeflate_alloc_decompressor() else { return try inflateWithZlib(archive, limit: limit) }
        defer { tgsm_libdeflate_free_decompressor(decompressor) }
        var status = TGSM_LIBDEFLATE_SUCCESS
        var consumed = 0
        let output = archive.withUnsafeBytes { input in
            // Capacity 1 at least, so the buffer has an address even for an empty object.
            [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, initialized in
                var produced = 0
                status = tgsm_libdeflate_gzip_decompress_ex(decompressor, input.baseAddress, input.count, buffer.baseAddress, size, &consumed, &produced)
                initialized = status == TGSM_LIBDEFLATE_SUCCESS ? min(produced, size) : 0
            }
        }
        // Failed, stopped before the end of the data (a second gzip member, trailing bytes), or
        // produced other than the trailer's size (libdeflate checks it; this is belt and braces).
        guard status == TGSM_LIBDEFLATE_SUCCESS, consumed == count, output.count == size else {
            return try inflateWithZlib(archive, limit: limit)
        }
        return output
    }

    /// zlib's streaming inflate, for zlib-headed streams (accepted because peers are lax about which
    /// header they send) and for saying why libdeflate refused a stream. Never produces more than
    /// `limit` bytes; bytes after the end of the stream are refused as corrupt, as libdeflate does.
    static func inflateWithZlib(_ archive: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        // windowBits 15 + 32: a gzip or a zlib header.
        guard inflateInit2_(stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt(zlibCode: Z_MEM_ERROR)
        }
        defer { inflateEnd(stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        var input = archive
        var status: Int32 = Z_OK
        var failure: Failure?
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
                    failure = status == Z_BUF_ERROR ? .truncated : .corrupt(zlibCode: status)
                    return
                }
                guard output.count + produced <= limit else {
                    failure = .outputTooLarge(limit: limit)
                    return
                }
                output.append(contentsOf: chunk[0..<produced])
                if status == Z_STREAM_END && stream.pointee.avail_in != 0 {
                    failure = .corrupt(zlibCode: Z_DATA_ERROR)
                    return
                }
                if status == Z_OK && produced == 0 && stream.pointee.avail_in == 0 {
                    failure = .truncated
                    return
                }
            }
        }
        if let failure { throw failure }
        return output
    }
}
