/// Inflates the payload of a `gzip_packed` object.
///
/// TL itself has no dependencies; the MTProto layer supplies a zlib-backed implementation and
/// tests supply fakes. Implementations must stop (and throw) once the output would exceed
/// `maxOutputCount`, so a small "zip bomb" cannot make the reader allocate without bound.
public protocol TLInflater: Sendable {
    func inflate(_ compressed: [UInt8], maxOutputCount: Int) throws -> [UInt8]
}

/// Compresses the serialization of an object into the gzip stream `gzip_packed` carries.
public protocol TLDeflater: Sendable {
    func deflate(_ plain: [UInt8]) throws -> [UInt8]
}
