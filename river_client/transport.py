"""The Connect protocol over HTTP/1.1 under gevent: River's StreamService calls.

Unary calls POST the serialized request to ``<base>/river.StreamService/<Method>`` with
``Content-Type: application/proto`` (``application/json`` with the JSON codec) and get the raw
response message back on HTTP 200. Any other status carries a Connect error: a JSON body
``{"code": "...", "message": "..."}`` and the River code name in the ``X-River-Error`` header.

Server-streaming calls (SyncStreams) send one enveloped message (1 flag byte, 4-byte big-endian
length, message) with ``Content-Type: application/connect+proto`` and read a sequence of such
envelopes; flag 0x02 marks the end-of-stream message, JSON ``{"error": {...}, "metadata": {...}}``.

Retries follow the TypeScript client: up to 3 attempts with delay min(6 s, 2 s·2^n), only after
connection failures and DEADLINE_EXCEEDED, UNAVAILABLE, RESOURCE_EXHAUSTED, DEBUG_ERROR and
DB_OPERATION_FAILURE; streams are not retried. Uses geventhttpclient, so calls yield to other
greenlets without monkey patching. Not supported: compressed frames, TLS client certificates.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import gevent
from geventhttpclient import HTTPClient
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from river_client.errors import (
    Err,
    RiverError,
    RpcTimeoutError,
    TransportError,
    error_from_connect,
)

logger = logging.getLogger(__name__)

SERVICE_PATH = "/river.StreamService/"
READ_AHEAD = 65536
M = TypeVar("M", bound=Message)

RETRYABLE_CODES = frozenset(
    {
        Err.DEADLINE_EXCEEDED,
        Err.UNAVAILABLE,
        Err.RESOURCE_EXHAUSTED,
        Err.DEBUG_ERROR,
        Err.DB_OPERATION_FAILURE,
    }
)
# Connect's mapping of HTTP statuses for replies that carry no Connect error body.
_HTTP_STATUS_CODES = {
    400: "internal",
    401: "unauthenticated",
    403: "permission_denied",
    404: "unimplemented",
    429: "unavailable",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}
_END_STREAM = 0x02
_COMPRESSED = 0x01


@dataclass(frozen=True)
class RetryPolicy:
    """How unary calls are retried: `attempts` in total, delay min(max_delay, base·2^n)."""

    attempts: int = 3
    base_delay: float = 2.0
    max_delay: float = 6.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2**attempt)


NO_RETRY = RetryPolicy(attempts=1)


def _request_id() -> str:
    return os.urandom(6).hex()


def _header(response: Any, name: str) -> str | None:
    value = response.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _is_retryable(error: Exception) -> bool:
    if isinstance(error, TransportError):
        return True
    return isinstance(error, RiverError) and error.code in RETRYABLE_CODES


class ConnectTransport:
    """Connect client for one River node URL; safe to share between greenlets and clients.

    `timeout` bounds each socket wait of a unary call; `codec` is "proto" (binary, what the
    SDK uses) or "json" (protobuf-JSON, for debugging); `headers` are added to every call
    (e.g. X-River-Test-Bypass); `concurrency` is the size of the connection pool; `insecure`
    skips TLS certificate checks (local River nodes use self-signed certificates).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        codec: str = "proto",
        concurrency: int = 16,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        insecure: bool = False,
    ) -> None:
        if codec not in ("proto", "json"):
            raise ValueError(f"codec must be 'proto' or 'json', got {codec!r}")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not a node URL: {base_url!r}; expected http(s)://host[:port]")
        self.base_url = base_url.rstrip("/")
        self.codec = codec
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry = retry or RetryPolicy()
        self.insecure = insecure
        self._prefix = parts.path.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = parts.scheme == "https"
        self._headers = {"connect-protocol-version": "1", **dict(headers or {})}
        self._http = self._client(timeout, concurrency)

    def _client(self, network_timeout: float, concurrency: int) -> HTTPClient:
        return HTTPClient(
            self._host,
            self._port,
            ssl=self._ssl,
            insecure=self.insecure,
            connection_timeout=self.connect_timeout,
            network_timeout=network_timeout,
            concurrency=concurrency,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    # -- encoding -----------------------------------------------------------------------------

    def _encode(self, message: Message) -> bytes:
        if self.codec == "json":
            return json_format.MessageToJson(message, indent=None).encode()
        return message.SerializeToString()

    def _decode(self, data: bytes, response_type: type[M], method: str) -> M:
        try:
            if self.codec == "json":
                return json_format.Parse(data, response_type(), ignore_unknown_fields=True)
            return response_type.FromString(data)
        except (DecodeError, json_format.ParseError) as exc:
            raise TransportError(
                f"{method}: reply is not a {response_type.DESCRIPTOR.name}: {exc}", self.base_url
            ) from exc

    def _error_from_reply(
        self, method: str, status: int, body: bytes, river_name: str | None
    ) -> RiverError:
        code, message = _HTTP_STATUS_CODES.get(status, "unknown"), f"HTTP {status}"
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        if isinstance(payload, dict) and "code" in payload:
            code = str(payload.get("code") or code)
            message = str(payload.get("message") or message)
        elif body:
            message = f"HTTP {status}: {body[:200].decode(errors='replace')}"
        return error_from_connect(code, message, river_name, method=method)

    # -- unary --------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> M:
        """Call a unary StreamService method, retrying as the policy allows."""
        policy = retry or self.retry
        attempt = 0
        while True:
            try:
                return self._call_once(method, request, response_type, headers)
            except (RiverError, TransportError) as exc:
                attempt += 1
                if attempt >= policy.attempts or not _is_retryable(exc):
                    raise
                delay = policy.delay(attempt - 1)
                logger.info("%s failed (%s); retry %d in %.1f s", method, exc, attempt, delay)
                gevent.sleep(delay)

    def _call_once(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        extra_headers: Mapping[str, str] | None,
    ) -> M:
        content_type = "application/json" if self.codec == "json" else "application/proto"
        headers = {
            **self._headers,
            "content-type": content_type,
            "x-river-request-id": _request_id(),
            **dict(extra_headers or {}),
        }
        path = self._prefix + SERVICE_PATH + method
        try:
            response = self._http.request("POST", path, body=self._encode(request), headers=headers)
            try:
                body = response.read()
            finally:
                response.release()
        except TimeoutError as exc:
            raise RpcTimeoutError(
                f"{method}: no answer within {self.timeout} s", self.base_url
            ) from exc
        except (OSError, gevent.Timeout) as exc:
            raise TransportError(f"{method}: {type(exc).__name__}: {exc}", self.base_url) from exc
        except Exception as exc:  # geventhttpclient parser errors
            if isinstance(exc, (RiverError, gevent.GreenletExit)):
                raise
            raise TransportError(f"{method}: {type(exc).__name__}: {exc}", self.base_url) from exc
        status = response.status_code
        if status != 200:
            raise self._error_from_reply(method, status, body, _header(response, "x-river-error"))
        return self._decode(body, response_type, method)

    # -- server streaming ---------------------------------------------------------------------

    def open_stream(
        self,
        method: str,
        request: Message,
        response_type: type[M],
        *,
        read_timeout: float = 90.0,
    ) -> ServerStream[M]:
        """Start a server-streaming call on its own connection; iterate the returned stream."""
        return ServerStream(self, method, request, response_type, read_timeout)


class ServerStream(Iterator[M]):
    """The messages of one server-streaming call; ends on the end-of-stream envelope.

    Iteration raises RiverError when the end-of-stream carries an error and TransportError
    when the connection breaks. `close()` drops the connection.
    """

    def __init__(
        self,
        transport: ConnectTransport,
        method: str,
        request: Message,
        response_type: type[M],
        read_timeout: float,
    ) -> None:
        self.method = method
        self._transport = transport
        self._type = response_type
        self._http = transport._client(read_timeout, 1)
        self._response: Any = None
        self._done = False
        json_codec = transport.codec == "json"
        payload = transport._encode(request)
        headers = {
            **transport._headers,
            "content-type": "application/connect+json"
            if json_codec
            else "application/connect+proto",
            "x-river-request-id": _request_id(),
        }
        path = transport._prefix + SERVICE_PATH + method
        try:
            self._response = self._http.request(
                "POST", path, body=struct.pack(">BI", 0, len(payload)) + payload, headers=headers
            )
        except (OSError, gevent.Timeout) as exc:
            self.close()
            raise TransportError(
                f"{method}: {type(exc).__name__}: {exc}", transport.base_url
            ) from exc
        status = self._response.status_code
        if status != 200:
            body = self._response.read()
            river_name = _header(self._response, "x-river-error")
            self.close()
            raise transport._error_from_reply(method, status, body, river_name)

    def _read_ahead(self, size: int) -> None:
        """Receive what the socket holds (up to READ_AHEAD bytes) when fewer than `size` body
        bytes are buffered: geventhttpclient's `read(n)` receives exactly the n bytes missing,
        two small system calls per frame; frames queued by a busy node then take one."""
        response = self._response
        buffered = getattr(response, "_body_buffer", None)
        sock = getattr(response, "_sock", None)
        if buffered is None or sock is None or response.message_complete:
            return
        if len(buffered) < size:
            response.feed(sock.recv(READ_AHEAD))

    def _read_exact(self, size: int) -> bytes:
        self._read_ahead(size)
        data = bytes(self._response.read(size))
        if len(data) != size:
            raise TransportError(
                f"{self.method}: stream ended inside a frame ({len(data)} of {size} bytes)",
                self._transport.base_url,
            )
        return data

    def __next__(self) -> M:
        if self._done or self._response is None:
            raise StopIteration
        try:
            self._read_ahead(5)
            head = bytes(self._response.read(5))
            if not head:
                self._done = True
                raise TransportError(
                    f"{self.method}: stream closed without an end-of-stream message",
                    self._transport.base_url,
                )
            if len(head) < 5:
                head += self._read_exact(5 - len(head))
            flags, length = struct.unpack(">BI", head)
            data = self._read_exact(length)
        except TimeoutError as exc:
            self._done = True
            raise RpcTimeoutError(
                f"{self.method}: stream silent too long", self._transport.base_url
            ) from exc
        except OSError as exc:
            self._done = True
            raise TransportError(f"{self.method}: {exc}", self._transport.base_url) from exc
        if flags & _COMPRESSED:
            self._done = True
            raise TransportError(
                f"{self.method}: compressed frame not supported", self._transport.base_url
            )
        if flags & _END_STREAM:
            self._done = True
            self._raise_end_stream(data)
            raise StopIteration
        return self._transport._decode(data, self._type, self.method)

    def _raise_end_stream(self, data: bytes) -> None:
        try:
            end = json.loads(data or b"{}")
        except ValueError:
            end = {}
        error = end.get("error") if isinstance(end, dict) else None
        if not error:
            return
        metadata = end.get("metadata") or {}
        names = {k.lower(): v for k, v in metadata.items()} if isinstance(metadata, dict) else {}
        river_name = names.get("x-river-error")
        if isinstance(river_name, list):
            river_name = river_name[0] if river_name else None
        raise error_from_connect(
            str(error.get("code", "unknown")),
            str(error.get("message", "")),
            river_name,
            self.method,
        )

    def close(self) -> None:
        """Drop the stream's connection."""
        self._done = True
        try:
            sock = getattr(self._response, "_sock", None)
            if sock is not None:
                sock.close()
        finally:
            self._http.close()
