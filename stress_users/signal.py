"""The MEMBERSHIPS_MINTED signal between the root (master) and the followers (workers).

Locust delivers custom messages only to workers connected at the moment they are sent, and a
worker that joins late may spawn users before its `init` listeners run, so the signal is both
pulled and pushed:

- every worker registers `towns_signal` in `init`, then sends `towns_signal_request` (pull);
- the master answers that worker (by its client id) at once if the current session's signal
  is already decided, and broadcasts `towns_signal` to every worker when minting ends (push);
- a worker keeps the outcome per session id and releases the followers waiting on that
  session's gevent Event, whenever they started waiting.

An outcome is either success (memberships minted) or failure (the root could not mint, with
the reason), so followers are never left waiting for a root that gave up. Both handlers only
store a few fields and send at most one message: they never block Locust's message loop.
In local mode (one process) `publish` resolves the waiting followers directly.

The announce channel's thread reply `MEMBERSHIPS_MINTED:{sessionId}` is the durable, public
record of the same event; this module is the fast path between Locust processes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import gevent.event

logger = logging.getLogger(__name__)

SIGNAL_MESSAGE = "towns_signal"
SIGNAL_REQUEST = "towns_signal_request"


def signal_text(session_id: str) -> str:
    """The thread reply that records the signal in the announce channel."""
    return f"MEMBERSHIPS_MINTED:{session_id}"


@dataclass(frozen=True)
class SignalOutcome:
    """The decision of one session's root: memberships minted, or why not."""

    session_id: str
    ok: bool
    reason: str
    sent_at: float
    chat_ends_at: float
    kickoff_id: str = ""

    def as_message(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> SignalOutcome:
        return cls(
            session_id=str(data["session_id"]),
            ok=bool(data["ok"]),
            reason=str(data.get("reason", "")),
            sent_at=float(data["sent_at"]),
            chat_ends_at=float(data["chat_ends_at"]),
            kickoff_id=str(data.get("kickoff_id", "")),
        )


class MembershipSignal:
    """One process's view of the signal: outcomes per session and the Events followers wait on."""

    def __init__(self) -> None:
        self._outcomes: dict[str, SignalOutcome] = {}
        self._events: dict[str, gevent.event.Event] = {}
        self._current: str | None = None
        self._runner: Any = None
        self.received_at: dict[str, float] = {}

    def _event(self, session_id: str) -> gevent.event.Event:
        event = self._events.get(session_id)
        if event is None:
            event = self._events[session_id] = gevent.event.Event()
        return event

    def outcome(self, session_id: str) -> SignalOutcome | None:
        return self._outcomes.get(session_id)

    def wait(self, session_id: str, timeout: float) -> SignalOutcome | None:
        """Block this greenlet until the session's signal arrives; None on timeout."""
        self._event(session_id).wait(timeout)
        return self._outcomes.get(session_id)

    def resolve(self, outcome: SignalOutcome) -> None:
        """Record an outcome and release everyone waiting on its session."""
        if outcome.session_id in self._outcomes:
            return
        self._outcomes[outcome.session_id] = outcome
        self.received_at[outcome.session_id] = time.time()
        self._event(outcome.session_id).set()
        logger.info(
            "signal for session %s: %s%s",
            outcome.session_id,
            "memberships minted" if outcome.ok else "root failed",
            "" if outcome.ok else f" ({outcome.reason})",
        )

    # master side

    def attach_master(self, runner: Any) -> None:
        """Answer the workers' pulls (register in the master's `init`)."""
        self._runner = runner
        runner.register_message(SIGNAL_REQUEST, self._on_request)

    def begin_session(self, session_id: str) -> None:
        """A new test run started on the master: pulls are answered for this session."""
        self._current = session_id

    def publish(self, outcome: SignalOutcome) -> None:
        """Decide the session (master or local process) and push it to every worker."""
        self._current = outcome.session_id
        self.resolve(outcome)
        if self._runner is not None and hasattr(self._runner, "clients"):
            self._runner.send_message(SIGNAL_MESSAGE, outcome.as_message())
            logger.info("signal pushed to %d workers", len(self._runner.clients))

    def _on_request(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        outcome = self._outcomes.get(self._current) if self._current else None
        if outcome is not None:
            self._runner.send_message(SIGNAL_MESSAGE, outcome.as_message(), client_id=msg.node_id)

    # worker side

    def attach_worker(self, runner: Any) -> None:
        """Register the handler, then pull (call in the worker's `init`, in this order)."""
        self._runner = runner
        runner.register_message(SIGNAL_MESSAGE, self._on_signal)
        runner.send_message(SIGNAL_REQUEST, {})

    def _on_signal(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        self.resolve(SignalOutcome.from_message(msg.data))


membership_signal = MembershipSignal()
