import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The control endpoint: HTTP/JSON on localhost for tests outside the process (docs/TESTDC.md).
final class ControlServer: Sendable {
    private let channel: any Channel
    private let table: TableBox

    /// The DC table is known only after every listener is bound, so the API reads it late.
    final class TableBox: Sendable {
        let value = Mutex<ClusterTable?>(nil)
    }

    private init(channel: any Channel, table: TableBox) {
        self.channel = channel
        self.table = table
    }

    var localAddress: SocketAddress? { channel.localAddress }

    func setTable(_ value: ClusterTable) { table.value.withLock { $0 = value } }

    func close() async throws { try await channel.close() }

    static func bind(host: String, port: Int, core: TestDCCore, logger: Logger) async throws -> ControlServer {
        let tableBox = TableBox()
        let api = ControlAPI(core: core, table: { tableBox.value.withLock { $0 } })
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { connection in
                connection.eventLoop.makeCompletedFuture {
                    try connection.pipeline.syncOperations.configureHTTPServerPipeline()
                    try connection.pipeline.syncOperations.addHandler(ControlHTTPHandler(api: api))
                }
            }
            .bind(host: host, port: port)
            .get()
        logger.info("control endpoint listening", metadata: ["address": "\(host):\(channel.localAddress?.port ?? port)"])
        return ControlServer(channel: channel, table: tableBox)
    }
}

/// A JSON answer of the control API.
struct ControlResponse: Sendable {
    var status: HTTPResponseStatus
    var body: Data

    static func json(_ value: some Encodable, status: HTTPResponseStatus = .ok) -> ControlResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return ControlResponse(status: status, body: data)
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> ControlResponse {
        json(["error": message], status: status)
    }
}

/// The routes, separate from HTTP so tests call them directly.
struct ControlAPI: Sendable {
    let core: TestDCCore
    let table: @Sendable () -> ClusterTable?

    struct ClockRequest: Codable { var dc: Int32; var offsetSeconds: Int }
    struct ToggleRequest: Codable { var enabled: Bool }
    struct RevokeRequest: Codable { var dc: Int32; var keyID: Int64; var drop: Bool? }
    struct FaultsView: Codable {
        var rules: [FaultRuleView]
        var clockOffsets: [String: Int]
        var duplicateKeyDetection: Bool
    }
    struct FaultRuleView: Codable {
        var id: Int
        var match: FaultMatch
        var effect: FaultEffect
        var fired: Int
    }
    struct KeyView: Codable { var dc: Int32; var keyID: Int64; var userID: Int64? }
    /// `purpose`: "login" for a login code, "loginEmail" for the code mailed to a login email being set
    /// up (empty until account.sendVerifyEmailCode).
    struct CodeView: Codable {
        var phone: String
        var code: String
        var dc: Int32
        var sentAt: Double
        var purpose: String

        init(_ sent: SentLoginCode) {
            phone = sent.phone
            code = sent.code
            dc = sent.dc
            sentAt = sent.sentAt
            purpose = sent.awaitsLoginEmail ? "loginEmail" : "login"
        }
    }
    struct Health: Codable { var status: String; var dcs: Int; var connections: Int }
    struct PostRequest: Codable { var text: String; var fromID: Int64? }
    struct MessageRequest: Codable { var fromID: Int64; var toID: Int64; var text: String }
    struct Posted: Codable { var id: Int32 }
    struct CodeDeliveryRequest: Codable { var codeDelivery: World.User.CodeDelivery }
    struct ServiceNotificationRequest: Codable { var userID: Int64; var type: String; var message: String; var popup: Bool? }

    func handle(method: HTTPMethod, uri: String, body: Data) -> ControlResponse {
        let components = URLComponents(string: uri)
        let path = (components?.path ?? uri).split(separator: "/").map(String.init)
        let query = Dictionary((components?.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        switch (method, path.first ?? "", path.count) {
        case (.GET, "health", 1):
            return .json(Health(status: "ok", dcs: table()?.dcs.count ?? 0, connections: core.liveConnections.count))
        case (.GET, "dcs", 1):
            guard let table = table() else { return .error(.serviceUnavailable, "the DCs are still starting") }
            return .json(table)
        case (.GET, "connections", 1):
            return .json(core.liveConnections)
        case (.GET, "keys", 1):
            let keys = core.withState { state in
                state.dcs.keys.sorted().flatMap { dc in
                    state.authKeyIDs(dc: dc).map { KeyView(dc: dc, keyID: $0, userID: state.userID(for: CallContext(dc: dc, authKeyID: $0))) }
                }
            }
            return .json(keys)
        case (.POST, "keys", 2) where path[1] == "revoke":
            guard let request = try? JSONDecoder().decode(RevokeRequest.self, from: body) else {
                return .error(.badRequest, "expected {\"dc\": 1, \"keyID\": 123, \"drop\": false}")
            }
            core.withState { state in
                if request.drop == true { state.dropAuthKey(dc: request.dc, keyID: request.keyID) } else {
                    state.revokeAuthorization(dc: request.dc, keyID: request.keyID)
                }
            }
            return .json(["revoked": true])
        case (.GET, "codes", 1):
            let codes = core.withState { $0.sentCodes.values.map(CodeView.init) }
            return .json(codes.sorted { $0.phone < $1.phone })
        case (.GET, "codes", 2):
            let phone = World.normalizePhone(path[1])
            guard let sent = core.withState({ $0.sentCodes[phone] }) else {
                return .error(.notFound, "no login code was sent to that phone; call auth.sendCode first")
            }
            return .json(CodeView(sent))
        case (.GET, "faults", 1):
            return .json(faultsView())
        case (.POST, "faults", 1):
            let rule: FaultRule
            do {
                rule = try JSONDecoder().decode(FaultRule.self, from: body)
            } catch {
                return .error(.badRequest, "the body is not a fault rule {\"match\": {...}, \"effect\": {\"kind\": ...}}: \(error)")
            }
            do {
                let added = try core.withState { try $0.faults.add(rule) }
                return .json(added, status: .created)
            } catch {
                return .error(.badRequest, "\(error)")
            }
        case (.DELETE, "faults", 1):
            if let name = query["kind"] {
                guard let kind = FaultEffect.Kind(rawValue: name) else { return .error(.badRequest, "unknown fault kind \(name)") }
                core.withState { $0.faults.clear(kind: kind) }
            } else {
                core.withState { $0.faults.clear() }
            }
            return .json(faultsView())
        case (.DELETE, "faults", 2):
            guard let id = Int(path[1]) else { return .error(.badRequest, "a rule id is a number") }
            do {
                try core.withState { try $0.faults.remove(id: id) }
                return .json(faultsView())
            } catch {
                return .error(.notFound, "\(error)")
            }
        case (.POST, "clock", 1):
            guard let request = try? JSONDecoder().decode(ClockRequest.self, from: body) else {
                return .error(.badRequest, "expected {\"dc\": 1, \"offsetSeconds\": 120}")
            }
            guard abs(request.offsetSeconds) <= 315_360_000 else {
                return .error(.badRequest, "offsetSeconds must stay within ten years (±315360000)")
            }
            // Drops the DC's sessions and connections too: clients meet the new time in new sessions
            // (new_session_created, bad_msg_notification 16/17), as after a server restart.
            core.setClockOffset(request.offsetSeconds, dc: request.dc)
            return .json(faultsView())
        case (.POST, "channels", 3) where path[2] == "messages":
            guard let channelID = Int64(path[1]) else { return .error(.badRequest, "a channel id is a number") }
            guard let request = try? JSONDecoder().decode(PostRequest.self, from: body) else {
                return .error(.badRequest, "expected {\"text\": \"...\", \"fromID\": 1001 (supergroups only, optional)}")
            }
            do {
                return .json(Posted(id: try core.postToChannel(channelID, text: request.text, fromID: request.fromID)), status: .created)
            } catch {
                return .error(.badRequest, "\(error)")
            }
        case (.POST, "channels", 4) where path[2] == "messages":
            guard let channelID = Int64(path[1]), let messageID = Int32(path[3]) else { return .error(.badRequest, "channel and message ids are numbers") }
            guard let request = try? JSONDecoder().decode(PostRequest.self, from: body) else { return .error(.badRequest, "expected {\"text\": \"...\"}") }
            do {
                try core.editChannelMessage(channelID, messageID: messageID, text: request.text)
                return .json(Posted(id: messageID))
            } catch {
                return .error(.badRequest, "\(error)")
            }
        case (.POST, "messages", 1):
            guard let request = try? JSONDecoder().decode(MessageRequest.self, from: body) else {
                return .error(.badRequest, "expected {\"fromID\": 1002, \"toID\": 1001, \"text\": \"...\"}")
            }
            do {
                return .json(Posted(id: try core.sendPrivateMessage(from: request.fromID, to: request.toID, text: request.text)), status: .created)
            } catch {
                return .error(.badRequest, "\(error)")
            }
        case (.POST, "users", 3) where path[2] == "code-delivery":
            guard let id = Int64(path[1]) else { return .error(.badRequest, "expected /users/<user id>/code-delivery") }
            guard let request = try? JSONDecoder().decode(CodeDeliveryRequest.self, from: body) else {
                return .error(.badRequest, "expected {\"codeDelivery\": \"sms\"}, one of sms, email, fragment, setUpEmail")
            }
            let found = core.withState { state -> Bool in
                guard let index = state.world.users.firstIndex(where: { $0.id == id }) else { return false }
                state.world.users[index].codeDelivery = request.codeDelivery
                // A login email set up here would still take the codes: the new delivery starts clean.
                state.forgetLoginEmail(userID: id)
                return true
            }
            guard found else { return .error(.notFound, "no user \(id) in the world") }
            return .json(["codeDelivery": request.codeDelivery.rawValue])
        case (.POST, "service-notifications", 1):
            guard let request = try? JSONDecoder().decode(ServiceNotificationRequest.self, from: body) else {
                return .error(.badRequest, "expected {\"userID\": 1001, \"type\": \"AUTH_KEY_DROP_DUPLICATE\", \"message\": \"...\", \"popup\": true}")
            }
            do {
                try core.pushServiceNotification(to: request.userID, type: request.type, message: request.message, popup: request.popup ?? true)
                return .json(["pushed": true], status: .created)
            } catch {
                return .error(.badRequest, "\(error)")
            }
        case (.POST, "duplicate-key-detection", 1):
            guard let request = try? JSONDecoder().decode(ToggleRequest.self, from: body) else {
                return .error(.badRequest, "expected {\"enabled\": true}")
            }
            core.detectsDuplicateKeys = request.enabled
            return .json(faultsView())
        default:
            return .error(.notFound, "no route \(method) \(components?.path ?? uri); see docs/TESTDC.md")
        }
    }

    private func faultsView() -> FaultsView {
        core.withState { state in
            FaultsView(
                rules: state.faults.rules.map { FaultRuleView(id: $0.id, match: $0.match, effect: $0.effect, fired: state.faults.firedCount(rule: $0.id)) },
                clockOffsets: Dictionary(uniqueKeysWithValues: state.faults.clockOffsets.map { ("\($0.key)", $0.value) }),
                duplicateKeyDetection: core.detectsDuplicateKeys)
        }
    }
}

final class ControlHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: ControlAPI
    private var head: HTTPRequestHead?
    private var body = Data()
    private static let maxBody = 1 << 20

    init(api: ControlAPI) { self.api = api }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = Data()
        case .body(var buffer):
            if body.count + buffer.readableBytes <= Self.maxBody, let bytes = buffer.readBytes(length: buffer.readableBytes) {
                body.append(contentsOf: bytes)
            }
        case .end:
            guard let head else { return }
            let response = api.handle(method: head.method, uri: head.uri, body: body)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: "\(response.body.count)")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: response.status, headers: headers))), promise: nil)
            var buffer = context.channel.allocator.buffer(capacity: response.body.count)
            buffer.writeBytes(response.body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if !head.isKeepAlive { context.close(promise: nil) }
            self.head = nil
        }
    }
}
