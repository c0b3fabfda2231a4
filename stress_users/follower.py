"""The follower: one Locust User per test wallet, the chat side of the run.

A follower gets a wallet slot from the master, then waits for the MEMBERSHIPS_MINTED signal
(timeout max(duration, 20 s)) before touching River, so no follower stream exists before the
root has minted. Then it checks its membership on chain, starts its River client (user
streams, space, announce channel), finds the kickoff and the signal reply in the announce
channel (in a busy channel a late joiner may not load them: it then uses the kickoff id the
signal carries, and the summary counts it), reacts to the kickoff with a random emoji, joins
every channel, then posts `<words>! <sessionId>` in all of them at once (its first post in a
channel waits for the channel's group key: see `stress_users.chat.open_chat`), and chats: a
message to a random channel, then a random wait of up to `RunConfig.max_chat_wait_ms`, until
the chat phase ends.
The first user of each process also posts a check-in reply in the kickoff's thread and, when
its process's followers are done, the `Done` summary (see `stress_users.summary`).

The whole flow is one task run once; afterwards the user idles until the master ends the
test. Stopping the user (Ctrl+C, `--stop-timeout`, re-dispatch) closes its sync stream and
returns its wallet slot.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, NoReturn

import gevent
from gevent.lock import BoundedSemaphore
from locust import User, constant, task

from stress_users import runtime
from stress_users.chat import ChatClient, ChatMessage, open_chat, wait_for_message
from stress_users.config import RunConfig
from stress_users.metrics import PHASE, SIGNAL, Reporter, error_name
from stress_users.progress import CHATTING, DONE, FAILED, JOINING, WAITING
from stress_users.signal import SignalOutcome, membership_signal, signal_text
from stress_users.summary import post_done
from stress_users.wallets import slots

logger = logging.getLogger(__name__)

EMOJIS = ("👍", "🎉", "🚀", "🔥", "👋", "😄", "🤖", "✅", "💬", "🌊")
WORDS = (
    "amber", "brisk", "cosmic", "dapper", "eager", "fuzzy", "gentle", "humble", "jolly",
    "lucky", "mellow", "nimble", "plucky", "quirky", "rustic", "snappy", "tidy", "witty",
    "otter", "badger", "comet", "falcon", "walrus", "pretzel", "noodle", "teapot", "lantern",
)  # fmt: skip
MEMBERSHIP_POLL_S = 1.5
SLOT_RETRY_S = 30.0
KICKOFF_QUICK_S = 30.0
# Loading streams is the CPU-heavy part of joining (a busy channel's members and history):
# the followers of a process take turns, so that a thousand released at once keep the
# process responsive (heartbeats, other followers' chat) instead of all parsing at once.
JOINING_AT_ONCE = BoundedSemaphore(16)
RNG = random.Random()  # one for the process: a Random's state is 2.5 KiB, a follower's budget


def silly_words(rng: random.Random, count: int = 3) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count))


class FollowerFailure(RuntimeError):
    """A follower could not join; the message says at which step and why."""


class Follower(User):
    """One test wallet chatting in the run's channels."""

    wait_time = constant(1)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.reporter = Reporter(environment)
        self.rng = RNG
        self.slot: int | None = None
        self.client: ChatClient | None = None
        self.config: RunConfig | None = None
        self.kickoff: ChatMessage | None = None
        self._watches: tuple[gevent.Greenlet, ...] = ()
        self.is_lead = False
        self.finished = False
        self.sent = 0
        runtime.followers.add(self)

    @task
    def chat_run(self) -> None:
        runtime.ready.wait()
        config = self.config = runtime.current_config(self.environment)
        slot = self._acquire_slot()
        if slot is None:
            logger.error("no wallet slot left for this user (more users than followers)")
            self._idle()
        self.slot = slot
        runtime.tally.begin(config.session_id)
        self.is_lead = runtime.tally.claim_lead(slot)

        try:
            self._follow(config, slot)
        except gevent.GreenletExit:
            raise
        except Exception as exc:
            reason = f"{error_name(exc)}: {exc}"
            logger.error("follower %d failed: %s", slot, reason)
            self.reporter.record(PHASE, "join", 0.0, exc)
            self._report(FAILED, reason)
        self.finished = True
        if self.is_lead or runtime.tally.claim_lead(slot):
            self.is_lead = True
            post_done(self, config)
        self._idle()

    def _acquire_slot(self) -> int | None:
        """A wallet slot; when Locust moves users between workers, the stopped users' slots
        may come back a moment after the new users ask, so ask again for a while."""
        deadline = time.monotonic() + SLOT_RETRY_S
        while True:
            slot = slots.acquire()
            if slot is not None or time.monotonic() >= deadline:
                return slot
            gevent.sleep(1.0)

    def _idle(self) -> NoReturn:
        while True:
            gevent.sleep(3600)

    def _report(self, phase: str, detail: str = "", **extra: Any) -> None:
        assert self.slot is not None and self.config is not None
        runtime.report_phase(self.config.session_id, self.slot, phase, detail, **extra)

    def _follow(self, config: RunConfig, slot: int) -> None:
        self._report(WAITING)
        outcome = membership_signal.wait(config.session_id, config.follower_signal_timeout_s)
        if outcome is None:
            raise FollowerFailure(
                f"no MEMBERSHIPS_MINTED signal within {config.follower_signal_timeout_s:g} s"
            )
        released = time.time()
        self.reporter.record(
            SIGNAL, "MEMBERSHIPS_MINTED", max(0.0, released - outcome.sent_at) * 1e3
        )
        if not outcome.ok:
            raise FollowerFailure(f"the root could not mint: {outcome.reason}")

        started = time.perf_counter()
        self._report(JOINING)
        wallet = runtime.wallets().wallet(config.wallet_index(slot))
        self._wait_for_membership(config, wallet.address, outcome.chat_ends_at)

        self._report(JOINING, first_stream_at=time.time())
        client = self.client = open_chat(
            wallet.private_key, config, self.reporter, on_message=self._seen, follower=True
        )
        with JOINING_AT_ONCE:
            client.start(config.space_id)
            client.join_space(config.space_id)
            watches = self._watches = self._watch_announcements(config, client, outcome)
            client.join_channel(config.announce_channel_id)
        kickoff = self._find_kickoff(config, outcome, *watches)
        self.kickoff = kickoff

        client.react(config.announce_channel_id, kickoff.event_id, self.rng.choice(EMOJIS))
        if self.is_lead:
            client.post(
                config.announce_channel_id,
                f"Check-in from {runtime.process_name(self.environment)}: "
                f"session {config.session_id}",
                thread_id=kickoff.event_id,
            )
        with JOINING_AT_ONCE:
            for channel in config.channel_ids:
                client.join_channel(channel)
        posts = [gevent.spawn(self._first_post, config, client, c) for c in config.channel_ids]
        gevent.joinall(posts)
        failed = [post.value for post in posts if post.value is not None]
        if failed:
            raise failed[0]
        self.reporter.record(PHASE, "join", (time.perf_counter() - started) * 1e3)

        self._report(CHATTING)
        self._chat(config, client, outcome.chat_ends_at)
        self._report(DONE, sent=self.sent)

    def _first_post(self, config: RunConfig, client: ChatClient, channel: str) -> Exception | None:
        """Post `<words>! <sessionId>` in a channel; the error instead of raising it, since the
        first posts go out together (each may wait for its channel's key; in turn, those waits
        would add up)."""
        text = f"{silly_words(self.rng)}! {config.session_id}"
        try:
            event_id = client.post(channel, text)
        except Exception as exc:
            return exc
        self._seen(ChatMessage(channel, event_id, "", text, None, time.time() * 1e3))
        return None

    def _watch_announcements(
        self, config: RunConfig, client: ChatClient, outcome: SignalOutcome
    ) -> tuple[gevent.Greenlet, gevent.Greenlet]:
        """Greenlets waiting for the decrypted kickoff and signal reply, started before the
        announce channel is joined: the client keeps only the last few messages of a channel,
        and the two may arrive among hundreds of reactions."""
        timeout = max(config.follower_signal_timeout_s, 20.0)
        quick = min(KICKOFF_QUICK_S, timeout) if outcome.kickoff_id else timeout
        marker = signal_text(config.session_id)

        def is_kickoff(m: ChatMessage) -> bool:
            is_post = m.kind == "post" and m.thread_id is None
            return is_post and "kickoff" in m.text and config.session_id in m.text

        channel = config.announce_channel_id
        kickoff = gevent.spawn(wait_for_message, client, channel, is_kickoff, quick)
        reply = gevent.spawn(
            wait_for_message,
            client,
            channel,
            lambda m: m.kind == "post" and m.text == marker,
            timeout,
        )
        gevent.sleep(0)  # both wait before the first message can arrive
        return kickoff, reply

    def _find_kickoff(
        self,
        config: RunConfig,
        outcome: SignalOutcome,
        kickoff_watch: gevent.Greenlet,
        reply_watch: gevent.Greenlet,
    ) -> ChatMessage:
        """The decrypted kickoff and signal reply, as the TS followers wait for them.

        In a busy announce channel (a reaction per follower) the node snapshots the stream, and
        GetStream starts at the snapshot: a late joiner may never load the kickoff. After
        `KICKOFF_QUICK_S` it then uses the kickoff's event id carried by the signal (counted
        as `kickoff_not_decrypted` in the summary) instead of failing.
        """
        kickoff: ChatMessage | None = kickoff_watch.get()
        if kickoff is None and outcome.kickoff_id:
            reply_watch.kill(block=False)
            runtime.kickoffs_not_decrypted += 1
            return ChatMessage(config.announce_channel_id, outcome.kickoff_id, "", "", None, 0.0)
        if kickoff is None:
            reply_watch.kill(block=False)
            raise FollowerFailure(f"kickoff of session {config.session_id} not seen")
        if reply_watch.get() is None:
            raise FollowerFailure(f"{signal_text(config.session_id)} reply not seen")
        return kickoff

    def _wait_for_membership(self, config: RunConfig, address: str, until: float) -> None:
        contract = runtime.space_contract(config, self.reporter)
        while True:
            status = contract.status(address)
            if status.active:
                return
            if time.time() >= until:
                raise FollowerFailure(f"{address} has no active membership (status {status})")
            gevent.sleep(MEMBERSHIP_POLL_S)

    def _chat(self, config: RunConfig, client: ChatClient, ends_at: float) -> None:
        max_wait_s = config.max_chat_wait_ms / 1000.0
        while True:
            remaining = ends_at - time.time()
            if remaining <= 0:
                return
            gevent.sleep(min(remaining, self.rng.random() * max_wait_s))
            if time.time() >= ends_at:
                return
            channel = self.rng.choice(config.channel_ids)
            try:
                client.post(channel, f"{silly_words(self.rng, 2)} {self.sent}")
                self.sent += 1
            except Exception as exc:
                logger.debug("message send failed: %s", exc)

    def _seen(self, message: ChatMessage) -> None:
        runtime.record_seen(message)

    def _run_goes_on(self) -> bool:
        state = getattr(self.environment.runner, "state", "")
        return state not in ("stopping", "stopped", "cleanup", "quitting")

    def _hand_over_lead(self) -> None:
        """This first user is being moved elsewhere: a finished local user posts Done instead
        (if none has finished yet, the next one to finish takes the role)."""
        for other in list(runtime.followers):
            if other is not self and other.finished and other.client is not None:
                runtime.tally.lead_slot = other.slot
                other.is_lead = True
                gevent.spawn(post_done, other, other.config)
                return

    def on_stop(self) -> None:
        for watch in self._watches:
            watch.kill(block=False)
        client, self.client = self.client, None
        if client is not None:
            try:
                client.stop()
                runtime.clients_stopped += 1
            except Exception as exc:
                logger.debug("client stop failed: %s", exc)
        if self.slot is not None:
            if runtime.tally.forget(self.slot) and self._run_goes_on():
                self._hand_over_lead()
            slots.release(self.slot)
            self.slot = None
