import FuzzSupport
import TL

// Tiny limits make the refusal paths (over-long bytes, big vectors, deep nesting) reachable with
// short inputs; the defaults check that ordinary inputs decode.
let tinyLimits = TLReader.Limits(maxBytesLength: 300, maxVectorCount: 8, maxDepth: 4, maxInflatedLength: 512)

runFuzzer { raw in
    let input = Array(raw)
    PrimitiveFuzz.run(input, limits: TLReader.Limits())
    PrimitiveFuzz.run(input, limits: tinyLimits)
}
