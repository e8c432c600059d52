import FuzzSupport
import TL

// Default limits check that ordinary inputs decode and round-trip; tiny limits make the refusal
// paths (over-long bytes, big vectors, deep nesting, large gzip payloads) reachable with short inputs.
let tinyLimits = TLReader.Limits(maxBytesLength: 300, maxVectorCount: 8, maxDepth: 4, maxInflatedLength: 512)

runFuzzer { raw in
    let input = Array(raw)
    SchemaFuzz.run(input, limits: TLReader.Limits())
    SchemaFuzz.run(input, limits: tinyLimits)
    PrimitiveFuzz.run(input, limits: TLReader.Limits())
    PrimitiveFuzz.run(input, limits: tinyLimits)
}
