"""Benchmark: memory of many RiverClients in one process, as a Locust worker holds them.

Starts the dev node (no chain checks) with a space and two channels, then N clients in this
process sharing one Connect transport: each starts, joins the space and both channels; then
each posts `--posts` messages in every channel, one every rand x `--pace` seconds, and every
client receives (decrypts) every message. Measured with psutil (after gc and malloc_trim):

- joined: RSS per client after start + joins;
- chatted: RSS per client once every message reached every client;
- freed: RSS per client left after stopping and dropping every client (allocator high-water
  and process-wide caches, not held by any client).

    .venv/bin/python benchmarks/bench_client_memory.py [--clients 100] [--posts 6] [--pace 8]
        [--messages-kept 100]

Goal: <= 100 KiB per client. The last line is JSON with the figures and their ratios to the
goal and to the joined figure (the cost of the messages).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import gevent
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devnet.stack import NodeProcess  # noqa: E402
from river_client import ids  # noqa: E402
from river_client.client import RiverClient  # noqa: E402
from river_client.transport import ConnectTransport  # noqa: E402
from wallet_tools.derivation import HDWallets  # noqa: E402

GOAL_KIB_PER_CLIENT = 100.0
WALLETS = HDWallets("test test test test test test test test test test test junk")
SPACE_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def rss_kib() -> float:
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return float(psutil.Process().memory_info().rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--posts", type=int, default=6)
    parser.add_argument("--pace", type=float, default=8.0)
    parser.add_argument("--messages-kept", type=int, default=None)
    args = parser.parse_args()
    options = {} if args.messages_kept is None else {"messages_kept": args.messages_kept}

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "node.sqlite"
        with NodeProcess(db, admins=(WALLETS.wallet(0).address,)) as node:
            admin = RiverClient(WALLETS.wallet(0).private_key, node.url)
            space = ids.space_stream_id(SPACE_ADDRESS).hex()
            admin.create_space(space)
            channels = [admin.create_channel(space) for _ in range(2)]
            transport = ConnectTransport(node.url, concurrency=64)
            received = [0]

            def count(_: object) -> None:
                received[0] += 1

            n = args.clients
            start = rss_kib()
            clients = [
                RiverClient(WALLETS.wallet(i).private_key, transport, on_message=count, **options)
                for i in range(1, n + 1)
            ]

            def join(client: RiverClient) -> None:
                client.start(space)
                client.join_space(space)
                for channel in channels:
                    client.join_channel(channel)

            gevent.joinall([gevent.spawn(join, c) for c in clients], raise_error=True)
            gevent.sleep(3)
            joined = (rss_kib() - start) / n

            def talk(client: RiverClient) -> None:
                for k in range(args.posts):
                    for channel in channels:
                        gevent.sleep(random.random() * args.pace)
                        client.post(channel, f"message {k} from {client.user_id}")

            started = time.monotonic()
            gevent.joinall([gevent.spawn(talk, c) for c in clients], raise_error=True)
            expected = n * n * args.posts * len(channels)
            while received[0] < expected and time.monotonic() - started < 600:
                gevent.sleep(0.5)
            gevent.sleep(2)
            chatted = (rss_kib() - start) / n
            for client in clients:
                client.stop()
            clients.clear()
            freed = (rss_kib() - start) / n
            admin.stop()
            transport.close()

    per_client = received[0] / n
    print(
        f"{n} clients, {per_client:.0f} messages received each: {joined:.0f} KiB/client joined, "
        f"{chatted:.0f} KiB/client after the messages, {freed:.0f} KiB/client left when freed"
    )
    print(
        json.dumps(
            {
                "clients": n,
                "received_per_client": per_client,
                "received_all": received[0] == expected,
                "kib_per_client_joined": round(joined, 1),
                "kib_per_client_chatted": round(chatted, 1),
                "kib_per_client_freed": round(freed, 1),
                "ratio_chatted_to_goal": round(chatted / GOAL_KIB_PER_CLIENT, 3),
                "ratio_chatted_to_joined": round(chatted / joined, 2) if joined > 0 else None,
            }
        )
    )


if __name__ == "__main__":
    main()
