"""Runs mtprotoproxy (pinned in requirements.txt, a real MTProxy from PyPI) on loopback, pointed at
a local test DC instead of Telegram's, for the proxy tests (Tests/EndToEndTests/ProxyEndToEndTests.swift).

The proxy itself is unchanged; this wrapper only sets what its command line cannot:
- its DC table: DC n goes to the address given for it, not to Telegram's (it connects directly,
  obfuscated2, as it does without an ad tag);
- nothing reaches the internet: no public-IP lookup, no middle-proxy list, no masking host
  (MASK=False), no certificate probe of the TLS domain;
- Python 3.11 compatibility: mtprotoproxy 1.0.6 (2019) names `asyncio.streams.IncompleteReadError`
  and passes `loop=` to `asyncio.start_server`, both gone since 3.10; the wrapper serves with its own loop.

It accepts the three client modes with one secret: plain, `dd` (padded intermediate) and `ee`
(fake TLS for TLS_DOMAIN). Prints `ready PORT` once listening; runs until killed.

usage: run_mtproxy.py SECRET_HEX TLS_DOMAIN DC_ID=HOST:PORT [DC_ID=HOST:PORT ...]
"""
import asyncio
import os
import runpy
import sys
import tempfile


def main():
    secret, domain, *dcs = sys.argv[1:]
    table = {}
    for entry in dcs:
        dc_id, address = entry.split("=", 1)
        host, port = address.rsplit(":", 1)
        table[int(dc_id)] = (host, int(port))

    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as config:
        config.write(f"PORT = 0\nUSERS = {{'test': {secret!r}}}\nTLS_DOMAIN = {domain!r}\n"
                     "MASK = False\nUSE_MIDDLE_PROXY = False\nPREFER_IPV6 = False\n"
                     "STATS_PRINT_PERIOD = 3600\nCLIENT_HANDSHAKE_TIMEOUT = 3\n")
    asyncio.streams.IncompleteReadError = asyncio.IncompleteReadError
    script = os.path.join(os.path.dirname(sys.executable), "mtprotoproxy.py")
    sys.argv = [script, config.name]
    proxy = runpy.run_path(script, run_name="mtprotoproxy")
    proxy["init_config"]()
    os.unlink(config.name)
    proxy["init_stats"]()
    handle = proxy["handle_client_wrapper"]
    globals_of_proxy = handle.__globals__

    # DC n (1-based in the header) is TG_DATACENTERS_V4[n - 1]; open_connection_tryer gets that name.
    highest = max(table)
    globals_of_proxy["TG_DATACENTERS_V4"] = [f"dc{index}" for index in range(1, highest + 1)]
    original_open = globals_of_proxy["open_connection_tryer"]

    async def open_dc(addr, port, limit, timeout, max_attempts=3):
        host, dc_port = table[int(addr[2:])]
        return await original_open(host, dc_port, limit, timeout, max_attempts)

    globals_of_proxy["open_connection_tryer"] = open_dc

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
