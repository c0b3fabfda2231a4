"""The command line: `python -m wallet_tools COMMAND`, `generate-wallets` and `transfer-funds`.

Commands and flags follow the Towns stress package's TypeScript tools (generateWallets.ts and
transferFunds.ts), with the same defaults: `--rpc-url https://sepolia.base.org`, `--start 0`,
`--end 40` (`--end 10` for generate, as generate-wallets), `--gas-buffer 10` (percent).

    generate      [--seed] [--start] [--end] [--show-private-keys]
    new-mnemonic  [--words 12|24]
    check         [--old-seed] [--start] [--end] [--rpc-url]
    transfer      [--old-seed] [--new-seed] [--start] [--end] [--rpc-url] [--gas-buffer]
                  [--yes] [--dry-run] [--receipt-timeout]
    send-gas      --from --to --amount [--private-key] [--rpc-url] [--gas-buffer]

Every command takes `--json` (one JSON document on stdout) and `-v` (log lines on stderr).
Secrets come from the flag, else OLD_SEED / NEW_SEED / MNEMONIC / PRIVATE_KEY, else a hidden
prompt. Exit codes: 0 done, 1 a transfer or the chain failed, 2 bad input (nothing sent),
130 cancelled with Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from wallet_tools import display
from wallet_tools.derivation import HDWallets, check_range, wallet_from_private_key
from wallet_tools.exceptions import InputError, RpcError, SameSeedError, WalletToolsError
from wallet_tools.inputs import (
    parse_address,
    parse_buffer,
    parse_eth_amount,
    parse_index,
    parse_rpc_url,
    read_secret,
)
from wallet_tools.mnemonic import new_mnemonic, validate_mnemonic
from wallet_tools.rpc import JsonRpc
from wallet_tools.transfer import TransferEngine

DEFAULT_RPC_URL = "https://sepolia.base.org"
COUNTDOWN_SECONDS = 5


def _emit_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _range(args: argparse.Namespace) -> tuple[int, int]:
    start, end = parse_index(args.start, "--start"), parse_index(args.end, "--end")
    check_range(start, end)
    return start, end


def _mnemonic(flag_value: str | None, env: tuple[str, ...], flag: str, label: str) -> str:
    return validate_mnemonic(read_secret(flag_value, env, f"{label} (hidden): ", flag))


def _connect(url: str) -> tuple[JsonRpc, int]:
    """A client for url and its chain id; InputError when it does not answer JSON-RPC."""
    probe = JsonRpc(url, timeout=5, retries=1, backoff=0.2)
    try:
        chain_id = int(probe.call("eth_chainId"), 16)
    except (RpcError, ValueError, TypeError) as error:
        raise InputError(
            f"--rpc-url {probe.display_url} does not answer eth_chainId ({error}); "
            "give the URL of a reachable Ethereum JSON-RPC endpoint"
        ) from error
    finally:
        probe.close()
    return JsonRpc(url), chain_id


def cmd_generate(args: argparse.Namespace) -> int:
    start, end = _range(args)
    wallets = HDWallets(_mnemonic(args.seed, ("MNEMONIC",), "--seed", "Mnemonic"))
    with display.progress("deriving", end - start, enabled=end - start > 1000) as bar:
        derived = []
        for index in range(start, end):
            derived.append(wallets.wallet(index))
            bar.advance(bar.task_ids[0])
    if args.json:
        rows: list[dict[str, Any]] = [{"index": w.index, "address": w.address} for w in derived]
        if args.show_private_keys:
            for row, wallet in zip(rows, derived, strict=True):
                row["private_key"] = wallet.private_key_hex
        _emit_json({"path": f"{wallets.base_path}/i", "start": start, "end": end, "wallets": rows})
    else:
        display.out.print(display.wallet_table(derived, args.show_private_keys))
    return 0


def cmd_new_mnemonic(args: argparse.Namespace) -> int:
    phrase = new_mnemonic(args.words)
    if args.json:
        _emit_json({"mnemonic": phrase, "words": args.words})
    else:
        display.out.print(phrase)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    start, end = _range(args)
    url = parse_rpc_url(args.rpc_url)
    wallets = HDWallets(
        _mnemonic(args.old_seed, ("OLD_SEED", "MNEMONIC"), "--old-seed", "Mnemonic")
    )
    rpc, chain_id = _connect(url)
    derived = wallets.wallets(start, end)
    with display.progress("reading balances", 1, enabled=len(derived) > 100):
        balances = TransferEngine(rpc).balances([w.address for w in derived])
    if args.json:
        _emit_json(
            {
                "chain_id": chain_id,
                "rpc_url": rpc.display_url,
                "total_wei": str(sum(balances)),
                "wallets": [
                    {"index": w.index, "address": w.address, "balance_wei": str(b)}
                    for w, b in zip(derived, balances, strict=True)
                ],
            }
        )
    else:
        display.out.print(f"chain {chain_id} at {rpc.display_url}")
        display.out.print(display.balance_table(derived, balances))
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    start, end = _range(args)
    buffer = parse_buffer(args.gas_buffer)
    url = parse_rpc_url(args.rpc_url)
    old = _mnemonic(args.old_seed, ("OLD_SEED",), "--old-seed", "Old mnemonic")
    new = _mnemonic(args.new_seed, ("NEW_SEED",), "--new-seed", "New mnemonic")
    if old == new:
        raise SameSeedError(
            "--old-seed and --new-seed are the same mnemonic; give two different ones"
        )
    rpc, chain_id = _connect(url)

    display.err.print(
        f"Transfer every balance from old wallet i to new wallet i\n"
        f"  chain id:   {chain_id}\n  RPC URL:    {rpc.display_url}\n"
        f"  wallets:    [{start}, {end}) ({end - start} wallets)\n  gas buffer: {buffer}%"
    )
    if not args.dry_run and not args.yes:
        display.countdown(COUNTDOWN_SECONDS)

    old_wallets = HDWallets(old).wallets(start, end)
    destinations = HDWallets(new).addresses(start, end)
    with display.progress("transfers", len(old_wallets), enabled=not args.dry_run) as bar:

        def on_progress(phase: str, done: int, total: int) -> None:
            bar.update(bar.task_ids[0], description=phase, completed=done, total=max(total, 1))

        engine = TransferEngine(
            rpc,
            buffer_percent=buffer,
            receipt_timeout=args.receipt_timeout,
            on_progress=on_progress,
        )
        plans = engine.plan_sweep(old_wallets, destinations)
        if args.dry_run:
            model = engine.fee_model
            if args.json:
                _emit_json(
                    {
                        "dry_run": True,
                        "chain_id": chain_id,
                        "fee_model": model.kind,
                        "price_per_gas_wei": str(model.price),
                        "wallets": [
                            {
                                "index": p.index,
                                "from": p.wallet.address,
                                "to": p.destination,
                                "balance_wei": str(p.balance),
                                "value_wei": str(p.value if not p.skip_reason else 0),
                                "fee_budget_wei": str(p.fee_budget),
                                "skip_reason": p.skip_reason,
                            }
                            for p in plans
                        ],
                    }
                )
            else:
                display.out.print(f"fees: {model.kind}, {model.price} wei per gas")
                display.show_plan(plans)
                display.out.print("Dry run: nothing was sent.")
            return 0
        try:
            report = engine.execute(plans)
        except KeyboardInterrupt:
            display.err.print(
                "Interrupted while sending: transactions already sent may still be mined; "
                "run `check` to see the balances.",
                markup=False,
            )
            return 130

    if args.json:
        _emit_json(report.as_json())
    else:
        display.show_report(report)
        for line in display.summary_lines(report):
            display.out.print(line)
    return 1 if report.failed else 0


def cmd_send_gas(args: argparse.Namespace) -> int:
    sender_address = parse_address(args.sender, "--from")
    recipient = parse_address(args.to, "--to")
    amount = parse_eth_amount(args.amount)
    buffer = parse_buffer(args.gas_buffer)
    url = parse_rpc_url(args.rpc_url)
    key = read_secret(args.private_key, ("PRIVATE_KEY",), "Private key (hidden): ", "--private-key")
    wallet = wallet_from_private_key(key)
    if wallet.address != sender_address:
        raise InputError(
            f"--from {sender_address} is not the address of the given private key; "
            f"that key's address is {wallet.address}"
        )
    rpc, chain_id = _connect(url)

    engine = TransferEngine(rpc, buffer_percent=buffer, receipt_timeout=args.receipt_timeout)
    plan = engine.plan_payment(wallet, recipient, amount)
    report = engine.execute([plan])
    (outcome,) = report.outcomes
    balances = engine.balances([wallet.address, recipient])
    if args.json:
        document = report.as_json()
        document["balances_wei"] = {wallet.address: str(balances[0]), recipient: str(balances[1])}
        _emit_json(document)
    else:
        display.out.print(f"chain {chain_id} at {rpc.display_url}")
        display.show_report(report)
        display.out.print(f"sender {wallet.address}: {display.format_eth(balances[0])}")
        display.out.print(f"recipient {recipient}: {display.format_eth(balances[1])}")
    return 0 if outcome.status == "transferred" else 1


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help="log lines on stderr")


def _add_range(parser: argparse.ArgumentParser, end: str) -> None:
    parser.add_argument("--start", default="0", help="first wallet index (default 0)")
    parser.add_argument("--end", default=end, help=f"end index, exclusive (default {end})")


def _add_chain(parser: argparse.ArgumentParser, buffer: bool) -> None:
    parser.add_argument("--rpc-url", default=DEFAULT_RPC_URL, help=f"default {DEFAULT_RPC_URL}")
    if buffer:
        parser.add_argument(
            "--gas-buffer", default="10", help="percent added to the fee estimate (default 10)"
        )
        parser.add_argument(
            "--receipt-timeout", type=float, default=120.0, help="seconds to await receipts"
        )


def build_parser(prog: str, commands: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Test wallets' keys and ETH.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    if "generate" in commands:
        p = sub.add_parser("generate", help="list wallets at m/44'/60'/0'/0/i")
        p.add_argument("--seed", help="mnemonic (else MNEMONIC, else a hidden prompt)")
        _add_range(p, "10")
        p.add_argument("--show-private-keys", action="store_true", help="print private keys too")
        p.set_defaults(handler=cmd_generate)
    if "new-mnemonic" in commands:
        p = sub.add_parser("new-mnemonic", help="make a fresh BIP-39 mnemonic")
        p.add_argument("--words", type=int, choices=(12, 24), default=12)
        p.set_defaults(handler=cmd_new_mnemonic)
    if "check" in commands:
        p = sub.add_parser("check", help="balances of the old seed's wallets and their total")
        p.add_argument("--old-seed", help="mnemonic (else OLD_SEED or MNEMONIC, else a prompt)")
        _add_range(p, "40")
        _add_chain(p, buffer=False)
        p.set_defaults(handler=cmd_check)
    if "transfer" in commands:
        p = sub.add_parser("transfer", help="move old wallet i's balance to new wallet i")
        p.add_argument("--old-seed", help="source mnemonic (else OLD_SEED, else a prompt)")
        p.add_argument("--new-seed", help="destination mnemonic (else NEW_SEED, else a prompt)")
        _add_range(p, "40")
        _add_chain(p, buffer=True)
        p.add_argument("--yes", action="store_true", help="skip the 5-second countdown")
        p.add_argument("--dry-run", action="store_true", help="show the plan, send nothing")
        p.set_defaults(handler=cmd_transfer)
    if "send-gas" in commands:
        p = sub.add_parser("send-gas", help="send an amount of ETH from one key to an address")
        p.add_argument("--from", dest="sender", required=True, help="sender address")
        p.add_argument("--to", required=True, help="recipient address")
        p.add_argument("--amount", required=True, help="amount in ETH, e.g. 0.01")
        p.add_argument("--private-key", help="sender key (else PRIVATE_KEY, else a prompt)")
        _add_chain(p, buffer=True)
        p.set_defaults(handler=cmd_send_gas)

    for choice in sub.choices.values():
        _add_common(choice)
    return parser


def run(argv: Sequence[str], prog: str, commands: Sequence[str]) -> int:
    """Parse argv and run one command; returns the exit code."""
    args = build_parser(prog, commands).parse_args(list(argv))
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args))
    except InputError as error:
        display.err.print(f"error: {error}", markup=False)
        return 2
    except KeyboardInterrupt:
        display.err.print("Cancelled with Ctrl+C.", markup=False)
        return 130
    except WalletToolsError as error:
        display.err.print(f"error: {error}", markup=False)
        return 1


ALL_COMMANDS = ("generate", "new-mnemonic", "check", "transfer", "send-gas")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m wallet_tools COMMAND ...`"""
    return run(sys.argv[1:] if argv is None else argv, "python -m wallet_tools", ALL_COMMANDS)


def generate_wallets_main() -> None:
    """`generate-wallets --seed ... --start ... --end ...` (no command word, as the TS tool)."""
    sys.exit(run(["generate", *sys.argv[1:]], "generate-wallets", ("generate",)))


def transfer_funds_main() -> None:
    """`transfer-funds check|transfer|send-gas ...`"""
    sys.exit(run(sys.argv[1:], "transfer-funds", ("check", "transfer", "send-gas")))
