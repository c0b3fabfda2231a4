"""What a client knows about one stream: members, recent events, sealed miniblocks.

A GetStream reply (StreamAndCookie) holds the stream's latest snapshot (the `snapshot`
envelope whose `event` is a serialized Snapshot, or the legacy snapshot inside the first
miniblock header), the miniblocks from that snapshot on and the events of the minipool. Sync
updates bring more events and the headers of newly sealed miniblocks; the same event may
arrive twice (backfill after a re-add), so events are deduplicated by hash.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf.message import Message

from river_client import ids
from river_client.events import ParsedEvent, parse_envelope
from river_client.proto import protocol_pb2 as pb

SEEN_LIMIT = 50_000


@dataclass
class StreamState:
    """Members and seen events of a followed stream."""

    stream_id: bytes
    members: set[bytes] = field(default_factory=set)
    encryption_devices: list[pb.UserMetadataPayload.EncryptionDevice] = field(default_factory=list)
    _seen: set[bytes] = field(default_factory=set, repr=False)
    _order: deque[bytes] = field(default_factory=deque, repr=False)

    def mark_seen(self, event_hash: bytes) -> bool:
        """Record an event hash; False when it was seen before."""
        if event_hash in self._seen:
            return False
        self._seen.add(event_hash)
        self._order.append(event_hash)
        if len(self._order) > SEEN_LIMIT:
            self._seen.discard(self._order.popleft())
        return True

    def apply_snapshot(self, snapshot: pb.Snapshot) -> None:
        """Take members (and the device list of a metadata stream) from a snapshot."""
        self.members = {bytes(m.user_address) for m in snapshot.members.joined}
        if snapshot.WhichOneof("content") == "user_metadata_content":
            self.encryption_devices = list(snapshot.user_metadata_content.encryption_devices)

    def apply_event(self, parsed: ParsedEvent) -> None:
        """Update members and devices from one event."""
        event = parsed.event
        case = event.WhichOneof("payload")
        if case == "member_payload" and event.member_payload.WhichOneof("content") == "membership":
            membership = event.member_payload.membership
            if membership.op == pb.SO_JOIN:
                self.members.add(bytes(membership.user_address))
            elif membership.op == pb.SO_LEAVE:
                self.members.discard(bytes(membership.user_address))
        elif case == "user_metadata_payload":
            payload = event.user_metadata_payload
            if payload.WhichOneof("content") == "encryption_device":
                device = payload.encryption_device
                self.encryption_devices = [
                    d for d in self.encryption_devices if d.device_key != device.device_key
                ] + [device]


def snapshot_of(stream: pb.StreamAndCookie) -> pb.Snapshot | None:
    """The snapshot a GetStream reply carries (separate envelope or legacy header field)."""
    if stream.HasField("snapshot"):
        return pb.Snapshot.FromString(stream.snapshot.event)
    for miniblock in stream.miniblocks:
        header = parse_envelope(miniblock.header).event
        is_header = header.WhichOneof("payload") == "miniblock_header"
        if is_header and header.miniblock_header.HasField("snapshot"):
            return header.miniblock_header.snapshot
    return None


def events_of(stream: pb.StreamAndCookie) -> Iterator[ParsedEvent]:
    """Every event of a reply or update in stream order: miniblock events, then the minipool.

    Miniblock header envelopes are skipped inside miniblocks; those arriving as minipool events
    (a sealed block announced by sync) are yielded like any other event.
    """
    for miniblock in stream.miniblocks:
        for envelope in miniblock.events:
            yield parse_envelope(envelope)
    for envelope in stream.events:
        yield parse_envelope(envelope)


def load_state(stream: pb.StreamAndCookie, state: StreamState | None = None) -> StreamState:
    """A StreamState built (or rebuilt) from a full GetStream reply."""
    stream_id = bytes(stream.next_sync_cookie.stream_id)
    state = state or StreamState(stream_id)
    snapshot = snapshot_of(stream)
    if snapshot is not None:
        state.apply_snapshot(snapshot)
    for parsed in events_of(stream):
        state.mark_seen(parsed.hash)
        state.apply_event(parsed)
    return state


def user_stream_inceptions(address: bytes) -> list[tuple[bytes, Message]]:
    """The inception payloads of a user's four streams, in the SDK's creation order."""
    user, inbox = ids.user_stream_id(address), ids.user_inbox_stream_id(address)
    meta, settings = ids.user_metadata_stream_id(address), ids.user_settings_stream_id(address)
    return [
        (user, pb.UserPayload(inception=pb.UserPayload.Inception(stream_id=user))),
        (inbox, pb.UserInboxPayload(inception=pb.UserInboxPayload.Inception(stream_id=inbox))),
        (meta, pb.UserMetadataPayload(inception=pb.UserMetadataPayload.Inception(stream_id=meta))),
        (
            settings,
            pb.UserSettingsPayload(inception=pb.UserSettingsPayload.Inception(stream_id=settings)),
        ),
    ]
