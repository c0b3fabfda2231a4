"""The local membership contract: its artifact, its Towns-compatible interface, its behaviour."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from eth_utils import to_checksum_address

from devnet.anvil import Anvil
from devnet.chain import deploy_space, owner_call, transact
from devnet.contracts import CONTRACT_NAMES, compile_contract, load_artifact
from river_client.chain.abi import ETH_CURRENCY, calldata, decode, selector, topic
from wallet_tools.derivation import HDWallets
from wallet_tools.exceptions import JsonRpcError
from wallet_tools.rpc import JsonRpc

ACCOUNTS = HDWallets("test test test test test test test test test test test junk")
OWNER, PAYER, OTHER = ACCOUNTS.wallet(0), ACCOUNTS.wallet(1), ACCOUNTS.wallet(2)
RECEIVERS = HDWallets("abandon " * 11 + "about").wallets(0, 4)

# Selectors and topics of the Towns space contract (towns-chain research notes, sections 1.3, 2).
TOWNS_SELECTORS = {
    "joinSpace(address)": "0x8c625b06",
    "getMembershipPrice()": "0x1278076a",
    "getMembershipFreeAllocation()": "0x706b8e09",
    "totalSupply()": "0x18160ddd",
    "getProtocolFee()": "0xa5a41031",
    "getMembershipCurrency()": "0x657e45e8",
    "getMembershipLimit()": "0x95d600c8",
    "getMembershipDuration()": "0x8120f0ba",
    "multicall(bytes[])": "0xac9650d8",
    "tokensOfOwner(address)": "0x8462151c",
    "expiresAt(uint256)": "0x17c95709",
    "balanceOf(address)": "0x70a08231",
    "paused()": "0x5c975abb",
    "owner()": "0x8da5cb5b",
}
TOWNS_TOPICS = {
    "MembershipTokenIssued(address,uint256)": (
        "0x2f40b0474996b72a4251e00fb9170cdd960deea1dc749772cbbab61395b9b576"
    ),
    "MembershipPaid(address,uint256,uint256)": (
        "0x8fed26ea05e17903891c5c2a70ac7ce2aeafbb48acf403b9defdb2c96ab2e5c3"
    ),
    "SubscriptionUpdate(uint256,uint64)": (
        "0x2ec2be2c4b90c2cf13ecb6751a24daed6bb741ae5ed3f7371aabf9402f6d62e8"
    ),
    "Transfer(address,address,uint256)": (
        "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    ),
}
TOWNS_ERRORS = {
    "Membership__InsufficientPayment()": "0xb1296a8a",
    "Membership__MaxSupplyReached()": "0x7efcdb49",
    "Membership__InvalidAddress()": "0x5fbd5717",
    "Membership__Banned()": "0x519c7788",
    "Reentrancy()": "0xab143c06",
}


def _signature(item: dict[str, object]) -> str:
    inputs = item.get("inputs") or []
    assert isinstance(inputs, list)
    return f"{item['name']}({','.join(str(i['type']) for i in inputs)})"


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_committed_artifact_is_what_the_source_compiles_to(name: str) -> None:
    committed = load_artifact(name)
    rebuilt = compile_contract(name)

    assert rebuilt["bytecode"] == committed["bytecode"]
    assert rebuilt["deployedBytecode"] == committed["deployedBytecode"]
    assert rebuilt["abi"] == committed["abi"]
    assert rebuilt["sourceSha256"] == committed["sourceSha256"]
    assert committed["compiler"]["version"].startswith("0.8.37+")
    assert committed["compiler"]["settings"]["optimizer"] == {"enabled": True, "runs": 200}


def test_selectors_topics_and_errors_match_the_towns_space_contract() -> None:
    abi = load_artifact("SpaceMembership")["abi"]
    functions = {_signature(i) for i in abi if i["type"] == "function"}
    events = {_signature(i) for i in abi if i["type"] == "event"}
    errors = {_signature(i) for i in abi if i["type"] == "error"}
    methods = load_artifact("SpaceMembership")["methodIdentifiers"]

    for signature, expected in TOWNS_SELECTORS.items():
        assert signature in functions
        assert "0x" + methods[signature] == expected == selector(signature)
    for signature, expected in TOWNS_TOPICS.items():
        assert signature in events
        assert topic(signature) == expected
    for signature, expected in TOWNS_ERRORS.items():
        assert signature in errors
        assert selector(signature) == expected
    issued = next(i for i in abi if i.get("name") == "MembershipTokenIssued")
    assert [i["indexed"] for i in issued["inputs"]] == [True, True]


@pytest.fixture
def chain(anvil_factory: Callable[..., Anvil]) -> tuple[JsonRpc, str]:
    node = anvil_factory()
    space = deploy_space(node.rpc_url, OWNER.private_key, price_wei=10**15, free_allocation=2)
    return JsonRpc(node.rpc_url), space


def _read(rpc: JsonRpc, space: str, signature: str, returns: str, *args: object) -> object:
    reply = rpc.call("eth_call", {"to": space, "data": calldata(signature, *args)}, "latest")
    return decode([returns], reply)[0]


def _join(rpc: JsonRpc, space: str, receiver: str, value: int) -> dict[str, Any]:
    return transact(rpc, PAYER.private_key, space, calldata("joinSpace(address)", receiver), value)


def test_free_allocation_then_price_with_refund_to_the_receiver(chain: tuple[JsonRpc, str]) -> None:
    rpc, space = chain
    price = 10**15
    assert _read(rpc, space, "getMembershipCurrency()", "address") == ETH_CURRENCY.lower()
    assert _read(rpc, space, "getMembershipPrice()", "uint256") == price
    assert _read(rpc, space, "getMembershipFreeAllocation()", "uint256") == 2

    for receiver in RECEIVERS[:2]:  # the two free slots
        _join(rpc, space, receiver.address, 0)
    assert _read(rpc, space, "totalSupply()", "uint256") == 2

    # Underpaying now reverts with the real contract's error.
    with pytest.raises(JsonRpcError) as raised:
        rpc.call(
            "eth_estimateGas",
            {
                "from": PAYER.address,
                "to": space,
                "data": calldata("joinSpace(address)", RECEIVERS[2].address),
                "value": hex(price - 1),
            },
        )
    assert str(raised.value.data).startswith(TOWNS_ERRORS["Membership__InsufficientPayment()"])

    # Overpaying refunds the excess to the receiver, not the payer.
    before = int(rpc.call("eth_getBalance", RECEIVERS[2].address, "latest"), 16)
    receipt = _join(rpc, space, RECEIVERS[2].address, price + 12345)
    after = int(rpc.call("eth_getBalance", RECEIVERS[2].address, "latest"), 16)
    assert after - before == 12345
    topics = [log["topics"] for log in receipt["logs"]]
    issued = [t for t in topics if t[0] == TOWNS_TOPICS["MembershipTokenIssued(address,uint256)"]]
    assert len(issued) == 1
    assert to_checksum_address("0x" + issued[0][1][-40:]) == RECEIVERS[2].address
    assert int(issued[0][2], 16) == 2
    assert _read(rpc, space, "tokensOfOwner(address)", "uint256[]", RECEIVERS[2].address) == (2,)
    assert _read(rpc, space, "balanceOf(address)", "uint256", RECEIVERS[2].address) == 1


def test_owner_settings_refusal_expiry_and_multicall(chain: tuple[JsonRpc, str]) -> None:
    rpc, space = chain
    url = rpc.url
    assert _read(rpc, space, "owner()", "address") == OWNER.address.lower()
    assert _read(rpc, space, "paused()", "bool") is False

    with pytest.raises(JsonRpcError) as refused:  # not the owner
        rpc.call(
            "eth_estimateGas",
            {
                "from": OTHER.address,
                "to": space,
                "data": calldata("setMembershipPrice(uint256)", 0),
            },
        )
    assert str(refused.value.data).startswith(selector("Ownable__NotOwner(address)"))
    owner_call(url, OWNER.private_key, space, "setMembershipPrice(uint256)", 0)
    refused_receiver = RECEIVERS[0].address
    owner_call(
        url, OWNER.private_key, space, "setReceiverRefused(address,bool)", refused_receiver, True
    )
    with pytest.raises(JsonRpcError) as raised:
        _join(rpc, space, RECEIVERS[0].address, 0)
    assert str(raised.value.data).startswith(TOWNS_ERRORS["Membership__Banned()"])

    _join(rpc, space, RECEIVERS[1].address, 0)
    assert _read(rpc, space, "expiresAt(uint256)", "uint256", 0) == 0  # permanent
    owner_call(url, OWNER.private_key, space, "setExpiresAt(uint256,uint64)", 0, 1000)
    assert _read(rpc, space, "expiresAt(uint256)", "uint256", 0) == 1000

    bundle = calldata(
        "multicall(bytes[])",
        [
            bytes.fromhex(calldata("totalSupply()")[2:]),
            bytes.fromhex(calldata("tokensOfOwner(address)", RECEIVERS[1].address)[2:]),
        ],
    )
    (results,) = decode(["bytes[]"], rpc.call("eth_call", {"to": space, "data": bundle}, "latest"))
    assert decode(["uint256"], results[0]) == (1,)
    assert decode(["uint256[]"], results[1]) == ((0,),)
