"""The local stack's command line: `python -m devnet <command>`.

Each command lives with the code it drives and registers itself through an `add_*_command`
function (`subparsers.add_parser(...)` plus `set_defaults(run=...)`, where `run(args)` returns
the exit code). Adding a command means adding its function to `COMMANDS`.

    python -m devnet chain --block-time 1     # anvil + the membership contract as a space
    python -m devnet node --rpc-url URL       # the River-compatible dev node
    python -m devnet up | status | down       # the whole local stack in the background
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence

from devnet.chain import add_chain_command
from devnet.node.commands import (
    add_down_command,
    add_node_command,
    add_status_command,
    add_up_command,
)

AddCommand = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

COMMANDS: tuple[AddCommand, ...] = (
    add_chain_command,
    add_node_command,
    add_up_command,
    add_down_command,
    add_status_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devnet", description="Run the local stack for towns-stress."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
