"""Per-process state shared by the followers of one Locust process.

- `ready`: set at the end of this process's `init`, once every message handler is
  registered; a worker that joins a running test can spawn users before its `init` ran, so
  followers wait on it before their first message to the master.
- `current_config`: the run's `RunConfig`, parsed once per session from the options the
  master forwarded with the spawn (the master sets the session id before spawning).
- `wallets()`, `space_contract()`: the HD wallets of this process's MNEMONIC and the space's
  membership contract, built once per process.
- `report_phase`: a follower's phase change, to this process's tally and to the master.
- `record_seen`: the check-ins (and posts) per channel that this process's followers
  decrypted, each counted once, for the `Done` summary.
"""

from __future__ import annotations

import gc
import importlib
import logging
import socket
import weakref
from collections import Counter
from functools import lru_cache
from typing import Any

import gevent.event

from stress_users.chat import ChatMessage
from stress_users.config import RunConfig, config_from_options, mnemonic_from_environment
from stress_users.metrics import Reporter
from stress_users.progress import USER_STATE, progress, tally

logger = logging.getLogger(__name__)

WARM_MODULES = (
    "river_client.client",
    "river_client.chain.membership",
    "river_client.chain.spaces",
    "wallet_tools.rpc",
)
ready = gevent.event.Event()
followers: weakref.WeakSet[Any] = weakref.WeakSet()
clients_stopped = 0
kickoffs_not_decrypted = 0
_state: dict[str, Any] = {"runner": None, "config": None, "mnemonic": None}
check_ins: Counter[str] = Counter()
messages_seen: Counter[str] = Counter()
_seen_ids: set[str] = set()

__all__ = ["progress", "ready", "tally"]


def attach(runner: Any, mnemonic: str) -> None:
    _state["runner"] = runner
    _state["mnemonic"] = mnemonic


def warm_up() -> None:
    """Import the River and chain modules and derive the seed now, in `init`: done lazily, the
    first released follower would hold the hub for the import time (hundreds of ms) and
    delay the release of every other follower of the process.

    Then the objects made so far (modules, Locust's own) are frozen out of the garbage
    collector: they live as long as the process, and every full collection would otherwise
    walk them again while the hub waits."""
    for module in WARM_MODULES:
        importlib.import_module(module)
    wallets()
    gc.collect()
    gc.freeze()


def is_worker() -> bool:
    from locust.runners import WorkerRunner

    return isinstance(_state["runner"], WorkerRunner)


def set_config(config: RunConfig) -> None:
    _state["config"] = config


def current_config(environment: Any) -> RunConfig:
    """The run's configuration for the session the master forwarded (parsed once)."""
    options = environment.parsed_options
    config: RunConfig | None = _state["config"]
    if config is None or config.session_id != options.session_id:
        config = config_from_options(options)
        if config.session_id != options.session_id or not config.session_id:
            raise RuntimeError("the session id was not forwarded by the master")
        _state["config"] = config
        check_ins.clear()
        messages_seen.clear()
        _seen_ids.clear()
    return config


def mnemonic() -> str:
    phrase = _state["mnemonic"]
    if phrase is None:
        phrase = _state["mnemonic"] = mnemonic_from_environment()
    return str(phrase)


def wallets() -> Any:
    from wallet_tools.derivation import HDWallets

    return HDWallets(mnemonic())


@lru_cache(maxsize=4)
def _space_contract(base_rpc_url: str, space_id: str, reporter: Reporter) -> Any:
    from river_client.chain.membership import SpaceContract
    from river_client.chain.spaces import space_address_from_id
    from wallet_tools.rpc import JsonRpc

    rpc = JsonRpc(base_rpc_url, session=reporter.chain_session())
    return SpaceContract(rpc, space_address_from_id(space_id))


def space_contract(config: RunConfig, reporter: Reporter) -> Any:
    """The space's membership contract; its JSON-RPC calls are reported by `reporter`'s
    environment (one contract per process: reporters of one environment are interchangeable)."""
    return _space_contract(config.base_rpc_url, config.space_id, _process_reporter(reporter))


def _process_reporter(reporter: Reporter) -> Reporter:
    first = _state.setdefault("reporter", reporter)
    return first if isinstance(first, Reporter) else reporter


def process_name(environment: Any) -> str:
    runner = environment.runner
    index = getattr(runner, "worker_index", 0)
    return f"{socket.gethostname()} worker {index}"


def report_phase(session_id: str, slot: int, phase: str, detail: str = "", **extra: Any) -> None:
    """A follower's phase change: this process's tally, and the master's progress."""
    tally.set(slot, phase, detail)
    data = {"session_id": session_id, "slot": slot, "phase": phase, "detail": detail, **extra}
    runner = _state["runner"]
    if is_worker():
        runner.send_message(USER_STATE, data)
    else:
        progress.update("local", data)


def record_seen(message: ChatMessage) -> None:
    config: RunConfig | None = _state["config"]
    if config is None:
        return
    if message.kind != "post" or message.event_id in _seen_ids:
        return
    _seen_ids.add(message.event_id)
    messages_seen[message.channel_id] += 1
    if message.thread_id is None and message.text.endswith(f"! {config.session_id}"):
        check_ins[message.channel_id] += 1
