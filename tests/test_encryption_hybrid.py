"""Hybrid group sessions (grpaes): session ids, AES-256-GCM, EncryptedData, the session store."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from river_client.encryption.exceptions import MessageDecryptionError, SessionMismatchError
from river_client.encryption.hybrid import (
    HYBRID_ALGORITHM,
    HybridSession,
    SessionStore,
    decrypt_aes_gcm,
    decrypt_channel_message,
    decrypt_message,
    encrypt_aes_gcm,
    encrypt_channel_message,
    encrypt_message,
    hybrid_session_id,
    missing_session_id,
)
from river_client.proto import payloads_pb2, protocol_pb2

CHANNEL = bytes.fromhex("20" + "ab" * 31)
OTHER_CHANNEL = bytes.fromhex("20" + "cd" * 31)
SENDER_KEY = "wS4opp7/XEm6ppcx/upnci56P9NKaFCnMLsZXv9MqHQ"


def session_at(miniblock_num: int, stream_id: bytes = CHANNEL) -> HybridSession:
    return HybridSession.create(stream_id, miniblock_num, bytes([miniblock_num % 256]) * 32)


def test_session_id_known_answer_from_the_sdk() -> None:
    # @towns-protocol/encryption 0.0.455 hybridSessionKeyHash(streamId, key, 5n, hash)
    session_id = hybrid_session_id(CHANNEL, b"\x01" * 32, 5, b"\x02" * 32)

    assert session_id.hex() == "374b55ff59798bb10443435904f658031f35206dd77b199e2cd56c389fd1f67a"


def test_session_id_is_the_rvr_hsk_hash_of_its_fields() -> None:
    session = HybridSession(CHANNEL, b"\x07" * 32, 2**40 + 3, b"\x09" * 32)

    expected = hashlib.sha256(
        b"RVR_HSK:" + CHANNEL + b"\x07" * 32 + (2**40 + 3).to_bytes(8, "big") + b"\x09" * 32
    ).digest()
    assert session.session_id == expected
    assert session.session_id_hex == expected.hex()
    assert session.key.hex() not in repr(session)


def test_aes_gcm_known_answer_nist_test_case_14() -> None:
    # McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14 (AES-256).
    ciphertext = bytes.fromhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")

    assert decrypt_aes_gcm(b"\x00" * 32, ciphertext, b"\x00" * 12) == b"\x00" * 16


def test_aes_gcm_layout_random_iv_tag_appended() -> None:
    key = b"\x05" * 32
    ciphertext, iv = encrypt_aes_gcm(key, b"hello")
    ciphertext2, iv2 = encrypt_aes_gcm(key, b"hello")

    assert len(iv) == 12 and iv != iv2
    assert len(ciphertext) == 5 + 16 and ciphertext != ciphertext2
    assert decrypt_aes_gcm(key, ciphertext, iv) == b"hello"
    with pytest.raises(ValueError, match="empty"):
        encrypt_aes_gcm(key, b"")
    with pytest.raises(MessageDecryptionError, match="IV has 11 bytes"):
        decrypt_aes_gcm(key, ciphertext, iv[:11])
    with pytest.raises(MessageDecryptionError, match="tag"):
        decrypt_aes_gcm(key, ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]), iv)


def test_channel_message_round_trip_with_the_sdk_fields() -> None:
    session = session_at(4)
    store = SessionStore()
    store.add(session)
    message = payloads_pb2.ChannelMessage()
    message.post.text.body = "hello 🙉"
    message.post.thread_id = "ef" * 32
    message.post.thread_preview = "🙉"

    data = encrypt_channel_message(session, message, SENDER_KEY)

    assert data.algorithm == HYBRID_ALGORITHM == "grpaes"
    assert data.sender_key == SENDER_KEY
    assert data.session_id_bytes == session.session_id
    assert data.version == protocol_pb2.ENCRYPTED_DATA_VERSION_1
    assert len(data.iv_bytes) == 12
    assert data.ref_event_id == "ef" * 32
    assert not data.ciphertext and not data.session_id
    assert decrypt_channel_message(store, data, CHANNEL) == message


def test_ref_event_id_follows_reactions_edits_and_plain_posts() -> None:
    session = session_at(1)
    reaction = payloads_pb2.ChannelMessage()
    reaction.reaction.ref_event_id = "aa" * 32
    reaction.reaction.reaction = "👍"
    post = payloads_pb2.ChannelMessage()
    post.post.text.body = "top level"

    assert encrypt_channel_message(session, reaction, SENDER_KEY).ref_event_id == "aa" * 32
    assert not encrypt_channel_message(session, post, SENDER_KEY).HasField("ref_event_id")


def test_version_0_decrypts_to_text_and_unknown_version_fails() -> None:
    session = session_at(1)
    store = SessionStore()
    store.add(session)
    data = encrypt_message(session, b"plain text", SENDER_KEY)

    data.version = protocol_pb2.ENCRYPTED_DATA_VERSION_0
    assert decrypt_message(store, data) == "plain text"
    data.version = 7  # type: ignore[assignment]
    with pytest.raises(MessageDecryptionError, match="version 7"):
        decrypt_message(store, data)


def test_unknown_session_gives_none_and_its_id() -> None:
    data = encrypt_message(session_at(3), b"x", SENDER_KEY)
    store = SessionStore()

    assert decrypt_message(store, data) is None
    assert missing_session_id(store, data) == data.session_id_bytes.hex()


def test_wrong_stream_algorithm_or_fields_fail() -> None:
    session = session_at(3)
    store = SessionStore()
    store.add(session)
    data = encrypt_message(session, b"x", SENDER_KEY)

    with pytest.raises(MessageDecryptionError, match="belongs to stream"):
        decrypt_message(store, data, OTHER_CHANNEL)
    legacy = protocol_pb2.EncryptedData(algorithm="r.group-encryption.v1.aes-sha2")
    with pytest.raises(MessageDecryptionError, match="not supported"):
        decrypt_message(store, legacy)
    data.ClearField("iv_bytes")
    with pytest.raises(MessageDecryptionError, match="iv_bytes"):
        decrypt_message(store, data)


def test_outbound_session_is_the_highest_miniblock_including_imports() -> None:
    store = SessionStore()
    own = session_at(10)
    store.add(own)
    assert store.outbound(CHANNEL) == own
    assert store.outbound(OTHER_CHANNEL) is None

    older, newer = session_at(5), session_at(12)
    store.import_key(CHANNEL, older.session_id_hex, older.to_bytes().hex())
    assert store.outbound(CHANNEL) == own
    store.import_key(CHANNEL.hex(), newer.session_id, newer.to_bytes())
    assert store.outbound(CHANNEL) == newer
    assert store.session_ids(CHANNEL) == sorted(s.session_id_hex for s in (own, older, newer))
    assert not store.add(newer)


def test_import_rechecks_stream_id_and_session_id_hash() -> None:
    store = SessionStore()
    session = session_at(2)
    forged = payloads_pb2.HybridGroupSessionKey.FromString(session.to_bytes())
    forged.key = b"\x00" * 32

    with pytest.raises(SessionMismatchError, match="stream"):
        store.import_key(OTHER_CHANNEL, session.session_id, session.to_bytes())
    with pytest.raises(SessionMismatchError, match="shared under session id"):
        store.import_key(CHANNEL, b"\x01" * 32, session.to_bytes())
    with pytest.raises(SessionMismatchError, match="does not match its key"):
        store.import_key(CHANNEL, session.session_id, forged.SerializeToString())
    with pytest.raises(SessionMismatchError, match="not a serialized"):
        store.import_key(CHANNEL, session.session_id, b"\xff\xff\xff")
    assert len(store) == 0


def test_store_export_and_restore() -> None:
    store = SessionStore()
    sessions = [session_at(n) for n in (1, 7, 3)] + [session_at(2, OTHER_CHANNEL)]
    for session in sessions:
        store.add(session)

    restored = SessionStore.restore(store.export())

    assert sorted(s.session_id for s in restored) == sorted(s.session_id for s in sessions)
    assert restored.outbound(CHANNEL) == sessions[1]
    assert restored.outbound(OTHER_CHANNEL) == sessions[3]


@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.binary(min_size=1, max_size=2048),
    miniblock_num=st.integers(min_value=0, max_value=2**63 - 1),
    miniblock_hash=st.binary(min_size=32, max_size=32),
)
def test_any_plaintext_round_trips_under_any_session(
    plaintext: bytes, miniblock_num: int, miniblock_hash: bytes
) -> None:
    session = HybridSession.create(CHANNEL, miniblock_num, miniblock_hash)
    store = SessionStore.restore([session.to_bytes()])

    data = protocol_pb2.EncryptedData.FromString(
        encrypt_message(session, plaintext, SENDER_KEY).SerializeToString()
    )

    assert decrypt_message(store, data, CHANNEL.hex()) == plaintext
