"""The Connect protocol over ASGI: River's StreamService as HTTP POST /river.StreamService/<Method>.

Unary calls take `application/proto` (binary) or `application/json` (protobuf JSON) bodies and
answer with the same codec; errors answer the Connect JSON error body
`{"code": "<snake_case>", "message": ...}` with the HTTP status of that code and the River code
name in the `x-river-error` header. SyncStreams is a server stream
(`application/connect+proto` or `+json`): the request is one 5-byte-framed envelope, the
response a sequence of envelopes ending with the end-of-stream envelope (flag 0x02) whose JSON
holds the error, if any, and `x-river-error` in its metadata. Requests may be gzip-compressed
(`content-encoding` / `connect-content-encoding`); responses are not compressed.

`GET /status` answers a small JSON health document. The app runs under hypercorn, which serves
HTTP/1.1 and cleartext HTTP/2 with prior knowledge on the same port.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from devnet.node.errors import Err, NodeError
from devnet.node.service import StreamService
from river_client.proto import protocol_pb2 as pb

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREFIX = "/river.StreamService/"
MAX_REQUEST_BYTES = 8 << 20
UNARY_TYPES = {"application/proto": False, "application/json": True}
STREAM_TYPES = {"application/connect+proto": False, "application/connect+json": True}


class ConnectApp:
    """ASGI application serving a StreamService."""

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        self.requests += 1
        path: str = scope["path"]
        headers: dict[bytes, bytes] = dict(scope["headers"])
        request_id = headers.get(b"x-river-request-id", b"")[:16]
        extra = [(b"x-river-request-id", request_id)] if request_id else []
        if scope["method"] == "GET" and path == "/status":
            await self._status(send)
            return
        if not path.startswith(PREFIX) or scope["method"] != "POST":
            await _plain(send, 404, b"not found")
            return
        method = path[len(PREFIX) :]
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().decode()
        body = await _read_body(receive)
        if body is None:
            await _plain(send, 413, b"request too large")
            return

        if method == "SyncStreams":
            if content_type not in STREAM_TYPES:
                await _plain(send, 415, b"SyncStreams needs application/connect+proto or +json")
                return
            compressed = headers.get(b"connect-content-encoding", b"identity") == b"gzip"
            await self._server_stream(
                STREAM_TYPES[content_type], body, compressed, extra, receive, send
            )
            return
        entry = self.unary.get(method)
        if entry is None:
            error = NodeError(Err.UNIMPLEMENTED, f"method {method} is not served by the dev node")
            await _unary_error(send, error, extra)
            return
        if content_type not in UNARY_TYPES:
            await _plain(send, 415, b"content-type must be application/proto or application/json")
            return
        use_json = UNARY_TYPES[content_type]
        request_type, handler = entry
        try:
            if headers.get(b"content-encoding", b"identity") == b"gzip":
                body = gzip.decompress(body)
            request = _decode(request_type, body, use_json)
            response = await handler(request)
        except NodeError as exc:
            exc.method = method
            await _unary_error(send, exc, extra)
            return
        except Exception as exc:
            logger.exception("%s failed", method)
            error = NodeError(Err.INTERNAL, "internal error", error=str(exc)[:300])
            error.method = method
            await _unary_error(send, error, extra)
            return
        if use_json:
            payload = json_format.MessageToJson(response, indent=None).encode()
        else:
            payload = response.SerializeToString()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type.encode()), *extra],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _server_stream(
        self,
        use_json: bool,
        body: bytes,
        compressed: bool,
        extra: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> None:
        content_type = b"application/connect+json" if use_json else b"application/connect+proto"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type), *extra],
            }
        )
        pump = asyncio.ensure_future(self._pump(use_json, body, compressed, send))
        disconnect = asyncio.ensure_future(_wait_disconnect(receive))
        done, _ = await asyncio.wait({pump, disconnect}, return_when=asyncio.FIRST_COMPLETED)
        if pump not in done:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            return
        disconnect.cancel()
        end = pump.result()
        try:
            await send({"type": "http.response.body", "body": end, "more_body": False})
        except Exception:
            logger.debug("client left before the end of a sync stream")

    async def _pump(self, use_json: bool, body: bytes, compressed: bool, send: Send) -> bytes:
        """Write the stream's frames; returns the end-of-stream envelope."""
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
                if use_json:
                    chunk = _frames_to_json(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
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
        return struct.pack(">BI", 0x02, len(payload)) + payload

    async def _status(self, send: Send) -> None:
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
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(document).encode()})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.service.node.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.service.node.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


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


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": text})


async def _unary_error(send: Send, error: NodeError, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"code": error.connect_code, "message": error.wire_message()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"x-river-error", error.name.encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
