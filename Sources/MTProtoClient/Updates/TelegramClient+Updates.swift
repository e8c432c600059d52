import TLSchema

extension TelegramClient {
    /// Every update for the account, in order, each with the users and chats that came with it:
    /// pushed ones, those inside answers of this client's own calls (e.g. messages.sendMessage's
    /// `updates`), and those recovered after a gap or a restart. One consumer; the buffer is
    /// unbounded, so iterate it for as long as updates are started. Finishes when the client closes.
    ///
    /// At least once: asking for the next event marks the ones before as finished, and the stored
    /// update state never goes past an unfinished event, so a process killed mid-event meets it
    /// again after its restart. Finish an event (store it, enqueue its job) before asking for more.
    ///
    /// Before `startUpdates()` only updates outside every sequence come out (QR login's
    /// updateLoginToken), and only once this property was read (a client that never asks for
    /// the stream buffers nothing); message events need the tracked state.
    public nonisolated var updates: UpdateStream { updatesEngine.stream }

    /// Hands each service notification Telegram sends the account (updateServiceNotification) to
    /// `handler`, as it arrives, whether updates are started or not: pushed ones, those in answers
    /// of this client's calls and, once updates are started, those updates.getDifference recovers
    /// (sent while the client was away, or lost in a gap). One handler; a new one replaces it, nil removes it.
    /// It runs on the client's threads: keep it short.
    public nonisolated func onServiceNotification(_ handler: (@Sendable (ServiceNotification) -> Void)?) {
        updatesEngine.notices.set(handler)
    }

    /// Calls `handler` each time the home DC's open link drops without `close` (the DC restarted,
    /// the network went away, pings went unanswered). The client reconnects by itself only when a
    /// call needs it: a holder of an idle account that must hear Telegram's pushes (notices,
    /// updates) makes one (`AccountRuntime` does, with backoff). One handler; a new one replaces
    /// it, nil removes it. It runs on the client's threads: keep it short.
    public nonisolated func onHomeLinkLost(_ handler: (@Sendable () -> Void)?) {
        homeLinkLoss.set(handler)
    }

    /// Starts tracking pts/qts/seq/date and channel pts. With a stored state (a previous run) the
    /// client first fetches what happened since with updates.getDifference (and getChannelDifference
    /// for the channels it names), so nothing is lost or repeated; without one it starts from
    /// updates.getState. The state is saved in the `SessionStorage` as the consumer finishes events (see `updates`).
    /// Call after login; it returns once the starting state is known (pushes from then on are
    /// tracked). Calling again does nothing.
    public func startUpdates(gapTimeout: Double = 0.5, retryDelay: Double = 1) async throws(TelegramError) {
        try await loadIfNeeded()
        guard !isUpdatesStarted else { return }
        var initial = storedUpdatesState
        let isCurrent = initial == nil
        if initial == nil {
            let fetched = try await invoke(Api.functions.updates.GetState())
            initial = UpdatesState(fetched, keepingChannelsOf: nil)
        }
        guard !isUpdatesStarted else { return }
        isUpdatesStarted = true
        let configuration = UpdatesStateMachine.Configuration(gapTimeout: gapTimeout, retryDelay: retryDelay, selfUserID: userID)
        let backend = UpdatesBackend(
            getState: { [weak self] () throws(TelegramError) in
                guard let self else { throw .closed }
                return try await self.invoke(Api.functions.updates.GetState())
            },
            getDifference: { [weak self] pts, qts, date throws(TelegramError) in
                guard let self else { throw .closed }
                return try await self.invoke(Api.functions.updates.GetDifference(pts: pts, date: date, qts: qts))
            },
            getChannelDifference: { [weak self] channelID, accessHash, pts, limit throws(TelegramError) in
                guard let self else { throw .closed }
                return try await self.invoke(Api.functions.updates.GetChannelDifference(
                    channel: .inputChannel(Api.InputChannel.InputChannel(channelId: channelID, accessHash: accessHash)),
                    filter: .channelMessagesFilterEmpty(Api.ChannelMessagesFilter.ChannelMessagesFilterEmpty()), pts: pts, limit: limit))
            },
            save: { [weak self] state in await self?.saveUpdatesState(state) })
        updatesEngine.submit(.start(initial, isCurrent: isCurrent, configuration, backend, clock))
    }
}
