"""Answering other devices' key solicitations: one queue, the SDK's delays, a small pool.

A member holding the session keys of a stream answers a `MemberPayload.KeySolicitation` the way
the Towns SDK does (ClientDecryptionExtensions, research/river-protocol.md §7.5): after a random
delay of rand·max(5, min(30, members)) s (halved for one's own user), it posts a KeyFulfillment
{user_address, device_key, session_ids} to the stream, then sends the sessions to the soliciting
device alone through its inbox. A member that sees a KeyFulfillment covering the solicitation
before its delay is over does not answer: with hundreds of members one or two answers go out,
not hundreds. `respond_delay_scale` multiplies the delay (tests use a small one).

Each client keeps one entry per (stream, soliciting device): a newer solicitation of the device
replaces the ids of the older one and keeps its due time; fulfillments remove the ids they
cover, and an entry left with none is dropped. One scheduler greenlet (alive only while entries
are queued) hands due entries to at most `concurrency` answering greenlets, so each answer waits
its own delay instead of queueing behind the others', and a burst of joiners costs a bounded
number of greenlets. What to send is decided when the entry is due, so a key imported during
the delay is sent too. At most `max_queued` entries are kept. Clients of one process may
share `AnswerClaims`, so that one of them answers each solicitation.

Not supported: ephemeral solicitations and the open solicitations a stream snapshot lists
(solicitations are seen as stream events only).
"""

from __future__ import annotations

import heapq
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
from gevent.event import Event
from gevent.pool import Pool

from river_client.encryption.device import Device
from river_client.encryption.exceptions import EncryptionError
from river_client.encryption.hybrid import SessionStore
from river_client.encryption.solicitation import (
    answer_key_solicitation,
    make_key_fulfillment,
    reply_payloads,
    respond_delay_seconds,
)
from river_client.errors import Err, RiverClientError, RiverError
from river_client.proto import protocol_pb2 as pb

logger = logging.getLogger(__name__)

AddEvent = Callable[[bytes, pb.MemberPayload], object]
Deliver = Callable[[bytes, pb.UserInboxPayload.GroupEncryptionSessions], None]

ANSWER_CONCURRENCY = 4
MAX_QUEUED = 512


class AnswerClaims:
    """Solicitations some client of this process took on to answer, shared by its clients.

    Every member of a channel sees every solicitation; when a process holds hundreds of members
    (a Locust worker), one of them queuing the answer is enough, instead of hundreds waiting
    out their delays and several answering before a fulfillment reaches the others. A claim
    lapses after `ttl` seconds, so that a device asking again is answered again.

    `clients` counts the live clients sharing the claims: the claiming client answers for
    all of them, after the earliest of their SDK delays (`respond_delay_seconds(answerers=)`),
    so that a solicitation is answered as soon as in a run of independent clients.
    """

    def __init__(self, ttl: float = 60.0, limit: int = 10_000) -> None:
        self.ttl = ttl
        self.limit = limit
        self.clients = 0
        self._claimed: dict[tuple[bytes, str, tuple[str, ...]], float] = {}

    def claim(self, stream_id: bytes, solicitation: pb.MemberPayload.KeySolicitation) -> bool:
        """True for the first client of the process to claim this solicitation (per `ttl`)."""
        now = time.monotonic()
        key = (stream_id, solicitation.device_key, tuple(solicitation.session_ids))
        claimed = self._claimed.get(key)
        if claimed is not None and now - claimed < self.ttl:
            return False
        if len(self._claimed) >= self.limit:
            self._claimed = {k: t for k, t in self._claimed.items() if now - t < self.ttl}
        self._claimed[key] = now
        return True


@dataclass(slots=True)
class _Ask:
    """One open solicitation of one device in one stream, as this client still sees it."""

    stream_id: bytes
    solicitor: bytes
    device_key: str
    fallback_key: str
    is_new_device: bool
    session_ids: list[str]
    due: float

    def solicitation(self) -> pb.MemberPayload.KeySolicitation:
        return pb.MemberPayload.KeySolicitation(
            device_key=self.device_key,
            fallback_key=self.fallback_key,
            is_new_device=self.is_new_device,
            session_ids=self.session_ids,
        )


class KeyResponder:
    """The solicitations one client may answer, and the greenlets answering them."""

    def __init__(
        self,
        device: Device,
        store: SessionStore,
        add_event: AddEvent,
        deliver: Deliver,
        *,
        address: bytes,
        respond_delay_scale: float = 1.0,
        concurrency: int = ANSWER_CONCURRENCY,
        max_queued: int = MAX_QUEUED,
        claims: AnswerClaims | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.device = device
        self.store = store
        self.address = address
        self.respond_delay_scale = respond_delay_scale
        self.max_queued = max_queued
        self.answered = 0
        self.refused = 0
        self.claims = claims
        if claims is not None:
            claims.clients += 1
        self._add_event = add_event
        self._deliver = deliver
        self._asks: dict[tuple[bytes, str], _Ask] = {}
        self._due: list[tuple[float, int, tuple[bytes, str]]] = []
        self._seq = 0
        self._wake = Event()
        self._pool = Pool(concurrency)
        self._scheduler: gevent.Greenlet | None = None
        self._stopped = False

    @property
    def queued(self) -> int:
        """Solicitations waiting for their delay."""
        return len(self._asks)

    def solicited(
        self,
        stream_id: bytes,
        solicitor: bytes,
        solicitation: pb.MemberPayload.KeySolicitation,
        members: int,
    ) -> None:
        """Queue an answer to a solicitation seen in a stream with `members` joined members."""
        if self._stopped or solicitation.device_key == self.device.device_key:
            return
        if not self._can_answer(stream_id, solicitation):
            return
        key = (stream_id, solicitation.device_key)
        ids = [sys.intern(i) for i in solicitation.session_ids]
        ask = self._asks.get(key)
        if ask is not None:
            ask.session_ids, ask.is_new_device = ids, solicitation.is_new_device
            ask.fallback_key = solicitation.fallback_key
            return
        if len(self._asks) >= self.max_queued:
            self.refused += 1
            if self.refused == 1:
                logger.info("%d solicitations queued already; not answering more", self.max_queued)
            return
        if self.claims is not None and not self.claims.claim(stream_id, solicitation):
            return
        own = solicitor == self.address
        answerers = 1 if self.claims is None else max(1, min(members, self.claims.clients))
        delay = respond_delay_seconds(members, own, False, answerers=answerers)
        delay *= self.respond_delay_scale
        ask = _Ask(
            stream_id,
            bytes(solicitor),
            solicitation.device_key,
            solicitation.fallback_key,
            solicitation.is_new_device,
            ids,
            time.monotonic() + delay,
        )
        self._asks[key] = ask
        self._seq += 1
        heapq.heappush(self._due, (ask.due, self._seq, key))
        self._wake.set()
        if self._scheduler is None or self._scheduler.dead:
            self._scheduler = gevent.spawn(self._schedule)

    def _can_answer(self, stream_id: bytes, solicitation: pb.MemberPayload.KeySolicitation) -> bool:
        # Cheap: every member checks every solicitation; the reply is built when it is due.
        if not solicitation.session_ids:
            return False
        if solicitation.is_new_device:
            return bool(self.store.sessions(stream_id))
        return any(session_id in self.store for session_id in solicitation.session_ids)

    def fulfilled(self, stream_id: bytes, fulfillment: pb.MemberPayload.KeyFulfillment) -> None:
        """Someone answered: drop the session ids a fulfillment covers."""
        ask = self._asks.get((stream_id, fulfillment.device_key))
        if ask is None:
            return
        covered = set(fulfillment.session_ids)
        ask.session_ids = [i for i in ask.session_ids if i not in covered]
        if not ask.session_ids:
            del self._asks[(stream_id, fulfillment.device_key)]

    def stop(self) -> None:
        """Forget the queue and kill the scheduler and answering greenlets."""
        if self.claims is not None and not self._stopped:
            self.claims.clients -= 1
        self._stopped = True
        self._asks.clear()
        self._due.clear()
        if self._scheduler is not None:
            self._scheduler.kill(block=False)
        self._pool.kill(block=False)

    # -- greenlets -----------------------------------------------------------------------------

    def _schedule(self) -> None:
        while self._due and not self._stopped:
            due, _, key = self._due[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._wake.clear()
                self._wake.wait(wait)
                continue
            heapq.heappop(self._due)
            ask = self._asks.get(key)
            if not self._asks:
                self._asks = {}  # a dict keeps its largest size: let a burst's table go
            if ask is None or ask.due != due:
                continue
            del self._asks[key]
            self._pool.spawn(self._answer, ask)

    def _answer(self, ask: _Ask) -> None:
        reply = answer_key_solicitation(
            self.store, ask.stream_id, ask.solicitation(), self.device.device_key
        )
        if reply is None:
            return
        try:
            fulfillment = make_key_fulfillment(ask.solicitor, reply)
            self._add_event(ask.stream_id, pb.MemberPayload(key_fulfillment=fulfillment))
        except RiverError as exc:
            if exc.is_code(Err.DUPLICATE_EVENT, Err.NOT_FOUND):
                return  # another member answered first
            logger.info("key fulfillment in %s failed: %s", ask.stream_id.hex(), exc)
            return
        except (RiverClientError, ValueError) as exc:
            logger.info("key fulfillment in %s failed: %s", ask.stream_id.hex(), exc)
            return
        try:
            for payload in reply_payloads(self.device, ask.stream_id, reply):
                self._deliver(ask.solicitor, payload)
            self.answered += 1
        except (RiverClientError, EncryptionError) as exc:
            logger.info("sending keys of %s failed: %s", ask.stream_id.hex(), exc)
