import MTProto
import MTProtoNIO

/// Everything `invoke` can fail with. Each case says what happened; `description` adds why and what
/// to do; `advice` gives the decision as a value for middlewares (wait, migrate, log in again...).
public enum TelegramError: Error, Sendable, CustomStringConvertible {
    /// The server answered the request with rpc_error (after the client followed what it follows
    /// by itself: migrations, bad salts, clock corrections).
    case rpc(RPCError, method: String)
    /// The server closed the transport with an error code instead of a packet
    /// (-404 auth key not found, -429 too many connections, -444 invalid DC, -403 forbidden).
    case transport(TransportErrorCode, dc: Int)
    /// No connection to the DC could be made within the reconnect budget. `delivery` says how far
    /// the call had got: `.notSent` when it never reached a connection (it did not run), nil when
    /// it may have been written before the link was lost.
    case connectionFailed(dc: Int, attempts: Int, reason: String, delivery: RequestDelivery? = nil)
    /// The configured proxy refused this client (a wrong user name or password, a wrong fake-TLS
    /// secret): no connection is tried again through it until the proxy changes
    /// (`TelegramClient.changeProxy`) or a later call tries once more. `delivery` as for
    /// `connectionFailed`.
    case proxyRefused(dc: Int, reason: String, delivery: RequestDelivery? = nil)
    /// The key exchange with the DC failed.
    case handshakeFailed(dc: Int, reason: String)
    /// No answer within the timeout. `delivery` says how far the request got: only a request that
    /// never left the client certainly did not run.
    case timeout(method: String, seconds: Double, delivery: RequestDelivery)
    /// The calling task was cancelled; the server was told to drop the answer if it was sent.
    case cancelled(method: String, delivery: RequestDelivery)
    /// The request reached the server but its outcome is unknown and the client stopped waiting:
    /// it may have run. See `InDoubtReason`.
    case inDoubt(method: String, reason: InDoubtReason)
    /// The answer arrived but could not be decoded as the method's result type.
    case undecodableResult(method: String, reason: String)
    /// The DC answered FLOOD_WAIT for this method (in this chat: `InvokeOptions.floodScope`) on this
    /// connection and the wait has `seconds` left, so the connection did not send the call, or did
    /// not send it again when the DC reported it unprocessed: a call during the wait would only be
    /// refused and may lengthen it. It did not run, unless `mayHaveRun`: an earlier send of it was
    /// in a server session that ended before it was answered.
    case floodWaitHeld(method: String, seconds: Int, mayHaveRun: Bool)
    /// The server refused the message at the MTProto level (bad_msg_notification that a resend
    /// cannot fix); this is a client bug.
    case rejected(method: String, reason: String)
    /// The client was closed while the request was pending, or `invoke` was called after `close()`.
    case closed
    /// A DC id that neither the static table nor help.getConfig's dc_options knows.
    case unknownDC(Int)
    /// Too many `*_MIGRATE_X` in a row for one request: the servers disagree about where it belongs.
    case migrationLoop(method: String, dcs: [Int])
    /// The session storage failed to load or save; `cause` is what the storage threw, for a layer
    /// that knows its type (the session manager reads its store's kind of failure from it).
    case storage(reason: String, cause: (any Error)? = nil)
    /// A layer wrapping the client (a middleware: flood-wait ledger, rate gate, breaker, the guard
    /// of a dead session) ended the call itself, usually without touching the network. The value
    /// carries its own stable code, facts and recovery steps.
    case middleware(any TelegramMiddlewareError)

    /// The decision a middleware or an operator acts on.
    public var advice: RPCErrorAdvice? {
        switch self {
        case .rpc(let error, _): error.advice
        case .transport(let code, _):
            switch code.rawValue {
            case -404: .newAuthKey
            case -429: .wait(seconds: 1, reason: .other)
            default: .retryLater
            }
        case .timeout, .connectionFailed: .retryLater
        case .floodWaitHeld(_, let seconds, _): .wait(seconds: seconds, reason: .flood)
        case .inDoubt: nil  // repeating may run it twice: only the caller knows whether that is safe
        case .middleware(let error): error.advice
        default: nil
        }
    }

    /// How far the failed request got, when the failure is about one request: `.notSent` means it
    /// certainly did not run; `.sent` and `.received` mean it may have. Nil for failures of the
    /// connection as a whole.
    public var delivery: RequestDelivery? {
        switch self {
        case .timeout(_, _, let delivery), .cancelled(_, let delivery): delivery
        case .inDoubt: .received
        case .floodWaitHeld(_, _, let mayHaveRun): mayHaveRun ? .sent : .notSent
        // A middleware refuses before the call reaches a connection (a flood wait, a rate gate).
        case .handshakeFailed, .unknownDC, .migrationLoop, .storage, .middleware: .notSent
        case .rpc, .undecodableResult, .rejected: .received
        case .connectionFailed(_, _, _, let delivery), .proxyRefused(_, _, let delivery): delivery
        case .transport, .closed: nil
        }
    }

    /// A sentence put inside parentheses: without its closing period.
    package static func clause(_ text: String) -> String {
        text.hasSuffix(".") ? String(text.dropLast()) : text
    }

    /// The RPC error, if the server answered with one.
    public var rpcError: RPCError? {
        if case .rpc(let error, _) = self { return error }
        return nil
    }

    public var description: String {
        switch self {
        case .rpc(let error, let method):
            "\(method) failed: \(error)"
        case .transport(let code, let dc):
            switch code.rawValue {
            case -404:
                "DC \(dc) closed the connection with transport error -404: it does not know this auth key (it was "
                    + "destroyed or belongs to another server); delete the stored key for this DC, and log in again if it was the home DC"
            case -429:
                "DC \(dc) closed the connection with transport error -429: too many connections or requests from this "
                    + "address; the client backs off and reconnects, open fewer connections"
            case -444:
                "DC \(dc) closed the connection with transport error -444: invalid DC id when connecting; check the DC table"
            default:
                "DC \(dc) closed the connection with transport error \(code.rawValue) (\(code)); reconnect later"
            }
        case .connectionFailed(let dc, let attempts, let reason, _):
            "could not connect to DC \(dc) after \(attempts) attempts (\(reason)): check the address in the DC table, "
                + "the network and the proxy, if one is configured; the client gives up to let the caller decide when to try again"
        case .proxyRefused(let dc, let reason, _):
            "the proxy refused the connection to DC \(dc) (\(Self.clause(reason))): it refuses every connection until its settings "
                + "are fixed, so this call was not tried again; correct the proxy link (or change the proxy)"
        case .handshakeFailed(let dc, let reason):
            "the key exchange with DC \(dc) failed (\(reason)): the server is not a genuine Telegram DC for the "
                + "configured RSA keys, or the connection was corrupted; check the server keys and address"
        case .timeout(let method, let seconds, let delivery):
            switch delivery {
            case .notSent:
                "\(method) got no answer within \(seconds) s and never left the client (no connection was ready), so it "
                    + "did not run; check the connection to the DC, then repeat it or raise the timeout"
            case .sent, .received:
                "\(method) got no answer within \(seconds) s after it was \(delivery); the server may still run it, so "
                    + "repeat it only if it is safe to repeat, or raise the timeout"
            }
        case .cancelled(let method, let delivery):
            switch delivery {
            case .notSent: "\(method) was cancelled by its caller before it was sent: it did not run"
            case .sent, .received:
                "\(method) was cancelled by its caller after it was \(delivery); the server was asked to drop the answer, "
                    + "but may still have run it"
            }
        case .floodWaitHeld(let method, let seconds, let mayHaveRun):
            "\(method) was not sent: the DC answered FLOOD_WAIT for it on this connection and the wait has \(seconds) s left "
                + "(a call during the wait is refused and may lengthen it), so "
                + (mayHaveRun ? "it was not sent again after the DC ended the session that carried it (it may have run there); " : "it did not run; ")
                + "repeat it after \(seconds) s"
        case .inDoubt(let method, let reason):
            "\(method) may have run: \(reason). Check the result on the server (e.g. read the chat history) before "
                + "repeating it, unless it is safe to repeat"
        case .undecodableResult(let method, let reason):
            "the answer to \(method) could not be decoded (\(reason)): the server speaks another API layer or sent "
                + "a corrupt answer; the request did run"
        case .rejected(let method, let reason):
            "the server refused the message carrying \(method) (\(reason)); this is a client bug, report it"
        case .closed:
            "the client is closed: create a new one (or call connect again) to send requests"
        case .unknownDC(let dc):
            "DC \(dc) is neither in the static DC table nor in help.getConfig's dc_options; add its address to the configuration"
        case .migrationLoop(let method, let dcs):
            "\(method) was sent to DC after DC (\(dcs.map(String.init).joined(separator: " → "))) by *_MIGRATE_X "
                + "answers without settling; the DCs disagree, try again later"
        case .storage(let reason, _):
            "the session storage failed (\(reason)); check the store, the session continues in memory"
        case .middleware(let error):
            error.description
        }
    }
}

/// How far a request got before it failed.
public enum RequestDelivery: Sendable, Hashable, CustomStringConvertible {
    /// Never written to a connection: it did not run.
    case notSent
    /// Written to a connection; the server never confirmed receiving it.
    case sent
    /// The server confirmed receiving it (msgs_ack or msgs_state_info) but sent no answer.
    case received

    public var description: String {
        switch self {
        case .notSent: "not sent"
        case .sent: "sent (the server never confirmed it)"
        case .received: "received by the server (it confirmed)"
        }
    }
}

/// Why a request ended in doubt rather than with an answer or a plain timeout.
public enum InDoubtReason: Sendable, Hashable, CustomStringConvertible {
    /// The server reported the request received (msgs_state_info), then neither answered within
    /// `waited` seconds nor after being asked again (msg_resend_ans_req).
    case noAnswerAfterReceipt(waited: Double)
    /// The server started a new session (new_session_created or a seq_no reset) while the request
    /// was pending, so its answer is lost, and the resend policy does not repeat this method.
    case sessionChanged
    /// Asked about the request, the server said it knows nothing of it (msgs_state_info status 1:
    /// its msg_id is below what the server remembers), so it may have run and been forgotten; the
    /// resend policy does not repeat this method.
    case forgottenByServer

    /// Stable, for logs and facts.
    public var code: String {
        switch self {
        case .noAnswerAfterReceipt: "no_answer_after_receipt"
        case .sessionChanged: "session_changed"
        case .forgottenByServer: "forgotten_by_server"
        }
    }

    public var description: String {
        switch self {
        case .noAnswerAfterReceipt(let waited):
            "the server confirmed it received the request, then sent no answer within \(waited) s, even when asked again"
        case .sessionChanged:
            "the server started a new session while the request was pending and it is not marked safe to repeat "
                + "(TelegramClientConfiguration.resendPolicy)"
        case .forgottenByServer:
            "asked about the request, the server said it no longer knows it (it may have run and been forgotten), "
                + "and it is not marked safe to repeat (TelegramClientConfiguration.resendPolicy)"
        }
    }
}

/// An error raised by a middleware around `TelegramInvoking` rather than by the client or the
/// server. The client cannot know the layers above it, so they plug their errors in here.
public protocol TelegramMiddlewareError: Error, Sendable, CustomStringConvertible {
    /// A stable identifier operators can search for, e.g. "TGSM-RATE-001".
    var code: String { get }
    /// The decision for a caller, when one of the client's advices fits (e.g. `.wait`).
    var advice: RPCErrorAdvice? { get }
}
