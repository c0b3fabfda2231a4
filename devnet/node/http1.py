"""The node's public port: HTTP/1.1 parsed by httptools, HTTP/2 connections relayed to hypercorn.

Each connection is looked at once: if it opens with the HTTP/2 connection preface (cleartext
HTTP/2 with prior knowledge, what the Towns SDK's Node client speaks), its bytes are relayed
both ways to hypercorn on an internal 127.0.0.1 port; otherwise it is served here as HTTP/1.1
(what river_client and curl speak). Requests are parsed by httptools (bindings to llhttp, the C
parser of Node.js, as uvicorn uses it): keep-alive, pipelining, `content-length` and chunked
request bodies (at most MAX_REQUEST_BYTES), heads of at most about MAX_HEAD_BYTES, and
`Expect: 100-continue`. A malformed or oversized request gets a 400, after the answers to the
requests before it, and the connection closes. Responses are formatted here: a body with its
`content-length`, or chunked for SyncStreams. Serving HTTP/1.1 from an asyncio Protocol costs a
fraction of a general ASGI server per request, which is most of a small request's cost; the
parser in C costs no more than a hand-written one (benchmarks/bench_devnode.py).

Not supported on HTTP/1.1: upgrades. An `Upgrade` header is ignored on a request without a body
(it is served as HTTP/1.1); a request with a body that asks for an upgrade gets a 400.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import NoReturn

import httptools

from devnet.node.connect import MAX_REQUEST_BYTES, ConnectHandler, Reply, StreamReply

logger = logging.getLogger(__name__)

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_HEAD_BYTES = 64 * 1024
MAX_UNSENT_BYTES = 64 << 20  # a sync client this far behind is disconnected
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}

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
    """One client connection on the public port; also the httptools parser's callbacks."""

    def __init__(self, handler: ConnectHandler, h2_port: int, connections: set[Http1Connection]):
        self.handler = handler
        self.h2_port = h2_port
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.preface: bytearray | None = bytearray()  # None once the protocol is known
        self.relay: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.requests: deque[Request | Reply] = deque()  # a Reply answers a refused request
        self.worker: asyncio.Task[None] | None = None
        self.streaming = False
        self.reading = True  # False after a `connection: close` request or a refused one
        self.closed = False

        # The request being parsed; `unparsed` counts head bytes no callback has seen yet.
        self.url, self.headers, self.body = b"", dict[bytes, bytes](), bytearray()
        self.in_head, self.head_bytes, self.unparsed, self.refusal = False, 0, 0, b""

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
        if self.preface is not None:
            self.preface += data
            if len(self.preface) < len(H2_PREFACE) and H2_PREFACE.startswith(self.preface):
                return
            data, self.preface = bytes(self.preface), None
            if data.startswith(H2_PREFACE):
                assert self.transport is not None
                self.transport.pause_reading()
                self.worker = asyncio.ensure_future(self._open_relay(data))
                return
        self._feed(data)

    async def _open_relay(self, first: bytes) -> None:
        client = self.transport
        assert client is not None
        loop = asyncio.get_running_loop()
        try:
            relay, _ = await loop.create_connection(
                lambda: Relay(client), "127.0.0.1", self.h2_port
            )
        except OSError as exc:
            logger.warning("cannot relay an HTTP/2 connection: %s", exc)
            client.close()
            return
        self.relay = relay
        relay.write(first)
        client.resume_reading()

    def _feed(self, data: bytes) -> None:
        if not self.reading:
            return  # bytes after the last request this connection answers
        if self.in_head:
            self.unparsed += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._feed(data[upgrade.args[0] :])  # served as HTTP/1.1: parse on
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc, httptools.HttpParserCallbackError) and not self.refusal:
                logger.error("a parser callback failed", exc_info=exc.__context__)
            if self.reading:
                self._fail(self.refusal or b"malformed request: %s" % str(exc).encode())
            return
        if self.in_head and self.head_bytes + self.unparsed > MAX_HEAD_BYTES:
            self._fail(b"request head too large")

    def _fail(self, text: bytes) -> None:
        self.reading = False
        self._queue(Reply(400, [(b"content-type", b"text/plain")], text))

    def _refuse(self, text: bytes) -> NoReturn:
        """Called by a parser callback: stop parsing, then answer 400 with `text`."""
        self.refusal = text
        raise ValueError(text.decode())

    def _queue(self, item: Request | Reply) -> None:
        self.requests.append(item)
        if self.worker is None or self.worker.done():
            self.worker = asyncio.ensure_future(self._work())
        if len(self.requests) > 64 and self.transport is not None:
            self.transport.pause_reading()

    def _count_head(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > MAX_HEAD_BYTES:
            self._refuse(b"request head too large")

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, bytearray()
        self.in_head, self.head_bytes, self.unparsed = True, 0, 0

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value
        self.unparsed = 0
        self._count_head(len(name) + len(value) + 4)

    def on_headers_complete(self) -> None:
        self.in_head = False
        chunked = b"chunked" in self.headers.get(b"transfer-encoding", b"").lower()
        length = int(self.headers.get(b"content-length", b"0"))  # llhttp checked the digits
        if length > MAX_REQUEST_BYTES:
            self._refuse(b"request too large")
        if not (chunked or length):
            return
        if self.parser.should_upgrade():
            self._refuse(b"upgrades are not supported; use HTTP/2 with prior knowledge")
        idle = not self.requests and (self.worker is None or self.worker.done())
        if idle and self.headers.get(b"expect", b"").lower() == b"100-continue":
            assert self.transport is not None  # curl waits for this before sending a large body
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body += body
        if len(self.body) > MAX_REQUEST_BYTES:
            self._refuse(b"request too large")

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method().decode("latin-1")
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        self._queue((method, path, self.headers, bytes(self.body), keep_alive))
        self.reading = keep_alive

    async def _work(self) -> None:
        transport = self.transport
        assert transport is not None
        while self.requests and not self.closed:
            item = self.requests.popleft()
            if len(self.requests) < 16:
                transport.resume_reading()
            if isinstance(item, Reply):
                extra = b"connection: close\r\ncontent-length: %d\r\n" % len(item.body)
                transport.write(_response_head(item.status, item.headers, extra) + item.body)
                transport.close()
                return
            method, path, headers, body, keep_alive = item
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
