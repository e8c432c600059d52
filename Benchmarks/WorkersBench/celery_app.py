"""The Celery side of scripts/bench-workers: the same jobs as tgsm's built-in kinds, through Telethon.

This is how a Celery deployment runs Telegram accounts, in the form most favourable to Celery that
keeps one auth key per account: one worker per account (its own queue `acct.<name>`), the `threads`
pool with `--concurrency C` (C calls in flight per account, like tgsm's concurrency per account), and
one Telethon client per worker on an asyncio loop in a background thread, connected before the
worker reports ready. A prefork pool would need a login per child process (one auth key used by two
processes at once is AUTH_KEY_DUPLICATED).

Environment (set by bench.py):
  BENCH_BROKER     redis://127.0.0.1:PORT/0 (broker and result backend)
  BENCH_DC_DIR     the test DC's state directory (dcs.json and the public key PEMs)
  BENCH_SESSIONS   directory of Telethon string sessions, one file `<account>.telethon` each
  BENCH_ACCOUNT    the account this worker serves (the worker's queue is acct.<account>)
"""
import asyncio
import json
import os
import threading
import time

from celery import Celery
from celery.signals import worker_init, worker_shutdown

from telethon import TelegramClient, functions, types
from telethon.crypto import rsa
from telethon.sessions import StringSession

broker = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")
app = Celery("workersbench", broker=broker, backend=broker)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Like tgsm's queue: a job is acknowledged only once it ran, so a killed worker loses none.
    task_acks_late=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_loop = None
_client = None


def _trust_test_dc(directory):
    table = json.load(open(os.path.join(directory, "dcs.json")))
    rsa._server_keys.clear()
    for dc in table["dcs"]:
        with open(os.path.join(directory, dc["publicKeyFile"])) as pem:
            rsa.add_key(pem.read(), old=False)


@worker_init.connect
def _connect(**_):
    """Connects the account's client before the worker takes jobs, so "ready" means ready."""
    global _loop, _client
    account = os.environ.get("BENCH_ACCOUNT")
    if not account:
        return
    _trust_test_dc(os.environ["BENCH_DC_DIR"])
    with open(os.path.join(os.environ["BENCH_SESSIONS"], account + ".telethon")) as file:
        session = StringSession(file.read().strip())
    _loop = asyncio.new_event_loop()
    threading.Thread(target=_loop.run_forever, name="telethon", daemon=True).start()

    async def connect():
        client = TelegramClient(session, 1, "0123456789abcdef0123456789abcdef", loop=_loop,
                                flood_sleep_threshold=0, receive_updates=False)
        await client.connect()
        if not await client.is_user_authorized():
            raise RuntimeError(f"the Telethon session of {account} is not logged in")
        return client

    _client = asyncio.run_coroutine_threadsafe(connect(), _loop).result(timeout=60)


@worker_shutdown.connect
def _disconnect(**_):
    if _client is not None and _loop is not None:
        asyncio.run_coroutine_threadsafe(_client.disconnect(), _loop).result(timeout=10)


def _call(request):
    return asyncio.run_coroutine_threadsafe(_client(request), _loop).result(timeout=60)


@app.task(name="bench.me")
def me(account):
    """tgsm's `me` kind: users.getFullUser(inputUserSelf), the account's id and names as the result."""
    full = _call(functions.users.GetFullUserRequest(types.InputUserSelf()))
    user = next(u for u in full.users if u.is_self or len(full.users) == 1)
    return {"id": user.id, "firstName": user.first_name, "lastName": user.last_name, "username": user.username,
            "bot": bool(user.bot), "finishedAt": time.time()}


@app.task(name="bench.resolve")
def resolve(account, username):
    """tgsm's `resolve` kind: contacts.resolveUsername, the peer as the result."""
    answer = _call(functions.contacts.ResolveUsernameRequest(username))
    peer = answer.peer
    if isinstance(peer, types.PeerUser):
        kind, ident = "user", peer.user_id
        access = next((u.access_hash for u in answer.users if u.id == ident), 0)
    elif isinstance(peer, types.PeerChannel):
        kind, ident = "channel", peer.channel_id
        access = next((c.access_hash for c in answer.chats if c.id == ident), 0)
    else:
        kind, ident, access = "chat", peer.chat_id, 0
    return {"username": username, "peer": {"type": kind, "id": ident, "accessHash": access}, "finishedAt": time.time()}
