"""Errors of the River client, and the decoding of River node errors.

A River node reports an error as a Connect error: a Connect code (`failed_precondition`, ...),
the exact River code name in the `X-River-Error` metadata, and a message laid out as
``Func: (24:BAD_PREV_MINIBLOCK_HASH) text`` followed by tag lines ``"\\n    expected = 0x..."``.
Codes 1..16 equal the Connect codes; every other River code travels as `failed_precondition`.

Hierarchy::

    RiverClientError                 anything this package raises
    ├── RiverError                   an error answered by a node (code, name, message, tags)
    │   └── EnvelopeError            an envelope that fails hash, signature or delegate checks
    └── TransportError               no usable answer: connection refused, reset, bad framing
        └── RpcTimeoutError          no answer within the call's timeout
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from river_client.proto import protocol_pb2

Err = protocol_pb2.Err

CONNECT_CODES: dict[str, int] = {
    "canceled": 1,
    "unknown": 2,
    "invalid_argument": 3,
    "deadline_exceeded": 4,
    "not_found": 5,
    "already_exists": 6,
    "permission_denied": 7,
    "resource_exhausted": 8,
    "failed_precondition": 9,
    "aborted": 10,
    "out_of_range": 11,
    "unimplemented": 12,
    "internal": 13,
    "unavailable": 14,
    "data_loss": 15,
    "unauthenticated": 16,
}
CONNECT_NAMES: dict[int, str] = {v: k for k, v in CONNECT_CODES.items()}

_CODE_IN_TEXT = re.compile(r"\((\d+):([A-Z_]+)\)")
_TAG_LINE = re.compile(r"^\s{2,}([A-Za-z_][\w.]*) = (.*)$")


class RiverClientError(Exception):
    """Base of every error raised by river_client."""


class RiverError(RiverClientError):
    """An error answered by a River node.

    `code` is the River `Err` number (24 for BAD_PREV_MINIBLOCK_HASH), `name` its enum name,
    `message` the node's text and `tags` the ``tag = value`` lines of that text.
    """

    def __init__(
        self,
        code: int,
        name: str,
        message: str,
        tags: Mapping[str, str] | None = None,
        method: str = "",
    ) -> None:
        self.code = code
        self.name = name
        self.message = message
        self.tags: dict[str, str] = dict(tags) if tags else parse_tags(message)
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{name} ({code}): {first_line(message)}")

    def is_code(self, *codes: int) -> bool:
        """True when this error's River code is one of `codes` (values of `Err`)."""
        return self.code in codes

    @property
    def connect_code(self) -> str:
        """The Connect code this error travels as (River codes above 16 -> failed_precondition)."""
        return CONNECT_NAMES.get(self.code, "failed_precondition")

    def wire_message(self) -> str:
        """The message in the node's layout: ``(code:NAME) text`` plus one line per tag."""
        text = self.message
        if not _CODE_IN_TEXT.search(text):
            text = f"({self.code}:{self.name}) {text}"
        lines = [text] + [f"    {k} = {v}" for k, v in self.tags.items() if f"{k} = " not in text]
        return "\n".join(lines)


class EnvelopeError(RiverError):
    """An envelope whose hash, signature or delegate signature does not check out."""


class TransportError(RiverClientError):
    """No usable answer from the node: connection failure, reset, or a malformed reply."""

    def __init__(self, message: str, url: str = "") -> None:
        self.url = url
        super().__init__(f"{message} ({url})" if url else message)


class RpcTimeoutError(TransportError):
    """The node did not answer within the call's timeout."""


def first_line(text: str) -> str:
    """The first line of a node message (tags follow on the next lines)."""
    return text.split("\n", 1)[0]


def parse_tags(message: str) -> dict[str, str]:
    """The ``tag = value`` lines of a node error message, e.g. {"expNum": "12"}."""
    tags: dict[str, str] = {}
    for line in message.split("\n")[1:]:
        match = _TAG_LINE.match(line)
        if match:
            tags.setdefault(match.group(1), match.group(2).strip())
    return tags


def river_code(name: str) -> int | None:
    """The `Err` number of a River code name, or None for a name this schema does not know."""
    try:
        return int(Err.Value(name))
    except ValueError:
        return None


def error_from_connect(
    connect_code: str,
    message: str,
    river_error_name: str | None = None,
    method: str = "",
) -> RiverError:
    """Build a RiverError from a Connect error: its code, message and X-River-Error name.

    The River name comes from `river_error_name` (the X-River-Error metadata) when present,
    else from a ``(num:NAME)`` marker in the message, else from the Connect code.
    """
    code: int | None = None
    name = river_error_name or ""
    if name:
        code = river_code(name)
    if code is None:
        match = _CODE_IN_TEXT.search(message)
        if match:
            code, name = int(match.group(1)), match.group(2)
    if code is None:
        code = CONNECT_CODES.get(connect_code, int(Err.UNKNOWN))
        name = name or Err.Name(code)
    return RiverError(code, name, message, method=method)
