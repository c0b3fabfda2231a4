"""River errors as the dev node reports them, in the real node's format.

A River error has a code from the `Err` enum of protocol.proto. Codes 1..16 are the
Connect/gRPC codes and travel as themselves; every other code travels as Connect
`failed_precondition`, and the exact name goes in the `x-river-error` metadata (a response
header for unary calls, end-of-stream metadata for SyncStreams). The message reads
`<Method>: (<num>:<NAME>) <text>` followed by one `\\n    <tag> = <value>` line per tag, which
is what the Towns SDK searches (`"<num>:<NAME>"`, `"<tag> = "`). Messages are capped at 1500
characters like the real node's.

    raise NodeError(Err.BAD_PREV_MINIBLOCK_HASH, "referenced block is not recent",
                    expected=f"0x{last_hash.hex()}", expNum=last_num)
"""

from __future__ import annotations

from river_client.proto import protocol_pb2 as pb

Err = pb.Err

MESSAGE_LIMIT = 1500

# Connect code names (snake case, as in the Connect JSON error body) and their HTTP statuses.
CONNECT_CODES: dict[int, tuple[str, int]] = {
    1: ("canceled", 499),
    2: ("unknown", 500),
    3: ("invalid_argument", 400),
    4: ("deadline_exceeded", 504),
    5: ("not_found", 404),
    6: ("already_exists", 409),
    7: ("permission_denied", 403),
    8: ("resource_exhausted", 429),
    9: ("failed_precondition", 400),
    10: ("aborted", 409),
    11: ("out_of_range", 400),
    12: ("unimplemented", 501),
    13: ("internal", 500),
    14: ("unavailable", 503),
    15: ("data_loss", 500),
    16: ("unauthenticated", 401),
}


def format_tag_value(value: object) -> str:
    """A tag value as the real node prints it: byte strings in hex, the rest with str()."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)


class NodeError(Exception):
    """A River error raised by a rule or a handler; `code` is an `Err` value."""

    def __init__(self, code: int, message: str, **tags: object) -> None:
        super().__init__(message)
        self.code = int(code)
        self.text = message
        self.tags = tags
        self.method = ""

    @property
    def name(self) -> str:
        """The River code's name, e.g. BAD_PREV_MINIBLOCK_HASH."""
        try:
            return str(Err.Name(self.code))
        except ValueError:
            return "UNKNOWN"

    @property
    def connect_code(self) -> str:
        """The Connect code: the same code for 1..16, failed_precondition otherwise."""
        return CONNECT_CODES.get(self.code, CONNECT_CODES[9])[0]

    @property
    def http_status(self) -> int:
        return CONNECT_CODES.get(self.code, CONNECT_CODES[9])[1]

    @property
    def connect_number(self) -> int:
        return self.code if self.code in CONNECT_CODES else 9

    def wire_message(self) -> str:
        """`Method: (num:NAME) text` plus the tag lines, capped at 1500 characters."""
        prefix = f"{self.method}: " if self.method else ""
        lines = [f"{prefix}({self.code}:{self.name}) {self.text}"]
        lines += [f"    {tag} = {format_tag_value(value)}" for tag, value in self.tags.items()]
        return "\n".join(lines)[:MESSAGE_LIMIT]

    def __str__(self) -> str:
        return self.wire_message()


def bad_prev_miniblock(message: str, last_hash: bytes, last_num: int) -> NodeError:
    """BAD_PREV_MINIBLOCK_HASH with the `expected`/`expNum` tags clients retry with."""
    return NodeError(
        Err.BAD_PREV_MINIBLOCK_HASH, message, expected=f"0x{last_hash.hex()}", expNum=last_num
    )
