import CZlib
import TL

/// The `gzip_packed` codec TL's reader and writer call through their hooks (libdeflate, with zlib
/// for what libdeflate refuses: GzipPacked), so generated API types can read gzip'd fields with the
/// same bounded inflation as the session. (The name predates libdeflate.)
public struct ZlibGzip: TLInflater, TLDeflater {
    public init() {}

    public func inflate(_ compressed: [UInt8], maxOutputCount: Int) throws -> [UInt8] {
        try GzipPacked.inflate(compressed, limit: maxOutputCount)
    }

    public func deflate(_ plain: [UInt8]) throws -> [UInt8] {
        // The only way deflating fails: no memory for a compressor.
        guard let archive = GzipPacked.deflate(plain) else { throw GzipPacked.Failure.corrupt(zlibCode: Z_MEM_ERROR) }
        return archive
    }
}
