// swift-tools-version: 6.2
import PackageDescription

// Every target of ours is compiled with warnings as errors: "no warnings" is a rule, not a wish.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "tgsm",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TL", targets: ["TL"]),
        .library(name: "TLSchema", targets: ["TLSchema"]),
        .library(name: "MTProtoSchema", targets: ["MTProtoSchema"]),
        .library(name: "MTProtoCrypto", targets: ["MTProtoCrypto"]),
        .library(name: "MTProto", targets: ["MTProto"]),
        .library(name: "MTProtoNIO", targets: ["MTProtoNIO"]),
        .executable(name: "tl-gen", targets: ["tl-gen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // Layer 1: TL. The runtime, the generator, and the generated schemas.
        .target(name: "TL", swiftSettings: strict),
        .target(name: "TLGen", swiftSettings: strict),
        .executableTarget(name: "tl-gen", dependencies: ["TLGen"], swiftSettings: strict),
        .target(name: "MTProtoSchema", dependencies: ["TL"], swiftSettings: strict),
        .target(name: "TLSchema", dependencies: ["TL"], swiftSettings: strict),
        .executableTarget(name: "TLBench", dependencies: ["TL", "TLSchema"], path: "Benchmarks/TLBench", swiftSettings: strict),

        // Layer 2: crypto. AES-NI in C where Swift cannot reach the instructions; OpenSSL's bignums.
        .target(name: "CAESNI", cSettings: [.unsafeFlags(["-maes", "-msse4.1", "-O3"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // zlib: gzip_packed in the core, CRC32 of the full transport.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "MTProtoCrypto", dependencies: ["CAESNI", "COpenSSL"], swiftSettings: strict),

        // Layer 3: the sans-IO protocol core, client and server.
        .target(name: "MTProto", dependencies: ["TL", "MTProtoSchema", "MTProtoCrypto", "CZlib"], swiftSettings: strict),

        // Layer 4: SwiftNIO transports and connections.
        .target(
            name: "MTProtoNIO",
            dependencies: ["MTProto", "CZlib", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict
        ),

        .testTarget(name: "TLTests", dependencies: ["TL"], swiftSettings: strict),
        .testTarget(name: "TLGenTests", dependencies: ["TLGen"], swiftSettings: strict),
        .testTarget(name: "TLSchemaTests", dependencies: ["TL", "TLGen", "TLSchema", "MTProtoSchema"], swiftSettings: strict),
        .testTarget(name: "MTProtoCryptoTests", dependencies: ["MTProtoCrypto"], swiftSettings: strict),
        .testTarget(name: "MTProtoTests", dependencies: ["MTProto"], swiftSettings: strict),
        .testTarget(
            name: "MTProtoNIOTests",
            dependencies: ["MTProtoNIO", .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: strict
        ),
    ]
)
