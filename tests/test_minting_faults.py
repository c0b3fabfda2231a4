"""MintingEngine riding out faults, through a fault-injecting JSON-RPC proxy in front of anvil.

At the end of each run every wallet must hold exactly one membership.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from devnet.anvil import Anvil
from devnet.chain import DEVNET_MNEMONIC, deploy_space
from devnet.rpc_proxy import RpcProxy
from river_client.chain.abi import calldata, decode
from river_client.chain.exceptions import MintError
from river_client.chain.minting import MintingEngine, MintProgress
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc

ANVIL_ACCOUNTS = HDWallets("test test test test test test test test test test test junk")
OWNER, ROOT = ANVIL_ACCOUNTS.wallet(0), ANVIL_ACCOUNTS.wallet(1)
WALLETS = HDWallets(DEVNET_MNEMONIC).addresses(1, 41)


@pytest.fixture
def node(anvil_factory: Callable[..., Anvil]) -> Anvil:
    return anvil_factory()


@pytest.fixture
def proxy(node: Anvil) -> Iterator[RpcProxy]:
    with RpcProxy(node.rpc_url) as started:
        yield started


@pytest.fixture
def space(node: Anvil) -> str:
    return deploy_space(node.rpc_url, OWNER.private_key)


def assert_one_membership_each(node: Anvil, space: str, wallets: list[str]) -> None:
    rpc = JsonRpc(node.rpc_url)
    calls = [
        ("eth_call", [{"to": space, "data": calldata("tokensOfOwner(address)", w)}, "latest"])
        for w in wallets
    ]
    held = {w: decode(["uint256[]"], r)[0] for w, r in zip(wallets, rpc.batch(calls), strict=True)}
    assert {w: len(t) for w, t in held.items()} == dict.fromkeys(wallets, 1)


def engine_for(url: str, space: str, **options: object) -> MintingEngine:
    settings: dict[str, object] = {"poll_interval": 0.02, "stale_after": 1.0, **options}
    return MintingEngine(JsonRpc(url), space, ROOT.private_key, **settings)  # type: ignore[arg-type]


def test_endpoint_outage_mid_run(node: Anvil, proxy: RpcProxy, space: str) -> None:
    def cut_once(progress: MintProgress) -> None:
        if progress.minted and not outages:
            outages.append(time.monotonic())
            proxy.outage(3.0)

    outages: list[float] = []
    engine = engine_for(proxy.url, space, max_in_flight=8, on_progress=cut_once)
    started = time.monotonic()
    report = engine.mint_all(WALLETS)

    assert outages, "the outage was never triggered"
    assert time.monotonic() - started >= 3.0
    assert sorted(report.minted) == sorted(WALLETS) and report.failed == {}
    assert_one_membership_each(node, space, WALLETS)


def test_dropped_transactions_are_resent_with_the_same_nonce(
    node: Anvil, proxy: RpcProxy, space: str
) -> None:
    proxy.drop_transactions(3)
    nonce = int(str(node.rpc("eth_getTransactionCount", ROOT.address, "latest")), 16)
    report = engine_for(proxy.url, space).mint_all(WALLETS[:20])

    assert len(proxy.dropped) == 3
    assert sorted(report.minted) == sorted(WALLETS[:20]) and report.failed == {}
    assert report.transactions_sent == 23
    # Same nonces: 20 mints used exactly 20 nonces.
    assert node.rpc("eth_getTransactionCount", ROOT.address, "latest") == hex(nonce + 20)
    assert_one_membership_each(node, space, WALLETS[:20])


def test_nonce_used_elsewhere_means_resync_and_mint_again(node: Anvil, space: str) -> None:
    def jump_nonce(progress: MintProgress) -> None:
        if not jumped:
            jumped.append(True)
            latest = int(str(node.rpc("eth_getTransactionCount", ROOT.address, "latest")), 16)
            node.rpc("anvil_setNonce", ROOT.address, hex(latest + 5))

    jumped: list[bool] = []
    report = engine_for(node.rpc_url, space, max_in_flight=8, on_progress=jump_nonce).mint_all(
        WALLETS[:24]
    )
    assert jumped
    assert sorted(report.minted) == sorted(WALLETS[:24]) and report.failed == {}
    assert report.transactions_sent == 24 + 5  # five sends met "nonce too low"
    assert_one_membership_each(node, space, WALLETS[:24])


def test_replacement_underpriced_raises_the_fee(node: Anvil, proxy: RpcProxy, space: str) -> None:
    proxy.reject_sender(ROOT.address, "replacement transaction underpriced")

    def accept_after_the_first_resends() -> None:
        # The second batch is sent only after the whole first one was answered (refused).
        deadline = time.monotonic() + 10
        while proxy.requests.count("eth_sendRawTransaction") < 8 and time.monotonic() < deadline:
            time.sleep(0.002)
        proxy.accept_sender(ROOT.address)

    watcher = threading.Thread(target=accept_after_the_first_resends)
    watcher.start()
    report = engine_for(proxy.url, space, max_in_flight=4).mint_all(WALLETS[:8])
    watcher.join()

    assert sorted(report.minted) == sorted(WALLETS[:8]) and report.failed == {}
    assert report.transactions_sent >= 12  # the first four were refused, then resent
    assert_one_membership_each(node, space, WALLETS[:8])


def test_a_node_that_keeps_refusing_gives_a_clear_error(proxy: RpcProxy, space: str) -> None:
    proxy.reject_sender(ROOT.address, "txpool is full")
    with pytest.raises(MintError, match="txpool is full") as raised:
        engine_for(proxy.url, space, max_in_flight=2).mint_all(WALLETS[:2])
    assert raised.value.recipient in WALLETS[:2]


def test_runs_under_gevent_without_blocking_other_greenlets(node: Anvil, space: str) -> None:
    script = textwrap.dedent(
        f"""
        from gevent import monkey
        monkey.patch_all()
        import gevent
        from river_client.chain.minting import MintingEngine
        from wallet_tools.derivation import HDWallets
        from wallet_tools.rpc import JsonRpc

        ticks = []
        def tick():
            while True:
                ticks.append(1)
                gevent.sleep(0.005)
        ticker = gevent.spawn(tick)
        wallets = HDWallets({DEVNET_MNEMONIC!r}).addresses(100, 120)
        engine = MintingEngine(JsonRpc({node.rpc_url!r}), {space!r}, {ROOT.private_key_hex!r},
                               poll_interval=0.05)
        report = gevent.spawn(engine.mint_all, wallets).get(timeout=60)
        ticker.kill()
        print(len(report.minted), len(ticks))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    minted, ticks = map(int, done.stdout.split())
    assert minted == 20
    assert ticks >= 5
