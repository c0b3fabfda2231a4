"""River node discovery: operational node URLs from the River registry on the River chain.

The registry's `getAllNodes()` returns `Node[]`; each `Node` begins with
`(uint8 status, string url, address nodeAddress, address operator, ...)`. Newer registries
append fields (`uint32 permanentIndex`, `bytes32 cometBftPubKey`), so only the leading four
are decoded, straight from the ABI layout, which works for both shapes. Status 2 is
Operational; like the Towns SDK (`RiverRegistry.getOperationalNodeUrls`) the URLs of the
operational nodes are returned sorted.

    operational_node_urls("https://testnet.rpc.towns.com/http", environment("beta").river_registry)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_utils import to_checksum_address

from river_client.chain.abi import calldata
from river_client.chain.exceptions import ContractCallError
from wallet_tools.rpc import JsonRpc

WORD = 32


class NodeStatus(IntEnum):
    NOT_INITIALIZED = 0
    REMOTE_ONLY = 1
    OPERATIONAL = 2
    FAILED = 3
    DEPARTING = 4
    DELETED = 5


@dataclass(frozen=True)
class RiverNode:
    status: int
    url: str
    node_address: str
    operator: str


def _word(data: bytes, offset: int) -> int:
    if offset + WORD > len(data):
        raise ContractCallError(
            f"getAllNodes() returned {len(data)} bytes; a word at byte {offset} is missing"
        )
    return int.from_bytes(data[offset : offset + WORD], "big")


def decode_nodes(data: bytes) -> list[RiverNode]:
    """Decode the leading (status, url, nodeAddress, operator) of each Node in `Node[]`."""
    array = _word(data, 0)
    count = _word(data, array)
    heads = array + WORD
    nodes = []
    for index in range(count):
        node = heads + _word(data, heads + index * WORD)
        url_at = node + _word(data, node + WORD)
        url_length = _word(data, url_at)
        url = data[url_at + WORD : url_at + WORD + url_length].decode()
        nodes.append(
            RiverNode(
                status=_word(data, node),
                url=url,
                node_address=to_checksum_address(_word(data, node + 2 * WORD).to_bytes(20, "big")),
                operator=to_checksum_address(_word(data, node + 3 * WORD).to_bytes(20, "big")),
            )
        )
    return nodes


def all_nodes(river_rpc: JsonRpc | str, registry: str) -> list[RiverNode]:
    """Every node the registry lists, whatever its status."""
    rpc = JsonRpc(river_rpc) if isinstance(river_rpc, str) else river_rpc
    reply = rpc.call("eth_call", {"to": registry, "data": calldata("getAllNodes()")}, "latest")
    data = bytes.fromhex(str(reply).removeprefix("0x"))
    if not data:
        raise ContractCallError(f"getAllNodes() on {registry} returned nothing; is it a registry?")
    return decode_nodes(data)


def operational_node_urls(river_rpc: JsonRpc | str, registry: str) -> list[str]:
    """Sorted URLs of the nodes whose status is Operational."""
    return sorted(
        n.url for n in all_nodes(river_rpc, registry) if n.status == NodeStatus.OPERATIONAL
    )
