"""Membership status, join price and a single mint through SpaceContract, on a real anvil."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devnet.anvil import Anvil
from devnet.chain import deploy_space, owner_call
from river_client.chain.abi import calldata, decode
from river_client.chain.exceptions import MintError
from river_client.chain.membership import SpaceContract, status_from_tokens
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc

ANVIL_ACCOUNTS = HDWallets("test test test test test test test test test test test junk")
OWNER, ROOT = ANVIL_ACCOUNTS.wallet(0), ANVIL_ACCOUNTS.wallet(1)
WALLETS = HDWallets("abandon " * 11 + "about").addresses(0, 6)


def river_node_rule(rpc: JsonRpc, space: str, wallet: str, now: float) -> tuple[bool, bool]:
    """(is member, is active) computed the way a River node does, with plain eth_calls."""

    def read(data: str, returns: str) -> object:
        return decode([returns], rpc.call("eth_call", {"to": space, "data": data}, "latest"))[0]

    tokens = read(calldata("tokensOfOwner(address)", wallet), "uint256[]")
    assert isinstance(tokens, tuple)
    if not tokens:
        return False, False
    expiries = [read(calldata("expiresAt(uint256)", t), "uint256") for t in tokens]
    return True, any(e == 0 or (isinstance(e, int) and e > now) for e in expiries)


@pytest.fixture
def space(anvil_factory: Callable[..., Anvil]) -> SpaceContract:
    node = anvil_factory()
    address = deploy_space(node.rpc_url, OWNER.private_key)
    return SpaceContract(JsonRpc(node.rpc_url), address)


def test_status_matches_the_river_node_rule_including_expiry(space: SpaceContract) -> None:
    url, key = space.rpc.url, OWNER.private_key
    permanent, expired, future, none, renewed, expiring = WALLETS
    for wallet in (permanent, expired, future, renewed, renewed, expiring):
        space.mint(wallet, ROOT.private_key, poll_interval=0.01)
    now = time.time()
    # Tokens in mint order: 0 permanent, 1 expired, 2 future, 3+4 renewed, 5 expiring.
    owner_call(url, key, space.address, "setExpiresAt(uint256,uint64)", 1, int(now) - 60)
    owner_call(url, key, space.address, "setExpiresAt(uint256,uint64)", 2, int(now) + 3600)
    owner_call(url, key, space.address, "setExpiresAt(uint256,uint64)", 3, int(now) - 60)
    owner_call(url, key, space.address, "setExpiresAt(uint256,uint64)", 5, int(now) + 1)

    later = now + 30  # wallet `expiring` has expired by then
    by_multicall = space.statuses(WALLETS, now=later)
    by_batch = space.statuses(WALLETS, now=later, use_multicall=False)
    assert by_multicall == by_batch

    for wallet in WALLETS:
        is_member, active = river_node_rule(space.rpc, space.address, wallet, later)
        assert by_multicall[wallet].is_member == is_member, wallet
        assert by_multicall[wallet].active == active, wallet
    assert by_multicall[permanent].expires_at == 0 and by_multicall[permanent].active
    assert by_multicall[expired].is_member and by_multicall[expired].is_expired
    assert by_multicall[future].active and by_multicall[future].expires_at == int(now) + 3600
    assert not by_multicall[none].is_member and by_multicall[none].token_id is None
    assert by_multicall[renewed].active and by_multicall[renewed].token_id == 4
    assert by_multicall[expiring].is_expired
    assert space.statuses([expiring], now=now)[expiring].active


def test_status_rule_without_chain() -> None:
    assert not status_from_tokens([], {}, 100).is_member
    assert status_from_tokens([7], {7: 0}, 100).active
    assert status_from_tokens([7], {7: 100}, 100).is_expired  # expiry is exclusive
    assert status_from_tokens([7, 8], {7: 50, 8: 150}, 100).token_id == 8


def test_join_price_follows_free_allocation_and_mint_pays_it(
    anvil_factory: Callable[..., Anvil],
) -> None:
    node = anvil_factory()
    price = 3 * 10**15
    address = deploy_space(node.rpc_url, OWNER.private_key, price_wei=price, free_allocation=1)
    owner_call(node.rpc_url, OWNER.private_key, address, "setProtocolFee(uint256)", 10**15)
    space = SpaceContract(JsonRpc(node.rpc_url), address)

    free = space.join_price()
    assert (free.price, free.value_wei, free.membership_price) == (0, 0, price)
    assert (free.protocol_fee, free.total_supply, free.free_allocation) == (10**15, 0, 1)
    assert free.is_native
    assert [free.value_for(i) for i in range(3)] == [0, price, price]
    first = space.mint(WALLETS[0], ROOT.private_key, poll_interval=0.01)
    assert first.token_id == 0

    paid = space.join_price()
    assert (paid.price, paid.value_wei, paid.total_supply) == (price, price, 1)
    balance = int(space.rpc.call("eth_getBalance", address, "latest"), 16)
    second = space.mint(WALLETS[1], ROOT.private_key, poll_interval=0.01)
    assert second.token_id == 1
    assert int(space.rpc.call("eth_getBalance", address, "latest"), 16) - balance == price
    assert space.status(WALLETS[1]).active


def test_mint_of_a_refused_receiver_names_the_revert(space: SpaceContract) -> None:
    owner_call(
        space.rpc.url,
        OWNER.private_key,
        space.address,
        "setReceiverRefused(address,bool)",
        WALLETS[0],
        True,
    )
    with pytest.raises(MintError, match=r"Membership__Banned\(\)") as raised:
        space.mint(WALLETS[0], ROOT.private_key, poll_interval=0.01)
    assert raised.value.recipient == WALLETS[0]
    assert not space.status(WALLETS[0]).is_member
