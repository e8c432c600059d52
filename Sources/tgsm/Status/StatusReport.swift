import Foundation
import MTProto
import OperatorHTTP
import PostgresStore
import SessionManager
import Workers

/// What `tgsm status` shows: accounts with their marks and what the processes running them see,
/// every active flood wait and send-code deadline, and the queue by state. Built from a store (and its queue) at one instant; printed
/// by `status` and at the end of `sandbox`, so both show the same table.
struct StatusReport: Codable {
    struct FloodView: Codable {
        var account: String
        var method: String
        var peer: String?
        var kind: String
        var dc: Int?
        var recordedAt: String
        var until: String
        var untilUnix: Double
        var remainingSeconds: Double
    }

    struct DeadlineView: Codable {
        var account: String
        var until: String
        var untilUnix: Double
        var remainingSeconds: Double
    }

    /// A service notification Telegram sent an account while a `tgsm run` ran it (the message masked).
    struct NoticeView: Codable {
        var account: String
        var receivedAt: String
        var type: String
        var message: String
        var popup: Bool
        var asksToLogOut: Bool
    }

    var store: String
    var now: String
    var accounts: [AccountView]
    var floodWaits: [FloodView]
    var sendCodeDeadlines: [DeadlineView]
    /// Telegram's notices of the last 7 days, newest first, at most 10.
    var serviceNotifications: [NoticeView]
    /// Jobs by state (every state present, 0 when none); nil when there is no queue file.
    var queue: [String: Int]?

    /// The same gathering as the HTTP server's (`OperatorSnapshot`), for a table or JSON.
    static func make(store: any OperatorReadableStore, location: String, queue jobs: (any JobQueue)?, now: UnixTime) async throws(CLIFailure) -> StatusReport {
        let snapshot: OperatorSnapshot
        let notices: [StoredServiceNotification]
        do {
            snapshot = try await OperatorSnapshot.gather(store: store, queue: jobs, now: now, historyLimit: 0)
            notices = try await store.serviceNotifications(account: nil, since: UnixTime(seconds: now.seconds - 7 * 86_400))
        } catch let error as SessionStoreError {
            throw CLIFailure(error)
        } catch let error as JobQueueError {
            throw CLIFailure(error)
        } catch {
            throw CLIFailure(.failure, "\(error)")
        }
        return StatusReport(
            store: location, now: TimeText.iso(now), accounts: snapshot.accounts.map { AccountView($0, now: now) },
            floodWaits: snapshot.floodWaits.map { wait in
                FloodView(account: wait.account.rawValue, method: wait.method, peer: wait.peer, kind: wait.kind.rawValue, dc: wait.dc,
                          recordedAt: TimeText.iso(wait.recordedAt), until: TimeText.iso(wait.until), untilUnix: wait.until.seconds,
                          remainingSeconds: (wait.until - now).rounded(.up))
            },
            sendCodeDeadlines: snapshot.sendCodeDeadlines.map { entry in
                DeadlineView(account: entry.account.rawValue, until: TimeText.iso(entry.deadline), untilUnix: entry.deadline.seconds,
                             remainingSeconds: (entry.deadline - now).rounded(.up))
            },
            serviceNotifications: notices.prefix(10).map { notice in
                NoticeView(account: notice.account.rawValue, receivedAt: TimeText.iso(notice.receivedAt), type: notice.type, message: notice.message,
                           popup: notice.popup, asksToLogOut: notice.asksToDropTheSession)
            },
            queue: snapshot.jobs.map { counts in Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, counts[$0]) }) })
    }

    func print(on terminal: Terminal) {
        terminal.line("\(terminal.paint("store", .bold)) \(store)   now \(now)")
        terminal.line()
        if accounts.isEmpty {
            terminal.line("no accounts")
        } else {
            terminal.table(["ACCOUNT", "HOME DC", "AUTHORIZED", "LEASE", "STATUS", "RUNNING"], accounts.map { view in
                [(view.account, nil), (view.homeDC.map(String.init) ?? "-", nil),
                 (view.authorizedDCs.isEmpty ? "no" : "yes", view.authorizedDCs.isEmpty ? .yellow : nil),
                 (view.lease.text, view.lease.isLive ? nil : .dim),
                 (view.status + (view.statusCode.map { " (\($0), since \(view.statusSince ?? "?"))" } ?? view.statusCause.map { " (\($0))" } ?? "")
                    + (view.frozenSince.map { ", frozen since \($0)\(view.deletedAfter.map { ", deleted \($0) unless appealed" } ?? "") (tgsm check)" } ?? ""),
                  view.frozenSince != nil ? .red : view.statusColor),
                 (view.running?.text ?? "-", view.running?.color ?? .dim)]
            })
            // What a running process sees and the store alone cannot tell (a refusing proxy, no
            // connection): its reasons in full, with what to do.
            for view in accounts {
                guard let running = view.running, !running.ready, !running.reasons.isEmpty else { continue }
                terminal.line()
                terminal.line(terminal.paint("\(view.account): not ready in \(running.by) since \(running.since)", running.color))
                for reason in running.reasons { terminal.line("  [\(reason.code)] \(reason.text)") }
            }
        }
        terminal.line()
        if floodWaits.isEmpty {
            terminal.line("flood waits: none active")
        } else {
            terminal.line(terminal.paint("flood waits (\(floodWaits.count) active)", .yellow))
            terminal.table(["ACCOUNT", "METHOD", "PEER", "KIND", "UNTIL", "REMAINING"], floodWaits.map { wait in
                [(wait.account, nil), (wait.method, nil), (wait.peer ?? "(all)", nil), (wait.kind, nil), (wait.until, nil),
                 ("\(TimeText.remaining(wait.remainingSeconds)) (\(Int(wait.remainingSeconds)) s)", .yellow)]
            })
        }
        terminal.line()
        if sendCodeDeadlines.isEmpty {
            terminal.line("send-code deadlines: none")
        } else {
            terminal.line(terminal.paint("send-code deadlines (no login code may be requested before)", .yellow))
            terminal.table(["ACCOUNT", "UNTIL", "REMAINING"], sendCodeDeadlines.map { entry in
                [(entry.account, nil), (entry.until, nil), ("\(TimeText.remaining(entry.remainingSeconds)) (\(Int(entry.remainingSeconds)) s)", .yellow)]
            })
        }
        terminal.line()
        if serviceNotifications.isEmpty {
            terminal.line("Telegram's notices: none in the last 7 days")
        } else {
            terminal.line(terminal.paint("Telegram's notices (last 7 days; AUTH_KEY_DROP_: Telegram asks the session to log out, see `tgsm check`)", .yellow))
            terminal.table(["ACCOUNT", "RECEIVED", "TYPE", "MESSAGE"], serviceNotifications.map { notice in
                [(notice.account, nil), (notice.receivedAt, nil), (notice.type, notice.asksToLogOut ? .red : nil),
                 (notice.message.count > 80 ? String(notice.message.prefix(79)) + "…" : notice.message, nil)]
            })
        }
        terminal.line()
        if let queue {
            terminal.line("queue: " + JobState.allCases.map { "\($0.rawValue) \(queue[$0.rawValue] ?? 0)" }.joined(separator: ", "))
        } else {
            terminal.line(PostgresURL.isPostgresURL(store) ? "queue: none in this database yet (`tgsm jobs enqueue` or `tgsm run` makes it)"
                : "queue: no job queue (jobs.sqlite) in the store directory")
        }
    }
}
