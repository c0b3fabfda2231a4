"""Space ids and space contract addresses, both ways, as Towns derives them."""

from __future__ import annotations

import pytest

from river_client.chain.spaces import (
    default_channel_id,
    space_address_from_id,
    space_id_from_address,
)

# The beta space from the Towns stress-testing example environment.
BETA_SPACE_ID = "10a38bcf15ab6b94d404c201dee9f67c6428c0ecb10000000000000000000000"
BETA_SPACE = "0xa38bcf15ab6b94d404c201dee9f67c6428c0ecb1"


def test_towns_example_both_ways() -> None:
    address = space_address_from_id(BETA_SPACE_ID)
    assert address.lower() == BETA_SPACE
    assert address != BETA_SPACE  # EIP-55 checksummed
    assert space_id_from_address(address) == BETA_SPACE_ID
    assert space_id_from_address(BETA_SPACE) == BETA_SPACE_ID


def test_default_channel_swaps_the_prefix() -> None:
    channel = default_channel_id(BETA_SPACE_ID)
    assert channel == "20" + BETA_SPACE_ID[2:]
    assert len(channel) == 64


@pytest.mark.parametrize(
    "bad",
    [
        "20a38bcf15ab6b94d404c201dee9f67c6428c0ecb10000000000000000000000",  # channel prefix
        "10a38bcf15ab6b94d404c201dee9f67c6428c0ecb1",  # too short
        "10zz8bcf15ab6b94d404c201dee9f67c6428c0ecb10000000000000000000000",  # not hex
    ],
)
def test_bad_space_ids_name_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match=bad[:10]):
        space_address_from_id(bad)


def test_bad_address_is_refused() -> None:
    with pytest.raises(ValueError, match="not a 20-byte hex address"):
        space_id_from_address("0x1234")
