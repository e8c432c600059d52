// libFuzzer's own `main` never runs in a SwiftPM executable (SwiftPM renames the entry point), so a
// target's top-level code hands its body to libFuzzer through `LLVMFuzzerRunDriver` instead.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

// libFuzzer calls back through a C function pointer, which cannot capture the body: it waits here.
// Written once before the driver starts, read only by libFuzzer's single fuzzing thread.
nonisolated(unsafe) private var fuzzBody: ((UnsafeRawBufferPointer) -> Void)?

/// Runs libFuzzer with the process's arguments, feeding each input to `body`, and exits with the
/// driver's status. A property violated by an input must trap (`precondition`) so libFuzzer saves it.
public func runFuzzer(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    fuzzBody = body
    var arguments = CommandLine.arguments.map { strdup($0) }
    arguments.append(nil)
    var argc = Int32(CommandLine.arguments.count)
    let status = arguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
        var argv = buffer.baseAddress
        return LLVMFuzzerRunDriver(&argc, &argv, fuzzTestOneInput)
    }
    exit(status)
}

/// The entry libFuzzer's runtime links against. Defined even though the driver above is what runs:
/// debug links pull in libFuzzer's `main`, which needs the symbol.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzBody?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
