"""River stream ids and user ids.

A stream id is 32 bytes on the wire and 64 lowercase hex characters (no ``0x``) as text. The
first byte is the stream type; the bytes after the type's content are zero:

=========  ======  ===========================================================
type       prefix  layout
=========  ======  ===========================================================
user       a8      prefix + 20-byte wallet address + 11 zero bytes
settings   a5      same layout
metadata   ad      same layout (the stream holding the user's device keys)
inbox      a1      same layout (to-device messages: group session keys)
space      10      prefix + 20-byte space contract address + 11 zero bytes
channel    20      prefix + space address + 11 bytes (all zero: the default channel)
=========  ======  ===========================================================

A user id is the EIP-55 checksummed ``0x`` wallet address.
"""

from __future__ import annotations

import os

from eth_utils import to_checksum_address

STREAM_ID_LENGTH = 32
USER_PREFIX = 0xA8
USER_SETTINGS_PREFIX = 0xA5
USER_METADATA_PREFIX = 0xAD
USER_INBOX_PREFIX = 0xA1
SPACE_PREFIX = 0x10
CHANNEL_PREFIX = 0x20
USER_STREAM_PREFIXES = (USER_PREFIX, USER_SETTINGS_PREFIX, USER_METADATA_PREFIX, USER_INBOX_PREFIX)

StreamIdLike = bytes | str


def _hex_or_bytes(value: str | bytes) -> bytes:
    """Bytes as given, or decoded from hex text (``0x`` allowed); b"" for text that is not hex."""
    if isinstance(value, bytes):
        return value
    text = value[2:] if value[:2].lower() == "0x" else value
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""


def address_bytes(address: str | bytes) -> bytes:
    """20 raw address bytes from a ``0x`` hex address (any case) or from 20 bytes."""
    raw = _hex_or_bytes(address)
    if len(raw) != 20:
        raise ValueError(f"not a 20-byte address: {address!r}; expected 0x and 40 hex characters")
    return raw


def user_id(address: str | bytes) -> str:
    """The user id (EIP-55 checksummed 0x address) of a wallet address."""
    return str(to_checksum_address(address_bytes(address)))


def stream_id_bytes(stream_id: StreamIdLike) -> bytes:
    """32 stream id bytes from 64 hex characters (``0x`` allowed) or from bytes."""
    raw = _hex_or_bytes(stream_id)
    if len(raw) != STREAM_ID_LENGTH:
        raise ValueError(f"not a stream id: {stream_id!r}; expected 32 bytes (64 hex characters)")
    return raw


def stream_id_hex(stream_id: StreamIdLike) -> str:
    """The text form of a stream id: 64 lowercase hex characters without 0x."""
    return stream_id_bytes(stream_id).hex()


def _prefixed(prefix: int, address: str | bytes) -> bytes:
    return bytes([prefix]) + address_bytes(address) + bytes(11)


def user_stream_id(address: str | bytes) -> bytes:
    """The user's own stream (a8): joins and leaves are written there."""
    return _prefixed(USER_PREFIX, address)


def user_settings_stream_id(address: str | bytes) -> bytes:
    """The user's settings stream (a5)."""
    return _prefixed(USER_SETTINGS_PREFIX, address)


def user_metadata_stream_id(address: str | bytes) -> bytes:
    """The user's metadata stream (ad), holding the user's encryption devices."""
    return _prefixed(USER_METADATA_PREFIX, address)


def user_inbox_stream_id(address: str | bytes) -> bytes:
    """The user's inbox stream (a1), receiving group session keys for the user's devices."""
    return _prefixed(USER_INBOX_PREFIX, address)


def space_stream_id(space_address: str | bytes) -> bytes:
    """The space stream (10) of a space contract address."""
    return _prefixed(SPACE_PREFIX, space_address)


def space_address(space_id: StreamIdLike) -> str:
    """The space contract address (checksummed) inside a space or channel stream id."""
    raw = stream_id_bytes(space_id)
    if raw[0] not in (SPACE_PREFIX, CHANNEL_PREFIX):
        raise ValueError(f"not a space or channel stream id: {raw.hex()}; expected prefix 10 or 20")
    return str(to_checksum_address(raw[1:21]))


def default_channel_stream_id(space_id: StreamIdLike) -> bytes:
    """The default channel of a space: 20 + the space address + 11 zero bytes."""
    raw = stream_id_bytes(space_id)
    if raw[0] != SPACE_PREFIX:
        raise ValueError(f"not a space stream id: {raw.hex()}; expected prefix 10")
    return bytes([CHANNEL_PREFIX]) + raw[1:21] + bytes(11)


def make_channel_stream_id(space_id: StreamIdLike, suffix: bytes | None = None) -> bytes:
    """A channel id of the space: 20 + space address + 11 bytes (random when not given)."""
    raw = stream_id_bytes(space_id)
    tail = os.urandom(11) if suffix is None else suffix
    if len(tail) != 11:
        raise ValueError(f"channel id suffix must be 11 bytes, got {len(tail)}")
    return bytes([CHANNEL_PREFIX]) + raw[1:21] + tail


def space_id_from_channel_id(channel_id: StreamIdLike) -> bytes:
    """The space stream id a channel belongs to."""
    raw = stream_id_bytes(channel_id)
    if raw[0] != CHANNEL_PREFIX:
        raise ValueError(f"not a channel stream id: {raw.hex()}; expected prefix 20")
    return bytes([SPACE_PREFIX]) + raw[1:21] + bytes(11)


def is_default_channel(channel_id: StreamIdLike) -> bool:
    """True for a space's default channel (its last 11 bytes are zero)."""
    raw = stream_id_bytes(channel_id)
    return raw[0] == CHANNEL_PREFIX and raw[21:] == bytes(11)


def stream_prefix(stream_id: StreamIdLike) -> int:
    """The type byte of a stream id."""
    return stream_id_bytes(stream_id)[0]


def is_user_stream(stream_id: StreamIdLike) -> bool:
    """True for the four per-user streams (a8, a5, ad, a1)."""
    return stream_prefix(stream_id) in USER_STREAM_PREFIXES


def user_address_from_stream_id(stream_id: StreamIdLike) -> bytes:
    """The wallet address bytes inside a user, settings, metadata or inbox stream id."""
    raw = stream_id_bytes(stream_id)
    if raw[0] not in USER_STREAM_PREFIXES:
        raise ValueError(f"not a user stream id: {raw.hex()}; expected prefix a8, a5, ad or a1")
    return raw[1:21]
