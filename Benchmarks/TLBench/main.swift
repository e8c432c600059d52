// TL decode and encode throughput on a realistic payload: one messages.messages with its users and
// chats, serialized by Telethon (Tests/Interop/make_bench_payload.py). scripts/bench-tl runs this
// next to Telethon's own timing of the same bytes and prints the ratio.
//
// Usage: TLBench PAYLOAD MESSAGES_PER_PAYLOAD
// Prints, like Tests/Interop/bench_telethon.py:
//   tgsm decode <MB/s> <payloads/s> <messages/s>
//   tgsm encode <MB/s> <payloads/s> <messages/s>
// then gzip_packed of the same payload (GzipBench.swift), our libdeflate code against the zlib code
// it replaced, in thread CPU time per call:
//   gzip <zlib|libdeflate> <pack|unpack> <µs per call> <gzip_packed bytes>

import Foundation
import TL
import TLSchema

/// Keeps the optimizer from deleting work whose result is otherwise unused.
@inline(never) func consume<T>(_ value: T) { withExtendedLifetime(value) {} }

/// Calls per second of the fastest of `rounds` rounds of about `seconds` each.
func bestRate(rounds: Int = 5, seconds: Double = 1, _ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    var best = 0.0
    for _ in 0..<rounds {
        var calls = 0
        let start = clock.now
        var elapsed = Duration.zero
        repeat {
            try body()
            calls += 1
            elapsed = clock.now - start
        } while elapsed < .seconds(seconds)
        let elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        best = max(best, Double(calls) / elapsedSeconds)
    }
    return best
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("TLBench: \(message)\n".utf8))
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let messagesPerPayload = Double(arguments[2]) else {
    fail("usage: TLBench PAYLOAD MESSAGES_PER_PAYLOAD (scripts/bench-tl runs it)")
}
guard let data = FileManager.default.contents(atPath: arguments[1]) else {
    fail("cannot read \(arguments[1]); scripts/bench-tl writes it")
}
let payload = [UInt8](data)
let decoded: Api.messages.Messages
do {
    decoded = try Api.messages.Messages(serialized: payload)
} catch {
    fail("the payload does not decode as messages.Messages: \(error)")
}
guard decoded.serialized(capacity: payload.count) == payload else {
    fail("re-encoding the payload does not give Telethon's bytes back")
}

// TLBENCH_ONLY=decode or =encode runs one side alone (for perf record); its other rate prints as 0.
// TLBENCH_ONLY=gzip runs the gzip rows alone; TLBENCH_ONLY=decode/encode skip them.
let only = ProcessInfo.processInfo.environment["TLBENCH_ONLY"]
if only == nil || only == "decode" || only == "encode" {
    let decodeRate = only == "encode" ? 0 : try bestRate { consume(try Api.messages.Messages(serialized: payload)) }
    let encodeRate = only == "decode" ? 0 : bestRate { consume(decoded.serialized()) }
    let megabytes = Double(payload.count) / 1e6
    for (name, rate) in [("decode", decodeRate), ("encode", encodeRate)] {
        print("tgsm \(name) \(String(format: "%.2f", rate * megabytes)) \(String(format: "%.1f", rate)) \(String(format: "%.0f", rate * messagesPerPayload))")
    }
}
if only == nil || only == "gzip" {
    do {
        try GzipBench.run(payload)
    } catch {
        fail("gzip: \(error)")
    }
}
