"""River devices: key format, Olm pre-key messages between devices, pickling and export."""

from __future__ import annotations

import base64
import re

import pytest
import vodozemac

from river_client.encryption.device import (
    MAX_PLAINTEXT_LENGTH,
    Device,
    decode_unpadded_base64,
    pickle_key_from_secret,
)
from river_client.encryption.exceptions import DeviceKeyError, OlmMessageError
from river_client.encryption.hybrid import HybridSession, SessionStore
from river_client.encryption.persistence import export_device, import_device

UNPADDED_KEY = re.compile(r"^[A-Za-z0-9+/]{43}$")


def test_device_and_fallback_keys_are_unpadded_base64_curve25519_keys() -> None:
    device = Device()

    assert UNPADDED_KEY.match(device.device_key)
    assert UNPADDED_KEY.match(device.fallback_key)
    assert device.device_key != device.fallback_key
    assert len(decode_unpadded_base64(device.device_key)) == 32
    assert device.user_device.device_key == device.device_key
    assert device.user_device.fallback_key == device.fallback_key


def test_pre_key_message_round_trip() -> None:
    alice, bob = Device(), Device()

    body = alice.encrypt_to(bob.device_key, bob.fallback_key, '{"keys":["00"]}')

    assert "=" not in body
    message_type, _ = vodozemac.PreKeyMessage.from_base64(body).to_any().to_parts()
    assert message_type == 0
    assert bob.decrypt_from(alice.device_key, body) == b'{"keys":["00"]}'


def test_every_message_starts_a_new_session_and_each_decrypts() -> None:
    alice, bob = Device(), Device()

    bodies = [alice.encrypt_to(bob.device_key, bob.fallback_key, f"m{i}") for i in range(3)]

    session_ids = {vodozemac.PreKeyMessage.from_base64(b).session_id() for b in bodies}
    assert len(session_ids) == 3
    assert [bob.decrypt_from(alice.device_key, b) for b in reversed(bodies)] == [
        b"m2",
        b"m1",
        b"m0",
    ]


def test_message_for_another_device_does_not_decrypt() -> None:
    alice, bob, eve = Device(), Device(), Device()
    body = alice.encrypt_to(bob.device_key, bob.fallback_key, "secret")

    with pytest.raises(OlmMessageError, match=eve.device_key.replace("+", r"\+")):
        eve.decrypt_from(alice.device_key, body)


def test_normal_message_and_garbage_are_rejected() -> None:
    alice, carol = vodozemac.Account(), vodozemac.Account()
    carol.generate_fallback_key()  # type: ignore[attr-defined]
    fallback = next(iter(carol.fallback_key.values()))  # type: ignore[attr-defined]
    outbound = alice.create_outbound_session(carol.curve25519_key, fallback)
    pre_key = outbound.encrypt(b"hello").to_pre_key()
    assert pre_key is not None
    inbound, _ = carol.create_inbound_session(alice.curve25519_key, pre_key)
    message_type, raw = inbound.encrypt(b"reply").to_parts()
    assert message_type == 1
    normal_body = base64.b64encode(raw).decode().rstrip("=")

    device = Device()
    sender = carol.curve25519_key.to_base64()
    with pytest.raises(OlmMessageError, match="pre-key"):
        device.decrypt_from(sender, normal_body)
    with pytest.raises(OlmMessageError, match="pre-key"):
        device.decrypt_from(sender, "not base64 at all!")


def test_bad_keys_name_the_value() -> None:
    device = Device()

    with pytest.raises(DeviceKeyError, match=r"'short'.*43 characters"):
        device.encrypt_to("short", device.fallback_key, "x")
    with pytest.raises(DeviceKeyError, match="fallback key"):
        device.encrypt_to(device.device_key, "!" * 43, "x")


def test_oversized_plaintext_is_refused_like_the_sdk() -> None:
    alice, bob = Device(), Device()

    with pytest.raises(ValueError, match=str(MAX_PLAINTEXT_LENGTH)):
        alice.encrypt_to(bob.device_key, bob.fallback_key, b"x" * (MAX_PLAINTEXT_LENGTH + 1))


def test_pickled_device_keeps_its_keys_and_decrypts_later_messages() -> None:
    alice, bob = Device(), Device()
    key = pickle_key_from_secret(b"\x11" * 32)

    restored = Device.from_pickle(bob.pickle(key), key)
    body = alice.encrypt_to(restored.device_key, restored.fallback_key, "after restart")

    assert (restored.device_key, restored.fallback_key) == (bob.device_key, bob.fallback_key)
    assert restored.decrypt_from(alice.device_key, body) == b"after restart"
    assert bob.decrypt_from(alice.device_key, body) == b"after restart"


def test_pickle_key_must_be_32_bytes_and_right() -> None:
    device = Device()
    pickled = device.pickle(b"k" * 32)

    with pytest.raises(ValueError, match="32 bytes"):
        device.pickle(b"short")
    with pytest.raises(OlmMessageError, match="unpickle"):
        Device.from_pickle(pickled, b"x" * 32)


def test_exported_device_round_trip_with_sessions() -> None:
    alice, bob = Device(), Device()
    store = SessionStore()
    channel = bytes.fromhex("20" + "ab" * 31)
    for num in (4, 9):
        store.add(HybridSession.create(channel, num, bytes([num]) * 32))
    key = pickle_key_from_secret("wallet private key")

    data = export_device(bob, store, key).SerializeToString()
    restored, restored_store = import_device(data)

    assert restored.device_key == bob.device_key
    assert restored_store.session_ids(channel) == store.session_ids(channel)
    assert restored_store.outbound(channel) == store.outbound(channel)
    body = alice.encrypt_to(restored.device_key, restored.fallback_key, "again")
    assert restored.decrypt_from(alice.device_key, body) == b"again"
    broken = export_device(bob, store, key)
    broken.pickleKey = "00" * 32
    with pytest.raises(OlmMessageError, match="neither"):
        import_device(broken)
