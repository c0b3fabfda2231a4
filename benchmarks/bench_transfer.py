"""Benchmark: sweep 40 wallets on anvil with 1-second blocks, all at once against one by one.

The measured run is `TransferEngine`: every balance and nonce in one batch, every transaction
signed and sent without waiting, every receipt awaited together. The baseline is what the
TypeScript transfer tool does, wallet after wallet: read the balance, read the gas price, send,
wait for the receipt. Each run moves different funded wallets of the same chain (wallets
0..n-1 for the engine, n..2n-1 for the baseline), and reports its wall time and how many
blocks its transactions landed in.

    .venv/bin/python benchmarks/bench_transfer.py [--wallets 40] [--block-time 1]

The baseline takes about one block per wallet (~40 s at the defaults). The last line printed
is JSON with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import json
import time

from eth_account import Account
from web3 import Web3

from devnet.anvil import Anvil
from wallet_tools.derivation import HDWallets, Wallet
from wallet_tools.mnemonic import new_mnemonic
from wallet_tools.rpc import JsonRpc
from wallet_tools.transfer import TransferEngine


def sequential_sweep(url: str, sources: list[Wallet], destinations: list[str]) -> tuple[float, int]:
    """One wallet after the other, each waiting for its receipt; returns (seconds, blocks)."""
    w3 = Web3(Web3.HTTPProvider(url))
    chain_id = w3.eth.chain_id
    blocks = set()
    started = time.perf_counter()
    for wallet, destination in zip(sources, destinations, strict=True):
        balance = w3.eth.get_balance(wallet.address)  # type: ignore[arg-type]
        gas_price = w3.eth.gas_price
        fee = 21_000 * gas_price * 110 // 100
        if balance <= fee:
            continue
        tx = {
            "chainId": chain_id,
            "nonce": w3.eth.get_transaction_count(wallet.address),  # type: ignore[arg-type]
            "to": destination,
            "value": balance - fee,
            "gas": 21_000,
            "gasPrice": gas_price,
        }
        signed = Account.sign_transaction(tx, wallet.private_key)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.05)
        blocks.add(receipt["blockNumber"])
    return time.perf_counter() - started, len(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wallets", type=int, default=40)
    parser.add_argument("--block-time", type=float, default=1.0)
    args = parser.parse_args()
    n = args.wallets

    source_phrase, target_phrase = new_mnemonic(), new_mnemonic()
    sources = HDWallets(source_phrase).wallets(0, 2 * n)
    destinations = HDWallets(target_phrase).addresses(0, 2 * n)

    with Anvil(
        mnemonic=source_phrase, accounts=2 * n, balance_eth=1, block_time=args.block_time
    ) as chain:
        engine = TransferEngine(JsonRpc(chain.rpc_url), poll_interval=0.1)
        started = time.perf_counter()
        report = engine.execute(engine.plan_sweep(sources[:n], destinations[:n]))
        engine_time = time.perf_counter() - started
        assert len(report.transferred) == n, [o.reason for o in report.failed]

        baseline_time, baseline_blocks = sequential_sweep(
            chain.rpc_url, sources[n:], destinations[n:]
        )

    ratio = baseline_time / engine_time
    print(
        f"engine: {n} wallets in {engine_time:.2f} s, {report.blocks_used} block(s) "
        f"(goal <= 3 blocks)"
    )
    print(
        f"sequential send-and-wait: {n} wallets in {baseline_time:.2f} s, "
        f"{baseline_blocks} block(s)"
    )
    print(f"speed-up: {ratio:.1f}x (goal >= 10x), blocks {baseline_blocks} -> {report.blocks_used}")
    print(
        json.dumps(
            {
                "benchmark": "transfer",
                "wallets": n,
                "block_time_s": args.block_time,
                "engine_s": round(engine_time, 3),
                "engine_blocks": report.blocks_used,
                "baseline_s": round(baseline_time, 3),
                "baseline_blocks": baseline_blocks,
                "ratio": round(ratio, 1),
                "block_ratio": round(baseline_blocks / max(report.blocks_used, 1), 1),
                "goal_ratio": 10,
                "goal_blocks": 3,
            }
        )
    )


if __name__ == "__main__":
    main()
