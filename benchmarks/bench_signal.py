"""Benchmark: MEMBERSHIPS_MINTED propagation from the master to every waiting follower.

Runs real Locust processes on 127.0.0.1: a master and WORKERS worker processes holding
USERS_PER_WORKER users each, every user blocked on `stress_users.signal.membership_signal`
exactly as a follower is. Once all users are spawned, the master publishes the signal; each
user reports how long after the send it was released. Measured:

- release p100 / p50: send -> last (median) follower released (goal: p100 < 250 ms);
- baseline, in the same run: send -> arrival of the message in each worker's handler, i.e.
  Locust's own transport, which the signal cannot beat.

    .venv/bin/python benchmarks/bench_signal.py [--workers 4] [--users-per-worker 250]

The last line is JSON: the figures and their ratios to the goal and to the baseline.
When Locust imports this file (as a locustfile) it defines the waiting users instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL_P100_MS = 250.0
SESSION = "bench-signal"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--users-per-worker", type=int, default=250)
    args = parser.parse_args()
    users = args.workers * args.users_per_worker
    port = _free_port()
    locust = [str(ROOT / ".venv" / "bin" / "locust"), "-f", __file__]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ, BENCH_SIGNAL_OUT=str(out), BENCH_SIGNAL_USERS=str(users))
        processes = [
            subprocess.Popen(
                [
                    *locust,
                    "--headless",
                    "--master",
                    "--master-bind-host=127.0.0.1",
                    f"--master-bind-port={port}",
                    f"--expect-workers={args.workers}",
                    f"-u{users}",
                    f"-r{users}",
                    "-t120",
                    "--only-summary",
                ],
                env=env,
                cwd=tmp,
                stdout=subprocess.DEVNULL,
                stderr=open(Path(tmp) / "master.log", "w"),  # noqa: SIM115
            )
        ]
        for _ in range(args.workers):
            processes.append(
                subprocess.Popen(
                    [*locust, "--worker", "--master-host=127.0.0.1", f"--master-port={port}"],
                    env=env,
                    cwd=tmp,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        try:
            processes[0].wait(timeout=180)
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        if not out.exists():
            sys.stderr.write((Path(tmp) / "master.log").read_text()[-3000:])
            raise SystemExit("the benchmark run did not produce a result")
        result: dict[str, Any] = json.loads(out.read_text())

    result.update(workers=args.workers, users=users, goal_p100_ms=GOAL_P100_MS)
    result["ratio_p100_to_goal"] = round(result["release_p100_ms"] / GOAL_P100_MS, 3)
    result["ratio_p100_to_baseline"] = round(
        result["release_p100_ms"] / max(result["transport_p100_ms"], 0.001), 2
    )
    print(
        f"{users} followers on {args.workers} workers: released p50 "
        f"{result['release_p50_ms']:.1f} ms, p100 {result['release_p100_ms']:.1f} ms "
        f"(goal < {GOAL_P100_MS:.0f} ms); transport p100 {result['transport_p100_ms']:.1f} ms"
    )
    print(json.dumps(result))
    return 0 if result["release_p100_ms"] < GOAL_P100_MS and result["released"] == users else 1


def _define_locust_side() -> Any:
    """The waiting users and the master's publisher (only under Locust)."""
    import gevent
    from locust import User, events, task
    from locust.runners import MasterRunner, WorkerRunner

    from stress_users.signal import SignalOutcome, membership_signal

    released_ms: list[float] = []
    holder: dict[str, Any] = {}
    arrival_ms: list[float] = []

    @events.init.add_listener
    def _init(environment: Any, runner: Any, **_kwargs: Any) -> None:
        if isinstance(runner, WorkerRunner):
            membership_signal.attach_worker(runner)
        elif isinstance(runner, MasterRunner):
            membership_signal.attach_master(runner)
            runner.register_message("bench_times", _collect)

    def _collect(environment: Any, msg: Any, **_kwargs: Any) -> None:
        released_ms.extend(msg.data["released"])
        arrival_ms.append(msg.data["arrival"])

    @events.spawning_complete.add_listener
    def _spawned(user_count: int, **_kwargs: Any) -> None:
        runner = holder["environment"].runner
        if isinstance(runner, MasterRunner):
            gevent.spawn(_publish_then_report, runner)

    def _publish_then_report(runner: Any) -> None:
        membership_signal.begin_session(SESSION)
        gevent.sleep(2.0)
        now = time.time()
        membership_signal.publish(SignalOutcome(SESSION, True, "", now, now + 60))
        expected = int(os.environ["BENCH_SIGNAL_USERS"])
        deadline = time.time() + 30
        while len(released_ms) < expected and time.time() < deadline:
            gevent.sleep(0.1)
        ordered = sorted(released_ms)
        result = {
            "released": len(ordered),
            "release_p50_ms": round(ordered[len(ordered) // 2], 2) if ordered else -1,
            "release_p100_ms": round(ordered[-1], 2) if ordered else -1,
            "transport_p100_ms": round(max(arrival_ms), 2) if arrival_ms else -1,
        }
        Path(os.environ["BENCH_SIGNAL_OUT"]).write_text(json.dumps(result))
        runner.quit()

    @events.init.add_listener
    def _keep_env(environment: Any, **_kwargs: Any) -> None:
        holder["environment"] = environment

    local_times: list[float] = []

    class WaitingFollower(User):
        def __init__(self, environment: Any) -> None:
            super().__init__(environment)

        @task
        def wait_for_signal(self) -> None:
            outcome = membership_signal.wait(SESSION, 60)
            if outcome is not None:
                local_times.append((time.time() - outcome.sent_at) * 1000)
                if len(local_times) == self.environment.runner.user_count:
                    arrival = (membership_signal.received_at[SESSION] - outcome.sent_at) * 1000
                    self.environment.runner.send_message(
                        "bench_times", {"released": list(local_times), "arrival": arrival}
                    )
            while True:
                gevent.sleep(3600)

    return WaitingFollower


if __name__ == "__main__":
    sys.exit(main())
else:
    WaitingFollower = _define_locust_side()
