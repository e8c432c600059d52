"""Writes Telethon and Pyrogram session files and string sessions through each library's own API,
with known keys, DCs, addresses, user ids and flags, plus a manifest of what each holds.

    make_session_files.py OUTDIR
    make_session_files.py --fuzz-seeds DIR   (seed inputs for Fuzz/Sources/SessionImportFuzz)

Runs under either Pyrogram the venvs hold (scripts/setup-python): kurigram 2.2.26 in .build/venv
(schema version 7, the address in the file) or the original Pyrogram 2.0.106 in .build/venv-pyrogram
(schema version 3, no address: it dials its DataCenter table). Both install the `pyrogram` module;
`PYROGRAM` names the one found, and every fixture records its library in `library`.

OUTDIR/manifest.json lists every fixture: its file name (files) or its text (strings), the format,
and the expected fields (key as hex). The Swift tests import each fixture and compare field by
field. Keys come from a fixed seed so failures are reproducible; the dates the libraries stamp
(Telethon's entity date, Pyrogram's `date` column) are set explicitly after saving.
"""
import asyncio
import base64
import datetime
import importlib.metadata
import json
import pathlib
import random
import sqlite3
import struct
import sys

import telethon
from telethon.crypto import AuthKey
from telethon.sessions import SQLiteSession, StringSession
from telethon.tl import types

import pyrogram.storage

TELETHON = "telethon " + telethon.__version__
try:
    PYROGRAM = "kurigram " + importlib.metadata.version("kurigram")
except importlib.metadata.PackageNotFoundError:
    PYROGRAM = "pyrogram " + importlib.metadata.version("pyrogram")

# The original Pyrogram splits storage into FileStorage and MemoryStorage over a SQLiteStorage base
# and keeps no address; kurigram has one SQLiteStorage with server_address and port accessors.
ORIGINAL = hasattr(pyrogram.storage, "FileStorage")
if ORIGINAL:
    from pyrogram.storage import FileStorage, MemoryStorage
    from pyrogram.session.internals import DataCenter
    FILE_EXTENSION = FileStorage.FILE_EXTENSION
    FILE_VERSION = FileStorage.VERSION
else:
    from pyrogram.storage import SQLiteStorage
    from pyrogram.storage.sqlite_storage import PROD, TEST
    FILE_EXTENSION = SQLiteStorage.FILE_EXTENSION
    FILE_VERSION = SQLiteStorage.VERSION
OLD_SESSION_STRING_FORMAT = pyrogram.storage.Storage.OLD_SESSION_STRING_FORMAT
OLD_SESSION_STRING_FORMAT_64 = pyrogram.storage.Storage.OLD_SESSION_STRING_FORMAT_64


def dialed_address(dc, test_mode):
    """The address and port the library dials for a DC when none is stored (IPv4, not media)."""
    if ORIGINAL:
        return DataCenter(dc, test_mode, False, False)
    return (TEST if test_mode else PROD)[dc], 80 if test_mode else 443


def file_storage(name, workdir, use_wal=False):
    if ORIGINAL:
        assert not use_wal, "Pyrogram 2.0.106 has no use_wal option"
        return FileStorage(name, workdir=workdir)
    return SQLiteStorage(name, workdir=workdir, use_wal=use_wal)


def memory_storage(name, session_string=None):
    if ORIGINAL:
        return MemoryStorage(name, session_string=session_string)
    return SQLiteStorage(name, workdir=pathlib.Path("."), session_string=session_string, in_memory=True)


async def stored_address(storage):
    """The address the library connects to for an open storage: the stored one (kurigram), or its
    table's for the stored DC and test mode (Pyrogram 2.0.106, which stores none)."""
    if ORIGINAL:
        return dialed_address(await storage.dc_id(), bool(await storage.test_mode()))
    return await storage.server_address(), await storage.port()


async def stored_version(storage):
    # A plain method in Pyrogram 2.0.106, a coroutine in kurigram.
    version = storage.version()
    return await version if asyncio.iscoroutine(version) else version


async def peers_usable(storage):
    """Whether the library can keep peers in the file, as a client does on its first update: a
    schema of the other library makes this fail (Pyrogram 2.0.106 writes `peers.username`, which
    kurigram's version 7 moved to a `usernames` table)."""
    user_id, access_hash, username = 424242, 99, "tgsm_check"
    if ORIGINAL:
        await storage.update_peers([(user_id, access_hash, "user", username, "15550000")])
    else:
        await storage.update_peers([(user_id, access_hash, "user", "15550000")])
        await storage.update_usernames([(user_id, [username])])
    peer = await storage.get_peer_by_username(username)
    return (peer.user_id, peer.access_hash) == (user_id, access_hash)


# The peers a logged-in client caches, in the marked ids both libraries key them by: a user, a
# channel, a basic chat (no access hash), and a user seen only as a `min` constructor, which neither
# library keeps.
PEER_DATE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


def telethon_peers():
    return types.contacts.ResolvedPeer(
        types.PeerUser(1002),
        [types.Channel(id=2001, title="Test News", photo=types.ChatPhotoEmpty(), date=PEER_DATE, access_hash=-0x2001,
                       username="TestNews"),
         types.Chat(id=4001, title="Group", photo=types.ChatPhotoEmpty(), participants_count=3, date=PEER_DATE, version=1)],
        [types.User(id=1002, access_hash=0x0B0B, username="Bob", first_name="Bob"),
         types.User(id=1009, access_hash=77, min=True, first_name="Min")])


async def store_pyrogram_peers(storage):
    """Peers as a Pyrogram client stores them (update_peers, and kurigram's update_usernames): a bot
    with two usernames in kurigram (the first one is the one tgsm keeps), a supergroup, a basic chat."""
    rows = [(1003, 0x0C, "bot", ["Carol_Bot", "carol_alt"]), (-1000000002002, 0x2002, "supergroup", ["Chatters"]),
            (-4001, 0, "group", [])]
    if ORIGINAL:
        await storage.update_peers([(i, h, t, names[0] if names else None, None) for i, h, t, names in rows])
    else:
        await storage.update_peers([(i, h, t, None) for i, h, t, _ in rows])
        await storage.update_usernames([(i, names) for i, _, _, names in rows if names])


def cached_peers(path, library):
    """The peers the file holds, read back with sqlite3 as tgsm reads them: marked id, access hash (0
    where none), the first username (lower-cased: tgsm keeps them so), the library's time stamp."""
    connection = sqlite3.connect(path)
    try:
        if library == "telethon":
            rows = connection.execute("SELECT id, hash, username, date FROM entities WHERE id != 0").fetchall()
        elif ORIGINAL:
            rows = connection.execute("SELECT id, access_hash, username, last_update_on FROM peers").fetchall()
        else:
            rows = connection.execute(
                "SELECT p.id, p.access_hash, (SELECT u.username FROM usernames u WHERE u.id = p.id ORDER BY u.rowid LIMIT 1), "
                "p.last_update_on FROM peers p").fetchall()
    finally:
        connection.close()
    return sorted(({"id": i, "access_hash": h or 0, "username": u.lower() if u else None, "seen_at": d}
                   for i, h, u, d in rows), key=lambda peer: peer["id"])


def key(label, length=256):
    data = random.Random(label).randbytes(256)
    # Telethon stores AuthKey.key as given, and its handshake builds it from the minimal big-endian
    # form of g^ab; a key whose first byte is zero would be stored one byte shorter (its own key id
    # check then fails, so in practice Telethon retries). `length` < 256 writes such a file.
    return data[256 - length:] if length < 256 else data


def telethon_file(out, name, dc, address, port, auth_key, user_id, takeout_id=None, tmp_key=None):
    session = SQLiteSession(str(out / name), store_tmp_auth_key_on_disk=tmp_key is not None)
    session.set_dc(dc, address, port)
    session.auth_key = AuthKey(auth_key)
    if tmp_key is not None:
        session.tmp_auth_key = AuthKey(tmp_key)
    if takeout_id is not None:
        session.takeout_id = takeout_id
    if user_id is not None:
        # What TelegramClient._save_states_and_entities does: the own id as the hash of entity 0.
        session.process_entities(types.contacts.ResolvedPeer(None, [types.InputPeerUser(0, user_id)], []))
        # What a client caches from its answers.
        session.process_entities(telethon_peers())
    session.save()
    session.close()
    return {
        "peers": cached_peers(out / name, "telethon"),
        "name": name, "kind": "file", "format": "telethonFile", "library": TELETHON,
        "dc": dc, "address": address, "port": port, "key": auth_key.rjust(256, b"\0").hex(),
        "user_id": user_id, "is_bot": None, "api_id": None, "test_mode": None, "date": None,
        "takeout_id": takeout_id, "tmp_key": tmp_key.hex() if tmp_key else None,
    }


def telethon_string(label, dc, address, port, auth_key):
    session = StringSession()
    session.set_dc(dc, address, port)
    session.auth_key = AuthKey(auth_key)
    text = session.save()
    # The library must read back what it wrote.
    back = StringSession(text)
    assert (back.dc_id, back.server_address, back.port, back.auth_key.key) == (dc, address, port, auth_key)
    return {
        "name": label, "kind": "string", "format": "telethonString", "library": TELETHON, "text": text,
        "dc": dc, "address": address, "port": port, "key": auth_key.hex(),
        "user_id": None, "is_bot": None, "api_id": None, "test_mode": None, "date": None,
        "takeout_id": None, "tmp_key": None,
    }


async def pyrogram_storage(storage, dc, address, port, api_id, test_mode, auth_key, user_id, is_bot):
    await storage.dc_id(dc)
    if not ORIGINAL:  # Pyrogram 2.0.106 stores no address
        await storage.server_address(address)
        await storage.port(port)
    await storage.api_id(api_id)
    await storage.test_mode(test_mode)
    await storage.auth_key(auth_key)
    await storage.user_id(user_id)
    await storage.is_bot(is_bot)


async def pyrogram_file(out, name, dc, address, port, api_id, test_mode, auth_key, user_id, is_bot, date, use_wal=False):
    storage = file_storage(name, out, use_wal=use_wal)
    await storage.open()
    await pyrogram_storage(storage, dc, address, port, api_id, test_mode, auth_key, user_id, is_bot)
    # A logged-in client keeps peers too; this also proves the library's own schema takes them.
    assert await peers_usable(storage)
    await store_pyrogram_peers(storage)
    await storage.save()
    await storage.date(date)  # save() stamps the wall clock; a fixed date keeps the manifest exact
    address, port = await stored_address(storage)
    await storage.close()
    return {
        "peers": cached_peers(out / (name + FILE_EXTENSION), "pyrogram"),
        "name": name + FILE_EXTENSION, "kind": "file", "format": "pyrogramFile", "library": PYROGRAM,
        "dc": dc, "address": address, "port": port, "key": auth_key.hex(),
        "user_id": user_id, "is_bot": is_bot, "api_id": api_id, "test_mode": test_mode, "date": date,
        "takeout_id": None, "tmp_key": None,
    }


async def pyrogram_string(label, dc, api_id, test_mode, auth_key, user_id, is_bot):
    storage = memory_storage(label)
    await storage.open()
    await pyrogram_storage(storage, dc, None, None, api_id, test_mode, auth_key, user_id, is_bot)
    text = await storage.export_session_string()
    await storage.close()
    expected = await pyrogram_load_string(text)
    return {
        "name": label, "kind": "string", "format": "pyrogramString", "library": PYROGRAM, "text": text,
        "dc": dc, "address": expected["address"], "port": expected["port"], "key": auth_key.hex(),
        "user_id": user_id, "is_bot": is_bot, "api_id": api_id, "test_mode": test_mode, "date": None,
        "takeout_id": None, "tmp_key": None,
    }


async def pyrogram_load_string(text):
    """What Pyrogram itself makes of a string session (the address comes from its DC table)."""
    storage = memory_storage("check", session_string=text)
    await storage.open()
    address, port = await stored_address(storage)
    fields = {
        "dc": await storage.dc_id(), "address": address, "port": port,
        "api_id": await storage.api_id(), "test_mode": bool(await storage.test_mode()),
        "key": (await storage.auth_key()).hex(), "user_id": await storage.user_id(),
        "is_bot": bool(await storage.is_bot()),
    }
    await storage.close()
    return fields


async def pyrogram_old_string(label, layout, dc, test_mode, auth_key, user_id, is_bot):
    """Older Pyrogram layouts (351 and 356 characters): the current library no longer writes them
    but still reads them, so they are packed with its own format constants and must load in it.
    Loading one, kurigram leaves the address at its DC 2 default whatever the DC; tgsm takes the
    address of the string's DC from the same tables Pyrogram uses for the current layout."""
    fmt = {"old32": OLD_SESSION_STRING_FORMAT, "old64": OLD_SESSION_STRING_FORMAT_64}[layout]
    text = base64.urlsafe_b64encode(struct.pack(fmt, dc, test_mode, auth_key, user_id, is_bot)).decode().rstrip("=")
    loaded = await pyrogram_load_string(text)
    assert (loaded["dc"], loaded["key"], loaded["user_id"], loaded["is_bot"]) == (dc, auth_key.hex(), user_id, is_bot)
    address, port = dialed_address(dc, test_mode)
    return {
        "name": label, "kind": "string", "format": "pyrogramString", "library": PYROGRAM, "text": text,
        "dc": dc, "address": address, "port": port, "key": auth_key.hex(),
        "user_id": user_id, "is_bot": is_bot, "api_id": None, "test_mode": test_mode, "date": None,
        "takeout_id": None, "tmp_key": None,
    }


async def main(out):
    out.mkdir(parents=True, exist_ok=True)
    fixtures = [
        telethon_file(out, "telethon-ipv4.session", 2, "149.154.167.51", 443, key("telethon-ipv4"), 777000111,
                      takeout_id=-5123456789012345678, tmp_key=key("telethon-ipv4-tmp")),
        telethon_file(out, "telethon-ipv6.session", 4, "2001:67c:4e8:f004::a", 443, key("telethon-ipv6"), 9123456789),
        telethon_file(out, "telethon-short-key.session", 1, "149.154.175.53", 443, key("telethon-short", 255), None),
        telethon_string("telethon-string-ipv4", 5, "91.108.56.130", 443, key("telethon-string-ipv4")),
        telethon_string("telethon-string-ipv6", 3, "2001:b28:f23d:f003::a", 5222, key("telethon-string-ipv6")),
        await pyrogram_file(out, "pyrogram-user", 2, "149.154.167.51", 443, 611335, False, key("pyrogram-user"),
                            5000000001, False, 1764720000),
        await pyrogram_file(out, "pyrogram-test-bot", 1, "149.154.175.10", 80, 21724, True, key("pyrogram-bot"),
                            7012345678, True, 1700000000),
        # kurigram's use_wal option leaves the file in WAL mode, which a read-only open must handle;
        # Pyrogram 2.0.106 has no such option, so there a DC 4 bot takes its place.
        await (pyrogram_file(out, "pyrogram-dc4-bot", 4, "149.154.167.91", 443, 94575, False, key("pyrogram-dc4"),
                             6000000004, True, 1764000000) if ORIGINAL else
               pyrogram_file(out, "pyrogram-wal", 5, "91.108.56.130", 443, 94575, False, key("pyrogram-wal"),
                             6000000005, False, 1764000000, use_wal=True)),
        await pyrogram_string("pyrogram-string-user", 4, 611335, False, key("pyrogram-string-user"), 1234567890123, False),
        await pyrogram_string("pyrogram-string-test-bot", 3, 21724, True, key("pyrogram-string-bot"), 6999999999, True),
        await pyrogram_old_string("pyrogram-string-old32", "old32", 2, False, key("pyrogram-old32"), 123456789, False),
        await pyrogram_old_string("pyrogram-string-old64", "old64", 5, False, key("pyrogram-old64"), 8123456789, True),
    ]
    (out / "manifest.json").write_text(json.dumps(fixtures, indent=1))


def fuzz_seeds(seeds):
    """One seed per fixture in each mode of SessionImportFuzz (first byte = mode): the strings as
    text (0, 1) and as packed bytes (2, 3), the files (5) rewritten with 512-byte pages so they fit
    the fuzzer's input size limit."""
    import sqlite3
    import tempfile
    seeds.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        asyncio.run(main(scratch))
        for fixture in json.loads((scratch / "manifest.json").read_text()):
            label = fixture["name"]
            if fixture["kind"] == "string":
                text = fixture["text"]
                telethon = fixture["format"] == "telethonString"
                packed = base64.urlsafe_b64decode((text[1:] if telethon else text) + "=" * (-len(text) % 4))
                (seeds / (label + "-text")).write_bytes(bytes([0 if telethon else 1]) + text.encode())
                (seeds / (label + "-packed")).write_bytes(bytes([2 if telethon else 3]) + packed)
            else:
                path = scratch / label
                connection = sqlite3.connect(path)
                connection.execute("PRAGMA page_size = 512")
                connection.execute("VACUUM")
                connection.close()
                (seeds / (label + "-file")).write_bytes(bytes([5]) + path.read_bytes())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--fuzz-seeds":
        fuzz_seeds(pathlib.Path(sys.argv[2]))
    elif len(sys.argv) == 2:
        asyncio.run(main(pathlib.Path(sys.argv[1])))
    else:
        sys.exit("usage: make_session_files.py OUTDIR | --fuzz-seeds DIR")
