import MTProtoNIO

extension TelegramClientConfiguration {
    /// How the connection to `dc` goes: the configured framing, obfuscation and proxy, and the DC id an
    /// MTProxy reads from the obfuscation header (+10000 on Telegram's test servers; this client opens
    /// no media connections, so the id is never negative).
    public func route(toDC dc: Int) -> MTProtoClientRoute {
        MTProtoClientRoute(
            transport: transport,
            obfuscated: obfuscated,
            proxy: proxy,
            dcID: ObfuscationHeader.encodedDCID(dc, testServers: isTestServer)
        )
    }
}
