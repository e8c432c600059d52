/// TL `bytes`/`string` serialization, written here so the crypto layer (key fingerprints) does not
/// depend on the TL runtime: a 1-byte length below 254, else 0xFE + 3-byte little-endian length,
/// then the data, then zero padding to a multiple of 4.
enum TLBytes {
    static func serialize(_ data: [UInt8]) -> [UInt8] {
        var output: [UInt8]
        if data.count < 254 {
            output = [UInt8(data.count)]
        } else {
            precondition(data.count < 1 << 24, "TL bytes longer than 16 MiB")
            output = [254, UInt8(truncatingIfNeeded: data.count), UInt8(truncatingIfNeeded: data.count >> 8), UInt8(truncatingIfNeeded: data.count >> 16)]
        }
        output += data
        while output.count % 4 != 0 { output.append(0) }
        return output
    }
}
