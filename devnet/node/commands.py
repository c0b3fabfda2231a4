"""Commands of `python -m devnet` for the dev node and the whole local stack.

    python -m devnet node --rpc-url URL [--port N] [--db FILE] ...   # the dev node, foreground
    python -m devnet up [--state-dir .devnet] [--block-time 2]       # everything, background
    python -m devnet status                                          # what runs where
    python -m devnet down                                            # stop it by PID

`up` starts anvil with the space contract, the dev node and the space streams (devnet.stack),
prints the environment a stress run needs, writes it to `<state-dir>/env` (shell-sourceable)
and the PIDs to `<state-dir>/stack.json`, then returns with both processes running. `down`
stops those PIDs (only if they still are anvil and the dev node).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from devnet.node.server import add_arguments, run_from_args

DEFAULT_STATE_DIR = Path(".devnet")
PROCESS_MARKERS = {"anvil": "anvil", "node": "devnet.node"}


def add_node_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run the River-compatible dev node in the foreground",
        description="Serve River's StreamService (Connect, HTTP/1.1 and h2c) on 127.0.0.1.",
    )
    add_arguments(parser)
    parser.set_defaults(run=run_from_args)


def add_up_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start anvil, the space contract, the dev node and a space with channels",
        description="Start the local stack in the background and print its environment.",
    )
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--block-time", type=float, default=2.0, help="chain block time (s)")
    parser.add_argument("--automine", action="store_true", help="a block per transaction")
    parser.add_argument("--channels", type=int, default=2, help="channels besides announce")
    parser.set_defaults(run=run_up)


def add_down_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("down", help="stop the local stack started by `up`")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.set_defaults(run=run_down)


def add_status_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("status", help="say what of the local stack runs where")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.set_defaults(run=run_status)


def _running(pid: int | None, role: str) -> bool:
    """True if `pid` is alive and still the process of that role (not a recycled PID)."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return PROCESS_MARKERS[role] in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _load(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "stack.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_up(args: argparse.Namespace) -> int:
    from devnet.stack import Stack

    previous = _load(args.state_dir)
    if previous and any(_running(previous.get(f"{r}_pid"), r) for r in PROCESS_MARKERS):
        print(f"the stack in {args.state_dir} is running; `python -m devnet down` first")
        return 1
    stack = Stack(
        args.state_dir, block_time=args.block_time, automine=args.automine, channels=args.channels
    ).start()
    assert stack.node is not None and stack.chain is not None
    state = {
        "anvil_pid": stack.chain.pid,
        "node_pid": stack.node.pid,
        "rpc_url": stack.chain.rpc_url,
        "node_url": stack.node.url,
        "node_address": stack.node.node_address,
        "node_log": str(stack.node.log_path),
        "started_at": time.time(),
    }
    (args.state_dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")
    for key, value in stack.env.items():
        print(f"{key}={value}")
    print(f"# written to {args.state_dir / 'env'}; stop with `python -m devnet down`")
    return 0


def _terminate(pid: int, role: str) -> None:
    if not _running(pid, role):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _running(pid, role):
        time.sleep(0.05)
    if _running(pid, role):
        os.kill(pid, signal.SIGKILL)


def run_down(args: argparse.Namespace) -> int:
    state = _load(args.state_dir)
    if state is None:
        print(f"no stack state in {args.state_dir}; nothing to stop")
        return 0
    for role in ("node", "anvil"):
        pid = state.get(f"{role}_pid")
        if pid:
            was_running = _running(pid, role)
            _terminate(pid, role)
            print(f"{role} (pid {pid}): {'stopped' if was_running else 'was not running'}")
    (args.state_dir / "stack.json").unlink()
    return 0


def run_status(args: argparse.Namespace) -> int:
    state = _load(args.state_dir)
    if state is None:
        print(f"not running (no {args.state_dir / 'stack.json'})")
        return 1
    healthy = True
    for role, url in (("anvil", state["rpc_url"]), ("node", state["node_url"])):
        pid = state.get(f"{role}_pid")
        alive = _running(pid, role)
        detail = ""
        try:
            if role == "anvil":
                reply = requests.post(
                    url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                    timeout=2,
                ).json()
                detail = f"block {int(reply['result'], 16)}"
            else:
                document = requests.get(url + "/status", timeout=2).json()
                detail = f"{document['streams']} streams, {document['syncs']} syncs"
        except (requests.RequestException, ValueError, KeyError) as exc:
            detail = f"not answering ({type(exc).__name__})"
            alive = False
        healthy = healthy and alive
        print(f"{role:6} pid {pid}  {'running' if alive else 'DOWN':8} {url}  {detail}")
    env_path = args.state_dir / "env"
    if env_path.is_file():
        print(f"environment: {env_path}")
    return 0 if healthy else 1
