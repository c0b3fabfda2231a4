"""The node's rules for CreateStream (River's rules/can_create_stream.go, the Towns chat subset).

- User streams (user a8, settings a5, metadata ad, inbox a1): exactly one event, the inception,
  created by the wallet inside the stream id, with the request metadata `spaceId` (a space
  stream id) naming a space the wallet is an active member of on the chain; without it,
  PERMISSION_DENIED. `installedAppAddress` instead of `spaceId` skips the chain check.
- Spaces (10) and channels (20): the inception plus the creator's Membership JOIN. Spaces can be
  created by the node's admin wallets (or, with no admins configured, by any space member on
  the chain); channels by admins or members of the space stream. The node writes the derived
  events: a `ChannelUpdate` (CO_CREATED) in the space for a new channel, and the creator's
  JOIN in their user stream when that stream exists.
- Inception events carry no prev_miniblock_hash (else BAD_STREAM_CREATION_PARAMS).

Creating a stream that already exists is a success that returns the stream as it is.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from devnet.node.errors import Err, NodeError
from devnet.node.rules import CHANNEL_PREFIX, SPACE_PREFIX, Plan, check_expiry, space_id_of_channel
from devnet.node.state import JOIN, PAYLOAD_FOR_PREFIX, USER_PREFIXES, stream_owner
from devnet.node.streams import ParsedEvent
from river_client.proto import protocol_pb2 as pb

if TYPE_CHECKING:
    from devnet.node.core import DevNode


def bad_params(message: str, **tags: object) -> NodeError:
    return NodeError(Err.BAD_STREAM_CREATION_PARAMS, message, **tags)


async def plan_create_stream(
    node: DevNode, stream_id: bytes, events: list[ParsedEvent], metadata: dict[str, bytes]
) -> Plan:
    """Check a new stream's events; returns the derived events for other streams."""
    prefix = stream_id[0] if len(stream_id) == 32 else -1
    kind = PAYLOAD_FOR_PREFIX.get(prefix)
    if kind is None:
        raise NodeError(
            Err.BAD_STREAM_ID,
            "stream id must be 32 bytes of a user, settings, metadata, inbox, space or channel"
            " stream",
            streamId=stream_id,
        )
    if not events:
        raise bad_params("no inception event")
    now_ms = int(time.time() * 1000)
    for parsed in events:
        check_expiry(parsed.event, now_ms)
        if parsed.event.HasField("prev_miniblock_hash"):
            raise bad_params("inception events must not have a prev_miniblock_hash")
    inception = events[0].event
    payload = getattr(inception, kind) if inception.WhichOneof("payload") == kind else None
    if payload is None or payload.WhichOneof("content") != "inception":
        raise bad_params(
            "first event must be the stream's inception", expected=kind, streamId=stream_id
        )
    if bytes(payload.inception.stream_id) != stream_id:
        raise bad_params(
            "inception stream id does not match the request",
            inception=bytes(payload.inception.stream_id),
            streamId=stream_id,
        )
    creator = bytes(inception.creator_address)

    if prefix in USER_PREFIXES:
        if len(events) != 1:
            raise bad_params("user streams are created with exactly one event", count=len(events))
        if creator != stream_owner(stream_id):
            raise bad_params("creator must be the user of the stream", creatorAddress=creator)
        space_id = metadata.get("spaceId")
        if space_id is not None:
            if len(space_id) != 32 or space_id[0] != SPACE_PREFIX:
                raise bad_params("spaceId metadata is not a space stream id", spaceId=space_id)
            await node.entitlements.require_space_member(space_id, creator)
        elif "installedAppAddress" not in metadata:
            raise NodeError(
                Err.PERMISSION_DENIED,
                "(19:BAD_STREAM_CREATION_PARAMS) user stream creation needs spaceId metadata",
                streamId=stream_id,
            )
        return []

    _check_creator_join(events, creator)
    if prefix == SPACE_PREFIX:
        if node.config.admins and creator not in node.config.admins:
            raise NodeError(
                Err.PERMISSION_DENIED, "creator may not create spaces", creatorAddress=creator
            )
        if not node.config.admins:
            await node.entitlements.require_space_member(stream_id, creator)
        return _user_join(node, creator, stream_id)

    assert prefix == CHANNEL_PREFIX
    space_id = space_id_of_channel(stream_id)
    if bytes(payload.inception.space_id) not in (b"", space_id):
        raise bad_params("channel inception names another space", spaceId=space_id)
    space = node.streams.get(space_id)
    if space is None:
        raise NodeError(Err.NOT_FOUND, "space stream not found", streamId=space_id)
    if creator not in node.config.admins and not space.live.is_member(creator):
        raise NodeError(
            Err.PERMISSION_DENIED,
            "channel creator is not a member of the space",
            creatorAddress=creator,
            spaceId=space_id,
        )
    update = pb.SpacePayload.ChannelUpdate(
        op=pb.ChannelOp.CO_CREATED,
        channel_id=stream_id,
        origin_event=pb.EventRef(
            stream_id=stream_id, hash=events[0].hash, signature=events[0].envelope.signature
        ),
    )
    if payload.inception.HasField("channel_settings"):
        update.settings.CopyFrom(payload.inception.channel_settings)
    plan: Plan = [(space, node.make_event(space, "space_payload", pb.SpacePayload(channel=update)))]
    return plan + _user_join(node, creator, stream_id)


def _check_creator_join(events: list[ParsedEvent], creator: bytes) -> None:
    if len(events) != 2:
        raise bad_params(
            "spaces and channels are created with the inception and the creator's join"
        )
    second = events[1].event
    membership = second.member_payload.membership
    if (
        second.WhichOneof("payload") != "member_payload"
        or second.member_payload.WhichOneof("content") != "membership"
        or membership.op != JOIN
        or bytes(membership.user_address) != creator
    ):
        raise bad_params("second event must be the creator's Membership JOIN")


def _user_join(node: DevNode, user: bytes, stream_id: bytes) -> Plan:
    """The creator's JOIN in their user stream, when that stream lives on this node."""
    user_stream = node.streams.get(bytes([0xA8]) + user + bytes(11))
    if user_stream is None or user_stream.live.membership_op(stream_id) == JOIN:
        return []
    join = pb.UserPayload(
        user_membership=pb.UserPayload.UserMembership(stream_id=stream_id, op=JOIN)
    )
    return [(user_stream, node.make_event(user_stream, "user_payload", join))]
