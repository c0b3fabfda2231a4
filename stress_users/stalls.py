"""How long this process's greenlets went without the hub: the load generator's own health.

All users of a Locust process share one gevent hub. When one greenlet holds it (parsing a busy
channel, encrypting keys for many devices), every other user's timer fires late, every latency
measured meanwhile includes the wait, and the worker's heartbeats to the master stop (Locust
marks a worker missing after about 3 s of silence). `StallWatch` makes that visible: a
greenlet asks to wake every `INTERVAL_S` and records how late it woke. The worst stall and the
number of stalls of a second or more since the process started go into the worker's `Done`
summary and the run summary, so a run whose numbers were bent by a saturated worker says so;
each long stall is also logged as it happens.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent

logger = logging.getLogger(__name__)
HELD = "the hub was held for"
INTERVAL_S = 0.1
LONG_STALL_S = 1.0


class StallWatch:
    """The hub's lateness in this process, sampled every `INTERVAL_S`."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self.long_stalls = 0
        self._greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        """Start watching (once per process; later calls do nothing)."""
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def note(self, late_s: float) -> None:
        """Record one wake-up that came `late_s` seconds after it was due; a long stall is
        logged as a warning."""
        if late_s >= LONG_STALL_S:
            self.long_stalls += 1
            logger.warning("%s %.1f s (users' timers, latencies, heartbeats)", HELD, late_s)
        self.worst_s = max(self.worst_s, late_s)

    def as_dict(self) -> dict[str, Any]:
        return {"worst_ms": round(self.worst_s * 1e3, 1), "over_1s": self.long_stalls}

    def _run(self) -> None:
        while True:
            due = time.perf_counter() + INTERVAL_S
            gevent.sleep(INTERVAL_S)
            self.note(max(0.0, time.perf_counter() - due))


stalls = StallWatch()
