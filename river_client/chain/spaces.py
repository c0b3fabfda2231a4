"""Space stream ids and space contract addresses, converted the way Towns does it.

A space's stream id is 32 bytes written as 64 hex characters without `0x`: the prefix `10`,
the space contract's address in lowercase hex (40 characters), then zeros. The space's default
channel has the same id with the prefix `20`. (Towns SDK `id.ts` and web3 `ut.ts`.)

    space_id_from_address("0xa38bcf15ab6b94d404c201dee9f67c6428c0ecb1")
    # '10a38bcf15ab6b94d404c201dee9f67c6428c0ecb10000000000000000000000'
"""

from __future__ import annotations

import re

from eth_utils import is_hex_address, to_checksum_address

SPACE_PREFIX = "10"
CHANNEL_PREFIX = "20"
STREAM_ID_HEX_LENGTH = 64
_HEX = re.compile(r"^[0-9a-f]+$")


def _normalise_space_id(space_id: str) -> str:
    space_id = space_id.strip().lower().removeprefix("0x")
    if (
        len(space_id) != STREAM_ID_HEX_LENGTH
        or not _HEX.match(space_id)
        or not space_id.startswith(SPACE_PREFIX)
    ):
        raise ValueError(
            f"space id {space_id!r} is not a space stream id: expected 64 hex characters "
            f"starting with {SPACE_PREFIX!r} (prefix, 40-hex contract address, zero padding)"
        )
    return space_id


def space_address_from_id(space_id: str) -> str:
    """The EIP-55 address of the space contract behind a space stream id."""
    space_id = _normalise_space_id(space_id)
    return to_checksum_address("0x" + space_id[2:42])


def space_id_from_address(address: str) -> str:
    """The space stream id (64 lowercase hex characters) of a space contract address."""
    if not is_hex_address(address):
        raise ValueError(f"space address {address!r} is not a 20-byte hex address")
    body = SPACE_PREFIX + address.lower().removeprefix("0x")
    return body.ljust(STREAM_ID_HEX_LENGTH, "0")


def default_channel_id(space_id: str) -> str:
    """The stream id of a space's default channel: the space id with prefix `20`."""
    space_id = _normalise_space_id(space_id)
    return CHANNEL_PREFIX + space_id[2:]
