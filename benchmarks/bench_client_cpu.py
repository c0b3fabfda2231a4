"""Client CPU per posted message: build, encrypt, serialize, hash and sign, no network.

What RiverClient does for every post once a channel has its group session: build the
ChannelMessage, AES-GCM-encrypt it with the hybrid session (EncryptedData), wrap it in a
StreamEvent with the miniblock reference and tags, serialize, take the River hash and sign it
with the device key (coincurve). The baseline runs the same steps but signs through
eth-account's `unsafe_sign_hash`, the usual Python way to sign a raw hash.

Goal: at most 100 µs per message. Last line: JSON.

    .venv/bin/python benchmarks/bench_client_cpu.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from eth_account import Account

from river_client.encryption.hybrid import HybridSession, encrypt_channel_message
from river_client.events import MiniblockRef, make_stream_event, river_hash
from river_client.messages import make_post
from river_client.proto import protocol_pb2 as pb
from river_client.signing import DelegateSigner

GOAL_US = 100.0


def post_pipeline(
    signer: DelegateSigner, sign: Callable[[bytes], bytes]
) -> Callable[[int], pb.Envelope]:
    """One post: ChannelMessage -> EncryptedData -> StreamEvent -> bytes -> hash -> signature."""
    channel = b"\x20" + os.urandom(20) + bytes(11)
    session = HybridSession.create(channel, 42, os.urandom(32))
    ref = MiniblockRef(os.urandom(32), 42)
    device_key = "A" * 43
    tags = pb.Tags(message_interaction_type=pb.MESSAGE_INTERACTION_TYPE_POST)

    def one(i: int) -> pb.Envelope:
        message = make_post(f"hello from the stress test, message {i}! session-1234")
        encrypted = encrypt_channel_message(session, message, device_key)
        payload = pb.ChannelPayload(message=encrypted)
        event = make_stream_event(signer, payload, ref, tags=tags)
        data = event.SerializeToString()
        digest = river_hash(data)
        return pb.Envelope(hash=digest, signature=sign(digest), event=data)

    return one


def measure(run: Callable[[int], pb.Envelope], count: int) -> float:
    """Seconds per call, best of three rounds."""
    for i in range(min(500, count)):
        run(i)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(count):
            run(i)
        best = min(best, (time.perf_counter() - started) / count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    args = parser.parse_args()

    signer = DelegateSigner(os.urandom(32))
    ours = post_pipeline(signer, signer.sign_hash)

    baseline_key = os.urandom(32)

    def eth_account_sign(digest: bytes) -> bytes:
        signed = Account.unsafe_sign_hash(digest, baseline_key)
        return bytes(signed.signature)

    baseline = post_pipeline(signer, eth_account_sign)

    ours_s = measure(ours, args.messages)
    baseline_s = measure(baseline, max(1000, args.messages // 10))
    ours_us, baseline_us = ours_s * 1e6, baseline_s * 1e6
    print(f"river_client post pipeline: {ours_us:.1f} µs per message (goal <= {GOAL_US:.0f} µs)")
    print(
        f"same pipeline signing with eth_account.unsafe_sign_hash: {baseline_us:.1f} µs per message"
    )
    print(f"speed-up: {baseline_us / ours_us:.1f}x")
    print(
        json.dumps(
            {
                "benchmark": "client_cpu",
                "messages": args.messages,
                "us_per_message": round(ours_us, 2),
                "baseline_us_per_message": round(baseline_us, 2),
                "ratio": round(baseline_us / ours_us, 2),
                "goal_us": GOAL_US,
                "meets_goal": ours_us <= GOAL_US,
            }
        )
    )


if __name__ == "__main__":
    main()
