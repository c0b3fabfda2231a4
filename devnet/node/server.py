"""Run the dev node on 127.0.0.1: HTTP/1.1 and cleartext HTTP/2 on one port.

    python -m devnet node --port 5157 --db .devnet/node.sqlite --rpc-url http://127.0.0.1:8545

HTTP/1.1 is served by devnet.node.http1; HTTP/2 connections (prior knowledge) are relayed to
hypercorn on an internal port. The listening socket is bound first (port 0 = a free port); a line
`READY http://127.0.0.1:<port> node=0x<address>` is printed on stdout once the node serves, so
a parent process knows where it is. SIGTERM and SIGINT stop it cleanly (sync streams are closed,
queued writes committed); a kill -9 loses nothing acknowledged (see devnet.node.store).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import socket
import sys
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config

from devnet.node.connect import ConnectApp, ConnectHandler
from devnet.node.core import DevNode, NodeConfig
from devnet.node.http1 import Http1Connection
from devnet.node.service import StreamService

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The node's options (also used by `python -m devnet node`)."""
    defaults = NodeConfig()
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = free)")
    parser.add_argument("--db", type=Path, default=defaults.db_path, help="SQLite file")
    parser.add_argument(
        "--rpc-url", default=None, help="Base-chain JSON-RPC URL for membership checks"
    )
    parser.add_argument(
        "--no-chain",
        action="store_true",
        help="skip membership checks on the chain (every wallet is a member)",
    )
    parser.add_argument(
        "--admin",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="wallet allowed to create spaces and channels (repeatable)",
    )
    parser.add_argument("--miniblock-interval", type=float, default=defaults.miniblock_interval)
    parser.add_argument(
        "--recency-seconds",
        type=float,
        default=defaults.recency_seconds,
        help="how old a referenced miniblock's successor may be",
    )
    parser.add_argument(
        "--positive-cache-seconds", type=float, default=defaults.positive_cache_seconds
    )
    parser.add_argument(
        "--negative-cache-seconds", type=float, default=defaults.negative_cache_seconds
    )
    parser.add_argument("--max-event-bytes", type=int, default=defaults.max_event_bytes)
    parser.add_argument("--log-level", default="INFO")


def config_from_args(args: argparse.Namespace) -> NodeConfig:
    admins = set()
    for address in args.admin:
        text = address.lower().removeprefix("0x")
        if len(text) != 40:
            raise SystemExit(f"--admin {address!r} is not a 20-byte hex address")
        admins.add(bytes.fromhex(text))
    if not args.rpc_url and not args.no_chain:
        raise SystemExit("give --rpc-url (membership checks on the chain) or --no-chain")
    return NodeConfig(
        db_path=args.db,
        port=args.port,
        rpc_url=None if args.no_chain else args.rpc_url,
        admins=frozenset(admins),
        miniblock_interval=args.miniblock_interval,
        recency_seconds=args.recency_seconds,
        positive_cache_seconds=args.positive_cache_seconds,
        negative_cache_seconds=args.negative_cache_seconds,
        max_event_bytes=args.max_event_bytes,
    )


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


async def run(config: NodeConfig) -> None:
    """Serve until SIGTERM/SIGINT: HTTP/1.1 on the public port, HTTP/2 relayed to hypercorn."""
    node = DevNode(config)
    gc.freeze()  # what was loaded lives as long as the node; keep it out of collections
    handler = ConnectHandler(StreamService(node))
    public = _listen(config.host, config.port)
    internal = _listen("127.0.0.1", 0)
    port = public.getsockname()[1]

    hyper = Config()
    hyper.bind = [f"fd://{internal.fileno()}"]
    hyper.accesslog = None
    hyper.loglevel = "WARNING"
    hyper.include_date_header = False
    hyper.include_server_header = False
    hyper.keep_alive_timeout = 120
    hyper.h2_max_concurrent_streams = 1000
    hyper.graceful_timeout = 2

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    node.start()
    connections: set[Http1Connection] = set()
    h2_port = internal.getsockname()[1]
    server = await loop.create_server(
        lambda: Http1Connection(handler, h2_port, connections), sock=public
    )
    hypercorn = asyncio.create_task(
        serve(ConnectApp(handler), hyper, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    print(f"READY http://{config.host}:{port} node=0x{node.key.address.hex()}", flush=True)
    logger.info("dev node serving http://%s:%d (db %s)", config.host, port, config.db_path)

    await stop.wait()
    server.close()
    await node.stop()  # ends every sync session and commits what is queued
    await asyncio.sleep(0.05)  # let the last frames go out
    for connection in list(connections):
        connection.close()
    await asyncio.wait_for(hypercorn, timeout=5)
    logger.info("dev node stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet node", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    asyncio.run(run(config_from_args(args)))
    return 0
