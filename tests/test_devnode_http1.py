"""The dev node's HTTP/1.1 port, spoken to over raw sockets.

Pipelined requests are answered in order on one keep-alive connection; chunked request bodies
are read; `Expect: 100-continue` is answered; `connection: close` ends the connection after its
answer; a request asking for an upgrade without a body is served as HTTP/1.1. Malformed or
oversized requests (bad request line, bad content-length, a too large body or head, an upgrade
with a body) get a 400 after the answers before them, and the connection closes.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httptools
import pytest

from devnet.node.connect import MAX_REQUEST_BYTES
from devnet.node.http1 import MAX_HEAD_BYTES
from devnet.stack import NodeProcess

INFO = b"/river.StreamService/Info"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(Path(tmp_path_factory.mktemp("http1")) / "node.sqlite")
    try:
        yield process.start()
    finally:
        process.stop()


class Responses:
    """httptools callbacks collecting (status, body) of each response."""

    def __init__(self) -> None:
        self.done: list[tuple[int, bytes]] = []
        self.body = b""
        self.parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self.body))
        self.body = b""


def exchange(
    node: NodeProcess, *parts: bytes, answers: int
) -> tuple[list[tuple[int, bytes]], bool]:
    """Send `parts` (one write each, waiting for an answer between them when there are several);
    returns the answers read and whether the node closed the connection."""
    address = urlsplit(node.url)
    responses = Responses()
    with socket.create_connection((address.hostname, address.port), timeout=5) as conn:
        for i, part in enumerate(parts):
            conn.sendall(part)
            while len(responses.done) < (i + 1 if i < len(parts) - 1 else answers):
                data = conn.recv(65536)
                if not data:
                    return responses.done, True
                responses.parser.feed_data(data)
        conn.settimeout(0.3)
        try:
            closed = conn.recv(65536) == b""
        except TimeoutError:
            closed = False
        except ConnectionResetError:  # closed with bytes of ours unread
            closed = True
    return responses.done, closed


def info(extra: bytes = b"", length: bytes = b"2") -> bytes:
    """An Info request with a JSON body `{}` and the content-length `length`."""
    head = b"POST %s HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\n" % INFO
    return head + extra + b"content-length: " + length + b"\r\n\r\n{}"


def test_pipelined_requests_are_answered_in_order(node: NodeProcess) -> None:
    status = b"GET /status HTTP/1.1\r\nhost: node\r\n\r\n"
    chunked = (
        b"POST %s HTTP/1.1\r\nhost: node\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n0\r\n\r\n" % INFO
    )
    answers, closed = exchange(node, status + info() + chunked + status, answers=4)

    assert [code for code, _ in answers] == [200, 200, 200, 200]
    assert b'"status"' in answers[0][1] and b'"status"' in answers[3][1]
    assert answers[1][1] == answers[2][1] and b"graffiti" in answers[1][1]
    assert not closed


def test_connection_close_ends_the_connection_after_its_answer(node: NodeProcess) -> None:
    answers, closed = exchange(node, info(b"connection: close\r\n") + info(), answers=1)

    assert [code for code, _ in answers] == [200]
    assert closed


def test_expect_100_continue_is_answered_before_the_body(node: NodeProcess) -> None:
    head, body = info(b"expect: 100-continue\r\n").split(b"\r\n\r\n")
    answers, closed = exchange(node, head + b"\r\n\r\n", body, answers=2)

    assert [code for code, _ in answers] == [100, 200]
    assert not closed


def test_an_upgrade_without_a_body_is_served_as_http1(node: NodeProcess) -> None:
    upgrade = b"connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAA\r\n"
    request = b"GET /status HTTP/1.1\r\nhost: node\r\n" + upgrade + b"\r\n"
    answers, closed = exchange(node, request + info(), answers=2)

    assert [code for code, _ in answers] == [200, 200]
    assert not closed


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (b"NOT HTTP\r\n\r\n", b"malformed request"),
        (info(length=b"x1"), b"malformed request"),
        (info(length=b"-2"), b"malformed request"),
        (info(length=b"%d" % (MAX_REQUEST_BYTES + 1)), b"request too large"),
        (info(b"x-big: %s\r\n" % (b"a" * MAX_HEAD_BYTES)), b"request head too large"),
        (info(b"connection: upgrade\r\nupgrade: h2c\r\n"), b"upgrades are not supported"),
    ],
)
def test_a_bad_request_gets_a_400_after_the_answers_before_it(
    node: NodeProcess, request_bytes: bytes, reason: bytes
) -> None:
    answers, closed = exchange(node, info() + request_bytes + info(), answers=2)

    assert [code for code, _ in answers] == [200, 400]
    assert reason in answers[1][1]
    assert closed


def test_a_chunked_body_past_the_limit_gets_a_400(node: NodeProcess) -> None:
    head = b"POST %s HTTP/1.1\r\nhost: node\r\ntransfer-encoding: chunked\r\n\r\n" % INFO
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b"a" * (1 << 20))
    size = MAX_REQUEST_BYTES // (1 << 20) + 1
    answers, closed = exchange(node, head + chunk * size + b"0\r\n\r\n", answers=1)

    assert answers == [(400, b"request too large")]
    assert closed
