// swift-tools-version: 6.2
import PackageDescription

// libFuzzer targets, kept out of the root package so its build never links libFuzzer.
// Build and run one with scripts/fuzz NAME SECONDS (it passes -sanitize=fuzzer and -use-ld=lld).
//
// To add a target: create Sources/<Name>/main.swift (call `runFuzzer { bytes in ... }` from
// FuzzSupport at top level) and add one line below with the tgsm products it needs.
let fuzzTargets: [(name: String, products: [String])] = [
    ("TLDecoderFuzz", ["TL", "TLSchema", "MTProtoSchema"]),
    ("HandshakeServerFuzz", ["MTProto", "MTProtoCrypto"]),
    ("SessionClientDecodeFuzz", ["MTProto", "MTProtoCrypto"]),
    ("SessionServerDecodeFuzz", ["MTProto", "MTProtoCrypto"]),
    ("SessionImportFuzz", ["SessionManager", "MTProtoClient", "MTProtoCrypto"]),
    ("TransportFramingFuzz", ["MTProtoNIO", "MTProtoCrypto"]),
]

let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "tgsm-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "tgsm", path: ".."),
        // ByteBuffer, which the framings read from; the same version the root package resolves.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "MTProtoCrypto", package: "tgsm")], swiftSettings: strict),
    ] + fuzzTargets.map { target in
        .executableTarget(
            name: target.name,
            dependencies: ["FuzzSupport"] + target.products.map { .product(name: $0, package: "tgsm") }
                + (target.name == "TransportFramingFuzz" ? [.product(name: "NIOCore", package: "swift-nio")] : []),
            swiftSettings: strict
        )
    }
)
