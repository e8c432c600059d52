#!/usr/bin/env python3
"""Telethon 1.45 against `tgsm testdc`, using only what docs/TESTDC.md documents.

Starts the test DC on ephemeral ports with a fresh state directory, trusts the DCs' PEM keys,
and walks a real client through key exchange, login (code and 2FA), reads, a send, a username,
an injected FLOOD_WAIT and a PHONE_MIGRATE, then logs in again over obfuscated2 and through a real
MTProxy (mtprotoproxy, Tests/Interop/run_mtproxy.py). Prints one line per step and `N passed, M failed`;
exits non-zero on any failure.

usage: telethon_interop.py [path/to/tgsm]   (default: .build/debug/tgsm)
"""
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from telethon import TelegramClient, errors, events, functions, types
from telethon.network.connection import ConnectionTcpMTProxyIntermediate, ConnectionTcpObfuscated
from telethon.crypto import rsa
from telethon.sessions import MemorySession

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API_ID, API_HASH = 1, "0123456789abcdef0123456789abcdef"
MTPROXY_SECRET = "5ecc0de5ecc0de5ecc0de5ecc0de5ecc"

passed = 0
failed = 0
SERVER_LOG = []
# What the DC's logs must never show, even at debug level: phones, login codes, the 2FA password,
# a login email and the code mailed to it.
SECRETS = ["15550001", "15550002", "15550003", "10005", "20005", "30005", "hunter2", "carol@example.com", "550003"]


def report(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}" + (f": {detail}" if detail else ""), flush=True)
    else:
        failed += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)


class Control:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def code(self, phone):
        return self.call("GET", f"/codes/{phone}")["code"]


def start_testdc(binary, state_dir):
    process = subprocess.Popen(
        [binary, "testdc", "--host", "127.0.0.1", "--base-port", "0", "--state-dir", state_dir, "--log-level", "debug"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    output = []
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if line.strip() == "ready":
            # Keep draining its output so a full pipe never blocks the server; kept for the log check.
            def drain():
                for line in process.stdout:
                    SERVER_LOG.append(line)
            process.reader = threading.Thread(target=drain, daemon=True)
            process.reader.start()
            SERVER_LOG.extend(output)
            return process
    process.kill()
    raise RuntimeError("tgsm testdc did not become ready:\n" + "".join(output))


async def step(name, coroutine):
    started = time.monotonic()
    try:
        detail = await coroutine
        report(name, True, f"{detail or ''} ({time.monotonic() - started:.1f} s)")
        return True
    except Exception as error:  # every failure is reported, the run goes on
        report(name, False, f"{type(error).__name__}: {error}")
        return False


def signed64(value):
    """Telethon keeps key ids unsigned; the DC table and the control endpoint use TL's signed long."""
    return value - (1 << 64) if value >= (1 << 63) else value


def new_client(dcs, dc_id, auth_key=None, **options):
    session = MemorySession()
    entry = next(dc for dc in dcs if dc["id"] == dc_id)
    session.set_dc(dc_id, entry["host"], entry["port"])
    if auth_key is not None:
        session.auth_key = auth_key
    return TelegramClient(session, API_ID, API_HASH, flood_sleep_threshold=0, request_retries=1,
                          connection_retries=1, retry_delay=0, timeout=15, **options)


async def run(dcs, control):
    alice = new_client(dcs, 1)
    bob = new_client(dcs, 1)
    carol = new_client(dcs, 1)

    async def key_exchange():
        await alice.connect()
        assert alice.is_connected(), "not connected"
        key = alice.session.auth_key
        assert key is not None and len(key.key) == 256, "no 2048-bit auth key"
        return f"auth key id {key.key_id}"

    async def login_with_code():
        sent = await alice.send_code_request("+15550001")
        code = control.code("15550001")
        user = await alice.sign_in("+15550001", code, phone_code_hash=sent.phone_code_hash)
        assert user.id == 1001, f"signed in as {user.id}"
        assert await alice.is_user_authorized()
        return "signed in as user 1001"

    async def get_me():
        me = await alice.get_me()
        assert me.id == 1001 and me.username == "alice" and me.first_name == "Alice", repr(me)
        return f"@{me.username}"

    async def iter_messages():
        messages = [m async for m in alice.iter_messages("testnews", limit=25)]
        assert len(messages) == 25, f"{len(messages)} messages"
        assert [m.id for m in messages] == list(range(30, 5, -1)), [m.id for m in messages]
        assert messages[0].message == "News post #30", messages[0].message
        older = [m async for m in alice.iter_messages("testnews", offset_id=6)]
        assert [m.id for m in older] == [5, 4, 3, 2, 1], [m.id for m in older]
        return "30..6 then 5..1"

    async def send_message():
        sent = await alice.send_message("bob", "hello from telethon")
        assert sent.id >= 1 and sent.message == "hello from telethon", repr(sent)
        history = await alice.get_messages("bob", limit=5)
        assert any(m.message == "hello from telethon" for m in history), [m.message for m in history]
        return f"message id {sent.id}"

    async def pushed_new_message():
        # Bob writes to Alice from "another device" (the control endpoint); the DC pushes
        # updates(updateNewMessage) with Alice's next pts and Telethon raises a NewMessage event.
        received = asyncio.get_running_loop().create_future()

        async def on_message(event):
            if event.raw_text == "pushed to telethon" and not received.done():
                received.set_result(event)

        alice.add_event_handler(on_message, events.NewMessage(incoming=True))
        try:
            await alice(functions.updates.GetStateRequest())
            control.call("POST", "/messages", {"fromID": 1002, "toID": 1001, "text": "pushed to telethon"})
            event = await asyncio.wait_for(received, timeout=15)
        finally:
            alice.remove_event_handler(on_message)
        assert event.sender_id == 1002 and event.chat_id == 1002, (event.sender_id, event.chat_id)
        return f"NewMessage from {event.sender_id}, message id {event.id}"

    async def resolve_username():
        entity = await alice.get_entity("carol")
        assert entity.id == 1003 and entity.first_name == "Carol", repr(entity)
        return "@carol is user 1003"

    async def flood_wait():
        control.call("POST", "/faults", {"match": {"method": "users.getFullUser", "account": 1001, "count": 1},
                                          "effect": {"kind": "floodWait", "seconds": 42}})
        try:
            await alice(functions.users.GetFullUserRequest("bob"))
        except errors.FloodWaitError as error:
            assert error.seconds == 42, f"waited {error.seconds}"
            # Telethon itself now refuses the same request for 42 s; the DC's rule fired exactly once.
            rules = control.call("GET", "/faults")["rules"]
            assert [rule["fired"] for rule in rules] == [1], rules
            control.call("DELETE", "/faults")
            return "FloodWaitError(seconds=42), rule fired once"
        raise AssertionError("no FloodWaitError")

    async def two_factor():
        await bob.connect()
        sent = await bob.send_code_request("+15550002")
        try:
            await bob.sign_in("+15550002", control.code("15550002"), phone_code_hash=sent.phone_code_hash)
            raise AssertionError("no SessionPasswordNeededError")
        except errors.SessionPasswordNeededError:
            pass
        # Until the password comes, the key's other calls say what it waits for, as Telegram's do.
        try:
            await bob(functions.updates.GetStateRequest())
            raise AssertionError("updates.getState answered before the password")
        except errors.SessionPasswordNeededError:
            pass
        try:
            await bob.sign_in(password="wrong password")
            raise AssertionError("a wrong password was accepted")
        except errors.PasswordHashInvalidError:
            pass
        user = await bob.sign_in(password="hunter2")
        assert user.id == 1002, f"signed in as {user.id}"
        me = await bob.get_me()
        assert me.id == 1002
        return "SESSION_PASSWORD_NEEDED (also to updates.getState meanwhile), PASSWORD_HASH_INVALID, then SRP accepted"

    async def qr_login_with_password():
        # Telethon's QR flow on a new device; bob's logged-in session accepts the token, and since
        # bob has a 2FA password the token alone does not log in: QRLogin.wait raises
        # SessionPasswordNeededError, and the password completes the login.
        desk = new_client(dcs, 1)
        await desk.connect()
        try:
            qr = await desk.qr_login()
            assert qr.url.startswith("tg://login?token="), qr.url
            accepted = await bob(functions.auth.AcceptLoginTokenRequest(qr.token))
            assert accepted is not None
            try:
                await qr.wait(timeout=10)
                raise AssertionError("the QR login completed without the password")
            except errors.SessionPasswordNeededError:
                pass
            user = await desk.sign_in(password="hunter2")
            assert user.id == 1002, f"signed in as {user.id}"
            me = await desk.get_me()
            assert me.id == 1002
            return "token accepted, SessionPasswordNeededError, then the password logged in"
        finally:
            await desk.disconnect()

    async def phone_migrate():
        await carol.connect()
        assert carol.session.dc_id == 1
        sent = await carol.send_code_request("+15550003")
        assert carol.session.dc_id == 2, f"still on DC {carol.session.dc_id}"
        user = await carol.sign_in("+15550003", control.code("15550003"), phone_code_hash=sent.phone_code_hash)
        assert user.id == 1003
        me = await carol.get_me()
        assert me.id == 1003 and carol.session.dc_id == 2
        return "PHONE_MIGRATE_2 followed, logged in on DC 2"

    def fired_once(kind):
        rules = [rule for rule in control.call("GET", "/faults")["rules"] if rule["effect"]["kind"] == kind]
        assert [rule["fired"] for rule in rules] == [1], rules
        control.call("DELETE", "/faults")

    async def bad_server_salt():
        control.call("POST", "/faults", {"match": {"method": "users.getUsers", "account": 1001, "count": 1},
                                          "effect": {"kind": "badServerSalt"}})
        me = await alice.get_me()
        assert me.id == 1001
        fired_once("badServerSalt")
        return "salt changed mid-session, request resent and answered"

    async def dropped_connection():
        control.call("POST", "/faults", {"match": {"method": "updates.getState", "account": 1001, "count": 1},
                                          "effect": {"kind": "dropBeforeAnswer"}})
        state = await alice(functions.updates.GetStateRequest())
        assert state.pts >= 1
        fired_once("dropBeforeAnswer")
        return "Telethon reconnected and got its answer"

    async def delayed_answer():
        control.call("POST", "/faults", {"match": {"method": "help.getNearestDc", "count": 1},
                                          "effect": {"kind": "delay", "milliseconds": 300}})
        nearest = await alice(functions.help.GetNearestDcRequest())
        assert nearest.this_dc == 1
        fired_once("delay")
        return "answered after the injected delay"

    async def clock_skew():
        control.call("POST", "/clock", {"dc": 1, "offsetSeconds": 400})
        try:
            nearest = await alice(functions.help.GetNearestDcRequest())
            assert nearest.this_dc == 1
        finally:
            control.call("POST", "/clock", {"dc": 1, "offsetSeconds": 0})
        nearest = await alice(functions.help.GetNearestDcRequest())
        assert nearest.this_dc == 1
        for _ in range(20):
            codes = {code for line in SERVER_LOG for code in re.findall(r"bad_msg_code=(\d+)", line)}
            if {"16", "17"} <= codes:
                break
            await asyncio.sleep(0.1)
        assert {"16", "17"} <= codes, f"bad_msg codes logged: {sorted(codes)}"
        return "Telethon followed bad_msg_notification 16, then 17 when the clock came back"

    async def duplicated_key():
        # A second client with the same auth key and its own session id while alice's connection lives:
        # its first request (help.getConfig inside connect) meets the rule.
        twin = new_client(dcs, 1, auth_key=alice.session.auth_key)
        try:
            await twin.connect()
            await twin(functions.updates.GetStateRequest())
            raise AssertionError("no AUTH_KEY_DUPLICATED")
        except errors.AuthKeyDuplicatedError:
            pass
        finally:
            await twin.disconnect()
        keys = control.call("GET", "/keys")
        assert signed64(alice.session.auth_key.key_id) not in [key["keyID"] for key in keys], keys
        try:
            await alice(functions.updates.GetStateRequest())
            raise AssertionError("the duplicated key still works")
        except errors.AuthKeyDuplicatedError:
            pass
        return "406 AUTH_KEY_DUPLICATED, the key forgotten for both"

    async def revoked_key():
        control.call("POST", "/faults", {"match": {"account": 1003, "count": 1}, "effect": {"kind": "authKeyUnregistered"}})
        try:
            await carol(functions.updates.GetStateRequest())
            raise AssertionError("no AuthKeyUnregisteredError")
        except errors.AuthKeyUnregisteredError:
            pass
        control.call("DELETE", "/faults")
        keys = control.call("GET", "/keys")
        assert [key.get("userID") for key in keys if key["keyID"] == signed64(carol.session.auth_key.key_id)] == [None], keys
        try:
            await carol(functions.updates.GetStateRequest())
            raise AssertionError("still logged in")
        except errors.AuthKeyUnregisteredError:
            pass
        return "401 AUTH_KEY_UNREGISTERED, then logged out"

    async def obfuscated_login():
        # A second session of alice over obfuscated2 (Telethon's ConnectionTcpObfuscated: abridged inside).
        client = new_client(dcs, 1, connection=ConnectionTcpObfuscated)
        try:
            await client.connect()
            sent = await client.send_code_request("+15550001")
            user = await client.sign_in("+15550001", control.code("15550001"), phone_code_hash=sent.phone_code_hash)
            assert user.id == 1001, f"signed in as {user.id}"
            messages = await client.get_messages("testnews", limit=3)
            assert [m.id for m in messages] == [30, 29, 28], [m.id for m in messages]
        finally:
            await client.disconnect()
        return "key exchange, login and reads over ConnectionTcpObfuscated"

    async def mtproxy_login():
        # Through a real MTProxy (mtprotoproxy from PyPI via run_mtproxy.py) with a plain secret.
        proxy = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "Tests", "Interop", "run_mtproxy.py"), MTPROXY_SECRET, "tgsm.example"]
            + [f"{dc['id']}={dc['host']}:{dc['port']}" for dc in dcs],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = proxy.stdout.readline().strip()
            assert line.startswith("ready "), f"the proxy did not start: {line!r}"
            port = int(line.split()[1])
            client = new_client(dcs, 1, connection=ConnectionTcpMTProxyIntermediate,
                                proxy=("127.0.0.1", port, MTPROXY_SECRET))
            try:
                await client.connect()
                sent = await client.send_code_request("+15550001")
                user = await client.sign_in("+15550001", control.code("15550001"), phone_code_hash=sent.phone_code_hash)
                assert user.id == 1001, f"signed in as {user.id}"
                me = await client.get_me()
                assert me.username == "alice", repr(me)
            finally:
                await client.disconnect()
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
        return "login through mtprotoproxy (ConnectionTcpMTProxyIntermediate)"

    async def future_auth_token():
        # api/auth "Future auth tokens", with Telethon's own TL objects: the login's auth.authorization
        # carries future_auth_token; a new key offering it in codeSettings.logout_tokens is logged in by
        # auth.sendCode itself (auth.sentCodeSuccess), and no code is sent.
        first = new_client(dcs, 1)
        second = new_client(dcs, 1)
        try:
            await first.connect()
            sent = await first(functions.auth.SendCodeRequest("+15550001", API_ID, API_HASH, types.CodeSettings()))
            authorization = await first(functions.auth.SignInRequest("+15550001", sent.phone_code_hash,
                                                                     phone_code=control.code("15550001")))
            token = authorization.future_auth_token
            assert isinstance(token, bytes) and len(token) == 32, repr(token)
            await second.connect()
            answer = await second(functions.auth.SendCodeRequest("+15550001", API_ID, API_HASH,
                                                                 types.CodeSettings(logout_tokens=[b"unknown", token])))
            assert isinstance(answer, types.auth.SentCodeSuccess), type(answer).__name__
            assert answer.authorization.user.id == 1001, repr(answer.authorization.user)
            assert answer.authorization.future_auth_token not in (None, token), "no new token"
            assert all(entry["phone"] != "15550001" for entry in control.call("GET", "/codes")), "a code was sent"
            me = await second.get_me()
            assert me.id == 1001, repr(me)
        finally:
            await first.disconnect()
            await second.disconnect()
        return "auth.sentCodeSuccess for a new key, no code sent, a new token"

    async def login_email_set_up():
        # api/auth "Email verification", with Telethon's own TL objects: a number the DC sends no code
        # before it has a login email (sentCodeTypeSetUpEmailRequired) verifies an address with
        # account.sendVerifyEmailCode and account.verifyEmail (purpose emailVerifyPurposeLoginSetup);
        # the answer's code request mails the login code there, which auth.signIn takes as
        # email_verification. Carol lives on DC 2.
        control.call("POST", "/users/1003/code-delivery", {"codeDelivery": "setUpEmail"})
        client = new_client(dcs, 2)
        other = new_client(dcs, 2)
        try:
            await client.connect()
            sent = await client(functions.auth.SendCodeRequest("+15550003", API_ID, API_HASH, types.CodeSettings()))
            assert isinstance(sent.type, types.auth.SentCodeTypeSetUpEmailRequired), type(sent.type).__name__
            purpose = types.EmailVerifyPurposeLoginSetup("+15550003", sent.phone_code_hash)
            mailed = await client(functions.account.SendVerifyEmailCodeRequest(purpose, "carol@example.com"))
            assert isinstance(mailed, types.account.SentEmailCode) and mailed.email_pattern == "c***@example.com", repr(mailed)
            try:
                await client(functions.account.VerifyEmailRequest(purpose, types.EmailVerificationCode("000000")))
                raise AssertionError("a wrong mailed code was accepted")
            except errors.RPCError as error:
                assert "EMAIL_CODE_INVALID" in str(error), str(error)
            verified = await client(functions.account.VerifyEmailRequest(purpose, types.EmailVerificationCode(control.code("15550003"))))
            assert isinstance(verified, types.account.EmailVerifiedLogin) and verified.email == "carol@example.com", repr(verified)
            code_request = verified.sent_code
            assert isinstance(code_request.type, types.auth.SentCodeTypeEmailCode), type(code_request.type).__name__
            authorization = await client(functions.auth.SignInRequest(
                "+15550003", code_request.phone_code_hash,
                email_verification=types.EmailVerificationCode(control.code("15550003"))))
            assert authorization.user.id == 1003, repr(authorization.user)
            # The next login's code goes to that address; auth.resetLoginEmail (for a mailbox nobody
            # can read) drops it and sends the code by SMS.
            await other.connect()
            mailed_login = await other(functions.auth.SendCodeRequest("+15550003", API_ID, API_HASH, types.CodeSettings()))
            assert isinstance(mailed_login.type, types.auth.SentCodeTypeEmailCode), type(mailed_login.type).__name__
            assert mailed_login.type.reset_available_period == 0, repr(mailed_login.type)
            by_sms = await other(functions.auth.ResetLoginEmailRequest("+15550003", mailed_login.phone_code_hash))
            assert isinstance(by_sms.type, types.auth.SentCodeTypeSms), type(by_sms.type).__name__
        finally:
            await client.disconnect()
            await other.disconnect()
            control.call("POST", "/users/1003/code-delivery", {"codeDelivery": "sms"})
        return "set-up required, address verified (a wrong code refused), login code by email, reset to SMS"

    await step("key exchange", key_exchange())
    await step("login with code", login_with_code())
    await step("get_me", get_me())
    await step("iter_messages on a channel", iter_messages())
    await step("send_message", send_message())
    await step("NewMessage event pushed by the DC", pushed_new_message())
    await step("resolve a username", resolve_username())
    await step("FloodWaitError with the injected seconds", flood_wait())
    await step("2FA login", two_factor())
    await step("QR login of a 2FA account", qr_login_with_password())
    await step("future auth token logs a new key in without a code", future_auth_token())
    await step("login email set up before the code, then reset (account.verifyEmail, auth.resetLoginEmail)", login_email_set_up())
    await step("PHONE_MIGRATE to DC 2", phone_migrate())
    await step("bad_server_salt injected", bad_server_salt())
    await step("connection dropped before the answer", dropped_connection())
    await step("delayed answer", delayed_answer())
    await step("server clock 400 s ahead, then back", clock_skew())
    await step("revoked key (AUTH_KEY_UNREGISTERED)", revoked_key())
    await step("AUTH_KEY_DUPLICATED for one key in two live sessions", duplicated_key())
    await step("login over obfuscated2", obfuscated_login())
    await step("login through an MTProxy", mtproxy_login())

    for client in (alice, bob, carol):
        await client.disconnect()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug", "tgsm")
    state_dir = tempfile.mkdtemp(prefix="tgsm-testdc-")
    process = None
    try:
        process = start_testdc(binary, state_dir)
        with open(os.path.join(state_dir, "dcs.json")) as table_file:
            table = json.load(table_file)
        dcs = table["dcs"]
        control = Control(table["control"]["url"])
        health = control.call("GET", "/health")
        report("control endpoint health", health["status"] == "ok" and isinstance(health["dcs"], int)
               and isinstance(health["connections"], int), json.dumps(health))
        # Trust only the test DC's keys, read from the PEM files it wrote.
        rsa._server_keys.clear()
        for dc in dcs:
            with open(os.path.join(state_dir, dc["publicKeyFile"])) as pem:
                rsa.add_key(pem.read(), old=False)
        asyncio.run(run(dcs, control))
    except Exception as error:
        report("setup", False, f"{type(error).__name__}: {error}")
    finally:
        if process is not None:
            process.terminate()
            try:
                code = process.wait(timeout=20)
                report("tgsm testdc exits cleanly on SIGTERM", code == 0, f"exit code {code}")
            except subprocess.TimeoutExpired:
                process.kill()
                report("tgsm testdc exits cleanly on SIGTERM", False, "still running 20 s after SIGTERM")
            process.reader.join(timeout=5)
            # Whole tokens only: a 19-digit key id may contain "10005" by chance.
            leaked = [secret for secret in SECRETS if any(re.search(rf"(?<![0-9A-Za-z]){secret}(?![0-9A-Za-z])", line) for line in SERVER_LOG)]
            rpc_lines = sum(1 for line in SERVER_LOG if " rpc" in line or "method=" in line)
            report("debug logs hold no phone, code or password", not leaked and rpc_lines > 0,
                   f"{len(SERVER_LOG)} log lines, {rpc_lines} RPC lines" + (f", leaked {leaked}" if leaked else ""))
        shutil.rmtree(state_dir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
