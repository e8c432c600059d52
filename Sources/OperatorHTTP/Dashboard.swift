import MTProto
import SessionManager
import Workers

/// The dashboard page: server-rendered HTML from one snapshot, no script; the browser reloads it
/// every `refreshSeconds` (meta refresh). Every text from the store, the queue or an error passes
/// `HTML.escape` (and `Redaction.masked` where a person typed it or an error quoted it).
package struct Dashboard {
    var snapshot: OperatorSnapshot
    var health: HealthReport
    var refreshSeconds: Int
    /// Appended to links when the page was opened with `?token=`, so they keep working.
    var tokenQuery: String?

    func render() -> String {
        var page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="refresh" content="\(max(1, refreshSeconds))">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>tgsm: \(health.ready ? "ready" : "NOT READY")</title>
            <style>\(Self.style)</style></head><body>
            <header><h1>tgsm</h1><span class="\(health.ready ? "ok" : "bad")" id="overall">\(health.ready ? "ready" : "not ready")</span>
            <span class="dim">at \(HTML.escape(ISOTime.string(snapshot.now))) UTC · refreshes every \(refreshSeconds) s ·
            <a href="\(link("/health"))">/health</a> · <a href="\(link("/metrics"))">/metrics</a></span></header>

            """
        page += accountsSection()
        page += floodSection()
        page += queueSection()
        page += errorsSection()
        page += "</body></html>\n"
        return page
    }

    private func link(_ path: String) -> String {
        HTML.escape(path + (tokenQuery.map { "?token=" + HTML.percentEncoded($0) } ?? ""))
    }

    // MARK: - Accounts

    private func accountsSection() -> String {
        var html = "<section id=\"accounts\"><h2>Accounts</h2>"
        guard !snapshot.accounts.isEmpty else {
            return html + "<p>No accounts in the store. Import one: <code>tgsm session import --account NAME FILE</code>.</p></section>\n"
        }
        html += "<table><tr><th>account</th><th>session</th><th>health</th><th>ready</th><th>home DC</th><th>lease</th>"
            + "<th>flood waits</th><th>last success</th><th>why not ready</th></tr>"
        for account in snapshot.accounts {
            let id = Redaction.masked(account.id.rawValue)
            // Per account: two phone-named accounts may share a masked name.
            let ready = account.enabled ? HealthReport.readiness(account, liveExpected: snapshot.hasLiveHealth, now: snapshot.now) : nil
            let state = account.sessionState
            let health = account.live?.state
            html += "<tr class=\"account\" data-account=\"\(HTML.escape(id))\">"
            html += "<td>\(HTML.escape(id))\(account.enabled ? "" : " <span class=\"dim\">(not run)</span>")</td>"
            html += "<td class=\"\(state == .active ? "ok" : "bad")\">\(HTML.escape(state.rawValue))"
                + (account.mark?.isTerminal == true ? " <code>\(HTML.escape(account.mark?.code ?? ""))</code>" : "") + "</td>"
            // Run by another process (a cluster's, or a `tgsm run` beside the sandbox): what it reports.
            let elsewhere = health == nil ? account.report : nil
            if let elsewhere {
                let where_ = "in pid \(elsewhere.holder.pid)@\(elsewhere.holder.host)"
                html += "<td class=\"\(Self.healthClass(HealthState(rawValue: elsewhere.health)))\">\(HTML.escape(elsewhere.health)) "
                    + "<span class=\"dim\">\(HTML.escape(where_))</span></td>"
                html += "<td class=\"\(elsewhere.ready ? "ok" : "bad")\">\(elsewhere.ready ? "yes" : "no")</td>"
            } else {
                // No live health: this process does not run it (a standby's other process, a login awaited).
                html += "<td class=\"\(Self.healthClass(health))\">\(HTML.escape(health?.rawValue ?? (snapshot.hasLiveHealth ? "not run here" : "-")))</td>"
                html += "<td class=\"\(ready?.ready == true ? "ok" : (ready == nil ? "dim" : "bad"))\">"
                    + (ready.map { $0.ready ? "yes" : "no" } ?? "-") + "</td>"
            }
            html += "<td>\(account.summary?.homeDC.map(String.init) ?? "-")\(account.isLoggedIn ? "" : " <span class=\"warn\">not logged in</span>")</td>"
            html += "<td>\(HTML.escape(leaseText(account.lease)))</td>"
            html += "<td class=\"\(account.floodWaits.isEmpty ? "" : "warn")\">\(account.floodWaits.count)</td>"
            html += "<td>\(HTML.escape(account.live?.lastSuccess.map(ISOTime.string) ?? "-"))</td>"
            let reasons = elsewhere.map { report in report.reasons.map { "[\($0.code)] \($0.text)" } } ?? ready?.reasons ?? []
            html += "<td>\(reasons.map { HTML.escape($0) }.joined(separator: "<br>"))</td></tr>"
        }
        html += "</table>"
        html += noticesList()
        // Only where a login waits: an account logged in since its code was asked for needs none.
        let loggedIn = Set(snapshot.accounts.filter { $0.isLoggedIn && $0.mark?.isTerminal != true }.map(\.id))
        let deadlines = snapshot.sendCodeDeadlines.filter { !loggedIn.contains($0.account) }
        if !deadlines.isEmpty {
            html += "<p class=\"warn\">No login code may be requested before: "
                + deadlines.map { entry in
                    "\(HTML.escape(Redaction.masked(entry.account.rawValue))) until \(HTML.escape(ISOTime.string(entry.deadline)))"
                }.joined(separator: "; ") + "</p>"
        }
        return html + "</section>\n"
    }

    /// Telegram's own notices to the running accounts (already masked in the health report), newest
    /// first; one asking a session to log out stands out with what to do.
    private func noticesList() -> String {
        let notices = health.accounts.flatMap { account in account.serviceNotifications.map { (account.account, $0) } }
            .sorted { $0.1.receivedAt > $1.1.receivedAt }
        guard !notices.isEmpty else { return "" }
        var html = "<div id=\"notices\"><h3>Telegram's notices</h3><ul>"
        for (account, notice) in notices {
            html += "<li class=\"\(notice.asksToLogOut ? "bad" : "warn")\">\(HTML.escape(notice.receivedAt)) <b>\(HTML.escape(account))</b> "
                + "<code>\(HTML.escape(notice.type))</code> \(HTML.escape(notice.message))"
                + (notice.asksToLogOut ? " <span class=\"dim\">(Telegram asks this session to log out: look at the account's devices in an official app)</span>" : "")
                + "</li>"
        }
        return html + "</ul></div>"
    }

    private func leaseText(_ lease: Lease?) -> String {
        guard let lease else { return "free" }
        if lease.isExpired(at: snapshot.now) { return "stale (expired)" }
        return "pid \(lease.holder.pid)@\(lease.holder.host)"
    }

    private static func healthClass(_ state: HealthState?) -> String {
        switch state {
        case .healthy: "ok"
        case .degraded, .rateLimited: "warn"
        case .down, .terminal: "bad"
        case .unknown, nil: "dim"
        }
    }

    // MARK: - Flood waits

    /// One row per account and method (and peer), a bar from when Telegram imposed the wait to its
    /// until-time, on a shared axis from a quarter before now to the latest until-time.
    private func floodSection() -> String {
        var html = "<section id=\"floods\"><h2>Flood waits</h2>"
        guard !snapshot.floodWaits.isEmpty else { return html + "<p>None active.</p></section>\n" }
        let now = snapshot.now.seconds
        let latest = snapshot.floodWaits.map(\.until.seconds).max() ?? now
        let ahead = max(60, latest - now)
        let start = now - ahead / 3
        let end = now + ahead * 1.02
        func percent(_ time: Double) -> Double { min(100, max(0, (time - start) / (end - start) * 100)) }
        let nowAt = percent(now)
        html += "<div class=\"timeline\"><div class=\"axis\"><span style=\"left:0%\">\(HTML.escape(ISOTime.string(UnixTime(seconds: start))))</span>"
            + "<span style=\"left:\(Self.fixed(nowAt))%\">now</span>"
            + "<span style=\"right:0\">\(HTML.escape(ISOTime.string(UnixTime(seconds: end))))</span></div>"
        for wait in snapshot.floodWaits {
            let account = Redaction.masked(wait.account.rawValue)
            let label = "\(account) · \(wait.method)" + (wait.peer.map { " · \($0)" } ?? "")
            let from = percent(wait.recordedAt.seconds), to = percent(wait.until.seconds)
            let remaining = wait.until - snapshot.now
            html += "<div class=\"lane flood\" data-account=\"\(HTML.escape(account))\" data-method=\"\(HTML.escape(wait.method))\">"
                + "<div class=\"lane-label\" title=\"\(HTML.escape(label))\">\(HTML.escape(label))</div><div class=\"track\">"
                + "<div class=\"now\" style=\"left:\(Self.fixed(nowAt))%\"></div>"
                + "<div class=\"bar \(HTML.escape(wait.kind.rawValue))\" style=\"left:\(Self.fixed(from))%;width:\(Self.fixed(max(0.5, to - from)))%\" "
                + "title=\"\(HTML.escape(wait.kind.rawValue)) until \(HTML.escape(ISOTime.string(wait.until)))\"></div></div>"
                + "<div class=\"lane-until\">\(HTML.escape(wait.kind.rawValue)) until <time>\(HTML.escape(ISOTime.string(wait.until)))</time>"
                + " (\(HTML.escape(ISOTime.remaining(remaining))) left)</div></div>"
        }
        return html + "</div></section>\n"
    }

    // MARK: - Queue

    private func queueSection() -> String {
        var html = "<section id=\"queue\"><h2>Queue</h2>"
        guard let jobs = snapshot.jobs else { return html + "<p>No job queue (jobs.sqlite) next to the store.</p></section>\n" }
        html += "<table class=\"counts\"><tr>" + JobState.allCases.map { "<th>\($0.rawValue)</th>" }.joined() + "</tr><tr>"
            + JobState.allCases.map { "<td class=\"jobs-\($0.rawValue)\">\(jobs[$0])</td>" }.joined() + "</tr></table>"
        html += "<p>depth (queued + running) now: <b id=\"depth\">\(snapshot.openJobs)</b></p>"
        if let failure = snapshot.claimFailure {
            html += "<p class=\"bad\" id=\"claims-failing\">No job runs: this process's workers cannot claim jobs since "
                + "\(HTML.escape(ISOTime.string(failure.since))) UTC: \(HTML.escape(Redaction.masked(failure.error)))" + (failure.error.hasSuffix(".") ? "" : ".")
                + (failure.needsAPerson ? "" : " They try again every poll interval and go on as soon as a claim works (the error above says what the queue needs).") + "</p>"
        }
        // A chart of zeros would read as "nothing happened" where nothing is recorded.
        html += snapshot.keepsHistory ? historyChart()
            : "<p class=\"dim\">Job outcomes over time are not recorded by this queue (it keeps no history); see the counts above, "
                + "<code>tgsm jobs list --state dead</code> and the <code>tgsm_jobs</code> metrics.</p>"
        return html + "</section>\n"
    }

    static let outcomeColors: [(JobHistoryEntry.Event, String)] = [
        (.completed, "#2e7d32"), (.retried, "#f9a825"), (.deferred, "#6a5acd"), (.released, "#90a4ae"), (.rescued, "#00838f"),
        (.dead, "#c62828"), (.cancelled, "#616161"),
    ]

    /// Outcomes per time bucket (stacked bars) and the depth of the queue over the window (a line),
    /// rebuilt backwards from the depth now and each entry's change to it.
    private func historyChart() -> String {
        let buckets = 30
        let window = snapshot.historyWindow
        let end = snapshot.now.seconds
        let start = end - window
        let width = 900.0, height = 160.0
        var counts = Array(repeating: [JobHistoryEntry.Event: Int](), count: buckets)
        for entry in snapshot.history where entry.at.seconds >= start && entry.at.seconds <= end {
            let index = min(buckets - 1, max(0, Int((entry.at.seconds - start) / window * Double(buckets))))
            counts[index][entry.event, default: 0] += 1
        }
        // Depth at the end of each bucket: today's depth minus every change after that instant.
        var depth = Array(repeating: 0, count: buckets + 1)
        var running = snapshot.openJobs
        var entries = snapshot.history.sorted { $0.at > $1.at }[...]
        for index in stride(from: buckets, through: 0, by: -1) {
            let instant = start + window * Double(index) / Double(buckets)
            while let entry = entries.first, entry.at.seconds > instant {
                running -= entry.depthDelta
                entries = entries.dropFirst()
            }
            depth[index] = max(0, running)
        }
        let maxOutcomes = max(1, counts.map { $0.values.reduce(0, +) }.max() ?? 1)
        let maxDepth = max(1, depth.max() ?? 1)
        let slot = width / Double(buckets)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(Int(width)) \(Int(height + 20))\" width=\"\(Int(width))\" height=\"\(Int(height + 20))\" role=\"img\" "
            + "aria-label=\"job outcomes and queue depth over the last \(Int(window / 60)) minutes\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
        for (index, bucket) in counts.enumerated() {
            var top = height
            for (event, color) in Self.outcomeColors {
                guard let count = bucket[event], count > 0 else { continue }
                let barHeight = Double(count) / Double(maxOutcomes) * (height - 10)
                top -= barHeight
                svg += "<rect class=\"outcome \(event.rawValue)\" x=\"\(Self.fixed(Double(index) * slot + 1))\" y=\"\(Self.fixed(top))\" "
                    + "width=\"\(Self.fixed(slot - 2))\" height=\"\(Self.fixed(barHeight))\" fill=\"\(color)\"><title>\(count) \(event.rawValue)</title></rect>"
            }
        }
        let points = depth.enumerated().map { index, value in
            "\(Self.fixed(Double(index) * slot)),\(Self.fixed(height - Double(value) / Double(maxDepth) * (height - 10)))"
        }.joined(separator: " ")
        svg += "<polyline class=\"depth\" points=\"\(points)\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\"/>"
        svg += "<text x=\"2\" y=\"\(Int(height + 15))\" font-size=\"11\">\(HTML.escape(ISOTime.string(UnixTime(seconds: start))))</text>"
        svg += "<text x=\"\(Int(width) - 2)\" y=\"\(Int(height + 15))\" font-size=\"11\" text-anchor=\"end\">now</text>"
        svg += "<text x=\"4\" y=\"12\" font-size=\"11\" fill=\"#1565c0\">depth max \(maxDepth)</text>"
        if counts.allSatisfy(\.isEmpty) {
            // An empty chart reads like a broken one.
            svg += "<text x=\"\(Int(width / 2))\" y=\"\(Int(height / 2))\" font-size=\"13\" text-anchor=\"middle\" fill=\"#757575\">"
                + "no job changed state in the last \(Int(window / 60)) min</text>"
        }
        svg += "</svg>"
        var totals: [JobHistoryEntry.Event: Int] = [:]
        for entry in snapshot.history { totals[entry.event, default: 0] += 1 }
        let legend = "<p class=\"legend\">last \(Int(window / 60)) min: "
            + Self.outcomeColors.map { event, color in
                "<span><i style=\"background:\(color)\"></i>\(event.rawValue) <b class=\"total-\(event.rawValue)\">\(totals[event] ?? 0)</b></span>"
            }.joined(separator: " ")
            + " <span><i style=\"background:#1565c0\"></i>depth</span></p>"
        return svg + legend
    }

    // MARK: - Errors

    struct ErrorLine {
        var at: UnixTime
        var account: String
        var code: String
        var what: String
        var guidance: [String]
    }

    /// Terminal marks, live failures and the queue's failed attempts, newest first.
    func recentErrors(limit: Int = 15) -> [ErrorLine] {
        var lines: [ErrorLine] = []
        for account in snapshot.accounts {
            if let mark = account.mark, mark.isTerminal {
                lines.append(ErrorLine(at: mark.since, account: account.id.rawValue, code: mark.code,
                                       what: "account \(mark.state.rawValue): \(mark.cause)", guidance: mark.recoverySteps(account: account.id)))
            }
            if let live = account.live, let code = live.lastFailureCode, let at = live.lastFailure {
                lines.append(ErrorLine(at: at, account: account.id.rawValue, code: code,
                                       what: (live.consecutiveFailures > 0 ? "last failed call (\(live.consecutiveFailures) in a row)"
                                           : "last failed call (calls have succeeded since)") + (live.lastFailureSummary.map { ": \($0)" } ?? ""),
                                       guidance: Self.guidance(forCode: code)))
            }
        }
        for entry in snapshot.history.reversed() {
            guard let error = entry.error, [.retried, .dead, .deferred, .rescued].contains(entry.event) else { continue }
            // The window shows its latest error; the job's every change is one command away.
            lines.append(ErrorLine(at: entry.at, account: entry.account.rawValue, code: "job \(entry.event.rawValue)",
                                   what: "job \(entry.job.rawValue) (\(entry.kind.rawValue)): \(error)",
                                   guidance: Self.guidance(for: entry) + ["Its every change and error: `tgsm jobs show \(entry.job.rawValue)`."]))
            if lines.count > limit * 3 { break }
        }
        return Array(lines.sorted { $0.at > $1.at }.prefix(limit))
    }

    private func errorsSection() -> String {
        var html = "<section id=\"errors\"><h2>Recent errors</h2>"
        let lines = recentErrors()
        guard !lines.isEmpty else { return html + "<p>None.</p></section>\n" }
        html += "<ul class=\"errors\">"
        for line in lines {
            html += "<li><time>\(HTML.escape(ISOTime.string(line.at)))</time> <b>\(HTML.escape(Redaction.masked(line.account)))</b> "
                + "<code>\(HTML.escape(line.code))</code> \(HTML.escape(Redaction.masked(line.what)))"
            if !line.guidance.isEmpty {
                html += "<ol class=\"guidance\">" + line.guidance.map { "<li>\(HTML.escape(Redaction.masked($0)))</li>" }.joined() + "</ol>"
            }
            html += "</li>"
        }
        return html + "</ul></section>\n"
    }

    /// What to do about a job after `entry` (the dashboard's recent errors, `tgsm jobs show`).
    package static func guidance(for entry: JobHistoryEntry) -> [String] {
        switch entry.event {
        case .dead:
            ["The job is a dead letter. A cause outside it (an account, the network) once fixed: `tgsm jobs retry \(entry.job.rawValue)`. "
                + "A cause in the job (its payload, a text too long, a peer that does not exist): `tgsm jobs cancel \(entry.job.rawValue)` "
                + "and enqueue it again corrected (a retry fails the same way)."]
        case .deferred:
            ["Nothing to do: the job runs again after the wait, without spending an attempt."]
        case .retried:
            ["Retried automatically with backoff; it becomes a dead letter after its last attempt."]
        case .rescued:
            ["A worker stopped renewing its claim (a crash, a kill, a freeze or a store out of reach): look at that process's log; the job runs again."]
        default:
            []
        }
    }

    /// What to do about a session manager error code seen on a live call.
    static func guidance(forCode code: String) -> [String] {
        if code.hasPrefix("TGSM-RATE") { return ["Held back by a rate limit: calls resume by themselves after its until-time."] }
        if code.hasPrefix("TGSM-NET") { return ["Network trouble: check the connection to Telegram (and the proxy); the client reconnects by itself."] }
        if code.hasPrefix("TGSM-AUTH") || code.hasPrefix("TGSM-SESSION") { return ["See the account's mark above and `tgsm check` for the steps."] }
        return []
    }

    /// A number for a style or SVG attribute, two decimals at most.
    static func fixed(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e9 else { return "0" }
        let scaled = (value * 100).rounded() / 100
        return scaled == scaled.rounded() ? String(Int(scaled)) : String(scaled)
    }

    static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222}header{display:flex;gap:12px;align-items:baseline}
        h1{margin:0;font-size:20px}h2{font-size:16px;margin:18px 0 6px}table{border-collapse:collapse}section{overflow-x:auto}
        td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3}
        .ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}.warn{color:#b26a00}.dim{color:#888}
        .timeline{max-width:1100px}.axis{position:relative;height:18px;margin-left:260px;margin-right:260px;font-size:11px;color:#666}
        .axis span{position:absolute;white-space:nowrap}.lane{display:flex;align-items:center;height:24px}
        .lane-label{width:260px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
        .track{position:relative;flex:1;height:14px;background:#f3f3f3}.now{position:absolute;top:-3px;bottom:-3px;width:2px;background:#1565c0}
        .bar{position:absolute;top:0;bottom:0;background:#e65100;border-radius:3px}.bar.SLOWMODE_WAIT{background:#6a5acd}
        .bar.FLOOD_PREMIUM_WAIT{background:#ad1457}.lane-until{width:260px;padding-left:8px;font-size:12px;white-space:nowrap}
        .legend span{margin-right:10px}.legend i{display:inline-block;width:10px;height:10px;margin-right:3px}
        ul.errors{padding-left:18px}ol.guidance{margin:2px 0 8px;color:#444}code{background:#f3f3f3;padding:0 3px}
        """
}

/// Escaping for text and attribute values (quotes included), so nothing from data becomes markup.
public enum HTML {
    public static func escape(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            case "'": output += "&#39;"
            default: output.append(character)
            }
        }
        return output
    }

    /// For a query value: unreserved characters kept, every other byte %XX.
    static func percentEncoded(_ text: String) -> String {
        var output = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(Character(UnicodeScalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                output += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return output
    }
}
