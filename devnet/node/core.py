"""The dev node's core: streams in memory, group commit to SQLite, miniblocks, sync fan-out.

Everything runs on one asyncio event loop. A request that adds events applies them to the
streams in memory, queues their rows, and waits for `committed()`: one commit per loop turn
writes every row queued so far, then pushes the new events to sync subscribers and releases
the waiting requests. So no event is acknowledged or shown to anyone before it is on disk, and
under load many requests share one commit.

A stream with pending events is sealed into a miniblock `miniblock_interval` seconds after the
first of them arrived (header signed by the node key, a snapshot every 100 events, 10 for user
streams).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from devnet.node.crypto import EnvelopeVerifier, NodeKey
from devnet.node.entitlements import Entitlements, Reader, chain_reader
from devnet.node.errors import Err, NodeError
from devnet.node.loading import load_streams
from devnet.node.store import Store
from devnet.node.streams import ParsedEvent, Stream, make_node_envelope
from devnet.node.sync import SyncRegistry, update_body
from river_client.proto import protocol_pb2 as pb

logger = logging.getLogger(__name__)


@dataclass
class NodeConfig:
    """Every option of the dev node (the command line mirrors these)."""

    db_path: Path = Path(".devnet/node.sqlite")
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    rpc_url: str | None = None  # Base-chain JSON-RPC for membership checks; None = allow all
    admins: frozenset[bytes] = field(default_factory=frozenset)  # may create spaces/channels
    miniblock_interval: float = 1.0
    recency_seconds: float = 30.0  # River's stream.recencyConstraints.ageSeconds (local dev)
    positive_cache_seconds: float = 5.0
    negative_cache_seconds: float = 2.0
    max_event_bytes: int = 1 << 20
    node_key: bytes | None = None  # None = the key stored in the database (made on first run)

    @property
    def recency_ms(self) -> int:
        return int(self.recency_seconds * 1000)


class DevNode:
    """The state and write path of the node; `service.StreamService` answers the RPCs."""

    def __init__(self, config: NodeConfig, reader: Reader | None = None) -> None:
        self.config = config
        self.store = Store(config.db_path)
        key = config.node_key or self.store.get_meta("node_key")
        if key is None:
            key = os.urandom(32)
            self.store.set_meta("node_key", key)
        self.key = NodeKey(key)
        started = time.monotonic()
        self.streams: dict[bytes, Stream] = load_streams(self.store)
        if self.streams:
            logger.info(
                "loaded %d streams from %s in %.2f s",
                len(self.streams),
                config.db_path,
                time.monotonic() - started,
            )
        if reader is None and config.rpc_url:
            reader = chain_reader(config.rpc_url)
        self.entitlements = Entitlements(
            reader, config.positive_cache_seconds, config.negative_cache_seconds
        )
        self.verifier = EnvelopeVerifier()
        self.syncs = SyncRegistry()
        self.started_at = time.time()
        self._updates: dict[bytes, list[pb.Envelope]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._commit_scheduled = False
        # stream id -> when its oldest pending event arrived (monotonic seconds)
        self._dirty: dict[bytes, float] = {
            sid: time.monotonic() for sid, s in self.streams.items() if s.minipool
        }
        self._producer: asyncio.Task[None] | None = None
        self.commits = 0
        self.events_added = 0

    # events -----------------------------------------------------------------------------

    def parse(self, envelope: pb.Envelope) -> ParsedEvent:
        """Decode and verify a client's envelope (size, hash, signature)."""
        if len(envelope.event) > self.config.max_event_bytes:
            raise NodeError(
                Err.RESOURCE_EXHAUSTED,
                "event is too large",
                size=len(envelope.event),
                limit=self.config.max_event_bytes,
            )
        try:
            event = pb.StreamEvent.FromString(envelope.event)
        except DecodeError as exc:
            raise NodeError(Err.BAD_EVENT, "event bytes are not a StreamEvent", error=exc) from None
        self.verifier.verify(envelope, event)
        return ParsedEvent(envelope, event, envelope.SerializeToString())

    def make_event(self, stream: Stream, payload_name: str, payload: object) -> ParsedEvent:
        """A node-signed event for `stream`, referencing its last miniblock."""
        envelope, event = make_node_envelope(
            self.key, payload_name, payload, (stream.last.hash, stream.last.num)
        )
        return ParsedEvent(envelope, event, envelope.SerializeToString())

    def apply(self, plan: list[tuple[Stream, ParsedEvent]]) -> list[pb.EventRef]:
        """Append planned events in memory and queue their rows; call `committed()` next."""
        refs = []
        for stream, parsed in plan:
            event_num = stream.append(parsed)
            if event_num >= 0:
                self.store.queue_event(stream.stream_id, event_num, parsed.raw)
                self._dirty.setdefault(stream.stream_id, time.monotonic())
            self._updates.setdefault(stream.stream_id, []).append(parsed.envelope)
            refs.append(
                pb.EventRef(
                    stream_id=stream.stream_id,
                    hash=parsed.hash,
                    signature=parsed.envelope.signature,
                )
            )
        self.events_added += len(plan)
        self._schedule_commit()
        return refs

    def create(self, stream_id: bytes, events: list[ParsedEvent]) -> Stream:
        """Add a new stream with its genesis miniblock; call `committed()` next."""
        stream = Stream(stream_id, events[0].event)
        _info, row = stream.genesis(self.key, events)
        for event_num, parsed in enumerate(events):
            self.store.queue_event(stream_id, event_num, parsed.raw)
        self.store.queue_miniblock(row)
        self.streams[stream_id] = stream
        logger.debug("created stream %s", stream_id.hex())
        self._schedule_commit()
        return stream

    # group commit -----------------------------------------------------------------------

    async def committed(self) -> None:
        """Wait until everything queued so far is committed (and published to syncs)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self._schedule_commit()
        await future

    def has_pending(self, stream_id: bytes) -> bool:
        """True while events or a miniblock of the stream wait for the next commit."""
        return stream_id in self._updates

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` right after the next commit has been published."""
        self._after_commit.append(callback)
        self._schedule_commit()

    def _schedule_commit(self) -> None:
        if not self._commit_scheduled:
            self._commit_scheduled = True
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        self._commit_scheduled = False
        waiters, self._waiters = self._waiters, []
        updates, self._updates = self._updates, {}
        started = time.monotonic()
        try:
            rows = self.store.commit()
            self.commits += 1
            took = time.monotonic() - started
            if took > 0.05:
                logger.warning("slow commit: %d rows in %.0f ms", rows, took * 1000)
        except Exception as exc:
            logger.exception("commit failed")
            error = NodeError(Err.DB_OPERATION_FAILURE, "cannot write to the database", error=exc)
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            return
        self._publish(updates)
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _publish(self, updates: dict[bytes, list[pb.Envelope]]) -> None:
        for stream_id, envelopes in updates.items():
            stream = self.streams[stream_id]
            if not stream.subscribers:
                continue
            body = update_body(
                pb.StreamAndCookie(
                    events=envelopes, next_sync_cookie=stream.cookie(self.key.address)
                )
            )
            for session in stream.subscribers:
                session.send(body)

    # miniblocks -------------------------------------------------------------------------

    def due(self, now: float) -> list[bytes]:
        """Streams whose oldest pending event has waited a miniblock interval."""
        interval = self.config.miniblock_interval
        return [sid for sid, since in self._dirty.items() if now - since >= interval]

    def seal(
        self,
        stream_ids: list[bytes] | None = None,
        force_snapshot: bool = False,
        automatic: bool = False,
    ) -> int:
        """Seal the minipools of the given (default: all pending) streams; returns how many.
        `automatic` skips streams created with disable_miniblock_creation."""
        sealed = 0
        for stream_id in list(self._dirty) if stream_ids is None else stream_ids:
            stream = self.streams.get(stream_id)
            if stream is None or (stream.miniblocks_disabled and automatic):
                self._dirty.pop(stream_id, None)
                continue
            self._dirty.pop(stream_id, None)
            if not stream.minipool and not force_snapshot:
                continue
            info, row = stream.seal(self.key, force_snapshot)
            self.store.queue_miniblock(row)
            assert info.miniblock is not None
            self._updates.setdefault(stream_id, []).append(info.miniblock.header)
            sealed += 1
        if sealed:
            self._schedule_commit()
        return sealed

    async def _produce(self) -> None:
        # Each stream is sealed one interval after its first pending event, so the work of
        # many busy streams spreads over the interval instead of landing in one loop turn.
        tick = self.config.miniblock_interval / 10
        while True:
            await asyncio.sleep(tick)
            try:
                due = self.due(time.monotonic())
                if due:
                    self.seal(due, automatic=True)
            except Exception:
                logger.exception("sealing miniblocks failed")

    def start(self) -> None:
        """Start the miniblock producer (call from the running event loop)."""
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce())

    async def stop(self) -> None:
        """Stop producing, end every sync session, commit what is queued, close the store."""
        if self._producer is not None:
            self._producer.cancel()
            self._producer = None
        for session in list(self.syncs.sessions.values()):
            session.send_op(pb.SyncOp.SYNC_CLOSE)
            session.close()
        self._commit()
        self.entitlements.close()
        self.store.close()
