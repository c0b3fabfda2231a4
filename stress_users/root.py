"""The root flow: what the master (or the single local process) does when a test starts.

In its own greenlet, with wallet 0 of MNEMONIC, the root:

1. starts its River client, joins the space and the announce channel;
2. posts the kickoff message (session id and the run's shape) and the `Clients: 0/N` counter;
3. replies in the kickoff's thread with system info and initial stats, then joins every chat
   channel and posts an opening line in it: its group key is the one the followers solicit
   and share, instead of each creating one (see `stress_users.chat.open_chat`);
4. mints a space membership for every follower wallet that lacks one (random clients too)
   with `river_client.chain.minting.MintingEngine`, which pipelines the transactions;
5. replies in the thread with `MEMBERSHIPS_MINTED:{sessionId}` and publishes the signal.

Meanwhile the counter message is edited every 5 s with the number of clients that reacted to
the kickoff. A failure anywhere publishes a failed signal (followers are released with the
reason), then stops the whole test with a non-zero exit code: Locust's advice is
`runner.quit()` plus `process_exit_code` (with the web UI: the test is stopped, the UI
stays), since an exception in a listener would let users start anyway. Wallet derivation for
many followers is chunked so heartbeats keep flowing.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import gevent

from stress_users.chat import ChatClient, open_chat
from stress_users.config import RunConfig
from stress_users.metrics import CHAIN, Reporter
from stress_users.progress import RunProgress
from stress_users.signal import MembershipSignal, SignalOutcome, signal_text

logger = logging.getLogger(__name__)

COUNTER_INTERVAL_S = 5.0
FAILURE_GRACE_S = 2.0
ROOT_EXIT_CODE = 3


def kickoff_text(config: RunConfig, workers: int) -> str:
    return (
        f"Stress chat kickoff, session {config.session_id}: {config.total_followers} clients "
        f"({config.random_clients_count} random) on {workers} worker process(es), "
        f"{len(config.channel_ids)} channel(s), {config.duration_s:g} s of chat. "
        "React to check in."
    )


def opening_text(config: RunConfig) -> str:
    return f"Session {config.session_id} chats here for {config.duration_s:g} s."


def counter_text(reacted: int, total: int) -> str:
    return f"Clients: {reacted}/{total} 🤖"


def system_info(config: RunConfig, workers: int) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (
        f"System: {platform.python_implementation()} {platform.python_version()} on "
        f"{platform.system()} {platform.machine()}, host {socket.gethostname()}, "
        f"{os.cpu_count()} CPUs, load {load[0]:.2f}. Stats: {workers} worker(s), "
        f"{config.total_followers} followers, max wait {config.max_chat_wait_ms:.0f} ms, "
        f"mint window {config.mint_in_flight}, started {time.strftime('%H:%M:%S')}."
    )


class RootFailure(RuntimeError):
    """The root could not prepare the run; the message says which step and why."""


@dataclass
class RootFlow:
    """One session's root; `run()` is the greenlet body."""

    environment: Any
    config: RunConfig
    mnemonic: str
    signal: MembershipSignal
    progress: RunProgress
    reporter: Reporter
    kickoff_id: str = ""
    counter_id: str = ""
    client: ChatClient | None = None
    _counter_greenlet: Any = field(default=None, repr=False)
    _counted: int = -1

    def run(self) -> None:
        try:
            self._prepare_and_mint()
        except Exception as exc:
            self.fail(exc)

    def workers(self) -> int:
        clients = getattr(self.environment.runner, "clients", None)
        return len(clients) if clients is not None else 1

    def _prepare_and_mint(self) -> None:
        from wallet_tools.derivation import HDWallets

        wallets = HDWallets(self.mnemonic)
        root = wallets.wallet(0)
        config = self.config

        self.progress.root_phase = "announcing"
        client = self.client = open_chat(root.private_key, config, self.reporter)
        client.start(config.space_id)
        client.join_space(config.space_id)
        client.join_channel(config.announce_channel_id)
        workers = self.workers()
        self.kickoff_id = client.post(config.announce_channel_id, kickoff_text(config, workers))
        self.counter_id = client.post(
            config.announce_channel_id, counter_text(0, config.total_followers)
        )
        client.post(
            config.announce_channel_id, system_info(config, workers), thread_id=self.kickoff_id
        )
        self._counter_greenlet = gevent.spawn(self._count_reactions)
        logger.info("root posted the kickoff of session %s", config.session_id)
        for channel in config.channel_ids:
            client.join_channel(channel)
            client.post(channel, opening_text(config))

        self.progress.root_phase = "minting"
        addresses: list[str] = []
        for slot in range(config.total_followers):
            addresses.append(wallets.wallet(config.wallet_index(slot)).address)
            if slot % 64 == 63:
                gevent.sleep(0)
        self.progress.mint_total = len(addresses)
        report = self._mint(root.private_key, addresses)
        if report.failed:
            sample = ", ".join(f"{a}: {r}" for a, r in list(report.failed.items())[:3])
            raise RootFailure(f"minting failed for {len(report.failed)} wallet(s) ({sample})")
        logger.info(
            "memberships: %d minted, %d already members, %d blocks, %.1f s",
            len(report.minted),
            len(report.already_members),
            report.blocks_used,
            report.elapsed,
        )

        client.post(
            config.announce_channel_id, signal_text(config.session_id), thread_id=self.kickoff_id
        )
        self._publish(ok=True, reason="")
        self.progress.root_phase = "signal sent"

    def _mint(self, root_key: bytes, addresses: list[str]) -> Any:
        from river_client.chain.minting import MintingEngine, MintProgress
        from river_client.chain.spaces import space_address_from_id
        from wallet_tools.rpc import JsonRpc

        def on_progress(update: MintProgress) -> None:
            self.progress.minted = update.minted
            self.progress.mint_failed = update.failed

        engine = MintingEngine(
            JsonRpc(self.config.base_rpc_url, session=self.reporter.chain_session()),
            space_address_from_id(self.config.space_id),
            root_key,
            max_in_flight=self.config.mint_in_flight,
            on_progress=on_progress,
        )
        started = time.perf_counter()
        try:
            report = engine.mint_all(addresses)
        except Exception as exc:
            self.reporter.record(CHAIN, "mint_all", (time.perf_counter() - started) * 1e3, exc)
            raise RootFailure(f"minting failed: {type(exc).__name__}: {exc}") from exc
        self.reporter.record(CHAIN, "mint_all", (time.perf_counter() - started) * 1e3)
        self.progress.minted = len(report.minted)
        self.progress.already_members = len(report.already_members)
        return report

    def _publish(self, ok: bool, reason: str) -> None:
        now = time.time()
        outcome = SignalOutcome(
            session_id=self.config.session_id,
            ok=ok,
            reason=reason,
            sent_at=now,
            chat_ends_at=now + self.config.duration_s,
            kickoff_id=self.kickoff_id,
        )
        self.progress.signal_sent_at = now
        self.progress.signal_ok = ok
        self.progress.signal_reason = reason
        self.progress.chat_ends_at = outcome.chat_ends_at
        self.signal.publish(outcome)

    def _count_reactions(self) -> None:
        while self.client is not None:
            gevent.sleep(COUNTER_INTERVAL_S)
            self._update_counter()

    def _update_counter(self) -> None:
        """Edit the counter message if the number of clients that reacted changed."""
        client = self.client
        if client is None or not self.counter_id:
            return
        try:
            reacted = client.reaction_count(self.config.announce_channel_id, self.kickoff_id)
            if reacted != self._counted:
                text = counter_text(reacted, self.config.total_followers)
                client.edit(self.config.announce_channel_id, self.counter_id, text)
                self._counted = reacted
                logger.info(
                    "counter message: %d/%d clients reacted", reacted, self.config.total_followers
                )
        except Exception as exc:
            logger.warning("could not update the counter message: %s", exc)

    def fail(self, exc: BaseException) -> None:
        """Release followers with the reason, then stop the whole test with a non-zero code."""
        reason = f"{type(exc).__name__}: {exc}"
        logger.error("root failed, stopping the test: %s", reason)
        self.progress.root_phase = f"failed: {reason}"
        if self.signal.outcome(self.config.session_id) is None:
            self._publish(ok=False, reason=reason)
        self.environment.process_exit_code = ROOT_EXIT_CODE
        gevent.sleep(FAILURE_GRACE_S)
        from stress_users.plugin import end_test

        end_test(self.environment)

    def stop(self) -> None:
        """A last counter update, then stop the root's client."""
        if self._counter_greenlet is not None:
            self._counter_greenlet.kill(block=False)
        self._update_counter()
        client, self.client = self.client, None
        if client is not None:
            try:
                client.stop()
            except Exception as exc:
                logger.warning("root client did not stop cleanly: %s", exc)
