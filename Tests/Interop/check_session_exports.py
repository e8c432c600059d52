"""Loads the session files and strings tgsm exported with the real libraries and compares every
field with what tgsm meant to write.

    check_session_exports.py DIR

DIR/manifest.json has the same shape as the one make_session_files.py writes. Prints one JSON object
{fixture name: [mismatch, ...]} and exits 0 when every list is empty, 1 otherwise. A fixture the
library refuses to load is reported as a mismatch with the library's error, prefixed with the
library's name and version (kurigram 2.2.26 or Pyrogram 2.0.106, whichever this venv holds).

A file's peers (the manifest's `peers`) must be found by the library the way a client looks them
up: by marked id with the right access hash, and by username. Pyrogram files of the other Pyrogram's
schema are looked up by id only: kurigram's upgrade of a version 3 file leaves the usernames behind
(it creates an empty `usernames` table), and Pyrogram 2.0.106 reads `peers.username`, which
version 7 does not have; both are the libraries' own behaviour with each other's files.

A Pyrogram file must also carry the schema version of this library and take peers the way a client
stores them on its first update (`peers_usable`): Pyrogram 2.0.106 opens a version 7 file without
complaint but fails on its first update, since version 7 moved `peers.username` to a table.
"""
import asyncio
import json
import pathlib
import shutil
import sqlite3
import sys
import tempfile

from telethon import utils
from telethon.sessions import SQLiteSession, StringSession

from make_session_files import (
    FILE_VERSION, PYROGRAM, TELETHON, file_storage, peers_usable, pyrogram_load_string, stored_address,
    stored_version,
)


def telethon_fields(session):
    try:
        # How TelegramClient finds its own id on connect: the hash of entity 0.
        user_id = session.get_input_entity(0).access_hash
    except ValueError:
        user_id = None
    # Read the attribute the loader filled, not the `tmp_auth_key` property (see platform-facts).
    tmp = session._tmp_auth_key.key if session._tmp_auth_key and session._tmp_auth_key.key else None
    return {
        "dc": session.dc_id, "address": session.server_address, "port": session.port,
        "key": session.auth_key.key.hex() if session.auth_key else None, "user_id": user_id,
        "takeout_id": session.takeout_id, "tmp_key": tmp.hex() if tmp else None,
    }


def telethon_peer_problems(session, peers):
    """Each peer found as TelegramClient.get_input_entity finds it in the session: by id, by username."""
    problems = []
    for peer in peers:
        try:
            found = session.get_input_entity(peer["id"])
        except ValueError:
            problems.append(f"{peer['id']}: not found by id")
            continue
        if utils.get_peer_id(found) != peer["id"] or getattr(found, "access_hash", 0) != peer["access_hash"]:
            problems.append(f"{peer['id']}: found {found!r}")
        if peer.get("username"):
            try:
                by_name = session.get_input_entity(peer.get("username"))
                if utils.get_peer_id(by_name) != peer["id"]:
                    problems.append(f"@{peer['username']}: found {by_name!r}")
            except ValueError:
                problems.append(f"@{peer['username']}: not found by username")
    return problems


def telethon_file(path, peers):
    session = SQLiteSession(str(path))
    try:
        fields = telethon_fields(session)
        fields["peer_problems"] = telethon_peer_problems(session, peers)
        return fields
    finally:
        session.close()


async def pyrogram_peer_problems(storage, peers, by_username):
    """Each peer found as Pyrogram's resolve_peer finds it in storage: by id, by username (which
    Pyrogram trusts for 8 hours after the row's last_update_on)."""
    problems = []
    for peer in peers:
        try:
            found = await storage.get_peer_by_id(peer["id"])
            if getattr(found, "access_hash", 0) != peer["access_hash"]:
                problems.append(f"{peer['id']}: found {found!r}")
        except KeyError as error:
            problems.append(f"{peer['id']}: {error}")
        if peer.get("username") and by_username:
            try:
                await storage.get_peer_by_username(peer.get("username"))
            except KeyError as error:
                problems.append(f"@{peer['username']}: {error}")
    return problems


def file_version(path):
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT number FROM version").fetchone()[0]
    finally:
        connection.close()


def telethon_string(text):
    session = StringSession(text)
    fields = telethon_fields(session)
    # A StringSession must save back to the very same string.
    fields["resaved_equal"] = session.save() == text
    return fields


async def pyrogram_file(path, peers):
    own_schema = file_version(path) == FILE_VERSION
    # Pyrogram's open() upgrades and VACUUMs the file: work on a copy so the export stays as written.
    with tempfile.TemporaryDirectory() as scratch:
        copy = pathlib.Path(scratch) / path.name
        shutil.copyfile(path, copy)
        storage = file_storage(copy.stem, pathlib.Path(scratch))
        await storage.open()
        address, port = await stored_address(storage)
        fields = {
            "dc": await storage.dc_id(), "address": address, "port": port,
            "api_id": await storage.api_id(), "test_mode": bool(await storage.test_mode()),
            "key": (await storage.auth_key()).hex(), "user_id": await storage.user_id(),
            "is_bot": bool(await storage.is_bot()), "date": await storage.date(),
            "version": await stored_version(storage),
        }
        fields["peer_problems"] = await pyrogram_peer_problems(storage, peers, by_username=own_schema)
        try:
            fields["peers_usable"] = await peers_usable(storage)
        except Exception as error:
            fields["peers_usable"] = f"{type(error).__name__}: {error}"
        await storage.close()
        return fields


async def main(directory):
    manifest = json.loads((directory / "manifest.json").read_text())
    report = {}
    for fixture in manifest:
        name, fmt = fixture["name"], fixture["format"]
        library = TELETHON if fmt.startswith("telethon") else PYROGRAM
        try:
            if fmt == "telethonFile":
                got = telethon_file(directory / name, fixture.get("peers") or [])
                checked = ["dc", "address", "port", "key", "user_id", "takeout_id", "tmp_key", "peer_problems"]
                fixture = dict(fixture, peer_problems=[])
            elif fmt == "telethonString":
                got = telethon_string(fixture["text"])
                checked = ["dc", "address", "port", "key"]
                fixture = dict(fixture, resaved_equal=True)
                checked.append("resaved_equal")
            elif fmt == "pyrogramFile":
                got = await pyrogram_file(directory / name, fixture.get("peers") or [])
                checked = ["dc", "address", "port", "api_id", "test_mode", "key", "user_id", "is_bot", "date"]
                fixture = dict(fixture, version=FILE_VERSION, peers_usable=True, peer_problems=[])
                checked += ["version", "peers_usable", "peer_problems"]
            elif fmt == "pyrogramString":
                got = await pyrogram_load_string(fixture["text"])
                checked = ["dc", "address", "port", "api_id", "test_mode", "key", "user_id", "is_bot"]
            else:
                report[name] = [f"unknown format {fmt}"]
                continue
        except Exception as error:  # the library refused it: that is the finding
            report[name] = [f"{library}: {type(error).__name__}: {error}"]
            continue
        report[name] = [
            f"{field}: {library} read {got.get(field)!r}, tgsm wrote {fixture.get(field)!r}"
            for field in checked if got.get(field) != fixture.get(field)
        ]
    print(json.dumps(report, indent=1, sort_keys=True))
    return 0 if all(not problems for problems in report.values()) else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: check_session_exports.py DIR")
    sys.exit(asyncio.run(main(pathlib.Path(sys.argv[1]))))
