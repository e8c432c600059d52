"""Logs Alice in with Telethon against a running test DC, as someone about to move to tgsm did:
a SQLite `.session` file, then a few peers looked up by username (which Telethon caches in the
file's `entities`). Prints the entities the file holds as JSON.

    telethon_session_with_peers.py DC_STATE_DIR SESSION_PATH USERNAME...

DC_STATE_DIR is the test DC's state directory (its dcs.json and PEM keys); the login code is the
test DC's deterministic one for +15550001.
"""
import asyncio
import json
import os
import sqlite3
import sys

from telethon import TelegramClient
from telethon.crypto import rsa


async def main(state_dir, session_path, usernames):
    with open(os.path.join(state_dir, "dcs.json")) as table_file:
        dcs = json.load(table_file)["dcs"]
    rsa._server_keys.clear()
    for dc in dcs:
        with open(os.path.join(state_dir, dc["publicKeyFile"])) as pem:
            rsa.add_key(pem.read(), old=False)
    home = next(dc for dc in dcs if dc["id"] == 1)
    client = TelegramClient(session_path, 1, "0123456789abcdef0123456789abcdef", flood_sleep_threshold=0,
                            request_retries=1, connection_retries=1, retry_delay=0, timeout=15)
    client.session.set_dc(1, home["host"], home["port"])
    await client.connect()
    sent = await client.send_code_request("+15550001")
    await client.sign_in("+15550001", "10005", phone_code_hash=sent.phone_code_hash)
    for username in usernames:
        await client.get_entity(username)
    await client.disconnect()
    connection = sqlite3.connect(session_path + ".session" if not session_path.endswith(".session") else session_path)
    rows = connection.execute("SELECT id, hash, username, date FROM entities ORDER BY id").fetchall()
    connection.close()
    print(json.dumps([{"id": i, "hash": h, "username": u, "date": d} for i, h, u, d in rows]))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: telethon_session_with_peers.py DC_STATE_DIR SESSION_PATH USERNAME...")
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
