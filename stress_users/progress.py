"""Where the run is: followers' phases, minting progress, signal times, worker summaries.

Followers report each phase change to the master (`towns_user_state`, a few messages per user
per run); the master keeps one `RunProgress` that feeds the web UI tab, decides when every
follower has finished, and writes the run's summary. Each process also keeps a `LocalTally`
of its own followers, which the worker's first user waits on before posting `Done`.

Phases of a follower: waiting (for the signal) -> joining -> chatting -> done, or failed
(with the reason). A follower whose worker vanished mid-run is counted as lost.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import gevent.event

USER_STATE = "towns_user_state"
WORKER_SUMMARY = "towns_worker_summary"

WAITING, JOINING, CHATTING, DONE, FAILED, LOST = (
    "waiting",
    "joining",
    "chatting",
    "done",
    "failed",
    "lost",
)
PHASES = (WAITING, JOINING, CHATTING, DONE, FAILED, LOST)
FINAL = frozenset({DONE, FAILED, LOST})


@dataclass
class SlotState:
    phase: str
    node_id: str
    detail: str = ""
    joined: bool = False
    at: float = field(default_factory=time.time)


class RunProgress:
    """The master's (or local process's) picture of one session."""

    def __init__(self) -> None:
        self.reset("", 0)

    def reset(self, session_id: str, total: int) -> None:
        self.session_id = session_id
        self.total = total
        self.started_at = time.time()
        self.root_phase = "starting"
        self.minted = 0
        self.mint_total = 0
        self.mint_failed = 0
        self.already_members = 0
        self.signal_sent_at: float | None = None
        self.signal_ok: bool | None = None
        self.signal_reason = ""
        self.chat_ends_at: float | None = None
        self.first_stream_at: float | None = None
        self.slots: dict[int, SlotState] = {}
        self.workers: dict[str, dict[str, Any]] = {}
        self.lost_workers: dict[str, list[int]] = {}
        self.finished = gevent.event.Event()

    def update(self, node_id: str, data: dict[str, Any]) -> None:
        if data.get("session_id") != self.session_id:
            return
        slot = int(data["slot"])
        previous = self.slots.get(slot)
        phase = str(data["phase"])
        joined = phase in (CHATTING, DONE) or bool(previous and previous.joined)
        self.slots[slot] = SlotState(phase, node_id, str(data.get("detail", "")), joined)
        first_stream = data.get("first_stream_at")
        if first_stream is not None and (
            self.first_stream_at is None or float(first_stream) < self.first_stream_at
        ):
            self.first_stream_at = float(first_stream)
        self._check_finished()

    def mark_lost(self, node_id: str) -> list[int]:
        """A worker vanished: its unfinished followers are lost."""
        lost = [
            slot
            for slot, state in self.slots.items()
            if state.node_id == node_id and state.phase not in FINAL
        ]
        for slot in lost:
            self.slots[slot].phase = LOST
        if lost:
            self.lost_workers.setdefault(node_id, []).extend(lost)
        self._check_finished()
        return lost

    def add_worker_summary(self, node_id: str, summary: dict[str, Any]) -> None:
        if summary.get("session_id") == self.session_id:
            self.workers[node_id] = summary

    def counts(self) -> dict[str, int]:
        phases = Counter(state.phase for state in self.slots.values())
        counts = {phase: phases.get(phase, 0) for phase in PHASES}
        counts["not_started"] = max(0, self.total - len(self.slots))
        counts["joined"] = sum(1 for state in self.slots.values() if state.joined)
        return counts

    def failures(self) -> dict[int, str]:
        return {slot: state.detail for slot, state in self.slots.items() if state.phase == FAILED}

    def _check_finished(self) -> None:
        if (
            self.total
            and len(self.slots) >= self.total
            and all(state.phase in FINAL for state in self.slots.values())
        ):
            self.finished.set()


class LocalTally:
    """This process's followers, for the worker's first user and its `Done` summary."""

    def __init__(self) -> None:
        self.session_id = ""
        self.phases: dict[int, str] = {}
        self.failures: dict[int, str] = {}
        self.lead_slot: int | None = None
        self.done_sent = False

    def begin(self, session_id: str) -> None:
        if session_id != self.session_id:
            self.session_id = session_id
            self.phases.clear()
            self.failures.clear()
            self.lead_slot = None
            self.done_sent = False

    def claim_lead(self, slot: int) -> bool:
        """The first user to claim is this process's first user (check-in, Done)."""
        if self.lead_slot is None:
            self.lead_slot = slot
        return self.lead_slot == slot

    def set(self, slot: int, phase: str, detail: str = "") -> None:
        self.phases[slot] = phase
        if phase == FAILED:
            self.failures[slot] = detail

    def forget(self, slot: int) -> bool:
        """A user stopped (re-dispatch moves its slot to another user); True if it was the
        process's first user, whose role another user must take over."""
        if self.phases.get(slot) not in FINAL:
            self.phases.pop(slot, None)
        if self.lead_slot == slot:
            self.lead_slot = None
            return not self.done_sent
        return False

    def all_final(self, except_slot: int | None = None) -> bool:
        return all(phase in FINAL or slot == except_slot for slot, phase in self.phases.items())

    def counts(self) -> dict[str, int]:
        phases = Counter(self.phases.values())
        return {phase: phases.get(phase, 0) for phase in PHASES}


progress = RunProgress()
tally = LocalTally()
