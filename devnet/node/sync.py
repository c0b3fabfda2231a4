"""Sync sessions: the SyncStreams server stream and ModifySync/PingSync/CancelSync on it.

A session is one SyncStreams call. It starts with SYNC_NEW (carrying the sync id), then gets a
SYNC_UPDATE per stream with the events since the client's cookie (or a reset), then an update
whenever its streams change: new events as soon as they are committed, and the miniblock header
envelope with a new cookie when a block is sealed. PingSync answers SYNC_PONG in the stream;
CancelSync sends SYNC_CLOSE and ends the stream. A stream that cannot be synced is reported
with SYNC_DOWN.

Frames are the Connect streaming envelopes (flag byte, 4-byte big-endian length, message). An
update is serialized once per stream and shared by all subscribers: each session's message is
its own `sync_id` field followed by those shared bytes (protobuf fields may come in any order).
"""

from __future__ import annotations

import asyncio
import secrets
import struct
from collections.abc import AsyncIterator

from devnet.node.errors import Err, NodeError
from river_client.proto import protocol_pb2 as pb

MAX_QUEUED_FRAMES = 50_000


def frame(message: bytes, flags: int = 0) -> bytes:
    """One Connect streaming envelope."""
    return struct.pack(">BI", flags, len(message)) + message


def update_body(stream: pb.StreamAndCookie) -> bytes:
    """The shared part of a SYNC_UPDATE message (everything but sync_id)."""
    return pb.SyncStreamsResponse(sync_op=pb.SyncOp.SYNC_UPDATE, stream=stream).SerializeToString()


class SyncSession:
    """One SyncStreams call: its id, the streams it follows and the frames waiting to be sent."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(16)
        self.streams: set[bytes] = set()
        self._prefix = pb.SyncStreamsResponse(sync_id=self.id).SerializeToString()
        self._frames: list[bytes] = []
        self._wakeup = asyncio.Event()
        self._closed = False
        self.error: NodeError | None = None

    def send(self, body: bytes) -> None:
        """Queue a message (without its sync_id) for this session."""
        if self._closed:
            return
        self._frames.append(frame(self._prefix + body))
        self._wakeup.set()
        if len(self._frames) > MAX_QUEUED_FRAMES:
            self.close(NodeError(Err.BUFFER_FULL, "sync session buffer is full", syncId=self.id))

    def send_op(self, op: int, **fields: object) -> None:
        self.send(pb.SyncStreamsResponse(sync_op=op, **fields).SerializeToString())  # type: ignore[arg-type]

    def close(self, error: NodeError | None = None) -> None:
        """End the stream after the frames already queued (with an error, if given)."""
        self._closed = True
        self.error = self.error or error
        self._wakeup.set()

    async def frames(self) -> AsyncIterator[bytes]:
        """The session's output: batches of frames, until it is closed."""
        while True:
            if not self._frames:
                if self._closed:
                    break
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._frames = self._frames, []
            yield b"".join(batch)
        if self.error is not None:
            raise self.error


class SyncRegistry:
    """The node's live sync sessions by id."""

    def __init__(self) -> None:
        self.sessions: dict[str, SyncSession] = {}

    def create(self) -> SyncSession:
        session = SyncSession()
        self.sessions[session.id] = session
        return session

    def get(self, sync_id: str) -> SyncSession:
        session = self.sessions.get(sync_id)
        if session is None:
            raise NodeError(Err.NOT_FOUND, "sync session not found", syncId=sync_id)
        return session

    def remove(self, session: SyncSession) -> None:
        self.sessions.pop(session.id, None)
