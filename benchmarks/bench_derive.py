"""Benchmark: derive 10,000 HD wallets, seed once (HDWallets) against Account.from_mnemonic.

`HDWallets` computes the BIP-39 seed and the m/44'/60'/0'/0 node once, then one BIP-32 child
per wallet. The baseline is what a naive loop does: `Account.from_mnemonic(m, account_path=
".../i")` per wallet, which repeats PBKDF2 and all five derivation levels every time. The
baseline is slow (about 2.5 ms per wallet), so by default it runs on a sample and its time for
all wallets is extrapolated; `--baseline-sample 0` runs it on every wallet. The output says
which was done. Both produce the same addresses (checked on the sample).

    .venv/bin/python benchmarks/bench_derive.py [--wallets 10000] [--baseline-sample 1000]

The last line printed is JSON with the figures and the speed-up ratio.
"""

from __future__ import annotations

import argparse
import json
import time

from eth_account import Account

from wallet_tools.derivation import HDWallets
from wallet_tools.mnemonic import new_mnemonic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wallets", type=int, default=10_000)
    parser.add_argument(
        "--baseline-sample", type=int, default=1_000, help="0 = run the baseline on every wallet"
    )
    args = parser.parse_args()
    Account.enable_unaudited_hdwallet_features()

    # A fresh mnemonic, so no cached seed helps the measured run.
    phrase = new_mnemonic()
    started = time.perf_counter()
    wallets = HDWallets(phrase).wallets(0, args.wallets)
    seed_once = time.perf_counter() - started

    sample = args.wallets if args.baseline_sample <= 0 else min(args.baseline_sample, args.wallets)
    started = time.perf_counter()
    baseline_addresses = [
        Account.from_mnemonic(phrase, account_path=f"m/44'/60'/0'/0/{i}").address
        for i in range(sample)
    ]
    baseline_sample_time = time.perf_counter() - started
    assert baseline_addresses == [w.address for w in wallets[:sample]], "addresses differ"
    baseline = baseline_sample_time * args.wallets / sample
    extrapolated = sample < args.wallets

    print(
        f"seed once (HDWallets): {args.wallets} wallets in {seed_once:.3f} s "
        f"({seed_once / args.wallets * 1e6:.1f} µs per wallet)"
    )
    how = (
        f"measured on {sample} wallets and extrapolated to {args.wallets}"
        if extrapolated
        else f"measured on all {args.wallets} wallets"
    )
    print(
        f"Account.from_mnemonic per wallet: {baseline:.2f} s "
        f"({baseline_sample_time / sample * 1e3:.3f} ms per wallet; {how})"
    )
    print(f"speed-up: {baseline / seed_once:.1f}x (goal >= 20x)")
    print(
        json.dumps(
            {
                "benchmark": "derive",
                "wallets": args.wallets,
                "seed_once_s": round(seed_once, 4),
                "seed_once_us_per_wallet": round(seed_once / args.wallets * 1e6, 2),
                "baseline_s": round(baseline, 3),
                "baseline_ms_per_wallet": round(baseline_sample_time / sample * 1e3, 4),
                "baseline_sample": sample,
                "baseline_extrapolated": extrapolated,
                "ratio": round(baseline / seed_once, 1),
                "goal_ratio": 20,
            }
        )
    )


if __name__ == "__main__":
    main()
