"""MintingEngine on a real anvil: many wallets, idempotence, reverts, funds, progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devnet.anvil import Anvil
from devnet.chain import DEVNET_MNEMONIC, deploy_space, owner_call
from devnet.rpc_proxy import RpcProxy
from river_client.chain.abi import calldata, decode
from river_client.chain.exceptions import InsufficientFundsError
from river_client.chain.minting import MintingEngine, MintProgress
from wallet_tools.derivation import HDWallets
from wallet_tools.exceptions import InsufficientFundsError as WalletInsufficientFundsError
from wallet_tools.rpc import JsonRpc

ANVIL_ACCOUNTS = HDWallets("test test test test test test test test test test test junk")
OWNER, ROOT = ANVIL_ACCOUNTS.wallet(0), ANVIL_ACCOUNTS.wallet(1)
WALLETS = HDWallets(DEVNET_MNEMONIC).addresses(1, 51)


def tokens_of(rpc: JsonRpc, space: str, wallet: str) -> tuple[int, ...]:
    reply = rpc.call(
        "eth_call", {"to": space, "data": calldata("tokensOfOwner(address)", wallet)}, "latest"
    )
    tokens = decode(["uint256[]"], reply)[0]
    assert isinstance(tokens, tuple)
    return tokens


@pytest.fixture
def node(anvil_factory: Callable[..., Anvil]) -> Anvil:
    return anvil_factory()


@pytest.fixture
def proxy(node: Anvil) -> Iterator[RpcProxy]:
    with RpcProxy(node.rpc_url) as started:
        yield started


def test_fifty_wallets_then_a_second_run_sends_nothing(node: Anvil, proxy: RpcProxy) -> None:
    space = deploy_space(node.rpc_url, OWNER.private_key)
    progress: list[MintProgress] = []
    engine = MintingEngine(
        JsonRpc(proxy.url), space, ROOT.private_key, on_progress=progress.append, poll_interval=0.02
    )

    report = engine.mint_all(WALLETS)
    assert sorted(report.minted) == sorted(WALLETS)
    assert sorted(report.minted.values()) == list(range(50))
    assert report.failed == {} and report.already_members == []
    assert report.transactions_sent == 50
    direct = JsonRpc(node.rpc_url)
    assert all(len(tokens_of(direct, space, w)) == 1 for w in WALLETS)
    assert [p.minted for p in progress] == sorted(p.minted for p in progress)
    assert progress[-1].minted == progress[-1].total == 50 and progress[-1].rate_per_s > 0
    sends = proxy.requests.count("eth_sendRawTransaction")
    assert sends == 50  # one JSON-RPC item per transaction, no resends

    again = engine.mint_all(WALLETS)
    assert again.minted == {} and again.transactions_sent == 0
    assert sorted(again.already_members) == sorted(WALLETS)
    assert proxy.requests.count("eth_sendRawTransaction") == sends


def test_refused_receiver_is_reported_and_the_others_are_minted(node: Anvil) -> None:
    space = deploy_space(node.rpc_url, OWNER.private_key)
    refused = WALLETS[3]
    owner_call(
        node.rpc_url, OWNER.private_key, space, "setReceiverRefused(address,bool)", refused, True
    )
    engine = MintingEngine(JsonRpc(node.rpc_url), space, ROOT.private_key, poll_interval=0.02)

    report = engine.mint_all(WALLETS[:20])
    assert list(report.failed) == [refused]
    assert "Membership__Banned()" in report.failed[refused]
    assert sorted(report.minted) == sorted(w for w in WALLETS[:20] if w != refused)
    assert tokens_of(engine.rpc, space, refused) == ()


def test_root_without_enough_funds_fails_before_sending(node: Anvil, proxy: RpcProxy) -> None:
    space = deploy_space(node.rpc_url, OWNER.private_key, price_wei=10**16)
    node.rpc("anvil_setBalance", ROOT.address, hex(10**17))  # pays for a few mints, not 50
    nonce_before = node.rpc("eth_getTransactionCount", ROOT.address, "latest")
    engine = MintingEngine(JsonRpc(proxy.url), space, ROOT.private_key)

    with pytest.raises(InsufficientFundsError) as raised:
        engine.mint_all(WALLETS)
    error = raised.value
    assert isinstance(error, WalletInsufficientFundsError)
    assert error.balance == 10**17 and error.needed > 50 * 10**16 and error.mints == 50
    message = str(error)
    assert ROOT.address in message and str(10**17) in message and str(error.needed) in message
    assert "Nothing was sent" in message
    assert "eth_sendRawTransaction" not in proxy.requests
    assert node.rpc("eth_getTransactionCount", ROOT.address, "latest") == nonce_before


def test_priced_membership_with_free_slots_pays_exactly(node: Anvil) -> None:
    price = 10**15
    space = deploy_space(node.rpc_url, OWNER.private_key, price_wei=price, free_allocation=5)
    engine = MintingEngine(
        JsonRpc(node.rpc_url), space, ROOT.private_key, max_in_flight=4, poll_interval=0.02
    )

    report = engine.mint_all(WALLETS[:12])
    assert len(report.minted) == 12 and report.failed == {}
    held = int(str(node.rpc("eth_getBalance", space, "latest")), 16)
    assert held == 7 * price  # five free slots, seven paid mints, no overpayment


def test_out_of_gas_is_retried_once_with_more_gas(node: Anvil) -> None:
    space = deploy_space(node.rpc_url, OWNER.private_key)
    engine = MintingEngine(
        JsonRpc(node.rpc_url), space, ROOT.private_key, gas_limit=80_000, poll_interval=0.02
    )

    report = engine.mint_all(WALLETS[:5])
    assert sorted(report.minted) == sorted(WALLETS[:5]) and report.failed == {}
    assert report.transactions_sent == 10  # each ran out of gas once, then passed with 160,000


def test_expired_members_get_a_new_membership_and_duplicates_count_once(node: Anvil) -> None:
    space = deploy_space(node.rpc_url, OWNER.private_key)
    engine = MintingEngine(JsonRpc(node.rpc_url), space, ROOT.private_key, poll_interval=0.02)
    assert engine.mint_all([]).transactions_sent == 0

    first = engine.mint_all(WALLETS[:3])
    expired = WALLETS[1]
    token = first.minted[expired]
    owner_call(node.rpc_url, OWNER.private_key, space, "setExpiresAt(uint256,uint64)", token, 1)

    again = engine.mint_all([*WALLETS[:3], WALLETS[0].lower(), expired])
    assert list(again.minted) == [expired] and again.minted[expired] == 3
    assert sorted(again.already_members) == sorted([WALLETS[0], WALLETS[2]])
    assert tokens_of(engine.rpc, space, expired) == (token, 3)
    assert engine.space.status(expired).active
