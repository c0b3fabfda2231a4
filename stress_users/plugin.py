"""Registers the chat run on Locust's events; importing `stress_users.plugin` is enough.

- `init_command_line_parser`: the run's options (`stress_users.options`).
- `init`: every process checks its own MNEMONIC; the master (or local process) checks the
  options and stops before anything is sent if one is bad, naming it; message handlers are
  registered (signal, wallet slots, phases, summaries), then a worker pulls the signal.
- `test_start` on the master: fixes the session id and the follower count in the options
  (Locust forwards them to the workers with the spawn), resets the slot table, starts the root
  flow and the watcher in their own greenlets.
- The watcher takes back the slots of workers that went missing (their unfinished followers
  are reported lost) and, once every follower is done or failed and the worker summaries have
  arrived, ends the test: `--run-time` is only a cap. Headless, the master quits; with the
  web UI the test is stopped and the UI stays.
- `quitting` on the master: prints and writes the run summary (once per session) and sets the
  exit code; `quit` logs how many follower clients were stopped with their sync streams.
- `init` also warms up (imports, seed) so the signal releases followers without a stall,
  and starts the process's hub stall watch (`stress_users.stalls`).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any

import gevent
from locust import events
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from stress_users import runtime, summary, webui
from stress_users.config import OptionError, RunConfig, config_from_options
from stress_users.follower import Follower
from stress_users.metrics import Reporter
from stress_users.options import add_options
from stress_users.progress import USER_STATE, WORKER_SUMMARY, progress
from stress_users.root import RootFlow
from stress_users.signal import membership_signal
from stress_users.stalls import stalls
from stress_users.wallets import allocator, slots

logger = logging.getLogger(__name__)

OPTION_EXIT_CODE = 2
SUMMARY_WAIT_S = 15.0
END_GRACE_S = 60.0
LOST_AFTER_S = 10.0
_run: dict[str, Any] = {"root": None, "watcher": None, "ended": False}

__all__ = ["Follower"]


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    add_options(parser)


def _stop_on_bad_option(error: OptionError) -> None:
    logger.error("invalid option, nothing was sent: %s", error)
    sys.stderr.write(f"towns-stress: {error}\n")
    sys.exit(OPTION_EXIT_CODE)


def _configured(environment: Any) -> RunConfig:
    options = environment.parsed_options
    users = getattr(environment.runner, "target_user_count", None) or options.num_users
    return config_from_options(options, users=users or None)


@events.init.add_listener
def _on_init(environment: Any, runner: Any, web_ui: Any = None, **_kwargs: Any) -> None:
    if runner is None:
        return
    try:
        phrase = runtime.mnemonic()
        if not isinstance(runner, WorkerRunner) and environment.parsed_options.headless:
            _configured(environment)
    except OptionError as error:
        _stop_on_bad_option(error)
        return
    runtime.attach(runner, phrase)
    runtime.warm_up()
    stalls.start()

    if isinstance(runner, WorkerRunner):
        slots.attach_worker(runner)
        membership_signal.attach_worker(runner)
    else:
        if isinstance(runner, MasterRunner):
            membership_signal.attach_master(runner)
            allocator.attach_master(runner)
            runner.register_message(USER_STATE, _on_user_state)
            runner.register_message(WORKER_SUMMARY, _on_worker_summary)
        else:
            slots.attach_local(allocator)
        if web_ui is not None:
            webui.install(web_ui, progress)
    runtime.ready.set()


def _on_user_state(environment: Any, msg: Any, **_kwargs: Any) -> None:
    progress.update(msg.node_id, msg.data)


def _on_worker_summary(environment: Any, msg: Any, **_kwargs: Any) -> None:
    progress.add_worker_summary(msg.node_id, msg.data)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    options = environment.parsed_options
    # A worker that joins a running test can handle its spawn (and fire test_start) while its
    # runner is still being created, before `environment.runner` is even set.
    if isinstance(runner, WorkerRunner) or runner is None or getattr(options, "worker", False):
        return
    if not (options.session_id or "").strip():
        options.session_id = f"{time.strftime('%m%d%H%M')}-{uuid.uuid4().hex[:8]}"
    try:
        config = _configured(environment)
    except OptionError as error:
        logger.error("invalid option, the test is not started: %s", error)
        environment.process_exit_code = OPTION_EXIT_CODE
        gevent.spawn(runner.quit)
        return
    options.clients_count = config.clients_count
    options.session_id = config.session_id
    runtime.set_config(config)

    progress.reset(config.session_id, config.total_followers)
    allocator.reset(config.total_followers)
    membership_signal.begin_session(config.session_id)
    _run["ended"] = False
    root = RootFlow(
        environment=environment,
        config=config,
        mnemonic=runtime.mnemonic(),
        signal=membership_signal,
        progress=progress,
        reporter=Reporter(environment),
    )
    _run["root"] = root
    gevent.spawn(root.run)
    _run["watcher"] = gevent.spawn(_watch, environment, config)
    logger.info(
        "session %s: %d followers, %d channel(s), %g s of chat",
        config.session_id,
        config.total_followers,
        len(config.channel_ids),
        config.duration_s,
    )


def _vanished_workers(runner: Any, missing_since: dict[str, float]) -> list[str]:
    """Workers gone from the master, or missing (no heartbeat) for `LOST_AFTER_S`: a worker
    whose CPU is saturated can miss a few heartbeats and then heal."""
    if not isinstance(runner, MasterRunner):
        return []
    holders = set(allocator.holders.values()) | {s.node_id for s in progress.slots.values()}
    now = time.monotonic()
    gone = []
    for node_id in holders:
        client = runner.clients.get(node_id)
        if client is not None and client.state != STATE_MISSING:
            missing_since.pop(node_id, None)
            continue
        since = missing_since.setdefault(node_id, now)
        if client is None or now - since >= LOST_AFTER_S:
            gone.append(node_id)
    return gone


def _watch(environment: Any, config: RunConfig) -> None:
    """Reclaim vanished workers' slots; end the test when every follower is finished."""
    runner = environment.runner
    missing_since: dict[str, float] = {}
    while not _run["ended"]:
        gevent.sleep(1.0)
        for node_id in _vanished_workers(runner, missing_since):
            if node_id in progress.lost_workers:
                continue
            lost = progress.mark_lost(node_id)
            allocator.reclaim_worker(node_id)
            logger.warning("worker %s vanished; %d follower(s) lost", node_id, len(lost))
        ends_at = progress.chat_ends_at
        overdue = ends_at is not None and time.time() > ends_at + END_GRACE_S
        if progress.finished.is_set() or overdue:
            break
    if _run["ended"]:
        return

    expected = {
        s.node_id for s in progress.slots.values() if s.node_id not in progress.lost_workers
    }
    deadline = time.time() + SUMMARY_WAIT_S
    while time.time() < deadline and not expected.issubset(progress.workers):
        gevent.sleep(0.25)
    logger.info("every follower finished; ending the test")
    _run["ended"] = True
    end_test(environment)


def end_test(environment: Any) -> None:
    """Headless: quit (exit code from the summary). Web UI: stop the test, keep the UI (with
    `--autoquit` Locust then quits by itself); the summary is written right away."""
    if environment.web_ui is None:
        environment.runner.quit()
        return
    _finish(environment)
    environment.runner.stop()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner) or not progress.session_id:
        return
    _finish(environment)


@events.quit.add_listener
def _on_quit(**_kwargs: Any) -> None:
    """After Locust stopped the users (Ctrl+C, --run-time, the end of the run)."""
    if runtime.clients_stopped:
        logger.info("%d follower clients stopped, sync streams closed", runtime.clients_stopped)


def _finish(environment: Any) -> None:
    """Stop the root, then print and write the session's summary (once) and set the exit code."""
    _run["ended"] = True
    root: RootFlow | None = _run["root"]
    if root is not None:
        root.stop()
    if _run.get("summarised") == progress.session_id:
        return
    _run["summarised"] = progress.session_id
    result = summary.run_summary(environment, progress)
    path = summary.write_summary(environment.parsed_options, result)
    logger.info("run summary written to %s", path)
    sys.stdout.write(summary.summary_text(result) + "\n")
    code = summary.exit_code_for(result)
    if code and not environment.process_exit_code:
        environment.process_exit_code = code
