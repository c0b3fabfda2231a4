"""Benchmark: how many followers one worker process holds in the chat phase, and their memory.

Starts the local stack (anvil, the dev node, a space with two channels) and a real Locust
master (web UI on 127.0.0.1, `--autostart`) with ONE worker process holding every follower,
with the default pacing (a message every rand x 2000*N/channels ms per follower). The master's
`/chat-run` route tells the phases apart. Measured on the worker process (psutil):

- start: RSS right after the worker connected, before any user;
- chatting: every follower joined and chatting; after `--settle` seconds, CPU (percent of one
  core) over `--window` seconds, and RSS;
- baseline, in the same run: KiB per Locust user that only waits for the signal (a local
  process of benchmarks/bench_signal.py's waiting users), i.e. Locust's and gevent's share;
- heartbeats: how often the master marked the worker missing (no heartbeat for about 3 s), and
  the worker's hub stalls of a second or more, how many and the longest (`stress_users.stalls`
  logs each), from the start to the end of the measurement, join phase included.

    .venv/bin/python benchmarks/bench_followers.py [--users 1000] [--window 30]

Goals: >= 1000 followers at < 80 % of a core, <= 100 KiB per follower. The last line is JSON
with the figures and their ratios to the goals and to the baseline. On a small machine the dev
node shares the CPU with the worker, so the join phase (every follower posts in every channel,
and every message is decrypted by every member) takes a while before the chat phase.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devnet.anvil import free_port  # noqa: E402
from devnet.stack import Stack  # noqa: E402
from stress_users.stalls import HELD  # noqa: E402

GOAL_USERS = 1000
GOAL_CPU_PERCENT = 80.0
GOAL_KIB_PER_USER = 100.0


def chat_run(web_port: int) -> dict[str, int]:
    try:
        reply = requests.get(f"http://127.0.0.1:{web_port}/chat-run", timeout=5)
        counts: dict[str, int] = reply.json()["counts"]
        return counts
    except (requests.RequestException, ValueError, KeyError):
        return {}


def wait_for(web_port: int, phase: str, users: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if chat_run(web_port).get(phase, 0) >= users:
            return time.monotonic() - started
        time.sleep(1.0)
    raise SystemExit(f"{phase} did not reach {users} in {timeout:.0f} s: {chat_run(web_port)}")


def stalls_logged(log: Path) -> list[float]:
    """The hub stalls of a second or more the worker logged, in seconds."""
    pattern = re.compile(re.escape(HELD) + r" ([0-9.]+) s")
    return [float(m.group(1)) for m in pattern.finditer(log.read_text(errors="replace"))]


def cpu_percent(process: psutil.Process, seconds: float) -> float:
    before = process.cpu_times()
    time.sleep(seconds)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return 100.0 * used / seconds


def _idle_rss(users: int) -> int:
    locust = str(ROOT / ".venv" / "bin" / "locust")
    bench_signal = str(ROOT / "benchmarks" / "bench_signal.py")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_SIGNAL_OUT": str(Path(tmp) / "x"), "BENCH_SIGNAL_USERS": "0"}
        process = subprocess.Popen(
            [locust, "-f", bench_signal, "--headless", f"-u{users}", f"-r{users}", "-t60"],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(6.0)
            return int(psutil.Process(process.pid).memory_info().rss)
        finally:
            process.kill()
            process.wait()


def idle_users_kib(users: int) -> float:
    """Baseline: KiB per Locust user that only waits for the signal, from two local processes
    of benchmarks/bench_signal.py's waiting users (1 and `users` of them; no signal comes)."""
    return (_idle_rss(users) - _idle_rss(1)) / 1024 / max(1, users - 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=GOAL_USERS)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--join-timeout", type=float, default=1800.0)
    parser.add_argument("--spawn-rate", type=float, default=50.0)
    args = parser.parse_args()

    users = args.users
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up the stack on SIGTERM
    locust = [str(ROOT / ".venv" / "bin" / "locust"), "-f", str(ROOT / "locustfile.py")]
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp) / "stack", block_time=1.0) as stack:
        env = {
            **os.environ,
            **stack.env,
            "STRESS_DURATION": "7200",
            "SIGNAL_TIMEOUT": str(args.join_timeout),
            "MINT_IN_FLIGHT": "256",
        }
        port, web_port = free_port(), free_port()
        master_log = open(Path(tmp) / "master.log", "wb")  # noqa: SIM115
        processes.append(
            subprocess.Popen(
                [
                    *locust,
                    "--master",
                    "--master-bind-host=127.0.0.1",
                    f"--master-bind-port={port}",
                    "--web-host=127.0.0.1",
                    f"--web-port={web_port}",
                    "--autostart",
                    "--expect-workers=1",
                    f"-u{users}",
                    f"-r{args.spawn_rate}",
                ],
                env=env,
                cwd=tmp,
                stdout=master_log,
                stderr=subprocess.STDOUT,
            )
        )
        worker = subprocess.Popen(
            [*locust, "--worker", "--master-host=127.0.0.1", f"--master-port={port}"],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "worker.log", "wb"),  # noqa: SIM115
        )
        processes.append(worker)
        measured = psutil.Process(worker.pid)
        try:
            time.sleep(2.0)
            rss_start = measured.memory_info().rss
            join_s = wait_for(web_port, "chatting", users, args.join_timeout)
            time.sleep(args.settle)
            cpu = cpu_percent(measured, args.window)
            rss_chat = measured.memory_info().rss
        except SystemExit:
            sys.stderr.write((Path(tmp) / "master.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()

        master_text = (Path(tmp) / "master.log").read_text(errors="replace")
        heartbeats_missed = master_text.count("failed to send heartbeat")
        stalls = stalls_logged(Path(tmp) / "worker.log")

    locust_kib_per_user = idle_users_kib(users)
    kib_per_user = (rss_chat - rss_start) / 1024 / users
    result: dict[str, Any] = {
        "users": users,
        "join_phase_s": round(join_s, 1),
        "chat_cpu_percent": round(cpu, 1),
        "rss_mib": round(rss_chat / 2**20, 1),
        "kib_per_user": round(kib_per_user, 1),
        "baseline_locust_kib_per_user": round(locust_kib_per_user, 1),
        "heartbeats_missed": heartbeats_missed,
        "hub_stalls_over_1s": len(stalls),
        "longest_of_those_s": max(stalls, default=0.0),
        "ratio_users_to_goal": round(users / GOAL_USERS, 3),
        "ratio_cpu_to_goal": round(cpu / GOAL_CPU_PERCENT, 3),
        "ratio_kib_to_goal": round(kib_per_user / GOAL_KIB_PER_USER, 3),
        "ratio_kib_to_baseline": round(kib_per_user / max(locust_kib_per_user, 0.1), 1),
    }
    print(
        f"{users} followers in the chat phase on one worker: {cpu:.1f} % of a core, "
        f"{kib_per_user:.1f} KiB per follower (Locust alone {locust_kib_per_user:.1f} KiB); "
        f"join phase {join_s:.0f} s; worker marked missing {heartbeats_missed} times, "
        f"{len(stalls)} hub stalls of 1 s or more (longest {max(stalls, default=0.0):.1f} s)"
    )
    print(json.dumps(result))
    ok = users >= GOAL_USERS and cpu < GOAL_CPU_PERCENT and kib_per_user <= GOAL_KIB_PER_USER
    ok = ok and heartbeats_missed == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
