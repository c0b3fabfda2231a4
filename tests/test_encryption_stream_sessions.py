"""The per-stream session index: sorted ids, lookups of requested ids, solicitation answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from river_client.encryption.device import Device
from river_client.encryption.hybrid import HybridSession, SessionStore
from river_client.encryption.solicitation import answer_key_solicitation, make_key_solicitation
from river_client.encryption.stream_sessions import StreamSessions

CHANNEL = bytes.fromhex("20" + "ab" * 31)
OTHER_CHANNEL = bytes.fromhex("20" + "cd" * 31)
HOLDER = Device()
SOLICITOR = Device().user_device


def session(seed: int, stream_id: bytes = CHANNEL) -> HybridSession:
    return HybridSession(stream_id, seed.to_bytes(32, "big"), seed, b"\x07" * 32)


def test_session_hex_id_is_computed_once_and_not_shown() -> None:
    made = session(1)

    assert made.session_id_hex == made.session_id.hex()
    assert made.session_id_hex is made.session_id_hex
    assert made.session_id_hex not in repr(made)
    assert made == session(1)


def test_index_keeps_ids_sorted_and_sessions_in_insertion_order() -> None:
    index = StreamSessions()
    added = [session(seed) for seed in (5, 1, 9, 3)]

    assert [index.add(s) for s in added] == [True] * 4
    assert not index.add(added[0])
    assert index.sessions() == added
    assert index.session_ids() == sorted(s.session_id_hex for s in added)
    assert [s.session_id_hex for s in index.sorted_sessions()] == index.session_ids()
    assert index.known_ids(["ff" * 32, added[2].session_id_hex, added[2].session_id_hex]) == [
        added[2].session_id_hex
    ]
    assert added[1].session_id_hex in index and index.get("ff" * 32) is None


def test_store_view_of_an_unknown_stream_is_empty_and_not_kept() -> None:
    store = SessionStore()
    store.add(session(1))

    assert len(store.stream(OTHER_CHANNEL)) == 0
    assert store.session_ids(OTHER_CHANNEL) == []
    assert store.session_ids(CHANNEL.hex()) == [session(1).session_id_hex]


@settings(max_examples=60, deadline=None)
@given(
    seeds=st.lists(st.tuples(st.integers(0, 40), st.booleans()), max_size=40),
    asked=st.lists(st.integers(0, 60), min_size=1, max_size=6),
    is_new_device=st.booleans(),
)
def test_answers_equal_filtering_every_sorted_session(
    seeds: list[tuple[int, bool]], asked: list[int], is_new_device: bool
) -> None:
    store = SessionStore()
    for seed, other in seeds:
        store.add(session(seed, OTHER_CHANNEL if other else CHANNEL))
    requested = sorted({session(seed).session_id_hex for seed in asked})
    solicitation = make_key_solicitation(SOLICITOR, requested, is_new_device)

    reply = answer_key_solicitation(store, CHANNEL, solicitation, HOLDER.device_key)

    every = sorted(store.sessions(CHANNEL), key=lambda s: s.session_id.hex())
    expected = every if is_new_device else [s for s in every if s.session_id_hex in requested]
    if not expected:
        assert reply is None
        return
    assert reply is not None
    assert reply.sessions == expected
    fulfilled = [s.session_id_hex for s in expected if s.session_id_hex in requested]
    assert reply.fulfilled_session_ids == (fulfilled or [s.session_id_hex for s in expected])
