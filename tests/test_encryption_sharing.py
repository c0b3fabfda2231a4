"""Sharing sessions through inboxes (SessionKeys, GroupEncryptionSessions) and solicitations."""

from __future__ import annotations

import json
import random

import pytest

from river_client.encryption.device import Device, UserDevice
from river_client.encryption.exceptions import OlmMessageError, SessionMismatchError
from river_client.encryption.hybrid import HybridSession, SessionStore
from river_client.encryption.sharing import (
    import_group_encryption_sessions,
    latest_devices,
    make_group_encryption_sessions,
    parse_session_keys,
    session_keys_json,
)
from river_client.encryption.solicitation import (
    answer_key_solicitation,
    make_key_fulfillment,
    make_key_solicitation,
    make_stream_key_solicitation,
    reply_payloads,
    respond_delay_seconds,
)
from river_client.proto import protocol_pb2

CHANNEL = bytes.fromhex("20" + "ab" * 31)
OTHER_CHANNEL = bytes.fromhex("20" + "cd" * 31)


def sessions(count: int, stream_id: bytes = CHANNEL) -> list[HybridSession]:
    return [HybridSession.create(stream_id, n, bytes([n]) * 32) for n in range(count)]


def test_session_keys_json_is_compact_protobuf_json() -> None:
    shared = sessions(2)

    text = session_keys_json(shared)

    first, second = (s.to_bytes().hex() for s in shared)
    assert text == f'{{"keys":["{first}","{second}"]}}'
    assert session_keys_json([]) == "{}"
    assert parse_session_keys(text) == [s.to_bytes().hex() for s in shared]
    assert parse_session_keys('{"keys": [], "extra": 1}') == []
    with pytest.raises(ValueError, match="SessionKeys"):
        parse_session_keys('{"keys": 5}')


def test_payload_for_recipient_devices_skips_our_own() -> None:
    sender, bob_phone, bob_laptop = Device(), Device(), Device()
    shared = sessions(3)
    recipients = [sender.user_device, bob_phone.user_device, bob_laptop.user_device]

    payload = make_group_encryption_sessions(sender, CHANNEL.hex(), shared, recipients)

    assert payload is not None
    assert payload.stream_id == CHANNEL
    assert payload.sender_key == sender.device_key
    assert payload.algorithm == "grpaes"
    assert list(payload.session_ids) == [s.session_id_hex for s in shared]
    assert set(payload.ciphertexts) == {bob_phone.device_key, bob_laptop.device_key}
    cleartext = bob_laptop.decrypt_from(
        sender.device_key, payload.ciphertexts[bob_laptop.device_key]
    )
    assert json.loads(cleartext) == {"keys": [s.to_bytes().hex() for s in shared]}
    assert make_group_encryption_sessions(sender, CHANNEL, shared, [sender.user_device]) is None
    with pytest.raises(ValueError, match="not to the shared stream"):
        make_group_encryption_sessions(sender, OTHER_CHANNEL, shared, recipients)


def test_import_from_inbox_event_then_decrypt_with_outbound() -> None:
    alice, bob = Device(), Device()
    shared = sessions(2)
    payload = make_group_encryption_sessions(alice, CHANNEL, shared, [bob.user_device])
    assert payload is not None
    event = protocol_pb2.UserInboxPayload(group_encryption_sessions=payload)
    bob_store = SessionStore()

    wire = protocol_pb2.UserInboxPayload.FromString(event.SerializeToString())
    imported = import_group_encryption_sessions(bob, bob_store, wire.group_encryption_sessions)

    assert imported == [s.session_id_hex for s in shared]
    assert bob_store.outbound(CHANNEL) == shared[1]
    assert import_group_encryption_sessions(bob, bob_store, payload) == []
    assert import_group_encryption_sessions(Device(), SessionStore(), payload) == []


def test_known_sessions_need_no_olm_decryption() -> None:
    bob = Device()
    store = SessionStore()
    shared = sessions(1)
    store.add(shared[0])
    payload = protocol_pb2.UserInboxPayload.GroupEncryptionSessions(
        stream_id=CHANNEL,
        sender_key=Device().device_key,
        session_ids=[shared[0].session_id_hex],
        ciphertexts={bob.device_key: "garbage"},
        algorithm="grpaes",
    )

    assert import_group_encryption_sessions(bob, store, payload) == []
    payload.session_ids.append("00" * 32)
    with pytest.raises(OlmMessageError):
        import_group_encryption_sessions(bob, store, payload)


def test_bad_shares_are_refused() -> None:
    alice, bob = Device(), Device()
    good, other = sessions(1)[0], sessions(1, OTHER_CHANNEL)[0]
    store = SessionStore()

    payload = make_group_encryption_sessions(alice, CHANNEL, [good], [bob.user_device])
    assert payload is not None
    payload.session_ids.append(other.session_id_hex)
    with pytest.raises(SessionMismatchError, match="2 session ids but carries 1 keys"):
        import_group_encryption_sessions(bob, store, payload)

    wrong_stream = make_group_encryption_sessions(alice, OTHER_CHANNEL, [other], [bob.user_device])
    assert wrong_stream is not None
    wrong_stream.stream_id = CHANNEL
    assert import_group_encryption_sessions(bob, store, wrong_stream) == []

    legacy = protocol_pb2.UserInboxPayload.GroupEncryptionSessions(
        ciphertexts={bob.device_key: "x"}, session_ids=["aa"]
    )
    assert import_group_encryption_sessions(bob, store, legacy) == []
    assert len(store) == 0


def test_latest_devices_keeps_publication_order_and_the_last_ten() -> None:
    devices = [UserDevice(f"d{i}", f"f{i}") for i in range(12)]
    republished = [*devices, UserDevice("d3", "f3-new")]

    latest = latest_devices(republished)

    assert len(latest) == 10
    assert latest[-1] == UserDevice("d3", "f3-new")
    assert [d.device_key for d in latest[:3]] == ["d2", "d4", "d5"]


def test_key_solicitation_sorted_capped_and_new_device_flag() -> None:
    me = Device()
    store = SessionStore()
    missing = [f"{i:064x}" for i in range(150, 0, -1)]

    solicitation = make_stream_key_solicitation(me.user_device, store, CHANNEL, missing)

    assert solicitation.device_key == me.device_key
    assert solicitation.fallback_key == me.fallback_key
    assert solicitation.is_new_device
    assert list(solicitation.session_ids) == sorted(missing)[:100]
    store.add(sessions(1)[0])
    assert not make_stream_key_solicitation(me.user_device, store, CHANNEL, missing).is_new_device
    with pytest.raises(ValueError, match="at least one"):
        make_key_solicitation(me.user_device, [], is_new_device=True)


def test_answering_a_solicitation_end_to_end() -> None:
    holder, late = Device(), Device()
    holder_store, late_store = SessionStore(), SessionStore()
    known = sessions(3)
    for session in known:
        holder_store.add(session)
    wanted = sorted([known[2].session_id_hex, "ff" * 32])
    solicitation = make_key_solicitation(late.user_device, wanted, is_new_device=False)

    reply = answer_key_solicitation(holder_store, CHANNEL, solicitation, holder.device_key)

    assert reply is not None
    assert reply.recipient == late.user_device
    assert reply.sessions == [known[2]]
    assert reply.fulfilled_session_ids == [known[2].session_id_hex]
    fulfillment = make_key_fulfillment(b"\x42" * 20, reply)
    assert list(fulfillment.session_ids) == [known[2].session_id_hex]
    assert fulfillment.device_key == late.device_key
    for payload in reply_payloads(holder, CHANNEL, reply):
        import_group_encryption_sessions(late, late_store, payload)
    assert late_store.session_ids(CHANNEL) == [known[2].session_id_hex]


def test_new_device_gets_every_known_session_in_chunks_of_100() -> None:
    holder, late = Device(), Device()
    store = SessionStore()
    for n in range(230):
        store.add(HybridSession.create(CHANNEL, n, b"\x00" * 32))
    solicitation = make_key_solicitation(late.user_device, ["00" * 32], is_new_device=True)

    reply = answer_key_solicitation(store, CHANNEL, solicitation, holder.device_key)

    assert reply is not None
    assert [len(chunk) for chunk in reply.chunks()] == [100, 100, 30]
    assert [s.session_id_hex for s in reply.sessions] == store.session_ids(CHANNEL)
    assert reply.fulfilled_session_ids == store.session_ids(CHANNEL)
    assert len(reply_payloads(holder, CHANNEL, reply)) == 3


def test_no_answer_for_own_device_empty_or_unknown_requests() -> None:
    holder = Device()
    store = SessionStore()
    store.add(sessions(1)[0])
    own = make_key_solicitation(holder.user_device, ["aa" * 32], is_new_device=True)
    unknown = make_key_solicitation(Device().user_device, ["aa" * 32], is_new_device=False)
    empty = protocol_pb2.MemberPayload.KeySolicitation(device_key="x", is_new_device=True)

    for solicitation in (own, unknown, empty):
        assert answer_key_solicitation(store, CHANNEL, solicitation, holder.device_key) is None


def test_respond_delay_follows_the_sdk_window() -> None:
    rng = random.Random(7)
    delays = [respond_delay_seconds(100, False, False, rng) for _ in range(200)]

    assert min(delays) >= 0 and max(delays) <= 30 and max(delays) > 20
    assert max(respond_delay_seconds(2, False, False, rng) for _ in range(200)) <= 5
    assert max(respond_delay_seconds(100, True, False, rng) for _ in range(200)) <= 15
    assert max(respond_delay_seconds(100, False, True, rng) for _ in range(200)) <= 15
    assert respond_delay_seconds(100, True, True, rng) == 0


def test_one_answer_for_many_members_comes_at_the_earliest_of_their_delays() -> None:
    def mean_delay(answerers: int) -> float:
        rng = random.Random(11)
        draws = [respond_delay_seconds(100, False, False, rng, answerers) for _ in range(400)]
        assert all(0 <= d <= 30 for d in draws)
        return sum(draws) / len(draws)

    # The minimum of n uniform draws over [0, 30] has the mean 30 / (n + 1).
    assert 13 < mean_delay(1) < 17
    assert 2 < mean_delay(9) < 4
    assert mean_delay(999) < 0.1
    same_draw = [respond_delay_seconds(30, False, False, random.Random(3), n) for n in (1, 2, 50)]
    assert same_draw == sorted(same_draw, reverse=True) and same_draw[0] > same_draw[2]
