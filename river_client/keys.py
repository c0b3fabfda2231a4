"""Group session keys for a client: encrypting posts, sharing keys, importing, soliciting.

Channel messages are encrypted with the stream's hybrid group session (AES-256-GCM). The
outbound session of a stream is the stored one with the highest miniblock number, imported
ones included, so members converge on one key. A client without one creates it on the
stream's latest miniblock and shares it, before posting, to every device of every joined
member: per member, the devices listed in the member's metadata stream (last 10), one Olm
pre-key message each, in one GroupEncryptionSessions event on the member's inbox stream
(built on that inbox's last miniblock from GetLastMiniblockHash).

Received keys arrive on the own inbox stream; messages that could not be decrypted are
decrypted again when their session arrives (yielding to other greenlets every `YIELD_EVERY`
messages); at most `pending_limit` wait (later ones are dropped, but their session ids are
still solicited and awaited), kept as plain bytes (`messages.ChannelEvent`), never as parsed
protobuf objects. A message still undecryptable after `solicit_delay` makes the client post a
KeySolicitation to the stream for every missing session id; while ids stay missing the client
asks again after `resolicit_interval` seconds, then twice as long each time
(`solicit_attempts` times in all: a busy node, or a channel of a thousand members, is not
flooded with repeated asks), and a message of a session not asked for yet brings the next
solicitation forward. Members holding the keys answer it after the SDK's random delay
(`solicitations.KeyResponder`).

A client about to create a session for a stream whose messages wait for keys may first
`await_session`: it solicits at once and waits for one of the stream's sessions, so that the
members of a channel converge on one key instead of each sharing a new one with all the
others (the SDK creates one at once; with hundreds of members per process that costs every
member a session of every other member).

Imported keys are acknowledged on the own inbox (UserInboxPayload.Ack with the inbox's latest
miniblock), at most once per `ack_interval` seconds.

Background work (solicitations, answers, acks) runs in greenlets that `stop()` kills.

Not supported: ephemeral solicitations, several devices per user on the sending side (other
devices of one's own user get no keys).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol

import gevent
from gevent.event import Event
from gevent.lock import Semaphore
from gevent.pool import Group, Pool

from river_client.encryption.device import Device, UserDevice
from river_client.encryption.exceptions import EncryptionError
from river_client.encryption.hybrid import (
    HybridSession,
    SessionStore,
    decrypt_channel_message,
    encrypt_channel_message,
    missing_session_id,
)
from river_client.encryption.sharing import (
    import_group_encryption_sessions,
    latest_devices,
    make_group_encryption_sessions,
)
from river_client.encryption.solicitation import make_stream_key_solicitation
from river_client.errors import RiverClientError
from river_client.events import MiniblockRef, ParsedEvent
from river_client.ids import user_inbox_stream_id, user_metadata_stream_id
from river_client.messages import ChannelEvent
from river_client.proto import payloads_pb2 as pl
from river_client.proto import protocol_pb2 as pb
from river_client.solicitations import MAX_QUEUED, AnswerClaims, KeyResponder
from river_client.streams import load_state

logger = logging.getLogger(__name__)

Decrypted = Callable[[bytes, ChannelEvent, pl.ChannelMessage], None]
PENDING_LIMIT = 400
DEVICES_CACHED = 32
DROPPED_IDS_KEPT = 100
YIELD_EVERY = 50


class Node(Protocol):
    """The network operations key exchange needs from the client."""

    def get_stream(self, stream_id: bytes) -> pb.StreamAndCookie | None: ...

    def last_miniblock(self, stream_id: bytes) -> MiniblockRef: ...

    def add_event_on(self, stream_id: bytes, payload: object, ref: MiniblockRef | None) -> str: ...

    def known_miniblock(self, stream_id: bytes) -> MiniblockRef | None: ...


class KeyExchange:
    """The device, the session store and the key traffic of one client."""

    def __init__(
        self,
        node: Node,
        address: bytes,
        on_decrypted: Decrypted,
        *,
        device: Device | None = None,
        store: SessionStore | None = None,
        share_concurrency: int = 8,
        solicit_delay: float = 3.0,
        resolicit_interval: float = 20.0,
        solicit_attempts: int = 5,
        respond_delay_scale: float = 1.0,
        ack_interval: float = 10.0,
        pending_limit: int = PENDING_LIMIT,
        answers_queued: int = MAX_QUEUED,
        answer_claims: AnswerClaims | None = None,
    ) -> None:
        self.node = node
        self.address = address
        self.device = device or Device()
        self.store = store or SessionStore()
        self.on_decrypted = on_decrypted
        self.share_concurrency = share_concurrency
        self.solicit_delay = solicit_delay
        self.resolicit_interval = resolicit_interval
        self.solicit_attempts = solicit_attempts
        self.ack_interval = ack_interval
        self.pending_limit = pending_limit
        self.acks = 0
        self.dropped = 0
        self.responder = KeyResponder(
            self.device,
            self.store,
            lambda stream_id, payload: node.add_event_on(stream_id, payload, None),
            self._deliver,
            address=address,
            respond_delay_scale=respond_delay_scale,
            max_queued=answers_queued,
            claims=answer_claims,
        )
        self._ack_scheduled = False
        self._locks: dict[bytes, Semaphore] = {}
        self._devices: OrderedDict[bytes, list[UserDevice]] = OrderedDict()
        self._pending: dict[str, list[tuple[bytes, ChannelEvent]]] = {}
        self._dropped: dict[bytes, set[str]] = {}
        self._pending_count = 0
        self._asked: dict[bytes, set[str]] = {}
        self._solicit_due: dict[bytes, float] = {}
        self._arrived: dict[bytes, Event] = {}
        self._greenlets = Group()

    @property
    def respond_delay_scale(self) -> float:
        return self.responder.respond_delay_scale

    @respond_delay_scale.setter
    def respond_delay_scale(self, scale: float) -> None:
        self.responder.respond_delay_scale = scale

    def _later(self, delay: float, work: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        # A timer until it runs: a waiting task holds no greenlet stack.
        greenlet = gevent.spawn_later(delay, work, *args)
        self._greenlets.add(greenlet)
        return greenlet

    def stop(self) -> None:
        """Kill every background greenlet (solicitations, answers, acks)."""
        self.responder.stop()
        self._greenlets.kill(block=False)

    def device_payload(self) -> pb.UserMetadataPayload:
        """The EncryptionDevice event publishing this device in the metadata stream."""
        device = pb.UserMetadataPayload.EncryptionDevice(
            device_key=self.device.device_key, fallback_key=self.device.fallback_key
        )
        return pb.UserMetadataPayload(encryption_device=device)

    # -- sending -------------------------------------------------------------------------------

    def encrypt(
        self, stream_id: bytes, members: Iterable[bytes], message: pl.ChannelMessage
    ) -> pb.EncryptedData:
        """Encrypt a ChannelMessage for a stream, creating and sharing its session if needed."""
        session = self.outbound_session(stream_id, members)
        return encrypt_channel_message(session, message, self.device.device_key)

    def outbound_session(self, stream_id: bytes, members: Iterable[bytes]) -> HybridSession:
        """The stream's outbound session; a new one is created and shared to `members`."""
        session = self.store.outbound(stream_id)
        if session is not None:
            return session
        lock = self._locks.setdefault(stream_id, Semaphore())
        with lock:
            session = self.store.outbound(stream_id)
            if session is not None:
                return session
            ref = self.node.last_miniblock(stream_id)
            session = HybridSession.create(stream_id, ref.num, ref.hash)
            self.store.add(session)
            self.share(stream_id, [session], members)
            return session

    def await_session(self, stream_id: bytes, timeout: float) -> bool:
        """Whether the stream has a session, after waiting up to `timeout` s for one when some
        of its messages wait for keys (soliciting them now); False at once when none wait."""
        if self.store.outbound(stream_id) is not None:
            return True
        if timeout <= 0 or not self._missing_for(stream_id):
            return False
        if stream_id not in self._asked:
            self._solicit_soon(stream_id, delay=0.0)
        arrived = self._arrived.setdefault(stream_id, Event())
        arrived.wait(timeout)
        return self.store.outbound(stream_id) is not None

    def devices_of(self, address: bytes, refresh: bool = False) -> list[UserDevice]:
        """A user's devices from the user's metadata stream (the last few users cached)."""
        if not refresh and self._devices.get(address):
            self._devices.move_to_end(address)
            return self._devices[address]
        stream = self.node.get_stream(user_metadata_stream_id(address))
        devices = latest_devices(load_state(stream).encryption_devices) if stream else []
        self._devices[address] = devices
        while len(self._devices) > DEVICES_CACHED:
            self._devices.popitem(last=False)
        return devices

    def share(
        self, stream_id: bytes, sessions: list[HybridSession], members: Iterable[bytes]
    ) -> int:
        """Send `sessions` to every device of every member but this one; returns inbox writes."""
        recipients = [m for m in set(members) if m != self.address]
        sent = 0

        def share_to(member: bytes) -> None:
            nonlocal sent
            try:
                devices = self.devices_of(member)
                payload = make_group_encryption_sessions(self.device, stream_id, sessions, devices)
                if payload is None:
                    return
                self._deliver(member, payload)
                sent += 1
            except (RiverClientError, EncryptionError) as exc:
                logger.warning(
                    "sharing keys of %s to %s failed: %s", stream_id.hex(), member.hex(), exc
                )

        pool = Pool(self.share_concurrency)
        for member in recipients:
            pool.spawn(share_to, member)
        pool.join()
        return sent

    def _deliver(self, member: bytes, payload: pb.UserInboxPayload.GroupEncryptionSessions) -> None:
        inbox = user_inbox_stream_id(member)
        ref = self.node.last_miniblock(inbox)
        self.node.add_event_on(inbox, pb.UserInboxPayload(group_encryption_sessions=payload), ref)

    # -- receiving -----------------------------------------------------------------------------

    def handle_channel_message(
        self, stream_id: bytes, event: ChannelEvent, data: pb.EncryptedData | None = None
    ) -> None:
        """Decrypt a channel message now, or queue it until its session arrives."""
        if data is None:
            data = event.data()
        try:
            missing = missing_session_id(self.store, data)
            if missing is not None:
                self._wait_for_session(stream_id, missing, event, data)
                return
            message = decrypt_channel_message(self.store, data, stream_id)
        except EncryptionError as exc:
            logger.info("cannot decrypt event %s: %s", event.event_id, exc)
            return
        if message is not None:
            self.on_decrypted(stream_id, event, message)

    def _wait_for_session(
        self, stream_id: bytes, missing: str, event: ChannelEvent, data: pb.EncryptedData
    ) -> None:
        if self._pending_count >= self.pending_limit:
            self.dropped += 1
            if self.dropped == 1:
                logger.info("%d messages wait for keys; dropping later ones", self.pending_limit)
            # the message is gone, but its session is still wanted (and awaited)
            ids = self._dropped.setdefault(stream_id, set())
            if len(ids) < DROPPED_IDS_KEPT:
                ids.add(missing)
            if missing not in self._asked.get(stream_id, ()):
                self._solicit_soon(stream_id)
            return
        kept = event if event.encrypted else replace(event, encrypted=data.SerializeToString())
        self._pending.setdefault(missing, []).append((stream_id, kept))
        self._pending_count += 1
        if missing not in self._asked.get(stream_id, ()):
            self._solicit_soon(stream_id)

    def handle_inbox_event(self, parsed: ParsedEvent) -> None:
        """Import sessions sent to this device and decrypt the messages waiting for them."""
        inbox = parsed.event.user_inbox_payload
        if inbox.WhichOneof("content") != "group_encryption_sessions":
            return
        try:
            imported = import_group_encryption_sessions(
                self.device, self.store, inbox.group_encryption_sessions
            )
        except EncryptionError as exc:
            logger.info("cannot import keys from inbox event %s: %s", parsed.event_id, exc)
            return
        arrived = self._arrived.pop(bytes(inbox.group_encryption_sessions.stream_id), None)
        if imported and arrived is not None:
            arrived.set()
        dropped = self._dropped.get(bytes(inbox.group_encryption_sessions.stream_id))
        if dropped:
            dropped.difference_update(imported)
        waiting = [item for session_id in imported for item in self._pending.pop(session_id, [])]
        if not self._pending:
            self._pending = {}  # a dict keeps its largest size: let a burst's table go
        self._pending_count -= len(waiting)
        for done, (stream_id, event) in enumerate(waiting, 1):
            self.handle_channel_message(stream_id, event)
            if done % YIELD_EVERY == 0:
                gevent.sleep(0)  # hundreds may wait for one key: let heartbeats run between
        if imported:
            self._ack_later()

    def _ack_later(self) -> None:
        if self._ack_scheduled or self.ack_interval <= 0:
            return
        self._ack_scheduled = True

        def ack() -> None:
            self._ack_scheduled = False
            inbox = user_inbox_stream_id(self.address)
            ref = self.node.known_miniblock(inbox)
            if ref is None:
                return
            payload = pb.UserInboxPayload.Ack(
                device_key=self.device.device_key, miniblock_num=ref.num
            )
            try:
                self.node.add_event_on(inbox, pb.UserInboxPayload(ack=payload), None)
                self.acks += 1
            except RiverClientError as exc:
                logger.info("inbox ack failed: %s", exc)

        self._later(self.ack_interval, ack)

    @property
    def pending_count(self) -> int:
        """Messages waiting for a session."""
        return self._pending_count

    # -- solicitations -------------------------------------------------------------------------

    def _missing_for(self, stream_id: bytes) -> list[str]:
        """Session ids of the stream's messages waiting for keys, or dropped for want of room."""
        missing = {
            sid for sid, items in self._pending.items() if any(s == stream_id for s, _ in items)
        }
        missing.update(self._dropped.get(stream_id, ()))
        return sorted(missing)

    def _solicit_soon(self, stream_id: bytes, delay: float | None = None) -> None:
        """Solicit the stream's missing ids in `delay` s (`solicit_delay` by default), unless a
        solicitation is due sooner."""
        delay = self.solicit_delay if delay is None else delay
        soon = time.monotonic() + delay
        if self._solicit_due.get(stream_id, float("inf")) <= soon:
            return
        self._solicit_due[stream_id] = soon
        self._later(delay, self._solicit, stream_id, soon, 1)

    def _solicit(self, stream_id: bytes, due: float, attempt: int) -> None:
        if self._solicit_due.get(stream_id) != due:
            return  # superseded by a sooner one
        del self._solicit_due[stream_id]
        missing = self._missing_for(stream_id)
        if not missing:
            self._asked.pop(stream_id, None)
            return
        try:
            solicitation = make_stream_key_solicitation(
                self.device.user_device, self.store, stream_id, missing
            )
            payload = pb.MemberPayload(key_solicitation=solicitation)
            self.node.add_event_on(stream_id, payload, None)
            self._asked[stream_id] = set(solicitation.session_ids)
            logger.debug("asked for %d session(s) of %s", len(missing), stream_id.hex())
        except (RiverClientError, EncryptionError, ValueError) as exc:
            logger.info("key solicitation in %s failed: %s", stream_id.hex(), exc)
        if attempt >= self.solicit_attempts:
            self._asked.pop(stream_id, None)  # a later message starts a new round
        else:
            interval = self.resolicit_interval * 2 ** (attempt - 1)
            again = time.monotonic() + interval
            self._solicit_due[stream_id] = again
            self._later(interval, self._solicit, stream_id, again, attempt + 1)

    def handle_member_event(self, stream_id: bytes, parsed: ParsedEvent, members: int) -> None:
        """Queue answers to other devices' key solicitations; note fulfillments by others."""
        member = parsed.event.member_payload
        case = member.WhichOneof("content")
        if case == "key_fulfillment":
            self.responder.fulfilled(stream_id, member.key_fulfillment)
        elif case == "key_solicitation" and not parsed.event.ephemeral:
            solicitor = bytes(parsed.event.creator_address)
            self.responder.solicited(stream_id, solicitor, member.key_solicitation, members)
