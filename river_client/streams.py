"""What a client knows about one stream: members, recent events, sealed miniblocks.

A GetStream reply (StreamAndCookie) holds the stream's latest snapshot (the `snapshot`
envelope whose `event` is a serialized Snapshot, or the legacy snapshot inside the first
miniblock header), the miniblocks from that snapshot on and the events of the minipool. Sync
updates bring more events and the headers of newly sealed miniblocks; the same event may
arrive twice (backfill after a re-add), so events are deduplicated by hash.

A client of a Locust worker shares the process with a thousand others, so a followed stream
costs little: the members are counted, not listed (`joined_members` lists them from a reply
when needed), and the dedup window is a fixed ring of 8-byte hash prefixes (`RecentHashes`):
duplicates only come from backfills, which go back to the last sync cookie.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf.message import Message

from river_client import ids
from river_client.events import ParsedEvent, parse_envelope
from river_client.proto import protocol_pb2 as pb

SEEN_LIMIT = 128
_PREFIX = 8


class RecentHashes:
    """The last `limit` event hashes seen, as 8-byte prefixes in one ring buffer (8 B each)."""

    __slots__ = ("_next", "_ring", "limit")

    def __init__(self, limit: int = SEEN_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._ring = bytearray()
        self._next = 0

    def __contains__(self, event_hash: bytes) -> bool:
        prefix = event_hash[:_PREFIX]
        at = self._ring.find(prefix)
        while at >= 0 and at % _PREFIX:
            at = self._ring.find(prefix, at + 1)
        return at >= 0

    def add(self, event_hash: bytes) -> bool:
        """Record a hash; False when it is among the recent ones already."""
        if event_hash in self:
            return False
        prefix = event_hash[:_PREFIX].ljust(_PREFIX, b"\0")
        if len(self._ring) < self.limit * _PREFIX:
            self._ring += prefix
        else:
            start = self._next * _PREFIX
            self._ring[start : start + _PREFIX] = prefix
            self._next = (self._next + 1) % self.limit
        return True


@dataclass
class StreamState:
    """The member count, devices (metadata streams) and recently seen events of a stream."""

    stream_id: bytes
    member_count: int = 0
    encryption_devices: list[pb.UserMetadataPayload.EncryptionDevice] = field(default_factory=list)
    seen: RecentHashes = field(default_factory=RecentHashes, repr=False)

    def mark_seen(self, event_hash: bytes) -> bool:
        """Record an event hash; False when it was seen (recently) before."""
        return self.seen.add(event_hash)

    def apply_snapshot(self, snapshot: pb.Snapshot) -> None:
        """Take the member count (and the device list of a metadata stream) from a snapshot."""
        self.member_count = len(snapshot.members.joined)
        if snapshot.WhichOneof("content") == "user_metadata_content":
            self.encryption_devices = [
                _copy_device(d) for d in snapshot.user_metadata_content.encryption_devices
            ]

    def apply_event(self, parsed: ParsedEvent) -> None:
        """Update members and devices from one event."""
        event = parsed.event
        case = event.WhichOneof("payload")
        if case == "member_payload" and event.member_payload.WhichOneof("content") == "membership":
            op = event.member_payload.membership.op
            if op == pb.SO_JOIN:
                self.member_count += 1
            elif op == pb.SO_LEAVE:
                self.member_count = max(0, self.member_count - 1)
        elif case == "user_metadata_payload":
            payload = event.user_metadata_payload
            if payload.WhichOneof("content") == "encryption_device":
                device = _copy_device(payload.encryption_device)
                self.encryption_devices = [
                    d for d in self.encryption_devices if d.device_key != device.device_key
                ] + [device]


def _copy_device(
    device: pb.UserMetadataPayload.EncryptionDevice,
) -> pb.UserMetadataPayload.EncryptionDevice:
    return pb.UserMetadataPayload.EncryptionDevice(
        device_key=device.device_key, fallback_key=device.fallback_key
    )


def joined_members(stream: pb.StreamAndCookie) -> set[bytes]:
    """The joined members' addresses (20 bytes) of a GetStream reply: snapshot, then events."""
    snapshot = snapshot_of(stream)
    members = {bytes(m.user_address) for m in snapshot.members.joined} if snapshot else set()
    for parsed in events_of(stream):
        event = parsed.event
        if event.WhichOneof("payload") != "member_payload":
            continue
        if event.member_payload.WhichOneof("content") != "membership":
            continue
        membership = event.member_payload.membership
        if membership.op == pb.SO_JOIN:
            members.add(bytes(membership.user_address))
        elif membership.op == pb.SO_LEAVE:
            members.discard(bytes(membership.user_address))
    return members


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
