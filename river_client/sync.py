"""A SyncStreams session kept alive in a greenlet.

The session opens the server stream with the cookies of the streams it follows; the first
message (SYNC_NEW) names the sync id, then SYNC_UPDATE messages carry new events, sealed
miniblock headers and the next cookie of a stream. Streams are added and removed with
ModifySync (which must reach the node running the stream), kept alive with PingSync (answered
in-band by SYNC_PONG) and the session ends with CancelSync (SYNC_CLOSE, then end of stream).

A stream reported SYNC_DOWN is added again from its last cookie after `readd_delay`; a broken
session is restarted with every stream's last cookie after `restart_delay`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import gevent
from gevent.event import Event
from google.protobuf.message import Message

from river_client.errors import RiverClientError
from river_client.proto import protocol_pb2 as pb
from river_client.transport import ConnectTransport, ServerStream

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
UnaryCall = Callable[[str, Message, type[Any]], Any]
UpdateHandler = Callable[[pb.StreamAndCookie], None]


def _detached(cookie: pb.SyncCookie) -> pb.SyncCookie:
    """A copy of a cookie: one taken from a reply would keep the whole reply in memory."""
    copy = pb.SyncCookie()
    copy.CopyFrom(cookie)
    return copy


class SyncSession:
    """Follows a set of streams through one SyncStreams call, re-established when it breaks.

    `on_update(stream_and_cookie)` runs in the session's greenlet for every SYNC_UPDATE;
    `call(method, request, response_type)` performs the unary calls (ModifySync, PingSync,
    CancelSync), so that the owner can time them.
    """

    def __init__(
        self,
        transport: ConnectTransport,
        on_update: UpdateHandler,
        *,
        call: UnaryCall | None = None,
        ping_interval: float = 30.0,
        readd_delay: float = 1.0,
        restart_delay: float = 1.0,
        read_timeout: float = 90.0,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._transport = transport
        self._on_update = on_update
        self._call: UnaryCall = call or transport.call
        self._on_error = on_error
        self.ping_interval = ping_interval
        self.readd_delay = readd_delay
        self.restart_delay = restart_delay
        self.read_timeout = read_timeout
        self.sync_id: str | None = None
        self.ready = Event()
        self.pongs = 0
        self._cookies: dict[bytes, pb.SyncCookie] = {}
        self._unsent: set[bytes] = set()
        self._stopped = False
        self._greenlet: gevent.Greenlet | None = None
        self._pinger: gevent.Greenlet | None = None
        self._stream: ServerStream[pb.SyncStreamsResponse] | None = None

    @property
    def stream_ids(self) -> list[bytes]:
        return list(self._cookies)

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def start(self, cookies: Iterable[pb.SyncCookie] = ()) -> None:
        """Start following `cookies` (more can be added later with `add`)."""
        for cookie in cookies:
            self._cookies[bytes(cookie.stream_id)] = _detached(cookie)
        if not self.running:
            self._stopped = False
            self._greenlet = gevent.spawn(self._run)

    def add(self, cookie: pb.SyncCookie) -> None:
        """Follow one more stream from `cookie` (ModifySync when the session is up)."""
        stream_id = bytes(cookie.stream_id)
        self._cookies[stream_id] = _detached(cookie)
        if self.sync_id is None:
            self._unsent.add(stream_id)
        else:
            self._modify([cookie])

    def remove(self, stream_id: bytes) -> None:
        """Stop following a stream."""
        if self._cookies.pop(stream_id, None) is not None and self.sync_id is not None:
            request = pb.ModifySyncRequest(sync_id=self.sync_id, remove_streams=[stream_id])
            try:
                self._call("ModifySync", request, pb.ModifySyncResponse)
            except RiverClientError as exc:
                logger.info("sync %s: removing %s failed: %s", self.sync_id, stream_id.hex(), exc)

    def ping(self) -> None:
        """Ask for a SYNC_PONG (keeps the connection and the session alive)."""
        if self.sync_id is not None:
            request = pb.PingSyncRequest(sync_id=self.sync_id, nonce=os.urandom(4).hex())
            self._call("PingSync", request, pb.PingSyncResponse)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel the session and wait (at most `timeout`) for its greenlet to end."""
        self._stopped = True
        sync_id = self.sync_id
        if sync_id is not None:
            try:
                self._call(
                    "CancelSync", pb.CancelSyncRequest(sync_id=sync_id), pb.CancelSyncResponse
                )
            except RiverClientError as exc:
                logger.info("sync %s: cancel failed: %s", sync_id, exc)
        greenlet = self._greenlet
        if greenlet is not None:
            greenlet.join(timeout)
            if not greenlet.dead:
                if self._stream is not None:
                    self._stream.close()
                greenlet.kill(block=True, timeout=1.0)

    # -- the session greenlet ------------------------------------------------------------------

    def _modify(self, cookies: list[pb.SyncCookie]) -> None:
        if self.sync_id is None or not cookies:
            return
        request = pb.ModifySyncRequest(sync_id=self.sync_id, add_streams=cookies)
        try:
            response = self._call("ModifySync", request, pb.ModifySyncResponse)
        except RiverClientError as exc:
            logger.info("sync %s: adding %d streams failed: %s", self.sync_id, len(cookies), exc)
            return
        for failed in response.adds:
            logger.info(
                "sync %s: node refused stream %s (%d: %s); retrying",
                self.sync_id,
                bytes(failed.stream_id).hex(),
                failed.code,
                failed.message,
            )
            self._readd_later(bytes(failed.stream_id))

    def _readd_later(self, stream_id: bytes) -> None:
        def readd() -> None:
            cookie = self._cookies.get(stream_id)
            if cookie is not None and not self._stopped:
                self._modify([cookie])

        gevent.spawn_later(self.readd_delay, readd)

    def _ping_later(self) -> gevent.Greenlet:
        # A timer, not a sleeping greenlet: an idle client then holds no greenlet stack.
        def ping_and_reschedule() -> None:
            if self._stopped or self.sync_id is None:
                return
            try:
                self.ping()
            except RiverClientError as exc:
                logger.info("sync %s: ping failed: %s", self.sync_id, exc)
            if not self._stopped and self.sync_id is not None:
                self._pinger = self._ping_later()

        return gevent.spawn_later(self.ping_interval, ping_and_reschedule)

    def _run(self) -> None:
        while not self._stopped:
            try:
                self._unsent.clear()
                request = pb.SyncStreamsRequest(sync_pos=list(self._cookies.values()))
                self._stream = self._transport.open_stream(
                    "SyncStreams", request, pb.SyncStreamsResponse, read_timeout=self.read_timeout
                )
                for message in self._stream:
                    if message.sync_op == pb.SYNC_NEW:
                        self.sync_id = message.sync_id
                        self._pinger = self._ping_later()
                        pending = [self._cookies[s] for s in self._unsent if s in self._cookies]
                        self._unsent.clear()
                        self._modify(pending)
                        self.ready.set()
                        logger.debug(
                            "sync %s started with %d streams", self.sync_id, len(self._cookies)
                        )
                    elif message.sync_op == pb.SYNC_UPDATE:
                        self._update(message.stream)
                    elif message.sync_op == pb.SYNC_DOWN:
                        logger.info(
                            "sync %s: stream %s down", self.sync_id, bytes(message.stream_id).hex()
                        )
                        self._readd_later(bytes(message.stream_id))
                    elif message.sync_op == pb.SYNC_PONG:
                        self.pongs += 1
                    elif message.sync_op == pb.SYNC_CLOSE:
                        break
            except RiverClientError as exc:
                if not self._stopped:
                    logger.info("sync %s broke: %s; restarting", self.sync_id, exc)
                    if self._on_error is not None:
                        self._on_error(exc)
            finally:
                if self._pinger is not None:
                    self._pinger.kill(block=False)
                    self._pinger = None
                if self._stream is not None:
                    self._stream.close()
                    self._stream = None
                self.sync_id = None
                self.ready.clear()
            if not self._stopped:
                gevent.sleep(self.restart_delay)

    def _update(self, stream: pb.StreamAndCookie) -> None:
        cookie = stream.next_sync_cookie
        stream_id = bytes(cookie.stream_id)
        if stream_id in self._cookies and cookie.minipool_gen:
            self._cookies[stream_id] = _detached(cookie)
        try:
            self._on_update(stream)
        except Exception:
            logger.exception("sync update handler failed for stream %s", stream_id.hex())
