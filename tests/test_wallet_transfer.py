"""Sweeps on a real anvil: exact accounting, skips, injected failures, reruns, fee models."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from eth_hash.auto import keccak
from eth_keys import keys

from devnet.anvil import Anvil
from devnet.rpc_proxy import RpcProxy
from wallet_tools import cli
from wallet_tools.derivation import HDWallets
from wallet_tools.fees import GAS_PRICE_ORACLE, add_percent, detect_fee_model, unsigned_rlp
from wallet_tools.mnemonic import new_mnemonic
from wallet_tools.rpc import JsonRpc
from wallet_tools.transfer import TransferEngine

OLD = "test test test test test test test test test test test junk"
NEW = "toy alien remain valid print employ age multiply claim student story aware"
WALLETS = 6


def balances(node: Anvil, addresses: list[str]) -> list[int]:
    return [int(str(node.rpc("eth_getBalance", a, "latest")), 16) for a in addresses]


def set_balance(node: Anvil, address: str, wei: int) -> None:
    node.rpc("anvil_setBalance", address, hex(wei))


def run_transfer(url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    code = cli.main(
        [
            "transfer",
            "--old-seed",
            OLD,
            "--new-seed",
            NEW,
            "--rpc-url",
            url,
            "--end",
            str(WALLETS),
            "--yes",
            "--json",
            *extra,
        ]
    )
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


@pytest.fixture
def chain(anvil_factory: Callable[..., Anvil]) -> Anvil:
    """Old wallets 0..5 funded with 1 ETH each; new wallets empty."""
    return anvil_factory(accounts=WALLETS, balance_eth=1)


def test_sweep_accounts_for_every_wei(chain: Anvil, capsys: pytest.CaptureFixture[str]) -> None:
    old = HDWallets(OLD).addresses(0, WALLETS)
    new = HDWallets(NEW).addresses(0, WALLETS)
    set_balance(chain, old[4], 123_456_789_000_000_007)  # an odd balance moves to the wei too
    before_old, before_new = balances(chain, old), balances(chain, new)

    code, report = run_transfer(chain.rpc_url, capsys)

    assert code == 0
    assert report["transferred"] == WALLETS and report["failed"] == 0
    after_old, after_new = balances(chain, old), balances(chain, new)
    fees = {w["index"]: int(w["fee_wei"]) for w in report["wallets"]}
    for i in range(WALLETS):
        assert after_old[i] == 0  # a deterministic per-gas price leaves no dust on plain EVM
        assert after_new[i] == before_new[i] + before_old[i] - fees[i]
        assert int(report["wallets"][i]["value_wei"]) == before_old[i] - fees[i]
    assert sum(before_old) + sum(before_new) == sum(after_old) + sum(after_new) + int(
        report["total_fees_wei"]
    )
    assert 1 <= report["blocks_used"] <= WALLETS  # automine: no block interval to share


def test_all_wallets_share_a_block(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory(accounts=10, balance_eth=1, block_time=1)
    engine = TransferEngine(JsonRpc(node.rpc_url), poll_interval=0.1)
    report = engine.execute(
        engine.plan_sweep(HDWallets(OLD).wallets(0, 10), HDWallets(NEW).addresses(0, 10))
    )
    assert len(report.transferred) == 10
    assert report.blocks_used == 1
    assert report.elapsed < 3


def test_skips_failures_and_reruns(chain: Anvil, capsys: pytest.CaptureFixture[str]) -> None:
    old = HDWallets(OLD).addresses(0, WALLETS)
    set_balance(chain, old[1], 0)  # empty
    set_balance(chain, old[2], 1_000)  # cannot pay 21,000 gas

    with RpcProxy(chain.rpc_url) as proxy:
        proxy.reject_sender(old[3], "rejected for the test")
        code, report = run_transfer(proxy.url, capsys)
        status = {w["index"]: (w["status"], w["reason"]) for w in report["wallets"]}
        assert code == 1
        assert status[1] == ("skipped", "empty")
        assert status[2][0] == "skipped" and "cannot pay" in status[2][1]
        assert status[3][0] == "failed" and "rejected for the test" in status[3][1]
        assert {i for i, (s, _) in status.items() if s == "transferred"} == {0, 4, 5}
        assert balances(chain, old)[3] == 10**18
        assert balances(chain, [old[2]]) == [1_000]

        proxy.accept_sender(old[3])
        code, report = run_transfer(proxy.url, capsys)
        assert code == 0
        assert [w["index"] for w in report["wallets"] if w["status"] == "transferred"] == [3]

        code = cli.main(
            [
                "transfer",
                "--old-seed",
                OLD,
                "--new-seed",
                NEW,
                "--rpc-url",
                proxy.url,
                "--end",
                str(WALLETS),
                "--yes",
            ]
        )
        assert code == 0
        assert "Nothing to transfer" in capsys.readouterr().out
        assert balances(chain, old) == [0, 0, 1_000, 0, 0, 0]


def test_lost_transaction_is_broadcast_again(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory(accounts=3, balance_eth=1)
    with RpcProxy(node.rpc_url) as proxy:
        proxy.drop_transactions(1)
        engine = TransferEngine(JsonRpc(proxy.url), poll_interval=0.05)
        plans = engine.plan_sweep(HDWallets(OLD).wallets(0, 3), HDWallets(NEW).addresses(0, 3))
        report = engine.execute(plans)
        assert len(proxy.dropped) == 1
        assert len(report.transferred) == 3, [o.reason for o in report.outcomes]


def test_unanswered_send_is_found_out_and_sent_again(
    anvil_factory: Callable[..., Anvil],
) -> None:
    node = anvil_factory(accounts=3, balance_eth=1)
    with RpcProxy(node.rpc_url) as proxy:
        engine = TransferEngine(JsonRpc(proxy.url, retries=0, timeout=2), poll_interval=0.05)
        plans = engine.plan_sweep(HDWallets(OLD).wallets(0, 3), HDWallets(NEW).addresses(0, 3))
        proxy.outage(0.3)
        report = engine.execute(plans)
        assert len(report.transferred) == 3, [o.reason for o in report.outcomes]


def test_transaction_lost_for_good_is_reported(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory(accounts=2, balance_eth=1)
    with RpcProxy(node.rpc_url) as proxy:
        engine = TransferEngine(JsonRpc(proxy.url), poll_interval=0.02, rebroadcasts=2)
        plans = engine.plan_sweep(HDWallets(OLD).wallets(0, 2), HDWallets(NEW).addresses(0, 2))
        # The first wallet's send and both of its rebroadcasts are lost.
        proxy.drop_transactions(3, sender=plans[0].wallet.address)
        report = engine.execute(plans)
        assert [o.status for o in report.outcomes] == ["failed", "transferred"]
        assert report.outcomes[0].reason.endswith("again after 2 rebroadcasts")
        assert len(proxy.dropped) == 3


def test_legacy_chain_uses_gas_price(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory(accounts=2, balance_eth=1, extra_args=("--hardfork", "berlin"))
    engine = TransferEngine(JsonRpc(node.rpc_url))
    assert not engine.fee_model.eip1559
    report = engine.execute(
        engine.plan_sweep(HDWallets(OLD).wallets(0, 2), HDWallets(NEW).addresses(0, 2))
    )
    assert len(report.transferred) == 2
    assert balances(node, HDWallets(OLD).addresses(0, 2)) == [0, 0]


# A stand-in for the GasPriceOracle: getL1Fee(bytes) returns L1_FEE, anything else reverts.
L1_FEE = 7_654_321_000_000
ORACLE_STUB = (
    "0x60003560e01c6349948e0e14601357600080fd5b67"
    + L1_FEE.to_bytes(8, "big").hex()
    + "60005260206000f3"
)


def test_op_stack_l1_fee_is_budgeted(chain: Anvil) -> None:
    chain.rpc("anvil_setCode", GAS_PRICE_ORACLE, ORACLE_STUB)
    rpc = JsonRpc(chain.rpc_url)
    model = detect_fee_model(rpc, buffer_percent=10)
    assert model.op_stack and model.eip1559

    old_wallets = HDWallets(OLD).wallets(0, WALLETS)
    old = [w.address for w in old_wallets]
    tight = model.l2_fee() + L1_FEE  # pays L2 and the bare L1 estimate, not the margin
    set_balance(chain, old[5], tight)

    engine = TransferEngine(rpc, fee_model=model)
    plans = engine.plan_sweep(old_wallets, HDWallets(NEW).addresses(0, WALLETS))
    assert "cannot pay" in plans[5].skip_reason and "L1" in plans[5].skip_reason

    # The oracle is asked about the exact transaction: its unsigned RLP is what gets signed.
    signed = Account.sign_transaction(plans[0].tx, old_wallets[0].private_key)
    signature = keys.Signature(vrs=(signed.v, signed.r, signed.s))
    recovered = signature.recover_public_key_from_msg_hash(keccak(unsigned_rlp(plans[0].tx)))
    assert recovered.to_checksum_address() == old[0]

    report = engine.execute(plans)
    assert len(report.transferred) == 5
    reserved = add_percent(L1_FEE, 10)
    # anvil does not charge the L1 fee, so each sweep leaves exactly the reserved L1 budget.
    assert balances(chain, old) == [reserved] * 5 + [tight]


def test_random_mnemonics_round_trip(anvil_factory: Callable[..., Anvil]) -> None:
    source, target = new_mnemonic(), new_mnemonic(24)
    node = anvil_factory(mnemonic=source, accounts=2, balance_eth=3)
    engine = TransferEngine(JsonRpc(node.rpc_url))
    report = engine.execute(
        engine.plan_sweep(HDWallets(source).wallets(0, 2), HDWallets(target).addresses(0, 2))
    )
    assert sum(balances(node, HDWallets(target).addresses(0, 2))) == 6 * 10**18 - report.total_fees


def test_wallet_with_a_queued_transaction_is_skipped(anvil_factory: Callable[..., Anvil]) -> None:
    node = anvil_factory(accounts=2, balance_eth=1, extra_args=("--no-mining",))
    old = HDWallets(OLD).wallets(0, 2)
    engine = TransferEngine(JsonRpc(node.rpc_url))
    first = engine.plan_payment(old[0], old[1].address, 10**17)
    engine.rpc.call(
        "eth_sendRawTransaction",
        "0x" + bytes(Account.sign_transaction(first.tx, old[0].private_key).raw_transaction).hex(),
    )
    plans = engine.plan_sweep(old, HDWallets(NEW).addresses(0, 2))
    assert "1 transaction(s) from this wallet still wait to be mined" in plans[0].skip_reason
    assert not plans[1].skip_reason
