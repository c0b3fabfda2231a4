"""Key solicitations: how a member that cannot decrypt asks the others for session keys.

The mechanism of the Towns SDK (``BaseDecryptionExtensions.processMissingKeys`` /
``processKeySolicitation``, ``ClientDecryptionExtensions``), without the network:

- A device missing sessions posts ``MemberPayload.KeySolicitation`` {device_key,
  fallback_key, is_new_device, session_ids} to the stream: at most 100 missing hex ids,
  sorted (the node rejects unsorted or empty lists); ``is_new_device`` when it knows no
  session of that stream at all.
- A member holding keys answers after a random delay (``respond_delay_seconds``): it sends
  the sessions it knows that were asked for (all it knows for a new device) to that single
  device through its inbox, in ``GroupEncryptionSessions`` chunks of 100, and posts a
  ``MemberPayload.KeyFulfillment`` {user_address, device_key, session_ids} with the sorted ids
  it covers. A solicitation from one's own device, or with no session ids, gets no answer.

The SDK sends the fulfillment first and skips the inbox delivery when the node refuses it
(DUPLICATE_EVENT or NOT_FOUND: another member answered); that ordering is the caller's.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from river_client.encryption.device import Device, UserDevice
from river_client.encryption.hybrid import HybridSession, SessionStore
from river_client.encryption.sharing import GroupEncryptionSessions, make_group_encryption_sessions
from river_client.proto import protocol_pb2

KeySolicitation = protocol_pb2.MemberPayload.KeySolicitation
KeyFulfillment = protocol_pb2.MemberPayload.KeyFulfillment
MAX_SOLICITED_SESSIONS = 100
SESSIONS_PER_SHARE = 100


def make_key_solicitation(
    device: UserDevice, missing_session_ids: Iterable[str], is_new_device: bool
) -> KeySolicitation:
    """A solicitation for up to 100 of the missing session ids, sorted."""
    session_ids = sorted(set(missing_session_ids))[:MAX_SOLICITED_SESSIONS]
    if not session_ids:
        raise ValueError("a key solicitation needs at least one missing session id")
    return KeySolicitation(
        device_key=device.device_key,
        fallback_key=device.fallback_key,
        is_new_device=is_new_device,
        session_ids=session_ids,
    )


def make_stream_key_solicitation(
    device: UserDevice,
    store: SessionStore,
    stream_id: bytes | str,
    missing_session_ids: Iterable[str],
) -> KeySolicitation:
    """``make_key_solicitation`` with ``is_new_device`` taken from what the store knows."""
    return make_key_solicitation(
        device, missing_session_ids, is_new_device=not store.stream(stream_id)
    )


@dataclass(frozen=True, slots=True)
class KeySolicitationReply:
    """What to send in answer to one solicitation."""

    recipient: UserDevice
    sessions: list[HybridSession] = field(repr=False)
    fulfilled_session_ids: list[str]

    def chunks(self, size: int = SESSIONS_PER_SHARE) -> list[list[HybridSession]]:
        """The sessions in inbox-sized groups (the SDK sends 100 per event)."""
        return [self.sessions[i : i + size] for i in range(0, len(self.sessions), size)]


def answer_key_solicitation(
    store: SessionStore,
    stream_id: bytes | str,
    solicitation: KeySolicitation,
    own_device_key: str,
) -> KeySolicitationReply | None:
    """The sessions this device should send to the soliciting device, or None.

    None for our own device, a solicitation without session ids, or when we know none of
    the requested sessions (and it is not a new device). Costs a lookup per requested id;
    only a new device, which gets every session of the stream, costs one per session.
    """
    if solicitation.device_key == own_device_key or not solicitation.session_ids:
        return None
    known = store.stream(stream_id)
    fulfilled = known.known_ids(solicitation.session_ids)
    if solicitation.is_new_device:
        reply = known.sorted_sessions()
        if not fulfilled:
            fulfilled = known.session_ids()
    else:
        reply = [session for session_id in fulfilled if (session := known.get(session_id))]
    if not reply:
        return None

    return KeySolicitationReply(
        recipient=UserDevice(solicitation.device_key, solicitation.fallback_key),
        sessions=reply,
        fulfilled_session_ids=fulfilled,
    )


def make_key_fulfillment(user_address: bytes, reply: KeySolicitationReply) -> KeyFulfillment:
    """The stream event announcing the answer (``user_address``: the solicitor's 20 bytes)."""
    if len(user_address) != 20:
        raise ValueError(f"user address {user_address.hex()!r} must be 20 bytes")
    return KeyFulfillment(
        user_address=user_address,
        device_key=reply.recipient.device_key,
        session_ids=reply.fulfilled_session_ids,
    )


def reply_payloads(
    device: Device, stream_id: bytes | str, reply: KeySolicitationReply
) -> list[GroupEncryptionSessions]:
    """The inbox payloads for the soliciting device, one per chunk of 100 sessions."""
    payloads = []
    for chunk in reply.chunks():
        payload = make_group_encryption_sessions(device, stream_id, chunk, [reply.recipient])
        if payload is not None:
            payloads.append(payload)
    return payloads


def respond_delay_seconds(
    joined_members: int,
    from_own_user: bool,
    ephemeral: bool,
    rng: random.Random | None = None,
    answerers: int = 1,
) -> float:
    """How long to wait before answering, as the SDK does: spreads answers over members.

    rand·max(5, min(30, members)) seconds, halved for one's own user; for ephemeral
    solicitations halved again, or zero for one's own user. With `answerers` > 1, one answer
    stands for that many members (the clients of one process): the earliest of their delays,
    drawn at once (the minimum of n uniform draws is 1 - (1 - rand)^(1/n)), so a process's
    single answer comes when the first of its members' would have.
    """
    window = max(5, min(30, joined_members))
    draw = (rng or random).random()
    if answerers > 1:
        draw = 1.0 - (1.0 - draw) ** (1.0 / answerers)
    delay = window * draw * (0.5 if from_own_user else 1.0)
    if ephemeral:
        return 0.0 if from_own_user else delay / 2
    return delay
