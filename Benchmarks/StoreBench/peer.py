"""The peer of StoreBench: Python's sqlite3 writing the same rows, one commit per write, in WAL
mode at synchronous FULL and NORMAL (Telethon's SQLiteSession commits like this on save())."""
import os
import sqlite3
import sys
import tempfile
import time

writes = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
base = sys.argv[2] if len(sys.argv) > 2 else None
for sync in ("FULL", "NORMAL"):
    with tempfile.TemporaryDirectory(dir=base) as d:
        db = sqlite3.connect(os.path.join(d, "peer.sqlite"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync}")
        db.execute("CREATE TABLE flood_wait (account TEXT, method TEXT, peer TEXT, until REAL, PRIMARY KEY (account, method, peer))")
        db.execute("CREATE TABLE dc (account TEXT, dc_id INTEGER, salt INTEGER, PRIMARY KEY (account, dc_id))")
        db.execute("INSERT INTO dc VALUES ('bench', 2, 0)")
        start = time.perf_counter()
        for i in range(writes):
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT OR REPLACE INTO flood_wait VALUES ('bench', 'messages.sendMessage', ?, ?)", (f"user:{i}", time.time() + 30))
            db.execute("COMMIT")
        ledger = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(writes):
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE dc SET salt = ? WHERE account = 'bench' AND dc_id = 2", (i,))
            db.execute("COMMIT")
        salts = time.perf_counter() - start
        db.close()
        print(f"python ledger {sync:<6}          {int(writes / ledger)}", flush=True)
        print(f"python salt   {sync:<6}          {int(writes / salts)}", flush=True)
