import TL

/// Reads TL primitives in an order the input itself chooses, and checks that every value read
/// writes back to a serialization that reads back as the same value.
///
/// Input layout: one selector byte, then the bytes the primitives are read from. Each step takes
/// the next primitive kind from the selector stream (cycling), so the fuzzer explores mixed
/// sequences of lengths, paddings and vector headers.
enum PrimitiveFuzz {
    static func run(_ input: [UInt8], limits: TLReader.Limits) {
        guard let selector = input.first else { return }
        var reader = TLReader(Array(input.dropFirst()), limits: limits, inflater: IdentityInflater())
        var step = 0
        while !reader.isAtEnd && step < 64 {
            let kind = (Int(selector) &+ step &* 7) % 11
            step += 1
            do {
                switch kind {
                case 0: roundTrip(try reader.readInt32(), limits) { try $0.readInt32() } write: { $0.writeInt32($1) }
                case 1: roundTrip(try reader.readInt64(), limits) { try $0.readInt64() } write: { $0.writeInt64($1) }
                case 2:
                    let value = try reader.readDouble()
                    roundTrip(value.bitPattern, limits) { try $0.readDouble().bitPattern } write: {
                        $0.writeDouble(Double(bitPattern: $1))
                    }
                case 3: roundTrip(try reader.readInt128(), limits) { try $0.readInt128() } write: { $0.writeInt128($1) }
                case 4: roundTrip(try reader.readInt256(), limits) { try $0.readInt256() } write: { $0.writeInt256($1) }
                case 5: roundTrip(try reader.readBool(), limits) { try $0.readBool() } write: { $0.writeBool($1) }
                case 6: roundTrip(try reader.readBytes(), limits) { try $0.readBytes() } write: { $0.writeBytes($1) }
                case 7:
                    // Invalid UTF-8 becomes U+FFFD, so compare after one round trip, not with the input.
                    let text = try reader.readString()
                    roundTrip(text, limits) { try $0.readString() } write: { $0.writeString($1) }
                case 8:
                    let values = try [Int64](from: &reader)
                    roundTrip(values, limits) { try [Int64](from: &$0) } write: { $1.encode(to: &$0) }
                case 9:
                    let values = try reader.readBytesVector()
                    roundTrip(values, limits) { try $0.readBytesVector() } write: { $0.writeBytesVector($1) }
                default:
                    let values = try reader.readBareVector(minimumElementSize: 4) { try $0.readString() }
                    roundTrip(values, limits) { reader in
                        try reader.readBareVector(minimumElementSize: 4) { try $0.readString() }
                    } write: { writer, values in
                        writer.writeBareVector(values) { $0.writeString($1) }
                    }
                }
            } catch {
                return  // a refusal is the right answer to most inputs; only traps are findings
            }
        }
    }

    /// Writes `value`, reads it back, and traps unless it is equal and the reader consumed exactly
    /// what was written. The read-back uses default limits: the limits guard against hostile
    /// input, and a re-encoding may legitimately grow (each invalid UTF-8 byte becomes U+FFFD).
    static func roundTrip<Value: Equatable>(
        _ value: Value,
        _: TLReader.Limits,
        read: (inout TLReader) throws -> Value,
        write: (inout TLWriter, Value) -> Void
    ) {
        var writer = TLWriter()
        write(&writer, value)
        let bytes = writer.bytes
        precondition(bytes.count % 4 == 0, "primitive \(Value.self) wrote \(bytes.count) bytes, not a multiple of 4")
        var reader = TLReader(bytes)
        do {
            let again = try read(&reader)
            precondition(again == value, "primitive \(Value.self) did not survive a round trip")
            precondition(reader.isAtEnd, "primitive \(Value.self) left \(reader.remaining) bytes unread")
        } catch {
            preconditionFailure("primitive \(Value.self) wrote bytes it cannot read back: \(error)")
        }
    }
}

/// Stands in for zlib: `gzip_packed` carries its payload as is, so the fuzzer can reach nested
/// decoding through `gzip_packed` without compressing anything.
struct IdentityInflater: TLInflater {
    struct TooLarge: Error, CustomStringConvertible {
        var description: String { "payload over the inflated-length limit" }
    }

    func inflate(_ compressed: [UInt8], maxOutputCount: Int) throws -> [UInt8] {
        guard compressed.count <= maxOutputCount else { throw TooLarge() }
        return compressed
    }
}
