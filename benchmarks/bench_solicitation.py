"""Answering key solicitations: the indexed session store against sorting every session.

A member of a busy channel knows hundreds of its hybrid sessions and sees hundreds of
KeySolicitations while followers join. `answer_key_solicitation` looks up only the requested
session ids in the store's per-stream index (a new device gets the stream's ids, kept sorted).
The baseline gives the same answers the direct way: sort every session of the stream by hex id
for each solicitation and filter. Half the solicitations come from new devices.

Last line: JSON.

    .venv/bin/python benchmarks/bench_solicitation.py [--sessions 500] [--solicitations 500]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections.abc import Callable

from river_client.encryption.device import Device
from river_client.encryption.hybrid import HybridSession, SessionStore
from river_client.encryption.solicitation import (
    KeySolicitation,
    answer_key_solicitation,
    make_key_solicitation,
)

Answer = tuple[list[HybridSession], list[str]] | None


def sort_all_answer(store: SessionStore, stream_id: bytes, solicitation: KeySolicitation) -> Answer:
    """The reply computed by sorting every session of the stream, hex ids recomputed."""
    known = sorted(store.sessions(stream_id), key=lambda s: s.session_id.hex())
    requested = set(solicitation.session_ids)
    if solicitation.is_new_device:
        reply = known
    else:
        reply = [s for s in known if s.session_id.hex() in requested]
    if not reply:
        return None
    fulfilled = sorted(s.session_id.hex() for s in reply if s.session_id.hex() in requested)
    return reply, fulfilled or sorted(s.session_id.hex() for s in reply)


def indexed_answer(store: SessionStore, stream_id: bytes, solicitation: KeySolicitation) -> Answer:
    reply = answer_key_solicitation(store, stream_id, solicitation, own_device_key="")
    return None if reply is None else (reply.sessions, reply.fulfilled_session_ids)


def best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--solicitations", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(7)
    stream_id = b"\x20" + os.urandom(31)
    store = SessionStore()
    for num in range(args.sessions):
        store.add(HybridSession(stream_id, os.urandom(32), num, os.urandom(32)))
    known_ids = store.session_ids(stream_id)
    solicitors = [Device().user_device for _ in range(8)]
    solicitations = [
        make_key_solicitation(
            solicitors[i % len(solicitors)],
            [*rng.sample(known_ids, min(3, len(known_ids))), "ff" * 32],
            is_new_device=i % 2 == 0,
        )
        for i in range(args.solicitations)
    ]

    for solicitation in solicitations:
        ours = indexed_answer(store, stream_id, solicitation)
        if ours != sort_all_answer(store, stream_id, solicitation):
            raise SystemExit(f"answers differ for solicitation {solicitation.session_ids}")

    ours_s = best_of(
        args.rounds, lambda: [indexed_answer(store, stream_id, s) for s in solicitations]
    )
    baseline_s = best_of(
        args.rounds, lambda: [sort_all_answer(store, stream_id, s) for s in solicitations]
    )
    print(
        f"{args.solicitations} solicitations, {args.sessions} sessions in the stream: "
        f"indexed {ours_s * 1e3:.1f} ms, sorting every session {baseline_s * 1e3:.1f} ms"
    )
    print(
        json.dumps(
            {
                "benchmark": "solicitation",
                "sessions": args.sessions,
                "solicitations": args.solicitations,
                "ms": round(ours_s * 1e3, 2),
                "baseline_ms": round(baseline_s * 1e3, 2),
                "ratio": round(baseline_s / ours_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
