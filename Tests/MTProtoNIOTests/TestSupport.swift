import MTProtoCrypto
import NIOCore
import Testing

@testable import MTProtoNIO

/// Hands out the given bytes in order, then zeros: padding lengths and bytes become exact test inputs.
struct ScriptedEntropy: EntropySource {
    private var script: [UInt8]
    private var position = 0

    init(_ script: [UInt8]) { self.script = script }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in 0..<buffer.count {
            buffer[index] = position < script.count ? script[position] : 0
            position += 1
        }
    }
}

/// A payload whose bytes depend on its length and a seed, so frames of equal size still differ.
func payload(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
    let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &* 7 &+ 1) }
    return ByteBufferAllocator().buffer(bytes: bytes)
}

func bytes(_ array: [UInt8]) -> ByteBuffer {
    ByteBufferAllocator().buffer(bytes: array)
}

func concatenate(_ buffers: [ByteBuffer]) -> ByteBuffer {
    var result = ByteBufferAllocator().buffer(capacity: buffers.reduce(0) { $0 + $1.readableBytes })
    for var buffer in buffers { result.writeBuffer(&buffer) }
    return result
}

/// Decodes every frame from `stream` delivered as the given chunks, as a socket would: decode after
/// each chunk until the framing asks for more. Fails if bytes are left over.
func decodeAll<F: MTProtoFraming>(
    _ framing: F,
    chunks: [ByteBuffer],
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> [TransportFrame] {
    var framing = framing
    var cumulation = ByteBufferAllocator().buffer(capacity: 0)
    var frames: [TransportFrame] = []
    for var chunk in chunks {
        cumulation.writeBuffer(&chunk)
        while let frame = try framing.decode(from: &cumulation) {
            frames.append(frame)
        }
    }
    #expect(cumulation.readableBytes == 0, "bytes left undecoded", sourceLocation: sourceLocation)
    return frames
}

/// The stream cut in two at `index`.
func split(_ stream: ByteBuffer, at index: Int) -> [ByteBuffer] {
    [stream.getSlice(at: stream.readerIndex, length: index) ?? ByteBuffer(),
     stream.getSlice(at: stream.readerIndex + index, length: stream.readableBytes - index) ?? ByteBuffer()]
}

/// The stream cut into pieces of `size` bytes (the last may be shorter).
func chunked(_ stream: ByteBuffer, size: Int) -> [ByteBuffer] {
    var pieces: [ByteBuffer] = []
    var offset = 0
    while offset < stream.readableBytes {
        let length = min(size, stream.readableBytes - offset)
        if let piece = stream.getSlice(at: stream.readerIndex + offset, length: length) { pieces.append(piece) }
        offset += length
    }
    return pieces
}

/// Checks that `frames`, encoded in order by `encoder`, come out of `decoder` identical whether the
/// stream arrives whole, cut at every byte boundary, or in small chunks.
func expectStreamDecodes<E: MTProtoFraming, D: MTProtoFraming>(
    _ frames: [TransportFrame],
    encoder: E,
    decoder: D,
    expected: [TransportFrame]? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    var encoder = encoder
    var stream = concatenate(frames.map { encoder.encode($0) })
    // A client's stream starts with the tag, which the server's detector consumes, not its framing.
    if encoder.role == .client { stream.moveReaderIndex(forwardBy: encoder.kind.tag.count) }
    let expected = expected ?? frames

    #expect(try decodeAll(decoder, chunks: [stream]) == expected, "coalesced", sourceLocation: sourceLocation)
    for index in 0...stream.readableBytes {
        let decoded = try decodeAll(decoder, chunks: split(stream, at: index))
        #expect(decoded == expected, "split at byte \(index)", sourceLocation: sourceLocation)
        if decoded != expected { return }
    }
    for size in [1, 2, 3, 5, 7] {
        #expect(try decodeAll(decoder, chunks: chunked(stream, size: size)) == expected, "chunks of \(size)", sourceLocation: sourceLocation)
    }
}

/// The error a framing throws on `stream`, or nil.
func decodingError<F: MTProtoFraming>(_ framing: F, _ stream: ByteBuffer) -> MTProtoTransportError? {
    var framing = framing
    var stream = stream
    do {
        while try framing.decode(from: &stream) != nil {}
        return nil
    } catch {
        return error
    }
}

/// Sizes of an encrypted MTProto message (24 header bytes, whole 16-byte blocks): padded
/// intermediate finds the end of a payload from the message itself (`PacketLength`), so a payload
/// that goes through it must have a message's shape; every other framing takes any multiple of 4.
let roundTripSizes = [40, 1048, 1024 * 1024 + 24]

/// Padded intermediate padding 0-15 bytes as the spec says (the default).
let fullRangePadding = MTProtoTransportConfiguration()
