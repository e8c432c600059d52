// swift-tools-version: 6.2
import PackageDescription

// Every target of ours is compiled with warnings as errors: "no warnings" is a rule, not a wish.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
]

// How the release `tgsm` is linked on Linux, for an idle `tgsm run` of little resident memory
// (docs/BENCHMARKS.md, "Idle memory of `tgsm run`", has the measurements behind each flag):
// - the Swift runtime and Foundation linked statically: only the pages tgsm touches count, not
//   whole shared libraries (and the binary runs without the toolchain's libraries installed);
//   the four libraries are what static Foundation needs besides itself;
// - no dynamic export of every symbol (the static stdlib's default), so unused code is dropped;
// - lld with packed relative relocations (DT_RELR, glibc 2.36+): the ~200k relocations of a
//   position-independent Swift binary take 40 KB instead of 5 MB read at every start;
// - the functions a start and an idle `tgsm run` execute laid out together first
//   (scripts/tgsm.order, made by scripts/link-order): the kernel maps 64 KiB around each page
//   fault, so scattered hot functions would map most of the 36 MB of code.
// Only the release link of the executable (and of a release build of TgsmCLITests, which links it;
// the tests run in debug) sees these flags: debug builds and the library products do not, so the
// unsafe flags do not keep other packages from depending on the libraries.
let releaseLinux = BuildSettingCondition.when(platforms: [.linux], configuration: .release)
let leanTgsm: [LinkerSetting] = [
    .unsafeFlags([
        "-static-stdlib", "-use-ld=lld",
        "-Xlinker", "--no-export-dynamic",
        "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/scripts/tgsm.order",
        "-Xlinker", "--no-warn-symbol-ordering",
    ], releaseLinux),
    .linkedLibrary("CoreFoundation", releaseLinux),
    .linkedLibrary("_FoundationICU", releaseLinux),
    .linkedLibrary("_FoundationCShims", releaseLinux),
    .linkedLibrary("_FoundationCollections", releaseLinux),
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
        .library(name: "MTProtoClient", targets: ["MTProtoClient"]),
        .library(name: "SessionManager", targets: ["SessionManager"]),
        .library(name: "Workers", targets: ["Workers"]),
        .library(name: "PostgresStore", targets: ["PostgresStore"]),
        .library(name: "OperatorHTTP", targets: ["OperatorHTTP"]),
        .library(name: "TestDC", targets: ["TestDC"]),
        .executable(name: "tgsm", targets: ["tgsm"]),
        .executable(name: "tl-gen", targets: ["tl-gen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // No traits: the operator server needs neither swift-configuration nor full Foundation.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // Benchmark of layer 4 (run in release): idle memory per connection, framing throughput vs Telethon.
        .executableTarget(
            name: "TransportBenchmark",
            dependencies: ["MTProtoNIO", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "Benchmarks/TransportBenchmark",
            swiftSettings: strict
        ),

        // Layer 1: TL. The runtime, the generator, and the generated schemas.
        .target(name: "TL", swiftSettings: strict),
        .target(name: "TLGen", swiftSettings: strict),
        .executableTarget(name: "tl-gen", dependencies: ["TLGen"], swiftSettings: strict),
        .target(name: "MTProtoSchema", dependencies: ["TL"], swiftSettings: strict),
        .target(name: "TLSchema", dependencies: ["TL"], swiftSettings: strict),
        // Its gzip rows time gzip_packed (MTProto's, on libdeflate) against the zlib code it replaced (CZlib).
        .executableTarget(name: "TLBench", dependencies: ["TL", "TLSchema", "MTProto", "CZlib"], path: "Benchmarks/TLBench", swiftSettings: strict),

        // Layer 2: crypto. AES-NI in C where Swift cannot reach the instructions; OpenSSL's bignums.
        // AES-NI is enabled per function in the C source (no unsafe flags: the package stays usable as a dependency).
        .target(name: "CAESNI"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // libdeflate: gzip_packed in the core (whole-buffer, several times zlib's speed), CRC32 of the full transport.
        // Loaded at run time (dlopen of Debian's libdeflate0, present on a fresh machine; zlib where it is missing),
        // so building needs no -dev package beyond zlib's.
        .target(name: "CLibdeflate", linkerSettings: [.linkedLibrary("z")]),
        // zlib: what gzip_packed's libdeflate refuses or cannot read (zlib headers) is re-read by zlib's streaming inflate.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "MTProtoCrypto", dependencies: ["CAESNI", "COpenSSL"], swiftSettings: strict),
        .executableTarget(name: "CryptoBench", dependencies: ["MTProtoCrypto"], path: "Benchmarks/CryptoBench", exclude: ["peers.py"], swiftSettings: strict),

        // Layer 3: the sans-IO protocol core, client and server.
        .target(
            name: "MTProto",
            dependencies: ["TL", "MTProtoSchema", "MTProtoCrypto", "CLibdeflate", "CZlib", .product(name: "DequeModule", package: "swift-collections")],
            swiftSettings: strict
        ),
        .executableTarget(name: "SessionBench", dependencies: ["MTProto", "MTProtoCrypto"], path: "Benchmarks/SessionBench", exclude: ["peers.py"], swiftSettings: strict),
        .executableTarget(
            name: "ClientBench",
            dependencies: ["BenchSupport", "MTProtoClient", "TestDC", "MTProtoCrypto", "MTProtoNIO", "TLSchema", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/ClientBench", exclude: ["telethon_peer.py"], swiftSettings: strict
        ),
        // What the benchmarks that talk to a test DC share: the DC in a child process.
        .target(name: "BenchSupport", dependencies: ["TestDC"], path: "Benchmarks/BenchSupport", swiftSettings: strict),
        // Soak of layer 5 (run in release): one busy client for SOAK_MINUTES, RSS at start and end.
        .executableTarget(
            name: "SoakBench",
            dependencies: ["BenchSupport", "MTProtoClient", "TestDC", "MTProtoCrypto", "MTProtoNIO", "TLSchema", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/SoakBench", swiftSettings: strict
        ),

        // Layer 4: SwiftNIO transports and connections.
        .target(
            name: "MTProtoNIO",
            dependencies: ["MTProto", "MTProtoCrypto", "CLibdeflate", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict
        ),

        // Layer 5: the client.
        .target(
            name: "MTProtoClient",
            dependencies: [
                "MTProtoNIO", "MTProto", "MTProtoCrypto", "TL", "TLSchema",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Layer 6: the session manager: persistent store, leases, flood ledger, rate gates, retries, health.
        .target(
            name: "SessionManager",
            dependencies: [
                "MTProtoClient", "MTProtoNIO", "MTProto", "MTProtoCrypto", "TL", "TLSchema",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Invoke overhead of the session manager's middleware stack (run in release: scripts/bench-session-manager).
        .executableTarget(
            name: "SessionManagerBench",
            dependencies: ["BenchSupport", "SessionManager", "MTProtoClient", "TestDC", "MTProtoCrypto", "TLSchema", "TL", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/SessionManagerBench", swiftSettings: strict
        ),

        // Store writes per second (ledger entries, salt updates) with fsync on (run in release).
        .executableTarget(
            name: "StoreBench",
            dependencies: ["SessionManager", "MTProto", "MTProtoClient", "MTProtoCrypto"],
            path: "Benchmarks/StoreBench", exclude: ["peer.py"], swiftSettings: strict
        ),

        // Layer 7: the durable job queue and the workers that run jobs for each account.
        .target(
            name: "Workers",
            dependencies: [
                "SessionManager", "MTProtoClient", "MTProto", "TL", "TLSchema",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The session store and the job queue on PostgreSQL (many processes, many hosts): a target of its
        // own so SQLite-only users do not link postgres-nio and its TLS stack.
        .target(
            name: "PostgresStore",
            dependencies: [
                "SessionManager", "Workers", "MTProtoClient", "MTProtoNIO", "MTProto", "MTProtoCrypto",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Claim latency and jobs/s, SQLite vs PostgreSQL with 1/2/4 processes (run in release: scripts/bench-queue).
        .executableTarget(
            name: "QueueBench",
            dependencies: ["Workers", "PostgresStore", "SessionManager", "MTProto", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/QueueBench", swiftSettings: strict
        ),
        // A worker process the crash tests start and SIGKILL (Tests/WorkersTests/CrashRecoveryTests).
        .executableTarget(
            name: "WorkersTestProcess",
            dependencies: ["Workers", "SessionManager", "MTProtoClient", "MTProto", "TL", "PostgresStore", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Tests/WorkersTestProcess",
            swiftSettings: strict
        ),

        // Layer 9: the operator's HTTP side of `tgsm run`: /health, /metrics (Prometheus), the dashboard.
        .target(
            name: "OperatorHTTP",
            dependencies: [
                "SessionManager", "Workers", "MTProto", "MTProtoClient", "MTProtoNIO",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        // Layer 8: the Telegram-compatible test DC.
        .target(
            name: "TestDC",
            dependencies: [
                "MTProtoNIO", "MTProto", "MTProtoCrypto", "TL", "TLSchema",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Layer 9: the command-line tool.
        .executableTarget(
            name: "tgsm",
            dependencies: [
                "TestDC", "MTProtoClient", "MTProto", "SessionManager", "Workers", "PostgresStore", "OperatorHTTP", "TLSchema",
                // The sandbox finds a page of the queue's jobs to damage (SQLite's dbstat).
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict,
            linkerSettings: leanTgsm
        ),

        .testTarget(name: "TLTests", dependencies: ["TL", "SeededRandom"], swiftSettings: strict),
        .testTarget(name: "TLGenTests", dependencies: ["TLGen"], swiftSettings: strict),
        .testTarget(name: "TLSchemaTests", dependencies: ["TL", "TLGen", "TLSchema", "MTProtoSchema", "OffThePool", "SeededRandom"], swiftSettings: strict),
        .testTarget(name: "MTProtoCryptoTests", dependencies: ["MTProtoCrypto", "SeededRandom"], swiftSettings: strict),
        .testTarget(name: "MTProtoTests", dependencies: ["MTProto", "MTProtoSchema", "TL", "OffThePool", "CLibdeflate", "SeededRandom"], swiftSettings: strict),
        .testTarget(
            name: "MTProtoNIOTests",
            dependencies: ["MTProtoNIO", "OffThePool", "SeededRandom", .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOTestUtils", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(name: "MTProtoClientTests", dependencies: ["MTProtoClient", "MTProto", "MTProtoCrypto", "MTProtoNIO", "TL", "TLSchema", "SeededRandom"], swiftSettings: strict),
        .testTarget(
            name: "SessionManagerTests",
            dependencies: [
                "SessionManager", "MTProtoClient", "MTProto", "MTProtoCrypto", "MTProtoNIO", "TestDC", "TL", "TLSchema", "SessionStoreProbe",
                "PostgresStore", "StoreTestSupport", "OffThePool", "SeededRandom",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // What the store and queue contract tests share: the engines, a scratch PostgreSQL database per test.
        .target(
            name: "StoreTestSupport",
            dependencies: [
                "PostgresStore", .product(name: "Logging", package: "swift-log"), .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/StoreTestSupport", swiftSettings: strict
        ),
        // A webhook receiver on loopback for the alert tests (OperatorHTTPTests, the built binary's tests).
        .target(
            name: "WebhookTestSupport",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log")],
            path: "Tests/WebhookTestSupport", swiftSettings: strict
        ),
        // Blocking work of the tests (pipes, child processes) on threads of its own, never the cooperative pool's.
        .target(name: "OffThePool", path: "Tests/OffThePool", swiftSettings: strict),
        // The tests' seeded generator (SplitMix64), one copy for every suite that draws from it.
        .target(name: "SeededRandom", path: "Tests/SeededRandom", swiftSettings: strict),
        // A second OS process for the store's crash and lease tests (built with the tests, run by them).
        .executableTarget(
            name: "SessionStoreProbe",
            dependencies: ["SessionManager", "MTProtoClient", "MTProto", "MTProtoCrypto", "TLSchema", "TestDC", "PostgresStore",
                           .product(name: "Logging", package: "swift-log")],
            path: "Tests/SessionStoreProbe", swiftSettings: strict
        ),
        .testTarget(
            name: "WorkersTests",
            dependencies: [
                "Workers", "SessionManager", "MTProtoClient", "MTProto", "MTProtoNIO", "MTProtoCrypto", "TL", "TLSchema", "TestDC",
                "PostgresStore", "StoreTestSupport", "OffThePool",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The built `tgsm` binary run as a subprocess against temporary stores.
        .testTarget(
            name: "TgsmCLITests",
            dependencies: ["tgsm", "CTestPTY", "OffThePool", "OperatorHTTP", "PostgresStore", "StoreTestSupport", "WebhookTestSupport", "Workers", "SessionManager", "MTProtoClient", "MTProto", "MTProtoCrypto", "TestDC", "TLSchema", .product(name: "Logging", package: "swift-log"),
                           .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        // posix_openpt and friends for the pseudo-terminal tests (Glibc's Swift module hides them).
        .target(name: "CTestPTY", path: "Tests/CTestPTY"),
        // The operator server in-process over loopback with a real store and queue; the dashboard in headless Chromium.
        .testTarget(
            name: "OperatorHTTPTests",
            dependencies: [
                "OperatorHTTP", "SessionManager", "Workers", "MTProto", "MTProtoClient", "MTProtoCrypto", "TL", "TLSchema", "WebhookTestSupport", "OffThePool",
                "StoreTestSupport",
                .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TestDCTests",
            dependencies: [
                "TestDC", "MTProto", "MTProtoNIO", "StoreTestSupport", "SeededRandom",
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Our client against the test DC over loopback TCP.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "MTProtoClient", "MTProtoNIO", "TestDC", "MTProto", "MTProtoCrypto", "TL", "TLSchema", "OffThePool",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
