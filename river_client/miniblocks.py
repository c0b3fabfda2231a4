"""Miniblock references: the (hash, number) each new event of a stream must build on.

Every event added to a stream names a recent miniblock of that stream. A sync cookie gives one
directly: `minipool_gen` is the last miniblock's number + 1 and `prev_miniblock_hash` its hash.
Miniblock headers seen in GetStream replies and sync updates give one too.

When the reference is stale the node answers BAD_PREV_MINIBLOCK_HASH with the tags
``expected = 0x<hash>`` and ``expNum = <num>``: `add_event` rebuilds the event on those values
and resends it (up to 3 times, as the TypeScript client does). MINIBLOCK_TOO_NEW (the node's
replica is behind the reference) is retried with the same reference after 1 s.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import gevent

from river_client.errors import Err, RiverError
from river_client.events import MiniblockRef, parse_envelope
from river_client.proto import protocol_pb2 as pb

logger = logging.getLogger(__name__)

BAD_PREV_RETRIES = 3
TOO_NEW_RETRIES = 5
TOO_NEW_DELAY = 1.0
TRACKED_STREAMS = 16


def ref_from_cookie(cookie: pb.SyncCookie) -> MiniblockRef | None:
    """The last miniblock named by a sync cookie, or None for an empty cookie."""
    if cookie.minipool_gen <= 0 or not cookie.prev_miniblock_hash:
        return None
    return MiniblockRef(bytes(cookie.prev_miniblock_hash), cookie.minipool_gen - 1)


def ref_from_header(envelope: pb.Envelope) -> MiniblockRef | None:
    """The miniblock of a header envelope, or None when the envelope holds no header."""
    event = parse_envelope(envelope).event
    if event.WhichOneof("payload") != "miniblock_header":
        return None
    return MiniblockRef(bytes(envelope.hash), event.miniblock_header.miniblock_num)


def ref_from_error(error: RiverError) -> MiniblockRef | None:
    """The reference a BAD_PREV_MINIBLOCK_HASH error names (tags expected and expNum)."""
    expected, num = error.tags.get("expected"), error.tags.get("expNum")
    if not expected or num is None:
        return None
    try:
        return MiniblockRef(bytes.fromhex(expected.removeprefix("0x")), int(num))
    except ValueError:
        return None


class MiniblockTracker:
    """The latest known miniblock of the `limit` streams used last; only ever moves forward.

    Bounded because key sharing touches the inbox of every member a client shares with; a
    forgotten stream costs one GetLastMiniblockHash when it is written to again.
    """

    def __init__(self, limit: int = TRACKED_STREAMS) -> None:
        self.limit = limit
        self._refs: OrderedDict[bytes, MiniblockRef] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, stream_id: bytes) -> MiniblockRef | None:
        return self._refs.get(stream_id)

    def set(self, stream_id: bytes, ref: MiniblockRef | None, force: bool = False) -> None:
        """Record `ref` when it is newer than what is known (or always, with `force`)."""
        if ref is None:
            return
        with self._lock:
            known = self._refs.get(stream_id)
            if force or known is None or ref.num >= known.num:
                self._refs[stream_id] = ref
                self._refs.move_to_end(stream_id)
                while len(self._refs) > self.limit:
                    self._refs.popitem(last=False)

    def update_from_stream(self, stream_id: bytes, stream: pb.StreamAndCookie) -> None:
        """Learn from a GetStream reply or a sync update: the cookie names the last miniblock;
        without one, the headers among its blocks and events."""
        if stream.HasField("next_sync_cookie"):
            ref = ref_from_cookie(stream.next_sync_cookie)
            if ref is not None:
                self.set(stream_id, ref)
                return
        for miniblock in stream.miniblocks:
            self.set(stream_id, ref_from_header(miniblock.header))
        for envelope in stream.events:
            self.set(stream_id, ref_from_header(envelope))
        if stream.HasField("next_sync_cookie"):
            self.set(stream_id, ref_from_cookie(stream.next_sync_cookie))

    def forget(self, stream_id: bytes) -> None:
        self._refs.pop(stream_id, None)


def add_event(
    send: Callable[[pb.Envelope], pb.AddEventResponse],
    build: Callable[[MiniblockRef], pb.Envelope],
    ref: MiniblockRef,
    *,
    on_ref: Callable[[MiniblockRef], None] | None = None,
    sleep: Callable[[float], object] = gevent.sleep,
) -> tuple[pb.Envelope, pb.AddEventResponse]:
    """Build an event on `ref` and send it, retrying on stale or too-new references.

    `build(ref)` makes the envelope, `send(envelope)` performs AddEvent. `on_ref` hears about
    every reference the node told us. Returns the envelope that was accepted and the reply.
    """
    bad_prev = too_new = 0
    envelope = build(ref)
    while True:
        try:
            return envelope, send(envelope)
        except RiverError as exc:
            if exc.code == Err.BAD_PREV_MINIBLOCK_HASH and bad_prev < BAD_PREV_RETRIES:
                named = ref_from_error(exc)
                if named is None:
                    raise
                bad_prev += 1
                ref = named
                if on_ref is not None:
                    on_ref(ref)
                envelope = build(ref)
                continue
            if exc.code == Err.MINIBLOCK_TOO_NEW and too_new < TOO_NEW_RETRIES:
                too_new += 1
                sleep(TOO_NEW_DELAY)
                continue
            raise
