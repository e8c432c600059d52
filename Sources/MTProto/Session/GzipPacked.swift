import CZlib

/// gzip_packed#3072cfa1 packed_data:string: a serialized object replaced by its gzip archive.
/// Inflating is bounded: a few KiB of hostile input can claim gigabytes, so output past `limit`
/// stops the stream with a typed error instead of growing memory.
public enum GzipPacked {
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        case outputTooLarge(limit: Int)
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

    /// The object inside a serialized `gzip_packed` (constructor included).
    static func unpack(_ body: [UInt8], limit: Int) throws(SessionError) -> [UInt8] {
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

    static func deflate(_ input: [UInt8]) -> [UInt8]? {
        guard let deflater = ZlibStream.take(.deflate) else { return nil }
        defer { deflater.giveBack() }
        let stream = deflater.stream
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

    static func inflate(_ archive: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        guard let inflater = ZlibStream.take(.inflate) else { throw .corrupt(zlibCode: Z_MEM_ERROR) }
        defer { inflater.giveBack() }
        let stream = inflater.stream
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
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
