"""SyncSession against a scripted Connect server: SYNC_NEW, updates, SYNC_DOWN re-adds,
pings, cancel, and a restart after the stream breaks."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent.event import Event
from gevent.pywsgi import WSGIServer

from river_client.proto import protocol_pb2 as pb
from river_client.sync import SyncSession
from river_client.transport import ConnectTransport

STREAM_A = b"\xa8" + bytes(31)
STREAM_B = b"\x20" + b"\x01" * 31


def frame(message: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(message)) + message


class ScriptedNode:
    """SyncStreams answers SYNC_NEW, one update and SYNC_DOWN for stream B, then waits for
    CancelSync; the first session is broken off after its messages when `break_first`."""

    def __init__(self, break_first: bool = False) -> None:
        self.break_first = break_first
        self.sessions: list[pb.SyncStreamsRequest] = []
        self.modifies: list[pb.ModifySyncRequest] = []
        self.pings: list[pb.PingSyncRequest] = []
        self.cancelled = Event()
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        body = environ["wsgi.input"].read()
        method = environ["PATH_INFO"].rsplit("/", 1)[1]
        if method == "SyncStreams":
            self.sessions.append(pb.SyncStreamsRequest.FromString(body[5:]))
            start_response("200 OK", [("Content-Type", "application/connect+proto")])
            return self.stream(len(self.sessions))
        replies: dict[str, Any] = {
            "ModifySync": (self.modifies, pb.ModifySyncRequest, pb.ModifySyncResponse()),
            "PingSync": (self.pings, pb.PingSyncRequest, pb.PingSyncResponse()),
            "CancelSync": (None, pb.CancelSyncRequest, pb.CancelSyncResponse()),
        }
        log, request_type, reply = replies[method]
        if log is not None:
            log.append(request_type.FromString(body))
        else:
            self.cancelled.set()
        start_response("200 OK", [("Content-Type", "application/proto")])
        return iter([reply.SerializeToString()])

    def stream(self, number: int) -> Iterator[bytes]:
        sync_id = f"sync-{number}"
        yield frame(
            pb.SyncStreamsResponse(sync_id=sync_id, sync_op=pb.SYNC_NEW).SerializeToString()
        )
        cookie = pb.SyncCookie(stream_id=STREAM_A, minipool_gen=4, prev_miniblock_hash=b"\x04" * 32)
        update = pb.SyncStreamsResponse(
            sync_id=sync_id,
            sync_op=pb.SYNC_UPDATE,
            stream=pb.StreamAndCookie(next_sync_cookie=cookie),
        )
        yield frame(update.SerializeToString())
        down = pb.SyncStreamsResponse(sync_id=sync_id, sync_op=pb.SYNC_DOWN, stream_id=STREAM_B)
        yield frame(down.SerializeToString())
        if self.break_first and number == 1:
            return  # connection ends without an end-of-stream message
        self.cancelled.wait(10)
        yield frame(
            pb.SyncStreamsResponse(sync_id=sync_id, sync_op=pb.SYNC_CLOSE).SerializeToString()
        )
        yield frame(b"{}", flags=0x02)

    def stop(self) -> None:
        self.server.stop(timeout=1)


@pytest.fixture
def scripted() -> Iterator[Callable[[bool], ScriptedNode]]:
    nodes: list[ScriptedNode] = []

    def start(break_first: bool) -> ScriptedNode:
        nodes.append(ScriptedNode(break_first))
        return nodes[-1]

    yield start
    for node in nodes:
        node.stop()


def cookie(stream_id: bytes, gen: int) -> pb.SyncCookie:
    return pb.SyncCookie(
        stream_id=stream_id, minipool_gen=gen, prev_miniblock_hash=bytes([gen]) * 32
    )


def test_updates_down_streams_pings_and_cancel(scripted: Callable[[bool], ScriptedNode]) -> None:
    node = scripted(False)
    updates: list[pb.StreamAndCookie] = []
    session = SyncSession(
        ConnectTransport(node.url), updates.append, ping_interval=0.05, readd_delay=0.05
    )
    session.start([cookie(STREAM_A, 1), cookie(STREAM_B, 2)])
    assert session.ready.wait(5)
    assert session.sync_id == "sync-1"
    assert [bytes(c.stream_id) for c in node.sessions[0].sync_pos] == [STREAM_A, STREAM_B]

    gevent.sleep(0.3)
    assert [u.next_sync_cookie.minipool_gen for u in updates] == [4]
    readds = [m for m in node.modifies if m.add_streams]
    assert readds and bytes(readds[0].add_streams[0].stream_id) == STREAM_B
    assert readds[0].add_streams[0].minipool_gen == 2 and readds[0].sync_id == "sync-1"
    assert node.pings and node.pings[0].sync_id == "sync-1"

    session.add(cookie(b"\x21" * 32, 7))
    assert bytes(node.modifies[-1].add_streams[0].stream_id) == b"\x21" * 32
    session.stop()
    assert node.cancelled.is_set() and not session.running


def test_broken_session_restarts_from_the_latest_cookies(
    scripted: Callable[[bool], ScriptedNode],
) -> None:
    node = scripted(True)
    session = SyncSession(ConnectTransport(node.url), lambda stream: None, restart_delay=0.05)
    session.start([cookie(STREAM_A, 1)])
    deadline = gevent.Timeout(5)
    deadline.start()
    try:
        while len(node.sessions) < 2 or session.sync_id != "sync-2":
            gevent.sleep(0.02)
    finally:
        deadline.cancel()
    restarted = node.sessions[1].sync_pos
    assert [(bytes(c.stream_id), c.minipool_gen) for c in restarted] == [(STREAM_A, 4)]
    session.stop()
