import Foundation

/// Waiting for a person's Ctrl-C (or a service manager's SIGTERM) in the commands that run until
/// stopped (`testdc`, `sandbox --keep`).
enum Termination {
    private static let signalQueue = DispatchQueue(label: "tgsm.signals")

    /// Returns on SIGINT or SIGTERM. The default handlers are replaced first, so the signal ends
    /// the wait instead of the process and the command can shut down in order.
    static func wait() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = SignalOnce(continuation)
            for number in [SIGINT, SIGTERM] {
                let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
                source.setEventHandler { once.fire() }
                source.resume()
                once.keep(source)
            }
        }
    }
}

/// Resumes the continuation on the first signal; keeps the signal sources alive meanwhile.
private final class SignalOnce: @unchecked Sendable {
    // Touched only on the signal queue and once before the sources fire.
    private var continuation: CheckedContinuation<Void, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    func keep(_ source: any DispatchSourceSignal) { sources.append(source) }

    func fire() {
        continuation?.resume()
        continuation = nil
        for source in sources { source.cancel() }
    }
}
