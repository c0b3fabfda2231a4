"""Real Locust runs of the chat plugin against the local stack (anvil + dev node).

Every run is `locust` subprocesses (this process never imports Locust, which would patch it
with gevent): a master with workers, or one standalone process, on random free ports bound to
127.0.0.1, stopped by PID whatever happens. The runs are short (a few followers, ~10 s of
chat); the stack is shared by the module and the tests run in order (the second run relies on
the first one's memberships; the root's lost funds come last).

What each run is judged by: Locust's exit code, the run summary the master writes beside the
CSV reports, the master's log, and, independently of the plugin, the dev node itself (the
creation time of every follower's user stream, read with GetMiniblocks).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet.anvil import free_port

ROOT = Path(__file__).resolve().parents[1]
LOCUST = str(Path(sys.executable).parent / "locust")
RUN_TIMEOUT_S = 150


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from devnet.stack import Stack

    local = Stack(tmp_path_factory.mktemp("stack"))
    local.start()
    try:
        yield local
    finally:
        local.stop()


class LocustRun:
    """Locust processes of one run; all output under `workdir`, all killed by PID at the end."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []
        self.master_process: subprocess.Popen[bytes] | None = None

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [LOCUST, "-f", str(ROOT / "locustfile.py"), *args],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        return process

    def master(self, users: int, workers: int, *extra: str) -> subprocess.Popen[bytes]:
        self.master_process = self._start(
            "master",
            [
                "--headless",
                "--master",
                "--master-bind-host=127.0.0.1",
                f"--master-bind-port={self.port}",
                f"--expect-workers={workers}",
                f"-u{users}",
                f"-r{users}",
                "-t180",
                "--csv=run",
                *extra,
            ],
        )
        return self.master_process

    def worker(self, name: str) -> subprocess.Popen[bytes]:
        return self._start(
            name, ["--worker", "--master-host=127.0.0.1", f"--master-port={self.port}"]
        )

    def standalone(self, users: int, *extra: str) -> subprocess.Popen[bytes]:
        self.master_process = self._start(
            "master",
            ["--headless", f"-u{users}", f"-r{users}", "-t180", "--csv=run", *extra],
        )
        return self.master_process

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> int:
        assert self.master_process is not None
        try:
            code = self.master_process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not end in {timeout} s:\n{self.log('master')[-3000:]}")
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=15)
        return code

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for_log(self, name: str, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} not in {name}.log after {timeout} s")
            time.sleep(0.2)

    def summary(self) -> dict[str, Any]:
        path = self.workdir / "run_summary.json"
        assert path.exists(), f"no run summary; master log:\n{self.log('master')[-3000:]}"
        result: dict[str, Any] = json.loads(path.read_text())
        return result

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        import csv

        with open(self.workdir / "run_stats.csv") as handle:
            return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def run_factory(tmp_path: Path, stack: Any) -> Iterator[Callable[..., LocustRun]]:
    runs: list[LocustRun] = []

    def make(**env: str) -> LocustRun:
        full = {**os.environ, **stack.env, "STRESS_DURATION": "10", "CHAT_WAIT_MS": "1500"}
        full.update(env)
        workdir = tmp_path / f"run{len(runs)}"
        workdir.mkdir()
        run = LocustRun(workdir, full)
        runs.append(run)
        return run

    try:
        yield make
    finally:
        for run in runs:
            run.stop()


def user_stream_created_at_ms(node_url: str, address: str) -> int | None:
    """Creation time of a wallet's user stream as the dev node stored it (None: no stream)."""
    from river_client import ids
    from river_client.errors import RiverError
    from river_client.events import parse_envelope
    from river_client.proto import protocol_pb2 as pb
    from river_client.transport import ConnectTransport

    transport = ConnectTransport(node_url)
    try:
        request = pb.GetMiniblocksRequest(
            stream_id=ids.user_stream_id(address), from_inclusive=0, to_exclusive=1
        )
        reply = transport.call("GetMiniblocks", request, pb.GetMiniblocksResponse)
    except RiverError as error:
        if error.name == "NOT_FOUND":
            return None
        raise
    finally:
        transport.close()
    if not reply.miniblocks:
        return None
    return int(parse_envelope(reply.miniblocks[0].events[0]).event.created_at_epoch_ms)


def node_url(stack: Any) -> str:
    env = stack.env
    return str(env.get("RIVER_NODE_URLS") or env["RIVER_NODE_URL"]).split(",")[0]


def base_rpc_url(stack: Any) -> str:
    return str(stack.env.get("BASE_CHAIN_RPC_URL") or stack.env["BASE_RPC_URL"])


def follower_addresses(mnemonic: str, indices: list[int]) -> list[str]:
    from wallet_tools.derivation import HDWallets

    wallets = HDWallets(mnemonic)
    return [wallets.wallet(index).address for index in indices]


def assert_all_chatted(summary: dict[str, Any], followers: int) -> None:
    phases = summary["phases"]
    assert phases["done"] == followers, summary
    assert phases["failed"] == 0 and summary["failures"] == {}
    assert summary["permission_denied"] == 0
    assert summary["no_stream_before_signal"] is True
    assert summary["signal"]["ok"] is True


def test_master_and_two_workers_all_join_and_chat(
    run_factory: Callable[..., LocustRun], stack: Any
) -> None:
    run = run_factory()
    run.master(6, 2)
    run.worker("worker1")
    run.worker("worker2")

    assert run.wait() == 0, run.log("master")[-3000:]

    summary = run.summary()
    assert_all_chatted(summary, 6)
    assert summary["minting"]["minted"] + summary["minting"]["already_members"] == 6
    assert len(summary["workers"]) == 2
    channels = stack.env["CHANNEL_IDS"].split(",")
    # Check-ins one worker's first user decrypted in each channel (its own included).
    assert set(summary["check_ins_per_channel"]) == set(channels)
    assert all(count >= 1 for count in summary["check_ins_per_channel"].values())
    # Every process watched its hub; six followers never hold it for a second.
    assert summary["master_hub_stalls"]["over_1s"] == 0
    for worker in summary["workers"].values():
        assert worker["hub_stalls"]["over_1s"] == 0, worker
    assert "longest hub stall" in run.log("master")
    stats = run.stats()
    assert int(stats[("river", "AddEvent")]["Request Count"]) > 6 * len(channels)
    assert int(stats[("delivery", "message")]["Request Count"]) > 0
    assert int(stats[("signal", "MEMBERSHIPS_MINTED")]["Request Count"]) == 6

    # The root's counter message followed the reactions to the kickoff.
    counts = re.findall(r"counter message: (\d)/6 clients reacted", run.log("master"))
    assert counts and int(counts[-1]) >= 5, counts

    # The node's own record: no follower stream was created before the signal went out.
    signal_ms = summary["signal"]["sent_at"] * 1000
    for address in follower_addresses(stack.env["MNEMONIC"], list(range(1, 7))):
        created = user_stream_created_at_ms(node_url(stack), address)
        assert created is not None, address
        if summary["minting"]["minted"] == 6:
            assert created >= signal_ms, (address, created, signal_ms)


def test_second_run_mints_nothing_and_passes(run_factory: Callable[..., LocustRun]) -> None:
    run = run_factory()
    run.master(6, 2)
    run.worker("worker1")
    run.worker("worker2")

    assert run.wait() == 0, run.log("master")[-3000:]

    summary = run.summary()
    assert_all_chatted(summary, 6)
    assert summary["minting"]["minted"] == 0
    assert summary["minting"]["already_members"] == 6


def test_worker_started_after_the_signal_gets_it_and_chats(
    run_factory: Callable[..., LocustRun],
) -> None:
    run = run_factory(STRESS_DURATION="15")
    run.master(4, 1)
    run.worker("worker1")
    run.wait_for_log("master", "signal pushed")
    run.worker("late")

    assert run.wait() == 0, run.log("master")[-3000:]

    assert "signal for session" in run.log("late")
    summary = run.summary()
    assert_all_chatted(summary, 4)
    assert len(summary["workers"]) == 2


def test_worker_killed_mid_run_is_reported_and_the_run_goes_on(
    run_factory: Callable[..., LocustRun],
) -> None:
    run = run_factory(STRESS_DURATION="15")
    run.master(4, 2)
    run.worker("worker1")
    doomed = run.worker("worker2")
    run.wait_for_log("worker2", "signal for session")
    time.sleep(3)
    os.kill(doomed.pid, signal.SIGKILL)

    run.wait()

    summary = run.summary()
    assert summary["phases"]["lost"] == 2, summary
    assert summary["phases"]["done"] == 2
    assert len(summary["lost_workers"]) == 1
    assert "vanished mid-run" in (run.workdir / "run_summary.txt").read_text()


def test_standalone_runs_the_same_flow(run_factory: Callable[..., LocustRun]) -> None:
    run = run_factory(STRESS_DURATION="8")
    run.standalone(3)

    assert run.wait() == 0, run.log("master")[-3000:]

    summary = run.summary()
    assert_all_chatted(summary, 3)
    assert list(summary["workers"]) == ["local"]


def test_ctrl_c_stops_followers_and_closes_their_sync_streams(
    run_factory: Callable[..., LocustRun],
) -> None:
    run = run_factory(STRESS_DURATION="60")
    master = run.standalone(3)
    run.wait_for_log("master", "counter message: 3/3 clients reacted")
    time.sleep(2)
    master.send_signal(signal.SIGINT)

    run.wait(60)

    log = run.log("master")
    assert "3 follower clients stopped, sync streams closed" in log
    assert "every follower finished" not in log
    assert "still chatting" in (run.workdir / "run_summary.txt").read_text()


def test_bad_option_stops_the_run_before_anything_is_sent(
    run_factory: Callable[..., LocustRun],
) -> None:
    run = run_factory(SPACE_ID="20" + "00" * 31)
    run.standalone(2)

    assert run.wait(30) == 2
    assert "--space-id (SPACE_ID)" in run.log("master")
    assert not (run.workdir / "run_summary.json").exists()


def test_root_without_funds_releases_followers_with_a_failure(
    run_factory: Callable[..., LocustRun], stack: Any
) -> None:
    from wallet_tools.rpc import JsonRpc

    session = f"nofunds{int(time.time())}"
    rpc = JsonRpc(base_rpc_url(stack))
    root = follower_addresses(stack.env["MNEMONIC"], [0])[0]
    balance = rpc.call("eth_getBalance", root, "latest")
    rpc.call("anvil_setBalance", root, "0x0")
    try:
        run = run_factory(SESSION_ID=session, CLIENTS_COUNT="0", RANDOM_CLIENTS_COUNT="2")
        run.master(2, 1)
        run.worker("worker1")
        code = run.wait()
    finally:
        rpc.call("anvil_setBalance", root, balance)

    assert code != 0
    summary = run.summary()
    assert summary["signal"]["ok"] is False
    assert "InsufficientFundsError" in summary["signal"]["reason"], summary["signal"]
    assert "Nothing was sent" in summary["signal"]["reason"]
    assert summary["phases"]["failed"] == 2
    assert all("root could not mint" in reason for reason in summary["failures"].values())
    from stress_users.config import random_client_index

    fresh = follower_addresses(
        stack.env["MNEMONIC"], [random_client_index(session, k) for k in range(2)]
    )
    for address in fresh:
        assert user_stream_created_at_ms(node_url(stack), address) is None
