"""Loads the session files and strings tgsm exported with the real libraries and compares every
field with what tgsm meant to write.

    check_session_exports.py DIR

DIR/manifest.json has the same shape as the one make_session_files.py writes. Prints one JSON object
{fixture name: [mismatch, ...]} and exits 0 when every list is empty, 1 otherwise. A fixture the
library refuses to load is reported as a mismatch with the library's error, prefixed with the
library's name and version (kurigram 2.2.26 or Pyrogram 2.0.106, whichever this venv holds).

A Pyrogram file must also carry the schema version of this library and take peers the way a client
stores them on its first update (`peers_usable`): Pyrogram 2.0.106 opens a version 7 file without
complaint but fails on its first update, since version 7 moved `peers.username` to a table.
"""
import asyncio
import json
import pathlib
import shutil
import sys
import tempfile

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


def telethon_file(path):
    session = SQLiteSession(str(path))
    try:
        return telethon_fields(session)
    finally:
        session.close()


def telethon_string(text):
    session = StringSession(text)
    fields = telethon_fields(session)
    # A StringSession must save back to the very same string.
    fields["resaved_equal"] = session.save() == text
    return fields


async def pyrogram_file(path):
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
                got = telethon_file(directory / name)
                checked = ["dc", "address", "port", "key", "user_id", "takeout_id", "tmp_key"]
            elif fmt == "telethonString":
                got = telethon_string(fixture["text"])
                checked = ["dc", "address", "port", "key"]
                fixture = dict(fixture, resaved_equal=True)
                checked.append("resaved_equal")
            elif fmt == "pyrogramFile":
                got = await pyrogram_file(directory / name)
                checked = ["dc", "address", "port", "api_id", "test_mode", "key", "user_id", "is_bot", "date"]
                fixture = dict(fixture, version=FILE_VERSION, peers_usable=True)
                checked += ["version", "peers_usable"]
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
