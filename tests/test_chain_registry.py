"""River node discovery from a registry contract on anvil, and both Node layouts."""

from __future__ import annotations

from eth_abi import encode

from devnet.anvil import Anvil
from devnet.chain import deploy_river_registry
from river_client.chain.abi import selector
from river_client.chain.registry import (
    NodeStatus,
    all_nodes,
    decode_nodes,
    operational_node_urls,
)
from wallet_tools.derivation import HDWallets

OWNER = HDWallets("test test test test test test test test test test test junk").wallet(0)
NODES = HDWallets("abandon " * 11 + "about").addresses(0, 4)


def test_operational_urls_from_a_registry_on_chain(anvil: Anvil) -> None:
    registry = deploy_river_registry(
        anvil.rpc_url,
        OWNER.private_key,
        [
            (NODES[0], "https://river2.example:443", NodeStatus.OPERATIONAL),
            (NODES[1], "https://failed.example", NodeStatus.FAILED),
            (NODES[2], "https://river1.example", NodeStatus.OPERATIONAL),
            (NODES[3], "https://remote.example", NodeStatus.REMOTE_ONLY),
        ],
    )
    assert selector("getAllNodes()") == "0xa1174e7d"
    assert operational_node_urls(anvil.rpc_url, registry) == [
        "https://river1.example",
        "https://river2.example:443",
    ]
    nodes = all_nodes(anvil.rpc_url, registry)
    assert [n.node_address for n in nodes] == NODES
    assert {n.operator for n in nodes} == {OWNER.address}


def test_the_older_four_field_node_layout_decodes_too() -> None:
    operator = NODES[3]
    rows = [
        (2, "https://a.example", NODES[0], operator),
        (5, "https://deleted.example", NODES[1], operator),
    ]
    legacy = encode(["(uint8,string,address,address)[]"], [rows])
    newer = encode(
        ["(uint8,string,address,address,uint32,bytes32)[]"],
        [[(*row, 7, b"\x01" * 32) for row in rows]],
    )
    for data in (legacy, newer):
        decoded = decode_nodes(data)
        assert [(n.status, n.url, n.node_address, n.operator) for n in decoded] == rows
