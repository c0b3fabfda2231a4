"""The node's rules for AddEvent (River's rules/can_add_event.go, the parts Towns chat uses).

`plan_add_event` checks an event against its stream and returns what to append, in order:
derived "parent" events written by the node first, then the event itself. An empty plan means
the event is a valid no-op (joining twice), answered with success and no events.

Checks, in the real node's order: delegate expiry (PERMISSION_DENIED "event delegate has
expired"), prev_miniblock_hash present (INVALID_ARGUMENT), the referenced miniblock known and
recent (BAD_PREV_MINIBLOCK_HASH with expected/expNum, MINIBLOCK_TOO_NEW), a duplicate hash
(DUPLICATE_EVENT, turned into success by AddEvent), the payload type of the stream
(member payloads fit every stream), then per payload: the creator is a member of the stream,
memberships of spaces and channels change only through the user's own stream (the node writes
the Membership event into the target stream), and joining a space or channel needs an active
space membership on the chain.

Not supported: invites into streams by other users (UserMembershipAction), DMs, GDMs and
media streams, pins, tips and blockchain transactions, and the real node's per-message chain
entitlement checks (Write/React on the channel): here a joined member may post.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from devnet.node.errors import Err, NodeError
from devnet.node.state import JOIN, LEAVE, stream_owner
from devnet.node.streams import ParsedEvent, Stream
from river_client.proto import protocol_pb2 as pb

if TYPE_CHECKING:
    from devnet.node.core import DevNode

Plan = list[tuple[Stream, ParsedEvent]]
INVITE = pb.MembershipOp.SO_INVITE
SPACE_PREFIX = 0x10
CHANNEL_PREFIX = 0x20


class DuplicateEvent(Exception):
    """The event is already in the stream; AddEvent answers success."""


def space_id_of_channel(channel_id: bytes) -> bytes:
    return bytes([SPACE_PREFIX]) + channel_id[1:21] + bytes(11)


def require_member(stream: Stream, creator: bytes) -> None:
    if not stream.live.is_member(creator):
        raise NodeError(
            Err.PERMISSION_DENIED,
            "event creator is not a member of the stream",
            creatorAddress=creator,
            streamId=stream.stream_id,
        )


def check_expiry(event: pb.StreamEvent, now_ms: int) -> None:
    expiry = event.delegate_expiry_epoch_ms
    if expiry > 0 and now_ms > expiry:
        raise NodeError(
            Err.PERMISSION_DENIED,
            "event delegate has expired",
            currentTime=now_ms,
            expiryTime=expiry,
        )


async def plan_add_event(node: DevNode, stream: Stream, parsed: ParsedEvent) -> Plan:
    """What to append for `parsed` in `stream` (see the module docstring); raises NodeError."""
    event = parsed.event
    now_ms = int(time.time() * 1000)
    check_expiry(event, now_ms)
    if not event.HasField("prev_miniblock_hash"):
        raise NodeError(Err.INVALID_ARGUMENT, "event has no prevMiniblockHash")
    stream.validate_prev(event, now_ms, node.config.recency_ms)
    if parsed.hash in stream.hashes:
        raise DuplicateEvent()

    kind = event.WhichOneof("payload")
    if kind != "member_payload" and kind != stream.payload_kind:
        raise NodeError(
            Err.INVALID_ARGUMENT,
            "event payload type does not match the stream type",
            payload=kind,
            expected=stream.payload_kind,
            streamId=stream.stream_id,
        )
    payload = getattr(event, kind) if kind else None
    content = payload.WhichOneof("content") if payload is not None else None
    if content is None:
        raise NodeError(Err.INVALID_ARGUMENT, "event payload has no content", payload=kind)
    if content == "inception":
        raise NodeError(
            Err.INVALID_ARGUMENT, "inception events are only accepted by CreateStream", payload=kind
        )

    creator = bytes(event.creator_address)
    by_node = creator == node.key.address
    if kind == "member_payload" and content == "membership":
        if not by_node:
            raise NodeError(
                Err.PERMISSION_DENIED,
                "membership events are written by nodes; join through the user stream",
                creatorAddress=creator,
            )
    elif kind == "space_payload" and content == "channel":
        if not by_node:
            raise NodeError(
                Err.PERMISSION_DENIED,
                "channel updates are written by nodes",
                creatorAddress=creator,
            )
    elif kind == "user_payload" and content == "user_membership":
        return await _plan_user_membership(node, stream, parsed, by_node)
    elif kind == "user_payload" and content == "user_membership_action":
        raise NodeError(Err.UNIMPLEMENTED, "UserMembershipAction is not supported by the dev node")
    elif kind == "user_inbox_payload" and content == "group_encryption_sessions":
        pass  # anyone may write session keys to anyone's inbox
    elif kind == "member_payload" and content == "key_solicitation":
        require_member(stream, creator)
        _check_solicitation(event.member_payload.key_solicitation)
    else:
        require_member(stream, creator)
    return [(stream, parsed)]


def _check_solicitation(solicitation: pb.MemberPayload.KeySolicitation) -> None:
    ids = list(solicitation.session_ids)
    if not solicitation.is_new_device and not ids:
        raise NodeError(Err.INVALID_ARGUMENT, "key solicitation without session ids")
    if any(not s for s in ids) or ids != sorted(ids):
        raise NodeError(
            Err.INVALID_ARGUMENT, "key solicitation session ids must be non-empty and sorted"
        )


async def _plan_user_membership(
    node: DevNode, stream: Stream, parsed: ParsedEvent, by_node: bool
) -> Plan:
    """A join/leave on the user's own stream, with the node's Membership in the target."""
    owner = stream_owner(stream.stream_id)
    creator = bytes(parsed.event.creator_address)
    if not by_node and creator != owner:
        require_member(stream, creator)
    membership = parsed.event.user_payload.user_membership
    target_id = bytes(membership.stream_id)
    op = membership.op
    current = stream.live.membership_op(target_id)
    if op not in (JOIN, LEAVE, INVITE):
        raise NodeError(Err.INVALID_ARGUMENT, "unknown membership op", op=op)
    if op == current or (op == LEAVE and current == 0):
        return []
    if current == JOIN and op == INVITE:
        raise NodeError(
            Err.INVALID_ARGUMENT, "invalid membership transition", current=current, new=op
        )

    plan: Plan = []
    if target_id[:1] in (bytes([SPACE_PREFIX]), bytes([CHANNEL_PREFIX])):
        target = node.streams.get(target_id)
        if target is None:
            raise NodeError(Err.NOT_FOUND, "stream not found", streamId=target_id)
        is_channel = target_id[0] == CHANNEL_PREFIX
        if op == JOIN:
            space_id = space_id_of_channel(target_id) if is_channel else target_id
            await node.entitlements.require_space_member(space_id, owner)
            space = node.streams.get(space_id)
            if is_channel and space is not None and not space.live.is_member(owner):
                # Joining a channel implies joining its space first.
                if stream.live.membership_op(space_id) != JOIN:
                    user_join = pb.UserPayload(
                        user_membership=pb.UserPayload.UserMembership(stream_id=space_id, op=JOIN)
                    )
                    plan.append((stream, node.make_event(stream, "user_payload", user_join)))
                plan.append((space, _membership_event(node, space, JOIN, owner, creator, None)))
        parent = (
            bytes(membership.stream_parent_id) if membership.HasField("stream_parent_id") else None
        )
        changes = (op == JOIN and not target.live.is_member(owner)) or (
            op == LEAVE and target.live.is_member(owner)
        )
        if changes or op == INVITE:
            plan.append((target, _membership_event(node, target, op, owner, creator, parent)))
    plan.append((stream, parsed))
    return plan


def _membership_event(
    node: DevNode,
    target: Stream,
    op: int,
    user: bytes,
    initiator: bytes,
    parent: bytes | None,
) -> ParsedEvent:
    membership = pb.MemberPayload.Membership(user_address=user, initiator_address=initiator)
    membership.op = op  # type: ignore[assignment]
    if parent is not None:
        membership.stream_parent_id = parent
    return node.make_event(target, "member_payload", pb.MemberPayload(membership=membership))
