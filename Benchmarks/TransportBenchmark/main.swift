// Transport figures, run in release:
//   swift run -c release TransportBenchmark memory [connections] [transport] [receive buffer maximum]
//   swift run -c release TransportBenchmark throughput [python]
//
// memory: this process runs an echo server; a child process (this executable, `clients` mode) opens
// the connections, sends one small packet on each, then one 256 KiB packet on each. Both report
// resident memory per connection while idle, after the large message, and after malloc_trim.
// throughput: sans-IO encode + decode of each framing; with a python path, Telethon 1.45.0's
// codecs on the same payloads in the same run, and the ratio.
import Foundation
import MTProtoNIO
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

func residentKiB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    return 0
}

/// glibc keeps freed memory; `malloc_trim(0)` gives it back (not exported to Swift, so looked up).
func trimmedResidentKiB() -> Int {
    if let symbol = dlsym(nil, "malloc_trim") {
        let trim = unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        _ = trim(0)
    }
    return residentKiB()
}

/// Writes a line to stdout at once (the parent process reads the child's lines as they come).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Reads one line from a file descriptor, blocking.
func readLine(from descriptor: Int32) -> String? {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while read(descriptor, &byte, 1) == 1 {
        if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
        bytes.append(byte)
    }
    return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
}

func packet(_ size: Int) -> ByteBuffer {
    ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 1) })
}

func perConnection(_ kib: Int, _ count: Int) -> String {
    String(format: "%.2f KiB", Double(kib) / Double(max(count, 1)))
}

// MARK: - memory, server side

final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = TransportFrame
    typealias OutboundOut = TransportFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .packet(let payload) = unwrapInboundIn(data) {
            context.writeAndFlush(wrapOutboundOut(.packet(payload)), promise: nil)
        }
    }
}

func configuration(receiveMaximum: Int) -> MTProtoTransportConfiguration {
    MTProtoTransportConfiguration(receiveBufferSizes: (minimum: 64, initial: min(512, receiveMaximum), maximum: receiveMaximum))
}

func runMemoryServer(connections: Int, transport: String, receiveMaximum: Int) async throws {
    let server = try await MTProtoTransportServer.bind(
        host: "127.0.0.1",
        port: 0,
        configuration: configuration(receiveMaximum: receiveMaximum)
    ) { _ in EchoHandler() }
    let port = server.localAddress?.port ?? 0
    let baseline = trimmedResidentKiB()

    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["clients", "\(port)", "\(connections)", transport, "\(receiveMaximum)"]
    let toChild = Pipe()
    let fromChild = Pipe()
    child.standardInput = toChild
    child.standardOutput = fromChild
    try child.run()

    let childOutput = fromChild.fileHandleForReading.fileDescriptor
    func expect(_ prefix: String) throws -> String {
        guard let line = readLine(from: childOutput), line.hasPrefix(prefix) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return line
    }
    func tell(_ word: String) { toChild.fileHandleForWriting.write(Data((word + "\n").utf8)) }

    print("transport \(transport), \(connections) idle connections over loopback, receive buffer maximum \(receiveMaximum)")
    let idleLine = try expect("idle")
    let idle = residentKiB() - baseline
    print("  server: idle \(perConnection(idle, connections)) per connection (RSS +\(idle) KiB)")
    tell("big")
    let bigLine = try expect("big")
    let afterBig = residentKiB() - baseline
    let afterBigTrimmed = trimmedResidentKiB() - baseline
    print("  server: after one 256 KiB echo each: \(perConnection(afterBig, connections)), after malloc_trim \(perConnection(afterBigTrimmed, connections))")
    print("  client: \(idleLine.dropFirst(5))")
    print("  client: \(bigLine.dropFirst(4))")
    tell("quit")
    child.waitUntilExit()
    try await server.close()
}

// MARK: - memory, client side (child process)

final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = TransportFrame
    private var echoes: [EventLoopPromise<Void>]

    init(echoes: [EventLoopPromise<Void>]) { self.echoes = echoes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !echoes.isEmpty { echoes.removeFirst().succeed() }
    }
}

struct ClientConnection: Sendable {
    let channel: any Channel
    let echoes: [EventLoopFuture<Void>]
}

func runMemoryClients(port: Int, connections: Int, transport: TransportKind, receiveMaximum: Int) async throws {
    let baseline = trimmedResidentKiB()
    let bootstrap = MTProtoTransportClient.bootstrap(configuration: configuration(receiveMaximum: receiveMaximum))
    var clients: [ClientConnection] = []
    for _ in 0..<connections {
        let client = try await bootstrap.connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                let echoes = [channel.eventLoop.makePromise(of: Void.self), channel.eventLoop.makePromise(of: Void.self)]
                try channel.pipeline.syncOperations.addMTProtoClientHandlers(transport: transport)
                try channel.pipeline.syncOperations.addHandler(ClientHandler(echoes: echoes))
                return ClientConnection(channel: channel, echoes: echoes.map(\.futureResult))
            }
        }
        try await client.channel.writeAndFlush(TransportFrame.packet(packet(24)))
        clients.append(client)
    }
    for client in clients { try await client.echoes[0].get() }
    let idle = trimmedResidentKiB() - baseline
    say("idle \(perConnection(idle, connections)) per connection (RSS +\(idle) KiB)")

    guard readLine() == "big" else { return }
    let large = packet(256 * 1024)
    for batch in stride(from: 0, to: clients.count, by: 64) {
        let slice = clients[batch..<min(batch + 64, clients.count)]
        for client in slice { client.channel.writeAndFlush(TransportFrame.packet(large), promise: nil) }
        for client in slice { try await client.echoes[1].get() }
    }
    let afterBig = residentKiB() - baseline
    let trimmed = trimmedResidentKiB() - baseline
    say("big after one 256 KiB echo each: \(perConnection(afterBig, connections)), after malloc_trim \(perConnection(trimmed, connections))")

    _ = readLine()
    for client in clients { try await client.channel.close() }
}

// MARK: - throughput

func measure(_ label: String, bytes: Int, iterations: Int, _ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    for _ in 0..<iterations { try body() }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(bytes * iterations) / seconds / 1_000_000
    print(String(format: "  %-34@ %8.1f MB/s", label as NSString, rate))
    return rate
}

func runThroughput(python: String?) throws {
    print("sans-IO encode + decode, 3 runs each (the median is compared below)")
    var ours: [String: Double] = [:]
    for (size, iterations) in [(1024 * 1024, 200), (1024, 100_000)] {
        let payload = packet(size)
        for kind in TransportKind.allCases {
            var rates: [Double] = []
            for _ in 0..<3 {
                var encoder = TransportFraming(kind: kind, role: .client, maximumPadding: 0)
                var decoder = TransportFraming(kind: kind, role: .server)
                var first = encoder.encode(.packet(payload))  // carries the tag
                first.moveReaderIndex(forwardBy: kind.tag.count)
                _ = try decoder.decode(from: &first)
                var wire = ByteBufferAllocator().buffer(capacity: size + 32)
                rates.append(try measure("\(kind) \(size) B", bytes: size, iterations: iterations) {
                    wire.clear()
                    encoder.encode(.packet(payload), into: &wire)
                    guard try decoder.decode(from: &wire) != nil else { throw CocoaError(.coderInvalidValue) }
                })
            }
            ours["\(kind) \(size)"] = rates.sorted()[1]
        }
    }
    guard let python else { return }
    let script = """
        import asyncio, statistics, time, json
        from telethon.network.connection.tcpfull import FullPacketCodec
        from telethon.network.connection.tcpintermediate import IntermediatePacketCodec
        from telethon.network.connection.tcpabridged import AbridgedPacketCodec
        async def run():
            out = {}
            for name, cls in (("full", FullPacketCodec), ("intermediate", IntermediatePacketCodec), ("abridged", AbridgedPacketCodec)):
                for size, iterations in ((1024 * 1024, 200), (1024, 100000)):
                    data = bytes((i * 31 + 1) & 0xff for i in range(size))
                    rates = []
                    for _ in range(3):
                        codec = cls(None)
                        reader = asyncio.StreamReader(limit=2**30)
                        start = time.perf_counter()
                        for _ in range(iterations):
                            reader.feed_data(codec.encode_packet(data))
                            await codec.read_packet(reader)
                        rates.append(size * iterations / (time.perf_counter() - start) / 1e6)
                    out[f"{name} {size}"] = statistics.median(rates)
            print(json.dumps(out))
        asyncio.run(run())
        """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", script]
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let theirs = try JSONDecoder().decode([String: Double].self, from: data)
    print("Telethon 1.45.0 codecs (encode_packet + read_packet on a StreamReader), same payloads:")
    for key in theirs.keys.sorted() {
        guard let rate = theirs[key], let mine = ours[key] else { continue }
        print(String(format: "  %-22@ Telethon %8.1f MB/s, ours %8.1f MB/s, ratio %.1fx", key as NSString, rate, mine, mine / rate))
    }
}

// MARK: - main

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "memory":
    let connections = arguments.dropFirst().first.flatMap { Int($0) } ?? 2000
    let transport = arguments.dropFirst(2).first ?? "full"
    let receiveMaximum = arguments.dropFirst(3).first.flatMap { Int($0) } ?? 8192
    try await runMemoryServer(connections: connections, transport: transport, receiveMaximum: receiveMaximum)
case "clients":
    let values = Array(arguments.dropFirst())
    guard values.count == 4, let port = Int(values[0]), let count = Int(values[1]),
        let kind = TransportKind(rawValue: values[2]), let receiveMaximum = Int(values[3])
    else {
        fatalError("usage: clients PORT COUNT TRANSPORT RECEIVE_MAXIMUM")
    }
    try await runMemoryClients(port: port, connections: count, transport: kind, receiveMaximum: receiveMaximum)
case "throughput":
    try runThroughput(python: arguments.dropFirst().first)
default:
    print("usage: TransportBenchmark memory [connections] [transport] [receive maximum] | throughput [python]")
}
