"""Our encryption against the official Towns encryption code, both directions.

The peer is ``tests/peer/encryption/crypto_peer.mts``: @towns-protocol/encryption 0.0.455 (the
SDK's crypto backend, libolm wasm) and @towns-protocol/proto under tsx, one process for the
module, one JSON line per command.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from river_client.encryption.device import Device, UserDevice
from river_client.encryption.hybrid import (
    HybridSession,
    SessionStore,
    decrypt_aes_gcm,
    decrypt_channel_message,
    decrypt_message,
    encrypt_aes_gcm,
    encrypt_channel_message,
    hybrid_session_id,
)
from river_client.encryption.persistence import import_device
from river_client.encryption.sharing import (
    import_group_encryption_sessions,
    make_group_encryption_sessions,
    session_keys_json,
)
from river_client.encryption.solicitation import (
    answer_key_solicitation,
    make_key_solicitation,
    reply_payloads,
)
from river_client.proto import payloads_pb2, protocol_pb2

ROOT = Path(__file__).resolve().parent.parent
TSX = ROOT / "node" / "node_modules" / ".bin" / "tsx"
PEER = ROOT / "tests" / "peer" / "encryption" / "crypto_peer.mts"
CHANNEL = bytes.fromhex("20" + "5e" * 20 + "00" * 11)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not TSX.exists(), reason="node tools missing: run `make setup`"),
]


class CryptoPeer:
    """The TypeScript peer process; ``call`` sends one command and returns its result."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [str(TSX), str(PEER)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )

    def call(self, cmd: str, **fields: Any) -> dict[str, Any]:
        reply = self.try_call(cmd, **fields)
        if not reply["ok"]:
            raise AssertionError(f"peer command {cmd} failed: {reply['error']}")
        result: dict[str, Any] = reply["result"]
        return result

    def try_call(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"peer exited with {self.process.wait()} during {cmd}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def peer() -> Iterator[CryptoPeer]:
    crypto_peer = CryptoPeer()
    try:
        yield crypto_peer
    finally:
        crypto_peer.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def inbox_json(payload: protocol_pb2.UserInboxPayload.GroupEncryptionSessions) -> dict[str, Any]:
    return {
        "streamId": payload.stream_id.hex(),
        "senderKey": payload.sender_key,
        "sessionIds": list(payload.session_ids),
        "ciphertexts": dict(payload.ciphertexts),
        "algorithm": payload.algorithm,
    }


def text_message(body: str) -> payloads_pb2.ChannelMessage:
    message = payloads_pb2.ChannelMessage()
    message.post.text.body = body
    return message


def test_session_id_equals_the_sdk_hybrid_session_key_hash(peer: CryptoPeer) -> None:
    for miniblock_num in (0, 1, 255, 2**32 + 7, 2**63 - 1):
        key, block_hash = os.urandom(32), os.urandom(32)
        theirs = peer.call(
            "session-hash",
            streamId=CHANNEL.hex(),
            key=key.hex(),
            miniblockNum=str(miniblock_num),
            miniblockHash=block_hash.hex(),
        )
        assert (
            hybrid_session_id(CHANNEL, key, miniblock_num, block_hash).hex() == theirs["sessionId"]
        )


def test_aes_gcm_both_directions(peer: CryptoPeer) -> None:
    key = os.urandom(32)
    ciphertext, iv = encrypt_aes_gcm(key, "ours → theirs".encode())
    theirs = peer.call("aes-encrypt", key=key.hex(), plaintext=b64(b"theirs -> ours"))

    opened = peer.call("aes-decrypt", key=key.hex(), ciphertext=b64(ciphertext), iv=b64(iv))
    assert base64.b64decode(opened["plaintext"]) == "ours → theirs".encode()
    assert (
        decrypt_aes_gcm(key, base64.b64decode(theirs["ciphertext"]), base64.b64decode(theirs["iv"]))
        == b"theirs -> ours"
    )


def test_olm_pre_key_messages_both_directions(peer: CryptoPeer) -> None:
    theirs = peer.call("new-device", name="olm")
    ours = Device()
    assert len(theirs["deviceKey"]) == len(ours.device_key) == 43
    assert len(theirs["fallbackKey"]) == len(ours.fallback_key) == 43

    body = ours.encrypt_to(theirs["deviceKey"], theirs["fallbackKey"], '{"keys":[]}')
    opened = peer.call("olm-decrypt", name="olm", senderKey=ours.device_key, body=body)
    assert opened["plaintext"] == '{"keys":[]}'

    for text in ("first", "second"):
        message = peer.call(
            "olm-encrypt",
            name="olm",
            deviceKey=ours.device_key,
            fallbackKey=ours.fallback_key,
            plaintext=text,
        )
        assert message["type"] == 0
        assert ours.decrypt_from(theirs["deviceKey"], message["body"]) == text.encode()


def test_session_keys_json_is_byte_exact_with_the_sdk(peer: CryptoPeer) -> None:
    sessions = [HybridSession.create(CHANNEL, n, os.urandom(32)) for n in (0, 3, 2**40)]
    keys = [s.to_bytes().hex() for s in sessions]

    assert session_keys_json(sessions) == peer.call("session-keys-json", keys=keys)["json"]
    assert session_keys_json([]) == peer.call("session-keys-json", keys=[])["json"]
    parsed = peer.call("parse-session-keys", json=session_keys_json(sessions))
    assert parsed == {"keys": keys, "reserialized": session_keys_json(sessions)}


def test_our_shared_session_and_message_open_in_the_sdk(peer: CryptoPeer) -> None:
    theirs = peer.call("new-device", name="reader")
    ours, store = Device(), SessionStore()
    session = HybridSession.create(CHANNEL, 41, os.urandom(32))
    store.add(session)

    payload = make_group_encryption_sessions(
        ours, CHANNEL, [session], [ours.user_device, _user_device(theirs)]
    )
    assert payload is not None and list(payload.ciphertexts) == [theirs["deviceKey"]]
    imported = peer.call("import-sessions", name="reader", payload=inbox_json(payload))
    assert imported["imported"] == [session.session_id_hex]
    assert imported["cleartext"] == session_keys_json([session])

    message = text_message("hello from python 🐍")
    message.post.thread_id = "ab" * 32
    data = encrypt_channel_message(session, message, ours.device_key)
    opened = peer.call(
        "hybrid-decrypt",
        name="reader",
        streamId=CHANNEL.hex(),
        encryptedData=b64(data.SerializeToString()),
    )
    parsed = peer.call("parse-channel-message", plaintext=opened["plaintext"])
    assert parsed["json"]["post"]["text"]["body"] == "hello from python 🐍"
    assert parsed["json"]["post"]["threadId"] == "ab" * 32


def test_sdk_shared_session_and_messages_open_in_ours(peer: CryptoPeer) -> None:
    peer.call("new-device", name="writer")
    ours, store = Device(), SessionStore()
    created = peer.call(
        "ensure-session",
        name="writer",
        streamId=CHANNEL.hex(),
        miniblockNum=17,
        miniblockHash=os.urandom(32).hex(),
    )

    shared = peer.call(
        "share-sessions",
        name="writer",
        streamId=CHANNEL.hex(),
        sessionIds=[created["sessionId"]],
        recipients=[{"deviceKey": ours.device_key, "fallbackKey": ours.fallback_key}],
    )
    payload = protocol_pb2.UserInboxPayload.GroupEncryptionSessions(
        stream_id=bytes.fromhex(shared["streamId"]),
        sender_key=shared["senderKey"],
        session_ids=shared["sessionIds"],
        ciphertexts=shared["ciphertexts"],
        algorithm=shared["algorithm"],
    )
    assert import_group_encryption_sessions(ours, store, payload) == [created["sessionId"]]
    outbound = store.outbound(CHANNEL)
    assert outbound is not None and outbound.miniblock_num == 17
    assert outbound.to_bytes().hex() == created["sessionKey"]

    message = text_message("hello from the sdk")
    sealed = peer.call(
        "hybrid-encrypt",
        name="writer",
        streamId=CHANNEL.hex(),
        plaintext=b64(message.SerializeToString()),
    )
    data = protocol_pb2.EncryptedData.FromString(base64.b64decode(sealed["encryptedData"]))
    assert data.sender_key == shared["senderKey"]
    assert decrypt_channel_message(store, data, CHANNEL) == message

    legacy = peer.call("hybrid-encrypt", name="writer", streamId=CHANNEL.hex(), text="v0 text")
    data = protocol_pb2.EncryptedData.FromString(base64.b64decode(legacy["encryptedData"]))
    assert data.version == protocol_pb2.ENCRYPTED_DATA_VERSION_0
    assert decrypt_message(store, data) == "v0 text"


def test_both_sides_converge_on_the_newest_session(peer: CryptoPeer) -> None:
    theirs = peer.call("new-device", name="converge")
    own_old = peer.call("ensure-session", name="converge", streamId=CHANNEL.hex(), miniblockNum=3)
    ours, store = Device(), SessionStore()
    newer = HybridSession.create(CHANNEL, 30, os.urandom(32))
    store.add(newer)

    payload = make_group_encryption_sessions(ours, CHANNEL, [newer], [_user_device(theirs)])
    assert payload is not None
    peer.call("import-sessions", name="converge", payload=inbox_json(payload))
    after = peer.call("ensure-session", name="converge", streamId=CHANNEL.hex())

    assert own_old["sessionId"] != newer.session_id_hex
    assert after["sessionId"] == newer.session_id_hex
    assert store.outbound(CHANNEL) == newer


def test_forged_session_is_refused_by_the_sdk_too(peer: CryptoPeer) -> None:
    theirs = peer.call("new-device", name="forged")
    ours = Device()
    session = HybridSession.create(CHANNEL, 5, os.urandom(32))
    payload = make_group_encryption_sessions(ours, CHANNEL, [session], [_user_device(theirs)])
    assert payload is not None
    wrong = inbox_json(payload)
    wrong["sessionIds"] = ["00" * 32]

    reply = peer.try_call("import-sessions", name="forged", payload=wrong)

    assert not reply["ok"] and "Session ID mismatch" in reply["error"]


def test_solicitation_reply_reaches_an_sdk_device(peer: CryptoPeer) -> None:
    late = peer.call("new-device", name="late")
    holder, store = Device(), SessionStore()
    known = [HybridSession.create(CHANNEL, n, os.urandom(32)) for n in range(3)]
    for session in known:
        store.add(session)
    solicitation = make_key_solicitation(
        _user_device(late), [s.session_id_hex for s in known[:2]], is_new_device=False
    )

    reply = answer_key_solicitation(store, CHANNEL, solicitation, holder.device_key)
    assert reply is not None
    for payload in reply_payloads(holder, CHANNEL, reply):
        peer.call("import-sessions", name="late", payload=inbox_json(payload))

    listed = peer.call("session-ids", name="late", streamId=CHANNEL.hex())["sessionIds"]
    assert sorted(listed) == sorted(s.session_id_hex for s in known[:2])


def test_sdk_exported_account_loads_as_our_device(peer: CryptoPeer) -> None:
    theirs = peer.call("new-device", name="exported")
    exported = peer.call("export-device", name="exported")

    device = Device.from_libolm_pickle(exported["pickledAccount"], exported["pickleKey"])

    assert (device.device_key, device.fallback_key) == (theirs["deviceKey"], theirs["fallbackKey"])
    sender = Device()
    body = sender.encrypt_to(theirs["deviceKey"], theirs["fallbackKey"], "to the same account")
    assert device.decrypt_from(sender.device_key, body) == b"to the same account"
    assert peer.call("olm-decrypt", name="exported", senderKey=sender.device_key, body=body) == {
        "plaintext": "to the same account"
    }


def _user_device(keys: dict[str, Any]) -> UserDevice:
    return UserDevice(keys["deviceKey"], keys["fallbackKey"])


def test_sdk_exported_device_restores_with_its_hybrid_sessions(peer: CryptoPeer) -> None:
    theirs = peer.call("new-device", name="restored")
    created = peer.call("ensure-session", name="restored", streamId=CHANNEL.hex(), miniblockNum=9)
    exported = peer.call("export-device", name="restored")

    device, store = import_device(base64.b64decode(exported["exportedDevice"]))

    assert device.device_key == theirs["deviceKey"]
    assert store.session_ids(CHANNEL) == [created["sessionId"]]
    sealed = peer.call(
        "hybrid-encrypt",
        name="restored",
        streamId=CHANNEL.hex(),
        plaintext=b64(text_message("before the restart").SerializeToString()),
    )
    data = protocol_pb2.EncryptedData.FromString(base64.b64decode(sealed["encryptedData"]))
    assert decrypt_channel_message(store, data) == text_message("before the restart")
