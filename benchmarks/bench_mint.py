"""Benchmark: minting 200 space memberships on anvil with 2-second blocks, three ways.

1. ours: `MintingEngine` (locally managed nonces, a window of `--window` transactions in flight,
   sends batched, receipts fetched together once per block); also one run with the engine's
   default window of 16 (a public node's per-sender pool slots), for reference;
2. batches of 10, each batch awaiting all its confirmations before the next is sent (how the
   Towns TypeScript tool mints today);
3. one at a time, each awaiting its confirmation, then a 1.1 s pause (the Towns tool before
   its fix). Only `--sequential-sample` mints are measured and the time for N is extrapolated
   from them; the output says so.

Each way mints for its own fresh wallets on its own freshly deployed space contract, on one
anvil (`--block-time 2`, anvil's default 30 M block gas limit). Ours takes about one block, so
its time depends on where in the block interval it starts: it runs `--ours-runs` times, each
started at a random phase (seeded), and the median run is compared. Printed for each: blocks used,
blocks from the first send to the last confirmation, wall time and memberships per second, then
the ratios. The last line is JSON.

    .venv/bin/python benchmarks/bench_mint.py [--count 200] [--block-time 2] [--window 200]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from typing import Any

from devnet.anvil import Anvil
from devnet.chain import deploy_space
from river_client.chain.membership import SpaceContract
from river_client.chain.minting import MintingEngine
from river_client.chain.transactions import issued_token, read_fees, sign_join
from wallet_tools.derivation import HDWallets
from wallet_tools.rpc import JsonRpc

ANVIL = HDWallets("test test test test test test test test test test test junk")
OWNER, ROOT = ANVIL.wallet(0), ANVIL.wallet(1)
RECIPIENTS = HDWallets("abandon " * 11 + "about")
RECEIPT_POLL = 0.1  # the SDK's wrapTransaction polls every 100 ms
SDK_DELAY = 1.1


def mint_awaiting(rpc: JsonRpc, space: str, wallets: Sequence[str]) -> list[int]:
    """Send one joinSpace per wallet (one request each), then wait for every receipt; returns
    the blocks they landed in. What one awaited batch of the TypeScript tool does."""
    contract = SpaceContract(rpc, space)
    chain_id = int(rpc.call("eth_chainId"), 16)
    nonce = int(rpc.call("eth_getTransactionCount", ROOT.address, "pending"), 16)
    fees = read_fees(rpc)
    value = contract.join_price().value_wei
    gas = contract.estimate_join_gas(ROOT.address, wallets[0], value) or 1_500_000
    hashes = []
    for offset, wallet in enumerate(wallets):
        signed = sign_join(
            ROOT.private_key,
            chain_id=chain_id,
            space_address=space,
            recipient=wallet,
            nonce=nonce + offset,
            value=value,
            gas=gas,
            fees=fees,
        )
        rpc.call("eth_sendRawTransaction", signed.raw)
        hashes.append((wallet, signed.hash))

    blocks = []
    for wallet, tx_hash in hashes:
        while (receipt := rpc.call("eth_getTransactionReceipt", tx_hash)) is None:
            time.sleep(RECEIPT_POLL)
        if int(receipt["status"], 16) != 1 or issued_token(receipt, space, wallet) is None:
            raise RuntimeError(f"mint for {wallet} failed in {tx_hash}")
        blocks.append(int(receipt["blockNumber"], 16))
    return blocks


def summary(
    count: int, elapsed: float, blocks_used: int, blocks_after_first_send: int, **extra: Any
) -> dict[str, Any]:
    return {
        "memberships": count,
        "wall_time_s": round(elapsed, 3),
        "memberships_per_s": round(count / elapsed, 3),
        "blocks_used": blocks_used,
        "blocks_after_first_send": blocks_after_first_send,
        **extra,
    }


def run_ours(node: Anvil, count: int, window: int, run: int, phase: float) -> dict[str, Any]:
    space = deploy_space(node.rpc_url, OWNER.private_key)
    time.sleep(phase)  # deploy_space returns just after a block: start at a chosen phase
    wallets = RECIPIENTS.addresses(10_000 + run * count, 10_000 + (run + 1) * count)
    engine = MintingEngine(JsonRpc(node.rpc_url), space, ROOT.private_key, max_in_flight=window)
    report = engine.mint_all(wallets)
    if len(report.minted) != count or report.failed:
        raise RuntimeError(f"ours minted {len(report.minted)}/{count}: {report.failed}")
    assert report.blocks_after_first_send is not None
    return summary(
        count, report.elapsed, report.blocks_used, report.blocks_after_first_send,
        window=window, transactions_sent=report.transactions_sent,
        first_send_after_s=round(report.first_send_after or 0, 3),
    )  # fmt: skip


def run_batches(node: Anvil, count: int, phase: float, size: int = 10) -> dict[str, Any]:
    rpc = JsonRpc(node.rpc_url)
    space = deploy_space(node.rpc_url, OWNER.private_key)
    time.sleep(phase)
    wallets = RECIPIENTS.addresses(count, 2 * count)
    first_block = int(rpc.call("eth_blockNumber"), 16)
    started = time.monotonic()
    blocks: list[int] = []
    for start in range(0, count, size):
        blocks += mint_awaiting(rpc, space, wallets[start : start + size])
    elapsed = time.monotonic() - started
    return summary(count, elapsed, len(set(blocks)), max(blocks) - first_block, batch_size=size)


def run_sequential(node: Anvil, count: int, sample: int, phase: float) -> dict[str, Any]:
    rpc = JsonRpc(node.rpc_url)
    space = deploy_space(node.rpc_url, OWNER.private_key)
    time.sleep(phase)
    wallets = RECIPIENTS.addresses(2 * count, 2 * count + sample)
    first_block = int(rpc.call("eth_blockNumber"), 16)
    started = time.monotonic()
    blocks: list[int] = []
    for wallet in wallets:
        blocks += mint_awaiting(rpc, space, [wallet])
        time.sleep(SDK_DELAY)
    elapsed = time.monotonic() - started
    per_mint = elapsed / sample
    blocks_per_mint = (max(blocks) - first_block) / sample
    return {
        "memberships": count,
        "measured_sample": sample,
        "extrapolated": True,
        "sample_wall_time_s": round(elapsed, 3),
        "wall_time_s": round(per_mint * count, 3),
        "memberships_per_s": round(1 / per_mint, 3),
        "blocks_used": round(len(set(blocks)) / sample * count),
        "blocks_after_first_send": round(blocks_per_mint * count),
        "delay_s": SDK_DELAY,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="memberships per way")
    parser.add_argument("--block-time", type=float, default=2.0, help="anvil block interval (s)")
    parser.add_argument("--window", type=int, default=200, help="ours: transactions in flight")
    parser.add_argument("--sequential-sample", type=int, default=10, help="mints measured")
    parser.add_argument("--ours-runs", type=int, default=5, help="runs of ours (median used)")
    args = parser.parse_args(argv)
    phases = random.Random(7)

    with Anvil(block_time=args.block_time) as node:
        print(f"anvil {node.rpc_url}, {args.block_time} s blocks, {args.count} memberships each")
        runs = []
        for run in range(args.ours_runs):
            phase = phases.uniform(0, args.block_time)  # where in a block interval it starts
            runs.append(run_ours(node, args.count, args.window, run, phase))
            print(f"ours run {run + 1}    : {runs[-1]}")
        runs.sort(key=lambda r: r["wall_time_s"])
        ours = {
            **runs[len(runs) // 2],
            "runs": len(runs),
            "wall_time_s_each": [r["wall_time_s"] for r in runs],
            "max_blocks_after_first_send": max(r["blocks_after_first_send"] for r in runs),
        }
        print(f"ours (median) : {ours}")
        default_window = run_ours(node, args.count, 16, args.ours_runs, phases.uniform(0, 2))
        print(f"ours window 16: {default_window} (the engine's default window, for reference)")
        batches = run_batches(node, args.count, phases.uniform(0, args.block_time))
        print(f"batches of 10 : {batches}")
        sequential = run_sequential(
            node, args.count, args.sequential_sample, phases.uniform(0, args.block_time)
        )
        print(f"one at a time : {sequential} (extrapolated from {args.sequential_sample})")

    ratios = {
        "ours_vs_batches_of_10": round(batches["wall_time_s"] / ours["wall_time_s"], 2),
        "ours_slowest_run_vs_batches_of_10": round(
            batches["wall_time_s"] / runs[-1]["wall_time_s"], 2
        ),
        "ours_vs_one_at_a_time": round(sequential["wall_time_s"] / ours["wall_time_s"], 2),
        "batches_of_10_vs_one_at_a_time": round(
            sequential["wall_time_s"] / batches["wall_time_s"], 2
        ),
    }
    goals = {
        "ours_within_3_blocks_of_first_send": ours["max_blocks_after_first_send"] <= 3,
        "ours_at_least_20x_batches_of_10": ratios["ours_vs_batches_of_10"] >= 20,
    }
    print(f"ratios (wall time, higher = ours faster): {ratios}")
    print(f"goals: {goals}")
    print(
        json.dumps(
            {
                "benchmark": "bench_mint",
                "block_time_s": args.block_time,
                "count": args.count,
                "ours": ours,
                "ours_default_window_16": default_window,
                "batches_of_10": batches,
                "one_at_a_time_1_1s": sequential,
                "ratios": ratios,
                "goals": goals,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
