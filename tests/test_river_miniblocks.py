"""Miniblock references: tracking from cookies and headers, and AddEvent's retries."""

from __future__ import annotations

import pytest

from river_client.errors import Err, RiverError
from river_client.events import MiniblockRef, make_envelope, parse_envelope
from river_client.miniblocks import MiniblockTracker, add_event, ref_from_cookie
from river_client.proto import protocol_pb2 as pb
from river_client.signing import WalletSigner

SIGNER = WalletSigner(bytes(31) + b"\x01")
STREAM = b"\x20" + bytes(31)


def stale(expected: bytes, num: int) -> RiverError:
    text = (
        "(24:BAD_PREV_MINIBLOCK_HASH) not recent\n"
        f"    expected = 0x{expected.hex()}\n    expNum = {num}"
    )
    return RiverError(Err.BAD_PREV_MINIBLOCK_HASH, "BAD_PREV_MINIBLOCK_HASH", text)


def build(ref: MiniblockRef) -> pb.Envelope:
    return make_envelope(SIGNER, pb.ChannelPayload(), ref)


def test_tracker_learns_from_cookies_and_only_moves_forward() -> None:
    tracker = MiniblockTracker()
    cookie = pb.SyncCookie(stream_id=STREAM, minipool_gen=5, prev_miniblock_hash=b"\x05" * 32)
    assert ref_from_cookie(cookie) == MiniblockRef(b"\x05" * 32, 4)
    tracker.update_from_stream(STREAM, pb.StreamAndCookie(next_sync_cookie=cookie))
    tracker.set(STREAM, MiniblockRef(b"\x03" * 32, 3))
    assert tracker.get(STREAM) == MiniblockRef(b"\x05" * 32, 4)
    tracker.set(STREAM, MiniblockRef(b"\x03" * 32, 3), force=True)
    assert tracker.get(STREAM) == MiniblockRef(b"\x03" * 32, 3)


def test_add_event_rebuilds_on_the_block_the_node_names() -> None:
    sent: list[pb.Envelope] = []
    learned: list[MiniblockRef] = []
    latest = b"\x09" * 32

    def send(envelope: pb.Envelope) -> pb.AddEventResponse:
        sent.append(envelope)
        if parse_envelope(envelope).event.prev_miniblock_hash != latest:
            raise stale(latest, 9)
        return pb.AddEventResponse()

    envelope, _ = add_event(send, build, MiniblockRef(b"\x01" * 32, 1), on_ref=learned.append)
    event = parse_envelope(envelope).event
    assert (event.prev_miniblock_hash, event.prev_miniblock_num) == (latest, 9)
    assert len(sent) == 2 and learned == [MiniblockRef(latest, 9)]


def test_add_event_gives_up_after_three_stale_answers() -> None:
    calls = 0

    def send(envelope: pb.Envelope) -> pb.AddEventResponse:
        nonlocal calls
        calls += 1
        raise stale(bytes([calls]) * 32, calls)

    with pytest.raises(RiverError) as caught:
        add_event(send, build, MiniblockRef(bytes(32), 0))
    assert caught.value.code == Err.BAD_PREV_MINIBLOCK_HASH and calls == 4


def test_miniblock_too_new_is_resent_after_a_second() -> None:
    slept: list[float] = []
    answers = [
        RiverError(Err.MINIBLOCK_TOO_NEW, "MINIBLOCK_TOO_NEW", "(63:MINIBLOCK_TOO_NEW) wait")
    ]

    def send(envelope: pb.Envelope) -> pb.AddEventResponse:
        if answers:
            raise answers.pop()
        return pb.AddEventResponse()

    first, _ = add_event(send, build, MiniblockRef(b"\x02" * 32, 2), sleep=slept.append)
    assert slept == [1.0]
    assert parse_envelope(first).event.prev_miniblock_num == 2
