"""Benchmark: the dev node on one core, 100 concurrent clients posting channel messages.

The node runs pinned to CPU 0 (taskset) without chain checks; this process, pinned to CPU 1,
runs 100 posting clients, each with its own wallet, delegate key and keep-alive HTTP/1.1
connection, spread over 4 channels, plus one SyncStreams session per channel. The clients are
a minimal asyncio Connect client (binary protobuf, river_client's envelope signing), so that
one core of clients can out-post the node. Measured:

- AddEvent/s: acknowledged posts per second (each one signed by the client, then verified,
  checked, committed to SQLite and published to the sync sessions by the node);
- delivery latency: from just before a post's AddEvent to its arrival in the channel's sync
  session (p50, p99), with the clients posting at a paced total rate (`--rate`, default the
  1000/s goal; each client every clients/rate seconds) and, for reference, when saturated
  (every client posting back to back, where queueing dominates: 100 requests in flight);
- the baseline: Info calls/s by the same 100 clients in the same run (the server stack with
  no work in the request); `add_event_vs_info` is the ratio of the two.

Goals: >= 1000 AddEvent/s (saturated) and p99 delivery < 50 ms at 1000 posts/s. Node CPU per
call is the node process's CPU time over the calls it answered. On a shared machine the tail
latency includes time the node waits for its CPU: `node_preempted_while_paced` (involuntary
context switches of the node) and `load_average_1m` say how busy the machine was. The last line
is JSON.

    python benchmarks/bench_devnode.py [--clients 100] [--seconds 10] [--channels 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psutil

from devnet.stack import NodeProcess, create_space_streams
from river_client import ids
from river_client.errors import parse_tags
from river_client.events import MiniblockRef, make_envelope
from river_client.proto import protocol_pb2 as pb
from river_client.signing import DelegateSigner, WalletSigner
from river_client.transport import ConnectTransport

ROOT_KEY = bytes(range(1, 33))
SERVICE = b"/river.StreamService/"


class Connection:
    """One keep-alive HTTP/1.1 connection speaking Connect with binary protobuf."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    def _send(self, method: str, body: bytes, content_type: bytes) -> None:
        self.writer.write(
            b"POST " + SERVICE + method.encode() + b" HTTP/1.1\r\nhost: node\r\n"
            b"content-type: " + content_type + b"\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip

    async def _head(self) -> tuple[int, dict[bytes, bytes]]:
        lines = (await self.reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            if b":" in line:
                name, value = line.split(b":", 1)
                headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers

    async def _chunks(self, headers: dict[bytes, bytes]) -> AsyncIterator[bytes]:
        if b"content-length" in headers:
            yield await self.reader.readexactly(int(headers[b"content-length"]))
            return
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await self.reader.readexactly(size + 2)
            if size == 0:
                return
            yield chunk[:-2]

    async def call(self, method: str, body: bytes) -> tuple[int, bytes]:
        self._send(method, body, b"application/proto")
        status, headers = await self._head()
        return status, b"".join([c async for c in self._chunks(headers)])

    async def stream(self, method: str, body: bytes) -> AsyncIterator[bytes]:
        """The messages of a server-streaming call (stops at the end-of-stream envelope)."""
        self._send(method, struct.pack(">BI", 0, len(body)) + body, b"application/connect+proto")
        _status, headers = await self._head()
        buffer = b""
        async for chunk in self._chunks(headers):
            buffer += chunk
            while len(buffer) >= 5:
                flags, length = struct.unpack(">BI", buffer[:5])
                if len(buffer) < 5 + length:
                    break
                message, buffer = buffer[5 : 5 + length], buffer[5 + length :]
                if flags & 0x02:
                    return
                yield message


class Channel:
    """A channel's latest miniblock reference (kept fresh by its sync) and delivery times."""

    def __init__(self, channel_id: bytes, cookie: pb.SyncCookie) -> None:
        self.id = channel_id
        self.cookie = cookie
        self.ref = MiniblockRef(bytes(cookie.prev_miniblock_hash), cookie.minipool_gen - 1)
        self.sent: dict[bytes, float] = {}
        self.latencies_ms: list[float] = []

    async def listen(self, url: str) -> None:
        connection = await Connection.open(url)
        request = pb.SyncStreamsRequest(sync_pos=[self.cookie]).SerializeToString()
        async for data in connection.stream("SyncStreams", request):
            now = time.perf_counter()
            message = pb.SyncStreamsResponse.FromString(data)
            if message.sync_op != pb.SyncOp.SYNC_UPDATE:
                continue
            for envelope in message.stream.events:
                started = self.sent.pop(envelope.hash, None)
                if started is not None:
                    self.latencies_ms.append((now - started) * 1000)
            cookie = message.stream.next_sync_cookie
            self.ref = MiniblockRef(cookie.prev_miniblock_hash, cookie.minipool_gen - 1)


def setup(url: str, clients: int, channels: int) -> tuple[list[Channel], list[DelegateSigner]]:
    """A space, its channels, and `clients` users each joined to one channel."""
    transport = ConnectTransport(url, timeout=30.0)
    space_id = ids.space_stream_id(os.urandom(20))
    _announce, channel_ids = create_space_streams(url, ROOT_KEY, space_id, channels)
    signers = []
    for i in range(clients):
        signer = DelegateSigner(os.urandom(32))
        user_stream = ids.user_stream_id(signer.creator_address)
        inception = pb.UserPayload(inception=pb.UserPayload.Inception(stream_id=user_stream))
        created = transport.call(
            "CreateStream",
            pb.CreateStreamRequest(
                stream_id=user_stream,
                events=[make_envelope(signer, inception)],
                metadata={"spaceId": space_id},
            ),
            pb.CreateStreamResponse,
        )
        cookie = created.stream.next_sync_cookie
        ref = MiniblockRef(bytes(cookie.prev_miniblock_hash), cookie.minipool_gen - 1)
        membership = pb.UserPayload.UserMembership(
            stream_id=channel_ids[i % channels], op=pb.MembershipOp.SO_JOIN
        )
        join = make_envelope(signer, pb.UserPayload(user_membership=membership), ref)
        transport.call(
            "AddEvent", pb.AddEventRequest(stream_id=user_stream, event=join), pb.AddEventResponse
        )
        signers.append(signer)
    result = []
    for channel_id in channel_ids:
        reply = transport.call(
            "GetStream", pb.GetStreamRequest(stream_id=channel_id), pb.GetStreamResponse
        )
        result.append(Channel(channel_id, reply.stream.next_sync_cookie))
    transport.close()
    return result, signers


async def run_clients(
    url: str, clients: int, seconds: float, work: Callable[[int, Connection, float], Awaitable[int]]
) -> int:
    """`work(i, connection, deadline)` in `clients` tasks; returns the sum of their counts."""
    connections = [await Connection.open(url) for _ in range(clients)]
    deadline = time.perf_counter() + seconds
    counts = await asyncio.gather(*(work(i, c, deadline) for i, c in enumerate(connections)))
    for connection in connections:
        connection.writer.close()
    return sum(counts)


async def measure(url: str, node_pid: int, args: argparse.Namespace) -> dict[str, object]:
    channels, signers = setup(url, args.clients, args.channels)
    listeners = [asyncio.create_task(c.listen(url)) for c in channels]
    await asyncio.sleep(0.3)
    info_request = pb.InfoRequest().SerializeToString()

    async def info(i: int, connection: Connection, deadline: float) -> int:
        calls = 0
        while time.perf_counter() < deadline:
            status, _ = await connection.call("Info", info_request)
            calls += status == 200
        return calls

    async def post(i: int, connection: Connection, deadline: float, interval: float = 0.0) -> int:
        signer, channel = signers[i], channels[i % len(channels)]
        posts = 0
        next_at = time.perf_counter() + random.random() * interval
        while time.perf_counter() < deadline:
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval
            payload = pb.ChannelPayload(message=pb.EncryptedData(ciphertext=f"{i}:{posts}"))
            envelope = make_envelope(signer, payload, channel.ref)
            request = pb.AddEventRequest(stream_id=channel.id, event=envelope)
            channel.sent[envelope.hash] = time.perf_counter()
            status, body = await connection.call("AddEvent", request.SerializeToString())
            if status == 200:
                posts += 1
                continue
            channel.sent.pop(envelope.hash, None)
            tags = parse_tags(json.loads(body).get("message", ""))
            if "expNum" in tags:
                channel.ref = MiniblockRef(bytes.fromhex(tags["expected"][2:]), int(tags["expNum"]))
        return posts

    node = psutil.Process(node_pid)

    preempted: list[int] = []

    async def phase(work: Callable[[int, Connection, float], Awaitable[int]]) -> tuple:
        """(calls per second, node CPU microseconds per call, delivery latencies)."""
        await run_clients(url, args.clients, 1.0, work)  # warm-up
        await asyncio.sleep(0.3)
        for channel in channels:
            channel.latencies_ms.clear()
        cpu_before, started = node.cpu_times(), time.perf_counter()
        switches = node.num_ctx_switches().involuntary
        calls = await run_clients(url, args.clients, args.seconds, work)
        elapsed, cpu_after = time.perf_counter() - started, node.cpu_times()
        preempted.append(node.num_ctx_switches().involuntary - switches)
        await asyncio.sleep(0.5)  # the last deliveries
        cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
        latencies = sorted(x for c in channels for x in c.latencies_ms)
        return calls / elapsed, cpu / max(calls, 1) * 1e6, latencies

    info_rate, info_cpu_us, _ = await phase(info)
    post_rate, post_cpu_us, saturated = await phase(post)
    interval = args.clients / args.rate

    async def paced_post(i: int, connection: Connection, deadline: float) -> int:
        return await post(i, connection, deadline, interval)

    paced_rate, _, paced = await phase(paced_post)
    for listener in listeners:
        listener.cancel()

    def percentile(values: list[float], q: float) -> float | None:
        return round(values[min(len(values) - 1, int(len(values) * q))], 2) if values else None

    return {
        "clients": args.clients,
        "channels": args.channels,
        "seconds_per_phase": args.seconds,
        "add_event_per_s": round(post_rate, 1),
        "info_per_s": round(info_rate, 1),
        "add_event_vs_info": round(post_rate / info_rate, 3),
        "node_cpu_us_per_add_event": round(post_cpu_us),
        "node_cpu_us_per_info": round(info_cpu_us),
        "saturated_delivery_p50_ms": percentile(saturated, 0.5),
        "saturated_delivery_p99_ms": percentile(saturated, 0.99),
        "paced_rate_target_per_s": args.rate,
        "paced_add_event_per_s": round(paced_rate, 1),
        "delivery_p50_ms": percentile(paced, 0.5),
        "delivery_p99_ms": percentile(paced, 0.99),
        "delivered": len(paced),
        "node_preempted_while_paced": preempted[-1],
        "load_average_1m": round(os.getloadavg()[0], 2),
        "goal_add_event_per_s": 1000,
        "goal_delivery_p99_ms": 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="posts/s of the paced (latency) phase"
    )
    args = parser.parse_args()

    two_cores = (os.cpu_count() or 1) > 1
    if two_cores:
        os.sched_setaffinity(0, {1})
    db = Path(tempfile.mkdtemp(prefix="bench-devnode-")) / "node.sqlite"
    admin = "0x" + WalletSigner(ROOT_KEY).creator_address.hex()
    node = NodeProcess(
        db, admins=(admin,), cpu=0 if two_cores else None, options=("--log-level", "WARNING")
    )
    with node:
        assert node.pid is not None
        result = asyncio.run(measure(node.url, node.pid, args))
    print(
        f"saturated: AddEvent/s {result['add_event_per_s']} (Info/s {result['info_per_s']}); "
        f"node CPU per AddEvent {result['node_cpu_us_per_add_event']} us, per Info "
        f"{result['node_cpu_us_per_info']} us; paced at {result['paced_add_event_per_s']}/s: "
        f"delivery p50 {result['delivery_p50_ms']} ms, p99 {result['delivery_p99_ms']} ms"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
