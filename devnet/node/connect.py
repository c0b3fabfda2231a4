"""The Connect protocol for River's StreamService: POST /river.StreamService/<Method>.

Unary calls take `application/proto` (binary) or `application/json` (protobuf JSON) bodies and
answer with the same codec; errors answer the Connect JSON error body
`{"code": "<snake_case>", "message": ...}` with the HTTP status of that code and the River code
name in the `x-river-error` header. SyncStreams is a server stream
(`application/connect+proto` or `+json`): the request is one 5-byte-framed envelope, the
response a sequence of envelopes ending with the end-of-stream envelope (flag 0x02) whose JSON
holds the error, if any, and `x-river-error` in its metadata. Requests may be gzip-compressed
(`content-encoding` / `connect-content-encoding`); responses are not compressed.
`GET /status` answers a small JSON health document.

`ConnectHandler.handle` does all that independently of the HTTP server: it returns a `Reply`
(unary) or a `StreamReply` (an iterator of frames). `ConnectApp` adapts it to ASGI for hypercorn
(HTTP/2); devnet.node.http1 serves HTTP/1.1 with it directly.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from devnet.node.errors import Err, NodeError
from devnet.node.service import StreamService
from river_client.proto import protocol_pb2 as pb

logger = logging.getLogger(__name__)

PREFIX = "/river.StreamService/"
MAX_REQUEST_BYTES = 8 << 20
UNARY_TYPES = {b"application/proto": False, b"application/json": True}
STREAM_TYPES = {b"application/connect+proto": False, b"application/connect+json": True}
Headers = list[tuple[bytes, bytes]]


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes


@dataclass
class StreamReply:
    """A 200 answer whose body is `frames` (the last one is the end-of-stream envelope)."""

    headers: Headers
    frames: AsyncIterator[bytes] = field(repr=False)


class ConnectHandler:
    """Decodes Connect requests, calls the StreamService, encodes answers and errors."""

    def __init__(self, service: StreamService) -> None:
        self.service = service
        s = service
        self.unary: dict[str, tuple[type[Message], Callable[[Any], Awaitable[Message]]]] = {
            "Info": (pb.InfoRequest, s.info),
            "CreateStream": (pb.CreateStreamRequest, s.create_stream),
            "GetStream": (pb.GetStreamRequest, s.get_stream),
            "GetMiniblocks": (pb.GetMiniblocksRequest, s.get_miniblocks),
            "GetLastMiniblockHash": (pb.GetLastMiniblockHashRequest, s.get_last_miniblock_hash),
            "AddEvent": (pb.AddEventRequest, s.add_event),
            "ModifySync": (pb.ModifySyncRequest, s.modify_sync),
            "CancelSync": (pb.CancelSyncRequest, s.cancel_sync),
            "PingSync": (pb.PingSyncRequest, s.ping_sync),
        }
        self.requests = 0

    async def handle(
        self, http_method: str, path: str, headers: Mapping[bytes, bytes], body: bytes
    ) -> Reply | StreamReply:
        self.requests += 1
        request_id = headers.get(b"x-river-request-id", b"")[:16]
        extra = [(b"x-river-request-id", request_id)] if request_id else []
        if http_method == "GET" and path == "/status":
            return Reply(200, [(b"content-type", b"application/json")], self.status_document())
        if not path.startswith(PREFIX) or http_method != "POST":
            return _plain(404, b"not found")
        method = path[len(PREFIX) :]
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip()

        if method == "SyncStreams":
            if content_type not in STREAM_TYPES:
                return _plain(415, b"SyncStreams needs application/connect+proto or +json")
            compressed = headers.get(b"connect-content-encoding", b"identity") == b"gzip"
            frames = self._stream_frames(STREAM_TYPES[content_type], body, compressed)
            return StreamReply([(b"content-type", content_type), *extra], frames)
        entry = self.unary.get(method)
        if entry is None:
            error = NodeError(Err.UNIMPLEMENTED, f"method {method} is not served by the dev node")
            return _unary_error(error, extra)
        if content_type not in UNARY_TYPES:
            return _plain(415, b"content-type must be application/proto or application/json")
        use_json = UNARY_TYPES[content_type]
        request_type, handler = entry
        try:
            if headers.get(b"content-encoding", b"identity") == b"gzip":
                body = gzip.decompress(body)
            response = await handler(_decode(request_type, body, use_json))
        except NodeError as exc:
            exc.method = method
            return _unary_error(exc, extra)
        except Exception as exc:
            logger.exception("%s failed", method)
            error = NodeError(Err.INTERNAL, "internal error", error=str(exc)[:300])
            error.method = method
            return _unary_error(error, extra)
        if use_json:
            payload = json_format.MessageToJson(response, indent=None).encode()
        else:
            payload = response.SerializeToString()
        return Reply(200, [(b"content-type", content_type), *extra], payload)

    async def _stream_frames(
        self, use_json: bool, body: bytes, compressed: bool
    ) -> AsyncIterator[bytes]:
        """The stream's frames, then the end-of-stream envelope."""
        error: NodeError | None = None
        frames: AsyncIterator[bytes] | None = None
        try:
            if len(body) < 5:
                raise NodeError(Err.INVALID_ARGUMENT, "request is not a Connect envelope")
            flags, length = struct.unpack(">BI", body[:5])
            message = body[5 : 5 + length]
            if flags & 0x01 or compressed:
                message = gzip.decompress(message)
            request = _decode(pb.SyncStreamsRequest, message, use_json)
            frames = await self.service.sync_streams(request)
            async for chunk in frames:
                yield _frames_to_json(chunk) if use_json else chunk
        except NodeError as exc:
            exc.method = "SyncStreams"
            error = exc
        except Exception as exc:
            logger.exception("SyncStreams failed")
            error = NodeError(Err.INTERNAL, "internal error", error=str(exc)[:300])
            error.method = "SyncStreams"
        finally:
            if frames is not None and hasattr(frames, "aclose"):
                await frames.aclose()
        end: dict[str, Any] = {}
        if error is not None:
            end["error"] = {"code": error.connect_code, "message": error.wire_message()}
            end["metadata"] = {"x-river-error": [error.name]}
        payload = json.dumps(end).encode()
        yield struct.pack(">BI", 0x02, len(payload)) + payload

    def status_document(self) -> bytes:
        node = self.service.node
        document = {
            "status": "OK",
            "node_address": "0x" + node.key.address.hex(),
            "streams": len(node.streams),
            "syncs": len(node.syncs.sessions),
            "events_added": node.events_added,
            "commits": node.commits,
            "requests": self.requests,
        }
        return json.dumps(document).encode()


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ConnectApp:
    """ASGI application over a ConnectHandler (hypercorn serves it for HTTP/2)."""

    def __init__(self, handler: ConnectHandler, manage_node: bool = False) -> None:
        self.handler = handler
        self.manage_node = manage_node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if body is None:
            reply: Reply | StreamReply = _plain(413, b"request too large")
        else:
            reply = await self.handler.handle(
                scope["method"], scope["path"], dict(scope["headers"]), body
            )
        if isinstance(reply, Reply):
            start = {"type": "http.response.start", "status": reply.status}
            await send({**start, "headers": reply.headers})
            await send({"type": "http.response.body", "body": reply.body})
            return
        await send({"type": "http.response.start", "status": 200, "headers": reply.headers})
        pump = asyncio.ensure_future(_pump(reply.frames, send))
        disconnect = asyncio.ensure_future(_wait_disconnect(receive))
        done, _ = await asyncio.wait({pump, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        if pump not in done:
            pump.cancel()
        else:
            disconnect.cancel()
        await asyncio.gather(pump, disconnect, return_exceptions=True)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.manage_node:
                    self.handler.service.node.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.manage_node:
                    await self.handler.service.node.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _pump(frames: AsyncIterator[bytes], send: Send) -> None:
    try:
        async for chunk in frames:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if hasattr(frames, "aclose"):
            await frames.aclose()


def _decode(message_type: type[Message], body: bytes, use_json: bool) -> Any:
    try:
        if use_json:
            return json_format.Parse(body or b"{}", message_type(), ignore_unknown_fields=True)
        return message_type.FromString(body)
    except (DecodeError, json_format.ParseError, ValueError) as exc:
        raise NodeError(
            Err.INVALID_ARGUMENT,
            f"request is not a valid {message_type.DESCRIPTOR.full_name}",
            error=str(exc)[:200],
        ) from None


def _frames_to_json(chunk: bytes) -> bytes:
    """Re-encode binary SyncStreamsResponse frames as protobuf-JSON frames."""
    out = []
    offset = 0
    while offset < len(chunk):
        flags, length = struct.unpack(">BI", chunk[offset : offset + 5])
        message = pb.SyncStreamsResponse.FromString(chunk[offset + 5 : offset + 5 + length])
        data = json_format.MessageToJson(message, indent=None).encode()
        out.append(struct.pack(">BI", flags, len(data)) + data)
        offset += 5 + length
    return b"".join(out)


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _plain(status: int, text: bytes) -> Reply:
    return Reply(status, [(b"content-type", b"text/plain")], text)


def _unary_error(error: NodeError, extra: Headers) -> Reply:
    body = json.dumps({"code": error.connect_code, "message": error.wire_message()}).encode()
    headers = [(b"content-type", b"application/json"), (b"x-river-error", error.name.encode())]
    return Reply(error.http_status, headers + extra, body)
