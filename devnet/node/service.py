"""River's StreamService answered by the dev node: one coroutine per RPC.

Unary methods take the decoded request message and return the response message; SyncStreams
returns an async iterator of ready-made Connect frames. Errors are raised as NodeError and
turned into Connect errors by `devnet.node.connect`.

Not supported: CreateMediaStream, AddMediaEvent, GetStreamEx and the dead AddStreamToSync /
RemoveStreamFromSync (UNIMPLEMENTED); GetMiniblocks ignores exclusion filters.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from devnet.node.core import DevNode
from devnet.node.creation import plan_create_stream
from devnet.node.errors import Err, NodeError
from devnet.node.rules import DuplicateEvent, plan_add_event
from devnet.node.streams import Stream
from devnet.node.sync import SyncSession, update_body
from river_client.proto import protocol_pb2 as pb

logger = logging.getLogger(__name__)

VERSION = "towns-stress-devnode/0.1"
MAX_MINIBLOCKS_PAGE = 100


class StreamService:
    """The RPC handlers over a DevNode."""

    def __init__(self, node: DevNode) -> None:
        self.node = node

    def stream(self, stream_id: bytes) -> Stream:
        stream = self.node.streams.get(bytes(stream_id))
        if stream is None:
            raise NodeError(Err.NOT_FOUND, "stream not found", streamId=bytes(stream_id))
        return stream

    # reads ------------------------------------------------------------------------------

    def _miniblocks(self, stream: Stream, start: int, end: int) -> list[pb.Miniblock]:
        """Blocks start <= num < end, from memory where kept, else from the database."""
        blocks: list[pb.Miniblock] = []
        missing = []
        for num in range(start, end):
            info = stream.block(num)
            if info is not None and info.miniblock is not None:
                blocks.append(info.miniblock)
            else:
                missing.append(num)
                blocks.append(pb.Miniblock())
        if missing:
            store = self.node.store
            for row in store.miniblocks(stream.stream_id, missing[0], missing[-1] + 1):
                if start <= row.num < end and row.num in missing:
                    raw_events = store.events(
                        stream.stream_id,
                        row.event_num_offset,
                        row.event_num_offset + row.event_count,
                    )
                    blocks[row.num - start] = pb.Miniblock(
                        events=[pb.Envelope.FromString(raw) for raw in raw_events],
                        header=pb.Envelope.FromString(row.header),
                    )
        return blocks

    def _snapshot(self, stream: Stream, num: int) -> pb.Envelope | None:
        info = stream.block(num)
        if info is not None and info.snapshot is not None:
            return info.snapshot
        rows = self.node.store.miniblocks(stream.stream_id, num, num + 1)
        if rows and rows[0].snapshot is not None:
            return pb.Envelope.FromString(rows[0].snapshot)
        return None

    def full_stream(self, stream: Stream, preceding: int = 0) -> pb.StreamAndCookie:
        """Blocks from the last snapshot (minus `preceding`), its snapshot, and the minipool."""
        snapshot_num = stream.last_snapshot_num
        start = max(0, snapshot_num - max(0, preceding))
        result = pb.StreamAndCookie(
            events=[p.envelope for p in stream.minipool],
            next_sync_cookie=stream.cookie(self.node.key.address),
            miniblocks=self._miniblocks(stream, start, stream.last.num + 1),
            snapshot_miniblock_index=snapshot_num - start,
        )
        snapshot = self._snapshot(stream, snapshot_num)
        if snapshot is not None:
            result.snapshot.CopyFrom(snapshot)
        return result

    def stream_since(self, stream: Stream, cookie: pb.SyncCookie) -> pb.StreamAndCookie:
        """Events since a cookie (sealed blocks' events and headers, then the minipool), or a
        reset with the full stream when the cookie is too old or unknown."""
        gen = cookie.minipool_gen
        last = stream.last
        prev = bytes(cookie.prev_miniblock_hash)
        cookie_now = stream.cookie(self.node.key.address)
        if gen == last.num + 1 and (not prev or prev == last.hash):
            return pb.StreamAndCookie(
                events=[p.envelope for p in stream.minipool], next_sync_cookie=cookie_now
            )
        known = stream.block(gen - 1)
        if not (
            stream.last_snapshot_num < gen <= last.num
            and known is not None
            and (not prev or known.hash == prev)
        ):
            result = self.full_stream(stream)
            result.sync_reset = True
            return result
        events: list[pb.Envelope] = []
        for block in self._miniblocks(stream, gen, last.num + 1):
            events.extend(block.events)
            events.append(block.header)
        events.extend(p.envelope for p in stream.minipool)
        return pb.StreamAndCookie(events=events, next_sync_cookie=cookie_now)

    # unary RPCs -------------------------------------------------------------------------

    async def info(self, request: pb.InfoRequest) -> pb.InfoResponse:
        debug = list(request.debug)
        if debug[:1] == ["make_miniblock"] and len(debug) >= 2:
            stream = self.stream(bytes.fromhex(debug[1].removeprefix("0x")))
            self.node.seal([stream.stream_id], force_snapshot=debug[2:3] == ["true"])
            await self.node.committed()
        response = pb.InfoResponse(graffiti="towns-stress dev node", version=VERSION)
        response.start_time.seconds = int(self.node.started_at)
        return response

    async def get_stream(self, request: pb.GetStreamRequest) -> pb.GetStreamResponse:
        stream = self.node.streams.get(bytes(request.stream_id))
        if stream is None:
            if request.optional:
                return pb.GetStreamResponse()
            raise NodeError(Err.NOT_FOUND, "stream not found", streamId=bytes(request.stream_id))
        if request.HasField("sync_cookie"):
            return pb.GetStreamResponse(stream=self.stream_since(stream, request.sync_cookie))
        preceding = int(request.number_of_preceding_miniblocks)
        return pb.GetStreamResponse(stream=self.full_stream(stream, preceding))

    async def get_last_miniblock_hash(
        self, request: pb.GetLastMiniblockHashRequest
    ) -> pb.GetLastMiniblockHashResponse:
        stream = self.stream(request.stream_id)
        response = pb.GetLastMiniblockHashResponse(
            hash=stream.last.hash, miniblock_num=stream.last.num
        )
        if stream.live.encryption_algorithm is not None:
            response.encryption_algorithm.algorithm = stream.live.encryption_algorithm
        return response

    async def get_miniblocks(self, request: pb.GetMiniblocksRequest) -> pb.GetMiniblocksResponse:
        stream = self.stream(request.stream_id)
        start = max(0, request.from_inclusive)
        end = min(request.to_exclusive, stream.last.num + 1, start + MAX_MINIBLOCKS_PAGE)
        response = pb.GetMiniblocksResponse(
            terminus=start == 0,
            from_inclusive=start,
            limit=MAX_MINIBLOCKS_PAGE,
            omit_snapshots=request.omit_snapshots,
        )
        if end > start:
            response.miniblocks.extend(self._miniblocks(stream, start, end))
            if not request.omit_snapshots:
                for row in self.node.store.miniblocks(stream.stream_id, start, end):
                    if row.snapshot is not None:
                        response.snapshots[row.num].ParseFromString(row.snapshot)
        return response

    async def add_event(self, request: pb.AddEventRequest) -> pb.AddEventResponse:
        stream = self.stream(request.stream_id)
        if not request.HasField("event"):
            raise NodeError(Err.NO_EVENT_SPECIFIED, "no event in the request")
        parsed = self.node.parse(request.event)
        try:
            plan = await plan_add_event(self.node, stream, parsed)
        except DuplicateEvent:
            return pb.AddEventResponse()
        if parsed.hash in stream.hashes:  # added by a concurrent request meanwhile
            return pb.AddEventResponse()
        refs = self.node.apply(plan)
        await self.node.committed()
        return pb.AddEventResponse(new_events=refs)

    async def create_stream(self, request: pb.CreateStreamRequest) -> pb.CreateStreamResponse:
        stream_id = bytes(request.stream_id)
        existing = self.node.streams.get(stream_id)
        if existing is not None:
            return pb.CreateStreamResponse(stream=self.full_stream(existing))
        events = [self.node.parse(envelope) for envelope in request.events]
        derived = await plan_create_stream(self.node, stream_id, events, dict(request.metadata))
        existing = self.node.streams.get(stream_id)
        if existing is not None:  # created by a concurrent request meanwhile
            return pb.CreateStreamResponse(stream=self.full_stream(existing))
        stream = self.node.create(stream_id, events)
        refs = self.node.apply(derived)
        await self.node.committed()
        return pb.CreateStreamResponse(stream=self.full_stream(stream), derived_events=refs)

    # sync -------------------------------------------------------------------------------

    def _add_to_sync(
        self, session: SyncSession, cookie: pb.SyncCookie
    ) -> pb.SyncStreamOpStatus | None:
        """Subscribe the session and send it what it missed since the cookie.

        A stream with writes waiting for the commit is attached right after that commit, so
        the backfill holds only committed events and none of them comes twice."""
        stream_id = bytes(cookie.stream_id)
        stream = self.node.streams.get(stream_id)
        if stream is None:
            return pb.SyncStreamOpStatus(
                stream_id=stream_id,
                code=Err.NOT_FOUND,
                message="stream not found",
                node_address=self.node.key.address,
            )

        def attach() -> None:
            if session.id not in self.node.syncs.sessions:
                return
            session.streams.add(stream_id)
            stream.subscribers.add(session)
            session.send(update_body(self.stream_since(stream, cookie)))

        if self.node.has_pending(stream_id):
            self.node.after_commit(attach)
        else:
            attach()
        return None

    def _drop(self, session: SyncSession) -> None:
        for stream_id in session.streams:
            stream = self.node.streams.get(stream_id)
            if stream is not None:
                stream.subscribers.discard(session)
        session.streams.clear()
        self.node.syncs.remove(session)

    async def sync_streams(self, request: pb.SyncStreamsRequest) -> AsyncIterator[bytes]:
        session = self.node.syncs.create()
        session.send_op(pb.SyncOp.SYNC_NEW)
        for cookie in request.sync_pos:
            if self._add_to_sync(session, cookie) is not None:
                session.send_op(pb.SyncOp.SYNC_DOWN, stream_id=bytes(cookie.stream_id))
        return self._session_frames(session)

    async def _session_frames(self, session: SyncSession) -> AsyncIterator[bytes]:
        try:
            async for chunk in session.frames():
                yield chunk
        finally:
            self._drop(session)

    async def modify_sync(self, request: pb.ModifySyncRequest) -> pb.ModifySyncResponse:
        session = self.node.syncs.get(request.sync_id)
        response = pb.ModifySyncResponse()
        for cookie in request.add_streams:
            failure = self._add_to_sync(session, cookie)
            if failure is not None:
                response.adds.append(failure)
        for stream_id in request.remove_streams:
            stream = self.node.streams.get(bytes(stream_id))
            session.streams.discard(bytes(stream_id))
            if stream is not None:
                stream.subscribers.discard(session)
        for cookie in request.backfill_streams.streams:
            stream = self.node.streams.get(bytes(cookie.stream_id))
            if stream is None:
                response.backfills.append(
                    pb.SyncStreamOpStatus(
                        stream_id=cookie.stream_id, code=Err.NOT_FOUND, message="stream not found"
                    )
                )
                continue
            body = pb.SyncStreamsResponse(
                sync_op=pb.SyncOp.SYNC_UPDATE,
                stream=self.stream_since(stream, cookie),
                target_sync_ids=[request.backfill_streams.sync_id or session.id],
            )
            session.send(body.SerializeToString())
        return response

    async def cancel_sync(self, request: pb.CancelSyncRequest) -> pb.CancelSyncResponse:
        session = self.node.syncs.get(request.sync_id)
        session.send_op(pb.SyncOp.SYNC_CLOSE)
        session.close()
        return pb.CancelSyncResponse()

    async def ping_sync(self, request: pb.PingSyncRequest) -> pb.PingSyncResponse:
        session = self.node.syncs.get(request.sync_id)
        session.send_op(pb.SyncOp.SYNC_PONG, pong_nonce=request.nonce)
        return pb.PingSyncResponse()
