"""The state of one stream that the rules need, and its Snapshot (River's snapshot.go, simplified).

A `StreamState` is folded from a stream's events: who is joined (any stream), the memberships a
user stream records, the channels of a space, the devices of a metadata stream, the stream's
encryption algorithm. The node keeps two per stream: one as of the last sealed miniblock (the
source of snapshots) and one that also includes the minipool (what rules check).

Stream types by the first byte of the id: user a8, settings a5, metadata ad, inbox a1,
space 10, channel 20. Owners are joined to their own user-type streams from the inception on.

Members carry their open key solicitations (a new solicitation of a device replaces its older
one; a fulfillment removes the session ids it answered, and the solicitation once none is left),
so a client loading a stream from its snapshot still sees who waits for keys.

Not supported in snapshots: usernames, display names, pins, inbox device summaries; clients
still see those events in the miniblocks after the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from river_client.proto import protocol_pb2 as pb

Solicitation = pb.MemberPayload.KeySolicitation

USER_PREFIXES = {0xA8: "user_payload", 0xA5: "user_settings_payload"}
USER_PREFIXES.update({0xAD: "user_metadata_payload", 0xA1: "user_inbox_payload"})
PAYLOAD_FOR_PREFIX = {**USER_PREFIXES, 0x10: "space_payload", 0x20: "channel_payload"}
SNAPSHOT_CONTENT = {
    "user_payload": "user_content",
    "user_settings_payload": "user_settings_content",
    "user_metadata_payload": "user_metadata_content",
    "user_inbox_payload": "user_inbox_content",
    "space_payload": "space_content",
    "channel_payload": "channel_content",
}
MAX_DEVICES = 10

JOIN = pb.MembershipOp.SO_JOIN
LEAVE = pb.MembershipOp.SO_LEAVE


@dataclass
class Member:
    """A joined member: when it joined, and its open key solicitations."""

    miniblock_num: int
    event_num: int
    solicitations: list[Solicitation] = field(default_factory=list)


def is_user_stream(stream_id: bytes) -> bool:
    return stream_id[0] in USER_PREFIXES


def stream_owner(stream_id: bytes) -> bytes:
    """The wallet address inside a user-type stream id."""
    return stream_id[1:21]


class StreamState:
    """Membership and metadata of one stream, folded from its events."""

    def __init__(self, stream_id: bytes, inception: pb.StreamEvent) -> None:
        self.stream_id = stream_id
        self.payload_kind = PAYLOAD_FOR_PREFIX[stream_id[0]]
        self.inception = inception
        self.members: dict[bytes, Member] = {}
        self.memberships: dict[bytes, pb.UserPayload.UserMembership] = {}
        self.channels: dict[bytes, pb.SpacePayload.ChannelMetadata] = {}
        self.devices: list[pb.UserMetadataPayload.EncryptionDevice] = []
        self.encryption_algorithm: str | None = None
        if is_user_stream(stream_id):
            self.members[stream_owner(stream_id)] = Member(0, 0)

    def is_member(self, address: bytes) -> bool:
        return address in self.members

    def membership_op(self, stream_id: bytes) -> int:
        """For a user stream: the user's last membership op on `stream_id` (0 = none)."""
        entry = self.memberships.get(stream_id)
        return int(entry.op) if entry is not None else 0

    def apply(self, event: pb.StreamEvent, event_num: int, miniblock_num: int) -> None:
        """Fold one event into the state."""
        kind = event.WhichOneof("payload")
        if kind == "member_payload":
            self._apply_member(event, event_num, miniblock_num)
        elif kind == "user_payload" and event.user_payload.HasField("user_membership"):
            membership = event.user_payload.user_membership
            entry = pb.UserPayload.UserMembership()
            entry.CopyFrom(membership)
            self.memberships[bytes(membership.stream_id)] = entry
        elif kind == "space_payload" and event.space_payload.HasField("channel"):
            update = event.space_payload.channel
            metadata = pb.SpacePayload.ChannelMetadata(
                op=update.op,
                channel_id=update.channel_id,
                updated_at_event_num=event_num,
            )
            if update.HasField("origin_event"):
                metadata.origin_event.CopyFrom(update.origin_event)
            if update.HasField("settings"):
                metadata.settings.CopyFrom(update.settings)
            self.channels[bytes(update.channel_id)] = metadata
        elif kind == "user_metadata_payload" and event.user_metadata_payload.HasField(
            "encryption_device"
        ):
            device = event.user_metadata_payload.encryption_device
            self.devices = [d for d in self.devices if d.device_key != device.device_key]
            entry_device = pb.UserMetadataPayload.EncryptionDevice()
            entry_device.CopyFrom(device)
            self.devices.append(entry_device)
            del self.devices[:-MAX_DEVICES]

    def _apply_member(self, event: pb.StreamEvent, event_num: int, miniblock_num: int) -> None:
        member = event.member_payload
        content = member.WhichOneof("content")
        if content == "membership":
            address = bytes(member.membership.user_address)
            if member.membership.op == JOIN:
                self.members.setdefault(address, Member(miniblock_num, event_num))
            elif member.membership.op == LEAVE:
                self.members.pop(address, None)
        elif content == "encryption_algorithm":
            algorithm = member.encryption_algorithm
            self.encryption_algorithm = (
                algorithm.algorithm if algorithm.HasField("algorithm") else None
            )
        elif content == "key_solicitation" and not event.ephemeral:
            joined = self.members.get(bytes(event.creator_address))
            if joined is not None:
                asked = member.key_solicitation
                joined.solicitations = [
                    s for s in joined.solicitations if s.device_key != asked.device_key
                ]
                copy = Solicitation()
                copy.CopyFrom(asked)
                joined.solicitations.append(copy)
        elif content == "key_fulfillment" and not event.ephemeral:
            fulfillment = member.key_fulfillment
            joined = self.members.get(bytes(fulfillment.user_address))
            if joined is not None:
                answered = set(fulfillment.session_ids)
                kept = []
                for solicitation in joined.solicitations:
                    if solicitation.device_key == fulfillment.device_key:
                        remaining = [i for i in solicitation.session_ids if i not in answered]
                        if not remaining:
                            continue
                        del solicitation.session_ids[:]
                        solicitation.session_ids.extend(remaining)
                        solicitation.is_new_device = False
                    kept.append(solicitation)
                joined.solicitations = kept

    def to_snapshot(self) -> pb.Snapshot:
        """The Snapshot message of this state."""
        snapshot = pb.Snapshot()
        for address in sorted(self.members):
            member = self.members[address]
            snapshot.members.joined.add(
                user_address=address,
                miniblock_num=member.miniblock_num,
                event_num=member.event_num,
                solicitations=member.solicitations,
            )
        if self.encryption_algorithm is not None:
            snapshot.members.encryption_algorithm.algorithm = self.encryption_algorithm
        content = getattr(snapshot, SNAPSHOT_CONTENT[self.payload_kind])
        inception_payload = getattr(self.inception, self.payload_kind)
        content.inception.CopyFrom(inception_payload.inception)
        if self.payload_kind == "user_payload":
            for stream_id in sorted(self.memberships):
                content.memberships.append(self.memberships[stream_id])
        elif self.payload_kind == "space_payload":
            for channel_id in sorted(self.channels):
                content.channels.append(self.channels[channel_id])
        elif self.payload_kind == "user_metadata_payload":
            content.encryption_devices.extend(self.devices)
        return snapshot

    @classmethod
    def from_snapshot(
        cls, stream_id: bytes, inception: pb.StreamEvent, snapshot: pb.Snapshot
    ) -> StreamState:
        """Rebuild a state from a snapshot (and the stream's inception event)."""
        state = cls(stream_id, inception)
        state.members = {
            bytes(m.user_address): Member(m.miniblock_num, m.event_num, list(m.solicitations))
            for m in snapshot.members.joined
        }
        if snapshot.members.encryption_algorithm.HasField("algorithm"):
            state.encryption_algorithm = snapshot.members.encryption_algorithm.algorithm
        kind = snapshot.WhichOneof("content")
        if kind == "user_content":
            for entry in snapshot.user_content.memberships:
                state.memberships[bytes(entry.stream_id)] = entry
        elif kind == "space_content":
            for metadata in snapshot.space_content.channels:
                state.channels[bytes(metadata.channel_id)] = metadata
        elif kind == "user_metadata_content":
            state.devices = list(snapshot.user_metadata_content.encryption_devices)
        return state

    def clone(self) -> StreamState:
        return StreamState.from_snapshot(self.stream_id, self.inception, self.to_snapshot())
