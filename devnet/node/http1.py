"""The node's public port: a lean HTTP/1.1 server, with HTTP/2 connections relayed to hypercorn.

Each connection is looked at once: if it opens with the HTTP/2 connection preface (cleartext
HTTP/2 with prior knowledge, what the Towns SDK's Node client speaks), its bytes are relayed
both ways to hypercorn on an internal 127.0.0.1 port; otherwise it is served here as HTTP/1.1
(what river_client and curl speak), with keep-alive, pipelining, `content-length` request
bodies, and chunked responses for SyncStreams. Serving HTTP/1.1 directly from an asyncio
Protocol costs a fraction of a general ASGI server per request, which is most of a small
request's cost.

Not supported on HTTP/1.1: chunked request bodies (411), upgrades.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from devnet.node.connect import MAX_REQUEST_BYTES, ConnectHandler, Reply, StreamReply

logger = logging.getLogger(__name__)

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEAD_BYTES = 64 * 1024
MAX_UNSENT_BYTES = 64 << 20  # a sync client this far behind is disconnected
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 411: b"Length Required"}

Request = tuple[str, str, dict[bytes, bytes], bytes, bool]


def _response_head(status: int, headers: list[tuple[bytes, bytes]], extra: bytes) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, REASONS.get(status, b"Status"))]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n" + extra + b"\r\n"


class Relay(asyncio.Protocol):
    """The hypercorn side of a relayed HTTP/2 connection."""

    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class Http1Connection(asyncio.Protocol):
    """One client connection on the public port."""

    def __init__(self, handler: ConnectHandler, h2_port: int, connections: set[Http1Connection]):
        self.handler = handler
        self.h2_port = h2_port
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.sniffed = False
        self.relay: asyncio.Transport | None = None
        self.requests: deque[Request] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.streaming = False
        self.closed = False
        self.continued = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.connections.discard(self)
        if self.relay is not None:
            self.relay.close()
        if self.worker is not None and self.streaming:
            self.worker.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.relay is not None:
            self.relay.write(data)
            return
        self.buffer += data
        if not self.sniffed:
            if len(self.buffer) < len(H2_PREFACE) and H2_PREFACE.startswith(self.buffer):
                return
            self.sniffed = True
            if self.buffer.startswith(H2_PREFACE):
                assert self.transport is not None
                self.transport.pause_reading()
                self.worker = asyncio.ensure_future(self._open_relay(bytes(self.buffer)))
                self.buffer.clear()
                return
        self._parse()

    async def _open_relay(self, first: bytes) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            relay, _ = await loop.create_connection(
                lambda: Relay(self.transport),  # type: ignore[arg-type]
                "127.0.0.1",
                self.h2_port,
            )
        except OSError as exc:
            logger.warning("cannot relay an HTTP/2 connection: %s", exc)
            self.transport.close()
            return
        self.relay = relay
        relay.write(first)
        self.transport.resume_reading()

    def _fail(self, status: int, text: bytes) -> None:
        assert self.transport is not None
        headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
        extra = b"content-length: %d\r\n" % len(text)
        self.transport.write(_response_head(status, headers, extra) + text)
        self.transport.close()
        self.closed = True

    def _parse(self) -> None:
        while not self.closed:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD_BYTES:
                    self._fail(400, b"request head too large")
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                self._fail(400, b"bad request line")
                return
            headers: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if b"chunked" in headers.get(b"transfer-encoding", b""):
                self._fail(411, b"send the body with a content-length")
                return
            try:
                length = int(headers.get(b"content-length", b"0") or 0)
            except ValueError:
                self._fail(400, b"bad content-length")
                return
            if length > MAX_REQUEST_BYTES or length < 0:
                self._fail(400, b"request too large")
                return
            if len(self.buffer) < end + 4 + length:
                expects = headers.get(b"expect", b"").lower() == b"100-continue"
                if expects and not self.continued and self.transport is not None:
                    self.continued = True  # curl waits for this before sending a large body
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            self.continued = False
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            keep_alive = headers.get(b"connection", b"").lower() != b"close" and (
                version != b"HTTP/1.0"
            )
            path = target.split(b"?", 1)[0].decode("latin-1")
            self.requests.append((method.decode("latin-1"), path, headers, body, keep_alive))
            if self.worker is None or self.worker.done():
                self.worker = asyncio.ensure_future(self._work())
            if len(self.requests) > 64 and self.transport is not None:
                self.transport.pause_reading()

    async def _work(self) -> None:
        transport = self.transport
        assert transport is not None
        while self.requests and not self.closed:
            method, path, headers, body, keep_alive = self.requests.popleft()
            if len(self.requests) < 16:
                transport.resume_reading()
            reply = await self.handler.handle(method, path, headers, body)
            connection = b"" if keep_alive else b"connection: close\r\n"
            if isinstance(reply, Reply):
                extra = connection + b"content-length: %d\r\n" % len(reply.body)
                transport.write(_response_head(reply.status, reply.headers, extra) + reply.body)
            else:
                await self._stream(transport, reply, connection)
            if not keep_alive:
                transport.close()
                return

    async def _stream(
        self, transport: asyncio.Transport, reply: StreamReply, connection: bytes
    ) -> None:
        extra = connection + b"transfer-encoding: chunked\r\n"
        transport.write(_response_head(200, reply.headers, extra))
        self.streaming = True
        try:
            async for chunk in reply.frames:
                if self.closed:
                    break
                if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
                    logger.warning("dropping a sync stream whose client does not read")
                    transport.close()
                    break
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            if not self.closed:
                transport.write(b"0\r\n\r\n")
        finally:
            self.streaming = False
            if hasattr(reply.frames, "aclose"):
                await reply.frames.aclose()
