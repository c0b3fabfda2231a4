"""What the command line shows: amounts in ETH, tables, progress, and the cancelable countdown.

Human output goes to stdout through rich; progress and the countdown go to stderr so that
`--json` output on stdout stays a single JSON document. Nothing here ever prints a mnemonic;
private keys only reach `wallet_table` when the user asked for them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal

from rich.console import Console, JustifyMethod
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from wallet_tools.derivation import Wallet
from wallet_tools.outcomes import PlannedTransfer, TransferReport

WEI_PER_ETH = 10**18

# Piped output is not wrapped at 80 columns: tables keep whole addresses and keys.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 260)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def format_eth(wei: int) -> str:
    """Exact decimal ETH, without trailing zeros: 1500000000000000000 -> '1.5 ETH'."""
    text = format(Decimal(wei) / WEI_PER_ETH, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} ETH"


@contextmanager
def progress(description: str, total: int, enabled: bool = True) -> Iterator[Progress]:
    """A transient progress bar on stderr (hidden when stderr is not a terminal)."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not enabled or not err.is_terminal,
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar


def countdown(seconds: int) -> None:
    """Count down visibly on stderr; Ctrl+C raises KeyboardInterrupt to the caller."""
    message = "Sending in {} s; press Ctrl+C to cancel"
    if err.is_terminal:
        with Live(Text(message.format(seconds)), console=err, transient=True) as live:
            for left in range(seconds, 0, -1):
                live.update(Text(message.format(left), style="bold yellow"))
                time.sleep(1)
        return
    for left in range(seconds, 0, -1):
        print(message.format(left), file=sys.stderr, flush=True)
        time.sleep(1)


def wallet_table(wallets: Sequence[Wallet], show_private_keys: bool) -> Table:
    table = Table(title=f"{len(wallets)} wallet(s)", title_justify="left")
    table.add_column("index", justify="right")
    table.add_column("address", overflow="fold")
    if show_private_keys:
        table.add_column("private key", overflow="fold")
    for wallet in wallets:
        row = [str(wallet.index), wallet.address]
        if show_private_keys:
            row.append(wallet.private_key_hex)
        table.add_row(*row)
    return table


def balance_table(wallets: Sequence[Wallet], balances: Sequence[int]) -> Table:
    table = Table(show_footer=True)
    table.add_column("index", justify="right", footer="total")
    table.add_column("address", overflow="fold")
    table.add_column("balance", justify="right", footer=format_eth(sum(balances)))
    for wallet, balance in zip(wallets, balances, strict=True):
        table.add_row(str(wallet.index), wallet.address, format_eth(balance))
    return table


def plan_table(plans: Sequence[PlannedTransfer]) -> Table:
    table = Table(title="plan", title_justify="left")
    for name in ("index", "from", "to", "balance", "moves", "fee budget", "note"):
        justify: JustifyMethod = "right" if name in ("index", "balance", "moves") else "left"
        table.add_column(name, justify=justify, overflow="fold")
    for plan in plans:
        table.add_row(
            str(plan.index),
            plan.wallet.address,
            plan.destination,
            format_eth(plan.balance),
            format_eth(plan.value) if not plan.skip_reason else "-",
            format_eth(plan.fee_budget) if not plan.skip_reason else "-",
            plan.skip_reason or "send",
        )
    return table


def report_table(report: TransferReport) -> Table:
    table = Table(title="transfers", title_justify="left")
    # Hashes fold onto several lines in a narrow terminal rather than being cut short.
    for name in ("index", "from", "to", "status", "moved", "fee", "detail", "tx"):
        justify: JustifyMethod = "right" if name in ("index", "moved", "fee") else "left"
        table.add_column(name, justify=justify, overflow="fold")
    style = {"transferred": "green", "skipped": "yellow", "failed": "bold red"}
    for o in report.outcomes:
        detail = o.reason or (f"block {o.block}" if o.block is not None else "")
        table.add_row(
            str(o.index),
            o.source,
            o.destination,
            Text(o.status, style=style[o.status]),
            format_eth(o.value) if o.status == "transferred" else "-",
            format_eth(o.fee) if o.block is not None else "-",
            detail,
            o.tx_hash or "",
        )
    return table


WIDE_ENOUGH = 200


def show_plan(plans: Sequence[PlannedTransfer]) -> None:
    """The plan as a table on a wide console, else one line per wallet."""
    if out.width >= WIDE_ENOUGH:
        out.print(plan_table(plans))
        return
    for p in plans:
        action = (
            f"moves {format_eth(p.value)}, fee budget {format_eth(p.fee_budget)}"
            if not p.skip_reason
            else f"skip: {p.skip_reason}"
        )
        out.print(
            f"wallet {p.index} {p.wallet.address} -> {p.destination}: "
            f"balance {format_eth(p.balance)}, {action}"
        )


def show_report(report: TransferReport) -> None:
    """Every wallet's outcome as a table on a wide console, else one line per wallet."""
    if out.width >= WIDE_ENOUGH:
        out.print(report_table(report))
        return
    for o in report.outcomes:
        line = f"wallet {o.index} {o.source} -> {o.destination}: {o.status}"
        if o.status == "transferred":
            line += f" {format_eth(o.value)}, fee {format_eth(o.fee)}, block {o.block}"
        if o.reason:
            line += f" ({o.reason})"
        if o.tx_hash:
            line += f", tx {o.tx_hash}"
        out.print(line)


def summary_lines(report: TransferReport) -> list[str]:
    lines = [
        f"transferred: {len(report.transferred)}, skipped: {len(report.skipped)}, "
        f"failed: {len(report.failed)}",
        f"total moved: {format_eth(report.total_moved)}; total fees: "
        f"{format_eth(report.total_fees)}; blocks used: {report.blocks_used}; "
        f"{report.elapsed:.1f} s",
    ]
    for o in report.skipped:
        lines.append(f"  skipped wallet {o.index} ({o.source}): {o.reason}")
    for o in report.failed:
        lines.append(f"  FAILED wallet {o.index} ({o.source}): {o.reason}")
    if not report.transferred and not report.failed:
        lines.append("Nothing to transfer: every old wallet is empty or cannot pay its fee.")
    return lines
