"""The Connect transport against a small Connect server in this process (gevent WSGI).

Covers: binary unary calls, River errors decoded from the X-River-Error header and the
message tags, retries only on retryable codes, timeouts, refused connections, the JSON codec,
and SyncStreams-style server streams with the end-of-stream error.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from river_client.errors import Err, RiverError, RpcTimeoutError, TransportError
from river_client.miniblocks import ref_from_error
from river_client.proto import protocol_pb2 as pb
from river_client.transport import ConnectTransport, RetryPolicy

Handler = Callable[[str, dict[str, str], bytes], tuple[int, dict[str, str], Any]]
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)

BAD_PREV = (
    "AddEvent: (24:BAD_PREV_MINIBLOCK_HASH) referenced block is not recent\n"
    "    expected = 0x" + "ab" * 32 + "\n"
    "    expNum = 12\n"
    "    streamId = a8" + "00" * 31
)


class ConnectServer:
    """A WSGI app on 127.0.0.1 whose answers the test decides."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        body = environ["wsgi.input"].read()
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        self.requests.append((environ["PATH_INFO"], headers, body))
        status, reply_headers, reply = self.handler(environ["PATH_INFO"], headers, body)
        start_response(f"{status} X", list(reply_headers.items()))
        if isinstance(reply, bytes):
            return iter([reply])
        return iter(reply)

    def stop(self) -> None:
        self.server.stop(timeout=1)


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], ConnectServer]]:
    servers: list[ConnectServer] = []

    def start(handler: Handler) -> ConnectServer:
        server = ConnectServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def connect_error(
    code: str, message: str, river_name: str | None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json"}
    if river_name:
        headers["X-River-Error"] = river_name
    status = {"failed_precondition": 400, "unavailable": 503, "permission_denied": 403}[code]
    return status, headers, json.dumps({"code": code, "message": message}).encode()


def test_unary_call_sends_binary_proto_and_decodes_the_reply(
    serve: Callable[[Handler], ConnectServer],
) -> None:
    reply = pb.InfoResponse(graffiti="dev", version="1.2.3").SerializeToString()
    server = serve(lambda path, headers, body: (200, {"Content-Type": "application/proto"}, reply))
    transport = ConnectTransport(server.url)
    response = transport.call("Info", pb.InfoRequest(debug=["x"]), pb.InfoResponse)
    assert response.graffiti == "dev" and response.version == "1.2.3"
    path, headers, body = server.requests[0]
    assert path == "/river.StreamService/Info"
    assert headers["content-type"] == "application/proto"
    assert headers["connect-protocol-version"] == "1"
    assert pb.InfoRequest.FromString(body).debug == ["x"]
    transport.close()


def test_river_errors_carry_code_name_and_tags(serve: Callable[[Handler], ConnectServer]) -> None:
    server = serve(
        lambda *_: connect_error("failed_precondition", BAD_PREV, "BAD_PREV_MINIBLOCK_HASH")
    )
    transport = ConnectTransport(server.url, retry=FAST)
    with pytest.raises(RiverError) as caught:
        transport.call("AddEvent", pb.AddEventRequest(), pb.AddEventResponse)
    error = caught.value
    assert error.code == Err.BAD_PREV_MINIBLOCK_HASH == 24
    assert error.name == "BAD_PREV_MINIBLOCK_HASH"
    assert error.tags["expected"] == "0x" + "ab" * 32 and error.tags["expNum"] == "12"
    assert error.connect_code == "failed_precondition"
    ref = ref_from_error(error)
    assert ref is not None and ref.num == 12 and ref.hash == bytes([0xAB]) * 32
    assert len(server.requests) == 1, "BAD_PREV_MINIBLOCK_HASH is not retried by the transport"


def test_name_from_the_message_when_the_header_is_missing(
    serve: Callable[[Handler], ConnectServer],
) -> None:
    text = "CreateStream: (7:PERMISSION_DENIED) IsEntitled failed\n    reason = MEMBERSHIP"
    server = serve(lambda *_: connect_error("permission_denied", text, None))
    with pytest.raises(RiverError) as caught:
        ConnectTransport(server.url).call(
            "CreateStream", pb.CreateStreamRequest(), pb.CreateStreamResponse
        )
    assert caught.value.name == "PERMISSION_DENIED" and caught.value.code == 7
    assert caught.value.tags == {"reason": "MEMBERSHIP"}


def test_retryable_codes_are_retried(serve: Callable[[Handler], ConnectServer]) -> None:
    answers = iter(
        [
            connect_error("unavailable", "(14:UNAVAILABLE) try later", "UNAVAILABLE"),
            (200, {}, pb.GetLastMiniblockHashResponse(miniblock_num=3).SerializeToString()),
        ]
    )
    server = serve(lambda *_: next(answers))
    response = ConnectTransport(server.url, retry=FAST).call(
        "GetLastMiniblockHash", pb.GetLastMiniblockHashRequest(), pb.GetLastMiniblockHashResponse
    )
    assert response.miniblock_num == 3 and len(server.requests) == 2


def test_timeouts_and_refused_connections(serve: Callable[[Handler], ConnectServer]) -> None:
    def slow(*_: Any) -> tuple[int, dict[str, str], bytes]:
        gevent.sleep(1.0)
        return 200, {}, b""

    server = serve(slow)
    transport = ConnectTransport(server.url, timeout=0.2, retry=RetryPolicy(attempts=1))
    with pytest.raises(RpcTimeoutError):
        transport.call("Info", pb.InfoRequest(), pb.InfoResponse)

    port = server.server.server_port
    server.stop()
    with pytest.raises(TransportError, match=f"127.0.0.1:{port}"):
        ConnectTransport(f"http://127.0.0.1:{port}", retry=FAST).call(
            "Info", pb.InfoRequest(), pb.InfoResponse
        )


def test_json_codec(serve: Callable[[Handler], ConnectServer]) -> None:
    def handler(
        path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        request = json.loads(body)
        reply = {"hash": request["streamId"], "miniblockNum": "41"}
        return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()

    server = serve(handler)
    transport = ConnectTransport(server.url, codec="json")
    response = transport.call(
        "GetLastMiniblockHash",
        pb.GetLastMiniblockHashRequest(stream_id=b"\x01\x02"),
        pb.GetLastMiniblockHashResponse,
    )
    assert response.hash == b"\x01\x02" and response.miniblock_num == 41
    assert server.requests[0][1]["content-type"] == "application/json"


def frame(message: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(message)) + message


def test_server_stream_frames_and_end_of_stream_error(
    serve: Callable[[Handler], ConnectServer],
) -> None:
    first = pb.SyncStreamsResponse(sync_id="s1", sync_op=pb.SYNC_NEW).SerializeToString()
    second = pb.SyncStreamsResponse(
        sync_id="s1", sync_op=pb.SYNC_PONG, pong_nonce="n"
    ).SerializeToString()
    end = json.dumps(
        {
            "error": {
                "code": "failed_precondition",
                "message": "(36:BAD_SYNC_COOKIE) stale\n    gen = 4",
            },
            "metadata": {"X-River-Error": ["BAD_SYNC_COOKIE"]},
        }
    ).encode()

    def handler(path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        def chunks() -> Iterator[bytes]:
            yield frame(first)[:3]  # a frame split across writes
            gevent.sleep(0.01)
            yield frame(first)[3:] + frame(second)
            yield frame(end, flags=0x02)

        return 200, {"Content-Type": "application/connect+proto"}, chunks()

    server = serve(handler)
    stream = ConnectTransport(server.url).open_stream(
        "SyncStreams", pb.SyncStreamsRequest(), pb.SyncStreamsResponse, read_timeout=5
    )
    assert next(stream).sync_op == pb.SYNC_NEW
    assert next(stream).pong_nonce == "n"
    with pytest.raises(RiverError) as caught:
        next(stream)
    assert caught.value.name == "BAD_SYNC_COOKIE" and caught.value.tags == {"gen": "4"}
    stream.close()

    _, headers, body = server.requests[0]
    assert headers["content-type"] == "application/connect+proto"
    assert body[0] == 0 and struct.unpack(">I", body[1:5])[0] == len(body) - 5


def test_clean_end_of_stream_stops_iteration(serve: Callable[[Handler], ConnectServer]) -> None:
    message = pb.SyncStreamsResponse(sync_op=pb.SYNC_CLOSE).SerializeToString()
    server = serve(lambda *_: (200, {}, frame(message) + frame(b"{}", flags=0x02)))
    stream = ConnectTransport(server.url).open_stream(
        "SyncStreams", pb.SyncStreamsRequest(), pb.SyncStreamsResponse
    )
    assert [m.sync_op for m in stream] == [pb.SYNC_CLOSE]
