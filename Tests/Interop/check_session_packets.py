"""Telethon 1.45.0 decrypts and parses the packets our ServerSession sent in answer to Telethon's own
packets (Tests/Interop/session-server-packets.jsonl, kept current by TelethonSessionVectorsTests).

One MTProtoState reads them in order, as a real Telethon client would on one connection: its
auth key id, msg_key, session id, msg_id parity, replay and time checks all apply. Then the parsed
objects must be the answers we meant: bad_server_salt with the right salt, new_session_created,
pong for the ping, acks, rpc_result for each query (the long one gzip_packed), and an update.
"""
import json
import os
import sys

import make_session_vectors as vectors  # noqa: E402  (fixes time and randomness on import)
from telethon.network.mtprotostate import MTProtoState
from telethon.crypto import AuthKey
from telethon.tl import types
from telethon.tl.core import MessageContainer, RpcResult

here = os.path.dirname(os.path.abspath(__file__))


def load(name):
    with open(os.path.join(here, name), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main():
    client = {v["label"]: v for v in load("session-vectors.jsonl")}
    packets = [bytes.fromhex(p["hex"]) for p in load("session-server-packets.jsonl")]

    state = MTProtoState(AuthKey(vectors.KEY), vectors.loggers)
    state.reset()
    state.id = vectors.SESSION
    objects = []
    for packet in packets:
        message = state.decrypt_message_data(packet)  # raises SecurityError on any failed check
        assert message is not None, "Telethon ignored one of our packets"
        assert message.msg_id % 2 == 1
        if isinstance(message.obj, MessageContainer):
            objects.extend(inner.obj for inner in message.obj.messages)
        else:
            objects.append(message.obj)

    def find(kind, predicate=lambda o: True):
        found = [o for o in objects if isinstance(o, kind) and predicate(o)]
        assert found, f"no {kind.__name__} among {[type(o).__name__ for o in objects]}"
        return found[0]

    salt_zero = client["client-first-message-salt-zero"]
    find(types.BadServerSalt, lambda o: o.bad_msg_id == salt_zero["rejected"][0] and o.new_server_salt == vectors.SALT and o.error_code == 48)
    resent_id, resent = client["client-resent-after-bad-salt"]["requests"][0]
    find(types.NewSessionCreated, lambda o: o.server_salt == vectors.SALT and o.first_msg_id == resent_id)
    assert not [o for o in objects if isinstance(o, types.BadMsgNotification)], "Telethon's msg_ids and seq_nos passed"
    ping_id, ping_value = client["client-ping"]["ping"]
    find(types.Pong, lambda o: o.msg_id == ping_id and o.ping_id == ping_value)
    find(types.MsgsAck, lambda o: ping_id in o.msg_ids)

    query_id, query = client["client-container-ack-and-query"]["requests"][0]
    short = find(RpcResult, lambda o: o.req_msg_id == query_id)
    # Telethon hands the rest of the plaintext as the raw body: ours must start it.
    assert short.body.startswith(bytes.fromhex(query)[::-1]), "the short answer"

    gzip_id, gzip_query = client["client-gzip-query"]["requests"][0]
    long = find(RpcResult, lambda o: o.req_msg_id == gzip_id)
    assert long.body == bytes.fromhex(gzip_query) * 2, "the gzip_packed answer inflates to what we sent"

    find(types.UpdatesTooLong)
    print(f"Telethon accepted all {len(packets)} server packets ({len(objects)} messages)")


if __name__ == "__main__":
    sys.path.insert(0, here)
    main()
