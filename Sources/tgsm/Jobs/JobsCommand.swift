import ArgumentParser
import Foundation
import MTProto
import OperatorHTTP
import SessionManager
import Workers

/// `tgsm jobs …`: the durable job queue beside the store (jobs.sqlite).
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Enqueue, list, show, retry, cancel, purge and salvage jobs in the durable queue.",
        subcommands: [JobsEnqueueCommand.self, JobsListCommand.self, JobsShowCommand.self, JobsRetryCommand.self, JobsCancelCommand.self,
                      JobsPurgeCommand.self, JobsSalvageCommand.self]
    )
}

/// A job as listed: everything but its claim token.
struct JobView: Codable {
    var id: Int64
    var kind: String
    var account: String
    var state: String
    var priority: Int
    var runAt: String
    var attempts: Int
    var maxAttempts: Int
    var deferrals: Int
    var idempotencyKey: String?
    var leaseOwner: String?
    var lastError: String?
    var createdAt: String
    var finishedAt: String?
    /// The payload as text (JSON for the built-in kinds).
    var payload: String
    var result: String?

    init(_ job: Job) {
        id = job.id.rawValue
        kind = job.kind.rawValue
        account = job.account.rawValue
        state = job.state.rawValue
        priority = job.priority
        runAt = TimeText.iso(job.runAt)
        attempts = job.attempts
        maxAttempts = job.maxAttempts
        deferrals = job.deferrals
        idempotencyKey = job.idempotencyKey
        leaseOwner = job.leaseOwner
        lastError = job.lastError
        createdAt = TimeText.iso(job.createdAt)
        finishedAt = job.finishedAt.map(TimeText.iso)
        payload = String(decoding: job.payload, as: UTF8.self)
        result = job.result.map { String(decoding: $0, as: UTF8.self) }
    }
}

extension JobState: ExpressibleByArgument {}

/// `tgsm jobs enqueue --kind K --account A [--payload JSON] …`
struct JobsEnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Store a job (kinds built in: history, send, resolve, me; see docs/WORKERS.md for payloads).",
        discussion: "With --idempotency-key, repeating the command creates nothing and answers the first job's id (exit 0)."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("kind"), help: "The job kind (history, send, resolve, me, or a registered one).")
    var kind: String

    @Option(name: .customLong("account"), help: "The account that runs it.")
    var account: String

    @Option(name: .customLong("payload"), help: ArgumentHelp(
        "The payload as JSON (default {}); - reads it from standard input (a large payload, or one a program writes).", valueName: "json"))
    var payload = "{}"

    @Option(name: .customLong("priority"), help: "Higher runs first among due jobs.")
    var priority = 0

    @Option(name: .customLong("run-at"), help: ArgumentHelp("Not before: +SECONDS from now, Unix seconds, or ISO 8601 (2026-12-03T05:00:00Z).", valueName: "time"))
    var runAt: String?

    @Option(name: .customLong("idempotency-key"), help: "A key unique over the queue: a repeat enqueues nothing.")
    var idempotencyKey: String?

    @Option(name: .customLong("max-attempts"), help: "Attempts before the dead letters.")
    var maxAttempts = 5

    struct Result: Codable {
        var id: Int64
        var created: Bool
        /// Not created: the job that holds the key, and whether it is the one asked for (same kind
        /// and account); a script that reads only `id` would otherwise take another job for its own.
        var kind: String? = nil
        var account: String? = nil
        var state: String? = nil
        var sameJob: Bool? = nil
    }

    func validate() throws {
        try PrintedName.check(kind, option: "--kind", blank: "--kind must not be empty")
        try AccountName.check(account)
        if let idempotencyKey {
            try PrintedName.check(idempotencyKey, option: "--idempotency-key",
                                  blank: "--idempotency-key must not be empty (an unset variable?): every job given the empty key would be one job; leave the option out for none")
        }
        guard (1...1000).contains(maxAttempts) else { throw ValidationError("--max-attempts must be between 1 and 1000") }
        if payload != "-" { try Self.checkJSON(Data(payload.utf8)) }
        if let runAt, Self.parseTime(runAt, now: UnixTime(seconds: 0)) == nil {
            throw ValidationError("--run-at must be +SECONDS, Unix seconds or ISO 8601 (e.g. 2026-12-03T05:00:00Z), in decimal digits and before the year 10000")
        }
    }

    static func checkJSON(_ bytes: Data) throws(ValidationError) {
        guard (try? JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])) != nil else {
            throw ValidationError("--payload is not valid JSON, e.g. '{\"username\": \"testnews\"}'")
        }
    }

    /// The payload's bytes: the option's text, or standard input for `-`, which must be UTF-8 (a
    /// text given on the command line reaches tgsm already decoded, bad bytes as U+FFFD; read here,
    /// they are refused rather than sent as replacement characters).
    private func payloadBytes() throws(CLIFailure) -> Data {
        guard payload == "-" else { return Data(payload.utf8) }
        let bytes = FileHandle.standardInput.readDataToEndOfFile()
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw CLIFailure(.usage, "--payload -: standard input is not UTF-8 text; nothing was enqueued")
        }
        do { try Self.checkJSON(bytes) } catch {
            throw CLIFailure(.usage, "--payload -: standard input is not valid JSON (\(bytes.count) bytes read); nothing was enqueued")
        }
        return bytes
    }

    /// The latest instant a job may be put off to: the end of year 9999 (ISO 8601's last year).
    static let latestRunAt = 253_402_300_799.0

    static func parseTime(_ text: String, now: UnixTime) -> UnixTime? {
        // Decimal digits only: Swift's Double also reads "0x10" (16) and "1e308".
        func seconds(_ text: Substring) -> Double? {
            guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }), let value = Double(text),
                  value <= latestRunAt else { return nil }
            return value
        }
        if text.hasPrefix("+"), let offset = seconds(text.dropFirst()), now.seconds + offset <= latestRunAt { return now + offset }
        if let value = seconds(text[...]) { return UnixTime(seconds: value) }
        if let date = try? Date(text, strategy: .iso8601) { return UnixTime(seconds: date.timeIntervalSince1970) }
        return nil
    }

    /// The kinds `tgsm run` has workers for: a job of any other kind waits for a worker of the
    /// user's own (a program on the library), and is most often a typo.
    static let builtInKinds: [JobKind] = [HistoryJob.kind, SendJob.kind, ResolveJob.kind, MeJob.kind]

    func run() async throws {
        let now = global.now()
        let payloadBytes = try payloadBytes()
        if let problem = BuiltInPayloads.problem(kind: JobKind(kind), payload: payloadBytes) {
            throw CLIFailure(.usage, "the payload is not one a \(kind) job runs: \(problem); nothing was enqueued (docs/WORKERS.md lists each kind's fields)")
        }
        try refuseAMissingStoreDirectory()
        warnIfNotBuiltIn()
        await warnIfUnknownAccount()
        guard let (queue, close) = try await StoreAccess.queue(global, creating: true) else {
            throw CLIFailure(.failure, "the job queue could not be opened; run `tgsm check`")
        }
        let job = NewJob(kind: JobKind(kind), account: AccountID(account), payload: payloadBytes, priority: priority,
                         runAt: runAt.flatMap { Self.parseTime($0, now: now) }, idempotencyKey: idempotencyKey, maxAttempts: maxAttempts)
        let outcome: EnqueueOutcome
        do { outcome = try await queue.enqueue(job, now: now) } catch {
            await close()
            throw CLIFailure(error)
        }
        // The job that holds the key, read on the same connection (not a second open of the queue).
        let first: Job? = if case .created = outcome { nil } else { try? await queue.job(outcome.id) }
        await close()
        let created = if case .created = outcome { true } else { false }
        let terminal = Terminal.standard
        if output.json {
            var result = Result(id: outcome.id.rawValue, created: created)
            if let first {
                result.kind = first.kind.rawValue
                result.account = first.account.rawValue
                result.state = first.state.rawValue
                result.sameJob = first.kind.rawValue == kind && first.account.rawValue == account
            }
            try terminal.json(result)
            if result.sameJob == false { warnAnotherJobHoldsTheKey() }
            return
        }
        if created {
            terminal.line("\(terminal.paint("enqueued", .green)) job \(outcome.id.rawValue) (\(kind) for \(account))")
        } else {
            let what = first.map { " (\($0.kind.rawValue) for \($0.account.rawValue), \($0.state.rawValue))" } ?? ""
            terminal.line("already enqueued: job \(outcome.id.rawValue)\(what) has idempotency key \(idempotencyKey ?? ""); nothing was added")
            if let first, first.kind.rawValue != kind || first.account.rawValue != account { warnAnotherJobHoldsTheKey() }
        }
    }

    private func warnAnotherJobHoldsTheKey() {
        Terminal.standard.warning("that key belongs to a job of another kind or account: this \(kind) job for \(account) was not added. "
            + "Give it a key of its own (a key stays taken until its job is purged, 7 days after it finished by default)")
    }

    /// A kind no built-in worker runs: said, not refused (a program of the user's own may run it).
    private func warnIfNotBuiltIn() {
        guard !Self.builtInKinds.contains(JobKind(kind)) else { return }
        let names = Self.builtInKinds.map(\.rawValue)
        let near = names.min { Self.distance($0, kind) < Self.distance($1, kind) }.flatMap { Self.distance($0, kind) <= 2 ? $0 : nil }
        Terminal.standard.warning("\(kind) is not a kind tgsm run has workers for (\(names.joined(separator: ", ")))"
            + (near.map { "; did you mean \($0)?" } ?? ".") + " The job waits for a worker of your own that registers it; "
            + "`tgsm jobs cancel ID` ends it otherwise")
    }

    /// Edits (insert, delete, replace) between two short words.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var previous = row[0]
            row[0] = i + 1
            for (j, y) in b.enumerated() {
                let current = row[j + 1]
                row[j + 1] = min(row[j + 1] + 1, row[j] + 1, previous + (x == y ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }

    /// A store directory that does not exist is a mistyped --store or TGSM_HOME far more often than
    /// a new store: the job would wait in a queue no worker reads, and the command said
    /// "enqueued". Nothing is created.
    private func refuseAMissingStoreDirectory() throws(CLIFailure) {
        guard global.postgresURL == nil else { return }
        let directory = try global.storeDirectory()
        guard !FileManager.default.fileExists(atPath: directory) else { return }
        throw CLIFailure(.notFound, "there is no store at \(directory): a job queued there would wait for workers that never read it, so "
            + "nothing was enqueued. Point --store or TGSM_HOME at the store directory the workers use, or start the store by logging "
            + "an account in (`tgsm auth --account NAME`) or importing a session (`tgsm session import --account NAME FILE`).")
    }

    /// A job for an account the store does not know waits forever: say so, but allow it (the
    /// account may be imported next).
    private func warnIfUnknownAccount() async {
        if global.postgresURL != nil {
            guard let (store, _, close) = try? await StoreAccess.sessionStore(global, creating: false) else { return }
            let known = (try? await store.accounts()) ?? []
            await close()
            if !known.contains(AccountID(account)) {
                Terminal.standard.warning("account \(account) is not in the store; the job waits until a worker serves that account "
                    + "(import its session with `tgsm session import`)")
            }
            return
        }
        // Only a store that opens as it is: enqueueing must not set off a restore as a side effect.
        guard let directory = try? global.storeDirectory() else { return }
        let inspection = SQLiteSessionStore.inspectFile(directory: directory, options: global.storeOptions())
        if case .absent = inspection, SQLiteSessionStore.backupsOnDisk(directory: directory).isEmpty {
            Terminal.standard.warning("there is no session store in \(directory) yet; the job waits until \(account) is logged in "
                + "(`tgsm auth`) or imported (`tgsm session import`) here and a worker serves it")
            return
        }
        guard case .good(let sequence) = inspection,
              !SQLiteSessionStore.backupsOnDisk(directory: directory).contains(where: { $0.commitSequence > sequence }),
              let store = try? SQLiteSessionStore.open(directory: directory, options: global.storeOptions())
        else { return }
        defer { try? store.close() }
        let known = (try? await store.accounts()) ?? []
        if !known.contains(AccountID(account)) {
            Terminal.standard.warning("account \(account) is not in the store \(directory); the job waits until a worker serves that account "
                + "(import its session with `tgsm session import`)")
        }
    }
}

/// `tgsm jobs list [--state S]… [--account A]… [--limit N]`
struct JobsListCommand: AsyncParsableCommand {
    /// `text` cut to `count` characters at a word's end where one is near, marked with "…".
    /// A job's last error in a table cell: Telegram's error name first when the cut would lose it
    /// ("contacts.resolveUsername failed: RPC error 400…" hid USERNAME_NOT_OCCUPIED).
    static func errorCell(_ error: String, width: Int) -> String {
        let shown = cut(error, to: width)
        guard shown != error, let match = error.firstMatch(of: /[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+/) else { return shown }
        let name = String(match.output)
        return shown.contains(name) ? shown : cut(name + ": " + error, to: width)
    }

    static func cut(_ text: String, to count: Int) -> String {
        guard text.count > count else { return text }
        let head = text.prefix(count - 1)
        let word = head.lastIndex(of: " ").map { head[..<$0] } ?? head
        return String(word.count >= count / 2 ? word : head) + "…"
    }

    static let configuration = CommandConfiguration(commandName: "list", abstract: "List jobs, newest first.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("state"), help: "queued, running, completed, dead or cancelled (default: all); repeat for several.")
    var states: [JobState] = []

    @Option(name: .customLong("account"), help: "Only this account's jobs; repeat for several.")
    var accounts: [String] = []

    @Option(name: .customLong("limit"), help: "At most this many.")
    var limit = 50

    func validate() throws {
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
    }

    func run() async throws {
        var jobs: [Job] = []
        // How many match in all, when the limit cut the list: a table of the newest 50 looked like the whole queue.
        var matching: Int?
        if let (queue, close) = try await StoreAccess.queue(global, creating: false) {
            // One query per state and account asked for (the queue answers one of each), merged newest first.
            let stateFilters: [JobState?] = states.isEmpty ? [nil] : Array(Set(states))
            let accountFilters: [AccountID?] = accounts.isEmpty ? [nil] : Array(Set(accounts)).map { AccountID($0) }
            do {
                for state in stateFilters {
                    for account in accountFilters { jobs += try await queue.jobs(state: state, account: account, limit: limit) }
                }
                if jobs.count >= limit {
                    var total = 0
                    for account in accountFilters {
                        let counts = try await queue.counts(account: account)
                        total += (states.isEmpty ? JobState.allCases : Array(Set(states))).reduce(0) { $0 + counts[$1] }
                    }
                    matching = total
                }
            } catch {
                await close()
                throw CLIFailure(error)
            }
            await close()
            jobs = Array(jobs.sorted { $0.id.rawValue > $1.id.rawValue }.prefix(limit))
        }
        let views = jobs.map(JobView.init)
        let terminal = Terminal.standard
        if output.json { try terminal.json(views); return }
        guard !views.isEmpty else {
            terminal.line("no jobs")
            return
        }
        terminal.table(["ID", "KIND", "ACCOUNT", "STATE", "PRIO", "RUN AT", "ATTEMPTS", "LAST ERROR"], views.map { view in
            let color: Terminal.Color? = switch view.state {
            case "dead": .red
            case "completed": .green
            case "running": .yellow
            default: nil
            }
            return [(String(view.id), nil), (view.kind, nil), (view.account, nil), (view.state, color), (String(view.priority), nil),
                    // A finished job's last error is from an earlier attempt: read as its present state it misled (JSON keeps it).
                    (view.runAt, nil), ("\(view.attempts)/\(view.maxAttempts)", nil),
                    (view.state == "completed" ? "-" : view.lastError.map { Self.errorCell($0, width: 60) } ?? "-", nil)]
        })
        if let matching, matching > views.count {
            terminal.line(terminal.paint("the newest \(views.count) of \(matching) matching jobs; --limit N shows more, --state and --account narrow it", .dim))
        }
    }
}

/// `tgsm jobs show ID`: one job whole, with every change of its state the queue kept (a week) and
/// what to do about it. Before, `list` gave the row alone: why a job retried three times before it
/// died, or what deferred it, was in the dashboard's last hour of errors or nowhere.
struct JobsShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "One job in full: its payload, result and last error, every change of its state (kept a week), and what to do.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The job's id.")
    var id: Int64

    struct Change: Codable {
        var at: String
        var event: String
        var error: String?
    }

    struct Result: Codable {
        var job: JobView
        /// Whether the payload is text (else `job.payload` is empty and `payloadBytes` says its size).
        var payloadIsText: Bool
        var payloadBytes: Int
        var leaseUntil: String?
        var history: [Change]
        var whatToDo: [String]
    }

    func run() async throws {
        guard let (queue, close) = try await StoreAccess.queue(global, creating: false) else {
            throw CLIFailure(.notFound, "there is no job queue in \(try global.storeDirectory()) (jobs.sqlite)")
        }
        let job: Job
        let history: [JobHistoryEntry]
        do throws(JobQueueError) {
            guard let found = try await queue.job(JobID(id)) else { throw .notFound(JobID(id)) }
            job = found
            history = try await (queue as? any JobHistoryReading)?.history(of: job.id) ?? []
        } catch {
            await close()
            throw CLIFailure(error)
        }
        await close()
        let text = String(validating: job.payload, as: UTF8.self)
        var view = JobView(job)
        if text == nil { view.payload = "" }
        let result = Result(job: view, payloadIsText: text != nil, payloadBytes: job.payload.count, leaseUntil: job.leaseUntil.map(TimeText.iso),
                            history: history.map { Change(at: TimeText.iso($0.at), event: $0.event.rawValue, error: $0.error) },
                            whatToDo: Self.whatToDo(job, history: history, now: global.now()))
        let terminal = Terminal.standard
        if output.json { try terminal.json(result); return }
        let color: Terminal.Color? = switch job.state {
        case .dead: .red
        case .completed: .green
        case .running: .yellow
        default: nil
        }
        terminal.line("job \(job.id.rawValue): \(job.kind.rawValue) for \(job.account.rawValue), " + (color.map { terminal.paint(job.state.rawValue, $0) } ?? job.state.rawValue)
            + " (attempt \(job.attempts) of \(job.maxAttempts)" + (job.deferrals > 0 ? ", deferred \(job.deferrals) time\(job.deferrals == 1 ? "" : "s")" : "") + ")")
        terminal.line("  created \(view.createdAt), runs at \(view.runAt)" + (view.finishedAt.map { ", finished \($0)" } ?? "")
            + (job.priority != 0 ? ", priority \(job.priority)" : ""))
        if let key = job.idempotencyKey { terminal.line("  idempotency key: \(key)") }
        if job.state == .running, let owner = job.leaseOwner {
            terminal.line("  held by \(owner)" + (result.leaseUntil.map { " until \($0)" } ?? ""))
        }
        terminal.line("  payload: " + (text.map { $0.isEmpty ? "(none)" : $0 } ?? "\(job.payload.count) bytes, not text"))
        if let progress = job.progress { terminal.line("  progress: " + (String(validating: progress, as: UTF8.self) ?? "\(progress.count) bytes")) }
        if let result = view.result { terminal.line("  result: \(result)") }
        if let error = job.lastError { terminal.line("  last error" + (job.state == .completed ? " (of an earlier attempt)" : "") + ": \(error)") }
        terminal.line(history.isEmpty ? "no changes kept (the queue keeps a week of them)" : "changes, oldest first (the queue keeps a week of them):")
        for change in history {
            terminal.line("  \(TimeText.iso(change.at))  \(change.event.rawValue)" + (change.error.map { ": \($0)" } ?? ""))
        }
        if !result.whatToDo.isEmpty {
            terminal.line("what to do:")
            for (index, step) in result.whatToDo.enumerated() { terminal.line("  \(index + 1). \(step)") }
        }
    }

    /// What a person can do about the job as it stands: the dashboard's guidance for the change
    /// that put it there, else what its state says.
    static func whatToDo(_ job: Job, history: [JobHistoryEntry], now: UnixTime) -> [String] {
        let id = job.id.rawValue
        switch job.state {
        case .dead:
            return Dashboard.guidance(for: JobHistoryEntry(at: job.updatedAt, job: job.id, account: job.account, kind: job.kind, event: .dead,
                                                           depthDelta: 0, error: job.lastError))
        case .cancelled:
            return ["Cancelled: nothing runs it. `tgsm jobs retry \(id)` queues it again with fresh attempts."]
        case .completed:
            return []
        case .running:
            return ["A worker runs it now. If that process is gone, the next claim after its lease ends rescues it (the attempt stays spent)."]
        case .queued:
            var steps: [String] = []
            if let last = history.last, [.retried, .deferred, .rescued].contains(last.event) { steps += Dashboard.guidance(for: last) }
            steps.append(job.runAt > now
                ? "Waits until \(TimeText.iso(job.runAt)) (\(TimeText.remaining(job.runAt - now))), then runs in a `tgsm run` serving \(job.account.rawValue)."
                : "Due: it runs when a `tgsm run` serving \(job.account.rawValue) has a free slot (`tgsm status` says whether one serves it).")
            return steps
        }
    }
}

/// Applies an operator's change to each id; reports every failure, exits with the first's code.
private func changeJobs(_ ids: [Int64], global: GlobalOptions, verb: String,
                        _ change: (any JobQueue, JobID, UnixTime) async throws(JobQueueError) -> Void) async throws(CLIFailure) {
    guard let (queue, close) = try await StoreAccess.queue(global, creating: false) else {
        throw CLIFailure(.notFound, "there is no job queue in \(try global.storeDirectory()) (jobs.sqlite); no job was \(verb)")
    }
    var first: CLIFailure?
    let terminal = Terminal.standard
    for id in ids {
        do {
            try await change(queue, JobID(id), global.now())
            terminal.line("\(verb): job \(id)")
        } catch {
            let failure = CLIFailure(error)
            terminal.error(failure.message)
            if first == nil { first = failure }
        }
    }
    await close()
    if let first { throw CLIFailure(first.exit, "\(ids.count > 1 ? "some jobs were not changed" : "the job was not changed") (see above)") }
}

/// `tgsm jobs retry ID…`
struct JobsRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "Queue dead or cancelled jobs again, with fresh attempts.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Job ids.")
    var ids: [Int64]

    func validate() throws { if ids.isEmpty { throw ValidationError("give at least one job id") } }

    func run() async throws {
        try await changeJobs(ids, global: global, verb: "requeued") { queue, id, now throws(JobQueueError) in try await queue.requeue(id, now: now) }
    }
}

/// `tgsm jobs cancel ID…`
struct JobsCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel queued or dead jobs (a running job is left alone).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Job ids.")
    var ids: [Int64]

    func validate() throws { if ids.isEmpty { throw ValidationError("give at least one job id") } }

    func run() async throws {
        try await changeJobs(ids, global: global, verb: "cancelled") { queue, id, now throws(JobQueueError) in try await queue.cancel(id, now: now) }
    }
}

/// `tgsm jobs purge [--older-than SECONDS] [--state S]… [--dry-run]`: what `tgsm run` does every
/// hour (`--job-retention`), by hand: for a queue no run serves, or dead letters a person has read.
struct JobsPurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete finished jobs: completed and cancelled ones (and dead letters, when named) that finished long enough ago.",
        discussion: """
            `tgsm run` removes completed and cancelled jobs 7 days after they finished (--job-retention). Dead letters stay until \
            a person retries, cancels or purges them: --state dead deletes them, and with them the only record of what failed. \
            A purged job's idempotency key can be used again. Queued and running jobs are never touched.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("older-than"), help: ArgumentHelp("Only jobs that finished at least this many seconds ago (default: 7 days).", valueName: "seconds"))
    var olderThan: Double = JobRetention.defaultFinishedFor

    @Option(name: .customLong("state"), help: ArgumentHelp("completed, cancelled or dead (repeatable; default: completed and cancelled).", valueName: "state"))
    var states: [JobState] = []

    @Flag(name: .customLong("dry-run"), help: "Count what would be deleted; delete nothing.")
    var dryRun = false

    struct Result: Codable {
        var removed: Int
        var dryRun: Bool
        var states: [String]
        var finishedBefore: String
    }

    func validate() throws {
        guard olderThan >= 0, olderThan <= 100 * 365 * 86_400 else {
            throw ValidationError("--older-than must be a number of seconds from 0 to 100 years (3153600000)")
        }
        if let live = states.first(where: { !JobPurge.finishedStates.contains($0) }) {
            throw ValidationError("--state \(live.rawValue) is a job that has not finished; only completed, cancelled and dead jobs can be purged "
                + "(cancel a queued job first)")
        }
    }

    func run() async throws {
        let chosen = states.isEmpty ? Set<JobState>([.completed, .cancelled]) : Set(states)
        let before = UnixTime(seconds: global.now().seconds - olderThan)
        guard let purge = JobPurge(states: chosen, finishedBefore: before) else {
            throw CLIFailure(.usage, "nothing to purge: name completed, cancelled or dead with --state")
        }
        let names = chosen.map(\.rawValue).sorted()
        let terminal = Terminal.standard
        guard let (queue, close) = try await StoreAccess.queue(global, creating: false) else {
            if output.json { try terminal.json(Result(removed: 0, dryRun: dryRun, states: names, finishedBefore: TimeText.iso(before))); return }
            terminal.line("no job queue in \(try global.storeDirectory()) (jobs.sqlite): nothing to purge")
            return
        }
        let count: Int
        do {
            count = dryRun ? try await queue.countPurgeable(purge) : try await queue.purgeAll(purge)
        } catch {
            await close()
            throw CLIFailure(error)
        }
        await close()
        if output.json { try terminal.json(Result(removed: count, dryRun: dryRun, states: names, finishedBefore: TimeText.iso(before))); return }
        let jobs = "\(count) \(names.joined(separator: "/")) job\(count == 1 ? "" : "s")"
        terminal.line(dryRun ? "would delete \(jobs) that finished before \(TimeText.iso(before)) (dry run: nothing deleted)"
                             : "deleted \(jobs) that finished before \(TimeText.iso(before))")
    }
}

/// `tgsm jobs salvage`: a damaged jobs.sqlite rebuilt from what still reads in it, with the ids
/// of the jobs that may be lost named.
struct JobsSalvageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "salvage",
        abstract: "Rebuild a damaged job queue (jobs.sqlite) from what still reads in it; the damaged file is kept aside as found.",
        discussion: """
            Every job that reads is kept as it was (state, attempts, idempotency key) with its history; a job a worker held \
            is queued again, as at its claim's end (its worker stopped with the damaged file). The message archive that \
            shares the file comes along too; ids are never given out again. Jobs are read by id from both ends, so the ids that may be lost are exactly those between the two \
            places reading broke off: they are named, to be enqueued again where they had not finished (their idempotency keys \
            are free). Refused, with nothing changed, for a queue that is not damaged and while a process has the file open. \
            Exit codes: 0 salvaged, 1 refused or failed, 2 on PostgreSQL, 4 no queue file (docs/CLI.md).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    struct Result: Codable {
        var jobsKept: Int
        var jobsKeptByState: [String: Int]
        var jobsReadInFull: Bool
        var possiblyLostFrom: Int64?
        var possiblyLostThrough: Int64?
        var claimsRescued: Int
        var lostJobs: [LostJob]
        var lostJobsNamed: Int
        var historyRowsKept: Int
        var archivedMessagesKept: Int
        var resolvedPeersKept: Int
        var archiveReadInFull: Bool
        var damagedFileMovedTo: String
    }

    /// A possibly lost job as the kept history tells it.
    struct LostJob: Codable {
        var id: Int64
        var kind: String
        var account: String
        var lastEvent: String
        var lastChangeAt: String
        var lastError: String?
        /// Completed, dead or cancelled: nothing of it waits to run.
        var hadEnded: Bool
    }

    func run() async throws {
        guard global.postgresURL == nil else {
            throw CLIFailure(.usage, "the queue is in PostgreSQL, whose pages and backups are the database's own: there is no file to salvage "
                + "(restore the database from its backups or replicas)")
        }
        let path = try global.jobsPath()
        guard FileManager.default.fileExists(atPath: path) else { throw CLIFailure(.notFound, "there is no job queue at \(path): nothing to salvage") }
        let report: JobQueueSalvageReport
        do { report = try SQLiteJobQueue.salvage(path: path, now: global.now()) } catch { throw CLIFailure(error) }
        let byState = Dictionary(uniqueKeysWithValues: report.jobsKeptByState.map { ($0.key.rawValue, $0.value) })
        let terminal = Terminal.standard
        if output.json {
            try terminal.json(Result(jobsKept: report.jobsKept, jobsKeptByState: byState, jobsReadInFull: report.jobsReadInFull,
                                     possiblyLostFrom: report.possiblyLost?.from, possiblyLostThrough: report.possiblyLost?.through,
                                     claimsRescued: report.claimsRescued,
                                     lostJobs: report.lostJobs.map { LostJob(id: $0.id.rawValue, kind: $0.kind.rawValue, account: $0.account.rawValue,
                                                                             lastEvent: $0.lastEvent.rawValue, lastChangeAt: TimeText.iso($0.lastChangeAt),
                                                                             lastError: $0.lastError, hadEnded: $0.hadEnded) },
                                     lostJobsNamed: report.lostJobsNamed, historyRowsKept: report.historyRowsKept, archivedMessagesKept: report.archivedMessagesKept,
                                     resolvedPeersKept: report.resolvedPeersKept, archiveReadInFull: report.archiveReadInFull,
                                     damagedFileMovedTo: report.damagedFileMovedTo))
            return
        }
        terminal.line("\(path) was damaged: a new queue was built from what still reads in it; the damaged file was kept as \(report.damagedFileMovedTo)")
        let states = JobState.allCases.compactMap { state in byState[state.rawValue].map { "\(state.rawValue) \($0)" } }
        terminal.line("jobs kept: \(report.jobsKept)" + (states.isEmpty ? "" : " (\(states.joined(separator: ", ")))")
            + (report.jobsReadInFull ? ", every job read" : ""))
        if report.claimsRescued > 0 {
            terminal.line("\(report.claimsRescued) job\(report.claimsRescued == 1 ? " was" : "s were") running when the file was damaged: queued again "
                + "(dead on a last attempt), as at their claim's end; each may have run already")
        }
        terminal.line("history rows kept: \(report.historyRowsKept)" + (report.historyReadInFull ? "" : " (read up to the damage from both ends)"))
        terminal.line("archive kept: \(report.archivedMessagesKept) messages, \(report.resolvedPeersKept) resolved peers"
            + (report.archiveReadInFull ? "" : "; the messages broke off at the damage, so the archive's cursors were dropped and history jobs fetch again what it took"))
        if let lost = report.possiblyLost {
            let range = lost.through.map { $0 == lost.from ? "job \(lost.from)" : "jobs \(lost.from)-\($0)" } ?? "jobs from \(lost.from) on"
            terminal.line("may be lost: \(range) (between the two places reading broke off). Enqueue again those that had not finished; "
                + "their idempotency keys are free again")
            if report.lostJobs.isEmpty {
                terminal.line("the history kept names none of them (older than a week, purged, or their history lost too)")
            } else {
                let open = report.lostJobs.filter { !$0.hadEnded }.count
                let among = report.lostJobsNamed > report.lostJobs.count ? " among the first \(report.lostJobs.count)" : ""
                terminal.line("the history kept names \(report.lostJobsNamed) of them, \(open) not ended\(among) (their payloads are lost with them; "
                    + "`tgsm jobs show` on a kept job of the same kind shows its shape):")
                terminal.table(["ID", "KIND", "ACCOUNT", "LAST CHANGE", "AT", "ENQUEUE AGAIN"], report.lostJobs.map { job in
                    [(String(job.id.rawValue), nil), (job.kind.rawValue, nil), (job.account.rawValue, nil), (job.lastEvent.rawValue, nil),
                     (TimeText.iso(job.lastChangeAt), nil), (job.hadEnded ? "no (\(job.lastEvent.rawValue))" : "yes", job.hadEnded ? nil : .yellow)]
                })
                if report.lostJobsNamed > report.lostJobs.count {
                    terminal.line("and \(report.lostJobsNamed - report.lostJobs.count) more (`--json` lists the first \(report.lostJobs.count) too)")
                }
            }
        } else if !report.jobsReadInFull {
            terminal.line("no job id is missing between the two places reading broke off")
        }
    }
}
